"""The result of a run: the KPI summary, the time series, and how they are written.

``summary.json`` is the contract other tools read (see ``DESIGN.md``): session counts
by outcome, the business figures, the system figures, per-station statistics and the
provenance (the scenario as resolved, the seed, the package versions). It holds no
wall-clock time, so the same scenario and seed give the same file, byte for byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results.display import Html

__all__ = ["SimulationResult", "to_json"]


@dataclass
class SimulationResult:
    """One replication's figures.

    Attributes:
        scenario: the scenario as run.
        summary: KPIs and provenance, as written to ``summary.json``.
        timeseries: one row per interval, as written to ``timeseries.parquet``.
        orders: one row per paid order (``orders.parquet``), or None.
    """

    scenario: Scenario
    summary: dict[str, Any]
    timeseries: pd.DataFrame = field(repr=False)
    orders: pd.DataFrame | None = field(default=None, repr=False)
    """One row per paid order, when the run was asked to keep them (``keep_orders``)."""
    logistics: pd.DataFrame | None = field(default=None, repr=False)
    """One row per hour to the last delivery: warehouses, tracking, customer service."""

    def __repr__(self) -> str:
        """One line: the scenario, its seed and its answer KPIs (not the whole summary)."""
        from simulator.results.display import result_line

        return f"<SimulationResult {result_line(self.scenario, self.summary)}>"

    def html(self, kpis: Iterable[str] | None = None) -> Html:
        """The KPI table a notebook shows; ``kpis`` (dotted paths) instead of the default.

        By default: the question, the answer KPIs, then a handful of headline KPIs
        (:mod:`simulator.results.display`).
        """
        from simulator.results.display import result_html

        return result_html(self.scenario, self.summary, kpis)

    def _repr_html_(self) -> str:
        return self.html()

    def plot_traffic(self, ax: Axes | None = None) -> Axes:
        """Sessions arriving per second and requests shed, faults shaded."""
        from simulator.results.plots import plot_traffic

        return plot_traffic(self, ax)

    def plot_latency(self, ax: Axes | None = None) -> Axes:
        """Checkout latency p50 / p95 / p99 per interval, faults shaded."""
        from simulator.results.plots import plot_latency

        return plot_latency(self, ax)

    def plot_cache(self, ax: Axes | None = None, smooth_s: float = 10) -> Axes:
        """Cache hit ratio over ``smooth_s`` and database queries per second, faults shaded."""
        from simulator.results.plots import plot_cache

        return plot_cache(self, ax, smooth_s)

    def plot_payments(self, ax: Axes | None = None, smooth_s: float = 60) -> Axes:
        """Payment success rate over ``smooth_s``, overall and per channel, faults shaded."""
        from simulator.results.plots import plot_payments

        return plot_payments(self, ax, smooth_s)

    def plot_logistics(self, ax: Axes | None = None) -> Axes:
        """Warehouse backlogs, deliveries and tracking lag per hour."""
        from simulator.results.plots import plot_logistics

        return plot_logistics(self, ax)

    def plot_profit_bridge(self, ax: Axes | None = None) -> Axes:
        """The profit and loss as a waterfall, from list value to net profit."""
        from simulator.results.plots import plot_profit_bridge

        return plot_profit_bridge(self, ax)

    def write(self, out_dir: str | Path) -> Path:
        """Write the summary and the tables; return the folder.

        Files: ``summary.json``, ``timeseries.parquet``, ``logistics.parquet`` and
        ``orders.parquet`` (when kept). The HTML report is presentation's
        (:func:`simulator.present.report.write_report`).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(to_json(self.summary) + "\n", encoding="utf-8")
        self.timeseries.to_parquet(out / "timeseries.parquet", index=False)
        if self.logistics is not None:
            self.logistics.to_parquet(out / "logistics.parquet", index=False)
        if self.orders is not None:
            self.orders.to_parquet(out / "orders.parquet", index=False)
        return out


def to_json(value: Any) -> str:
    """Serialise a summary: NaN and infinities become null, numpy scalars plain numbers."""
    return json.dumps(_clean(value), indent=2, allow_nan=False)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
