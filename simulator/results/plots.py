"""Plots of a run, for notebooks and for the report: each returns its matplotlib Axes.

Every time plot shades the scenario's faults (red bands from each fault's start to its
end, or to the plot's end for a fault that does not heal), so cause and effect sit on
one picture. Use them as ``result.plot_latency()`` and so on; pass ``ax`` to draw into
a figure of your own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results.result import SimulationResult

__all__ = [
    "plot_cache",
    "plot_profit_bridge",
    "plot_latency",
    "plot_logistics",
    "plot_payments",
    "plot_traffic",
]

_SIZE = (10, 2.8)


def _axes(ax: Axes | None, title: str, ylabel: str, xlabel: str = "minutes since start"):
    if ax is None:
        _, ax = plt.subplots(figsize=_SIZE)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax


def _shade_faults(ax: Axes, result: SimulationResult, per: float) -> None:
    """Shade each fault's window; ``per`` converts seconds to the x axis's unit."""
    end = ax.get_xlim()[1]
    for i, fault in enumerate(result.scenario.faults):
        start = fault.at_s / per
        duration = getattr(fault, "duration_s", None)  # None: the fault does not heal
        stop = end if duration is None else (fault.at_s + duration) / per
        ax.axvspan(start, stop, color="tab:red", alpha=0.12, label="fault" if i == 0 else None)
    ax.set_xlim(right=end)


def _finish(ax: Axes, result: SimulationResult, per: float = 60.0) -> Axes:
    _shade_faults(ax, result, per)
    if len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(loc="upper right", fontsize="small")
    return ax


def plot_traffic(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """Sessions arriving per second, and requests the rate limiter shed."""
    ts = result.timeseries
    ax = _axes(ax, "Traffic and admitted load", "per second")
    minutes = ts["t_s"] / 60
    interval = result.scenario.timeseries_interval_s
    ax.plot(minutes, ts["arrival_rate_per_s"], label="sessions arriving", linewidth=1)
    if ts["requests_shed"].any():
        ax.plot(minutes, ts["requests_shed"] / interval, label="requests shed", linewidth=1)
    return _finish(ax, result)


def plot_latency(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """Checkout latency quantiles, each over a trailing window holding enough checkouts.

    A quantile of the few checkouts of one second is noise (the p99 of three is their
    maximum), so each line is drawn over the shortest trailing window, up to a minute,
    that holds 2 / (1 - q) checkouts (4 for p50, 40 for p95, 200 for p99), and left out
    where a minute holds fewer.
    """
    from simulator.measure.metrics import enough

    ts = result.timeseries
    ax = _axes(ax, "Checkout latency (trailing window of enough checkouts, at most 1 min)", "ms")
    for q in (50, 95, 99):
        column = f"checkout_p{q}_ms_trailing"
        if column not in ts:  # a table written before the trailing columns existed
            column = f"checkout_p{q}_ms"
        values = ts[column]
        need = enough(q / 100)
        label = (
            f"p{q} (>= {need} checkouts)"
            if values.notna().any()
            else (f"p{q}: no minute had {need} checkouts")
        )
        ax.plot(ts["t_s"] / 60, values, label=label, linewidth=1)
    return _finish(ax, result)


MIN_ATTEMPTS = 10
"""Fewest attempts behind a plotted ratio; below it the ratio is left out, not drawn as 0."""


def _rolling_ratio(part: pd.Series, whole: pd.Series, window: int) -> Any:
    """``sum(part) / sum(whole)`` over the last ``window`` rows.

    NaN (a gap in the line) where the window holds fewer than :data:`MIN_ATTEMPTS`
    attempts: no attempts is not a failure, and 1 of 2 is not a 50% success rate.
    """
    done = part.rolling(window, min_periods=1).sum()
    tried = whole.rolling(window, min_periods=1).sum()
    return (done / tried.where(tried >= MIN_ATTEMPTS)).to_numpy()


def _rows(result: SimulationResult, seconds: float) -> int:
    """How many time-series rows make ``seconds``."""
    return max(1, round(seconds / result.scenario.timeseries_interval_s))


def plot_cache(result: SimulationResult, ax: Axes | None = None, smooth_s: float = 10) -> Axes:
    """Cache hit ratio over the last ``smooth_s`` (left) and database queries/s (right)."""
    ts = result.timeseries
    ax = _axes(
        ax, f"Cache hit ratio (gaps: under {MIN_ATTEMPTS} lookups) and database load", "hit ratio"
    )
    minutes = ts["t_s"] / 60
    lookups = ts["cache_hits"] + ts["cache_misses"]
    ratio = _rolling_ratio(ts["cache_hits"], lookups, _rows(result, smooth_s))
    ax.plot(minutes, ratio, label=f"cache hit ratio ({smooth_s:g} s)", linewidth=1)
    ax.set_ylim(-0.02, 1.02)
    load = ax.twinx()
    load.plot(minutes, ts["db_qps"], color="tab:orange", label="database QPS", linewidth=0.8)
    load.set_ylabel("queries/s")
    handles = [*ax.get_legend_handles_labels()[0], *load.get_legend_handles_labels()[0]]
    ax.set_zorder(load.get_zorder() + 1)  # the ratio over the load
    ax.patch.set_visible(False)
    _shade_faults(ax, result, 60.0)
    ax.legend(handles=handles, loc="upper left", fontsize="small", framealpha=0.9)
    return ax


def plot_payments(result: SimulationResult, ax: Axes | None = None, smooth_s: float = 60) -> Axes:
    """Payment success rate over the last ``smooth_s``, overall and per channel."""
    ts = result.timeseries
    ax = _axes(
        ax, f"Payment success by channel (gaps: under {MIN_ATTEMPTS} attempts)", "success rate"
    )
    minutes = ts["t_s"] / 60
    prefix, window = "payment_attempts_", _rows(result, smooth_s)
    for name in [c.removeprefix(prefix) for c in ts.columns if c.startswith(prefix)]:
        rate = _rolling_ratio(ts[f"payment_successes_{name}"], ts[f"{prefix}{name}"], window)
        ax.plot(minutes, rate, label=name, linewidth=1)
    overall = _rolling_ratio(ts["payment_successes"], ts["payment_attempts"], window)
    ax.plot(minutes, overall, label=f"all ({smooth_s:g} s)", color="black", linewidth=1)
    ax.set_ylim(-0.02, 1.02)
    return _finish(ax, result)


def plot_logistics(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """Each warehouse's backlog (orders waiting to be packed) and parcels delivered, hourly."""
    table = result.logistics
    if table is None:
        raise ValueError("this result has no logistics table")
    ax = _axes(ax, "Warehouse backlog and deliveries", "orders", "hours since start")
    hours = table["t_s"] / 3600
    for column in [c for c in table.columns if c.endswith("_backlog")]:
        ax.step(hours, table[column], where="post", label=column.removesuffix("_backlog"))
    delivered = ax.twinx()
    delivered.bar(hours, table["delivered"], width=0.9, align="edge", alpha=0.25, color="gray")
    delivered.set_ylabel("delivered per hour")
    ax.set_zorder(delivered.get_zorder() + 1)
    ax.patch.set_visible(False)
    if np.isfinite(table.get("tracking_lag_h", np.array([np.nan]))).any():
        ax.set_title("Warehouse backlog, deliveries (gray) and tracking lag")
        lag = ax.twinx()
        lag.spines["right"].set_position(("axes", 1.08))
        lag.plot(hours, table["tracking_lag_h"], color="tab:red", linestyle=":", label="lag")
        lag.set_ylabel("tracking lag (h)")
    return _finish(ax, result, per=3600.0)


def plot_profit_bridge(result: SimulationResult, ax: Axes | None = None) -> Axes:
    """The profit and loss as a waterfall: list value down to net profit, CNY."""
    from simulator.results.money import bridge

    steps = bridge(result.summary["profit_and_loss"])
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.6))
    ax.set_title("Profit bridge: from list value to net profit")
    ax.set_ylabel("CNY")
    ax.grid(alpha=0.3, axis="y")
    level = 0.0
    for i, (_, amount, kind) in enumerate(steps):
        if kind == "total":
            bottom, height, level = 0.0, float(amount), float(amount)
            color = "tab:blue" if amount >= 0 else "tab:red"
        else:
            bottom, height = level, float(amount)
            level += float(amount)
            color = "tab:green" if amount >= 0 else "tab:orange"
        ax.bar(i, height, bottom=bottom, color=color, width=0.7)
        ax.annotate(
            f"{float(amount):,.0f}",
            (i, bottom + height),
            ha="center",
            va="bottom" if height >= 0 else "top",
            fontsize="small",
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")  # no "1e8" offset
    ax.set_xticks(range(len(steps)), [label for label, _, _ in steps], rotation=20, ha="right")
    return ax
