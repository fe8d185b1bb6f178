"""A self-contained HTML report of a run: the question, the KPIs, the outcomes, the plots.

Everything is inline (CSS and SVG figures), so the file opens from disk with no
network. This module computes what each report shows (rows of text, figures) and
:mod:`.pages` lays it out with the Jinja2 templates in ``templates/``, escaping every
text taken from the scenario file. Each report says how it was made (version, command,
overrides, seed, replications, scale) and holds no wall-clock time: the same scenario
and seed give the same file, byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.experiment.answer import comparison_answer, run_answer, sweep_answer
from simulator.experiment.estimates import Estimate, table_estimate
from simulator.present.kpis import (
    HEADLINE,
    business_rows,
    channel_rows,
    delivery_rows,
    difference_cells,
    fmt_grid_value,
    fmt_kpi,
    kpi_kind,
    money_rows,
    protection_rows,
)
from simulator.present.pages import render, svg
from simulator.results.chain import SATURATED, chain_of_causes
from simulator.results.plots import (
    plot_cache,
    plot_latency,
    plot_logistics,
    plot_payments,
    plot_profit_bridge,
    plot_traffic,
)
from simulator.results.provenance import describe
from simulator.results.result import SimulationResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.experiment import Comparison, Sweep
    from simulator.scenario.schema import Scenario

__all__ = [
    "render_comparison",
    "render_report",
    "render_sweep",
    "write_comparison_report",
    "write_report",
    "write_sweep_report",
]


def _rows(result: SimulationResult) -> list[tuple[str, str]]:
    s = result.summary
    lat = s["checkout_latency_ms"]
    return [
        ("Sessions", fmt_kpi(s["sessions"])),
        ("Orders", fmt_kpi(s["orders"])),
        ("GMV (CNY)", fmt_kpi(s["gmv"], "cny")),
        ("AOV (CNY)", fmt_kpi(s["aov"], "cny")),
        ("Conversion rate", fmt_kpi(s["conversion_rate"], "pct")),
        *((name, fmt_kpi(value, kind)) for name, value, kind in business_rows(s)),
        *((name, fmt_kpi(value, kind)) for name, value, kind in money_rows(s)),
        ("Checkout latency p50 (ms)", fmt_kpi(lat["p50"])),
        ("Checkout latency p95 (ms)", fmt_kpi(lat["p95"])),
        ("Checkout latency p99 (ms)", fmt_kpi(lat["p99"])),
        ("Cache hit ratio", fmt_kpi(s["cache_hit_ratio"], "pct")),
        ("DB peak QPS", fmt_kpi(s["db_peak_qps"])),
        ("DB pool timeouts", fmt_kpi(s["db_pool_timeouts"])),
        ("Payment success rate", fmt_kpi(s["payment_success_rate"], "pct")),
        *((name, fmt_kpi(value, kind)) for name, value, kind in delivery_rows(s)),
        *((name, fmt_kpi(value)) for name, value in protection_rows(s)),
    ]


def render_report(result: SimulationResult) -> str:
    """The report as an HTML string."""
    s = result.summary
    return render(
        "run.html.j2",
        title=f"{s['scenario']} — campaign-sim report",
        name=s["scenario"],
        question=_question(result.scenario),
        answer=run_answer(result.scenario, s),
        provenance=describe(s.get("provenance", {})),
        runs=_runs(s),
        scale=_scale_section(s),
        kpis=[_kpi_row(name, value) for name, value in _rows(result)],
        money=_money_section(result),
        chain=_chain_section(result),
        outcomes=_outcomes([s]),
        faults=_faults_sections([("Fault timeline", s)]),
        figures=[svg(plot(result).get_figure(root=True)) for plot in _plots(result)],
    )


def _kpi_row(name: str, value: str) -> dict[str, Any]:
    """A KPI's row; an indented name (a part of the row above) stays indented."""
    if name.startswith(" "):
        return {"name": name.strip(), "value": value, "part": True}
    return {"name": name[:1].upper() + name[1:], "value": value, "part": False}


def _money_section(result: SimulationResult) -> dict[str, Any]:
    """The profit bridge, and the channels' table when the sale buys traffic."""
    s = result.summary
    channels = None
    if len(s["traffic_channels"]) > 1:
        header, *rows = channel_rows(s)
        channels = {"header": header, "rows": rows}
    return {
        "net_profit": fmt_kpi(s["net_profit"], "cny"),
        "bridge": svg(plot_profit_bridge(result).get_figure(root=True)),
        "channels": channels,
    }


def _chain_section(result: SimulationResult) -> dict[str, Any] | None:
    """The chain of causes of a single run, when more than one part of the shop gave way."""
    s = result.summary
    if "replications" in s:
        return None
    links = chain_of_causes(s, result.timeseries, result.logistics)
    if len(links) < 3:  # the spike and one station: no chain to tell
        return None
    first = next((link for link in links if link.component != "traffic"), links[0])
    return {
        "first": first.component.capitalize(),
        "first_at": _clock(first.at_s),
        "saturated": f"{SATURATED:.0%}",
        "links": [
            {
                "at": _clock(link.at_s),
                "component": link.component,
                "what": link.what,
                "lost": _amount(link.orders_lost),
                "unit": link.unit,
                "cny": _amount(link.cny),
            }
            for link in links
        ],
    }


def _clock(seconds: float) -> str:
    return f"{seconds:,.0f}"


def _amount(value: float | None) -> str:
    if value is None or value != value:  # NaN: not counted
        return ""
    return f"{value:,.0f}"


def _question(scenario: Scenario) -> dict[str, str]:
    """The scenario's question (its description's first line) and its assumptions."""
    question, _, rest = scenario.description.strip().partition("\n")
    return {"question": question, "assumptions": rest.strip()}


def _plots(result: SimulationResult) -> list[Callable[..., Axes]]:
    """The time plots this run has the components for."""
    plots = [plot_traffic, plot_latency, plot_cache, plot_payments]
    if result.logistics is not None and len(result.logistics):
        plots.append(plot_logistics)
    return plots


def _scale_section(s: dict) -> dict[str, Any] | None:
    """What the run's scale makes incomparable with the full-size sale (None at 1)."""
    notes = s.get("scale_notes") or []
    if not notes:
        return None
    return {"scale": _scale(s["scale"]), "notes": notes}


def _scale(value: Any) -> str:
    """1/10 rather than 0.1, from a run's scale or a replicated summary's estimate of it."""
    if isinstance(value, dict):
        value = value["mean"]
    return str(Fraction(float(value)).limit_denominator(10_000))


def _runs(s: dict) -> str | None:
    """What the figures of replications are (a single run's say nothing more)."""
    if "replications" not in s:
        return None
    return (
        f"{s['replications']} replications: each figure is the mean with its 95% "
        f"confidence interval; the plots show replication 0."
    )


def _faults_sections(sides: list[tuple[str, dict]]) -> list[dict[str, Any]]:
    """Each side's fault timeline, with each fault's recovery time; none without faults.

    Over replications the recovery time is the mean [CI] of those that recovered, and the
    table says how many did not.
    """
    return [
        _faults_section(s["faults"], title, s.get("replications", 1))
        for title, s in sides
        if s["faults"]
    ]


def _faults_section(faults: list[dict], title: str, replications: int) -> dict[str, Any]:
    def seconds(v: float | None, missing: str) -> str:
        return missing if v is None else f"{v:,.0f}"

    def recovery(v: float | None) -> str:
        if not isinstance(v, Estimate):
            return seconds(v, "not recovered")
        text = fmt_kpi(v)
        if v.n < replications:
            text += f"; {replications - v.n} of {replications} not recovered"
        return text

    rows = [
        {
            "kind": f["kind"],
            "target": f["label"].split(":", 1)[1].rsplit("@", 1)[0],
            "at": seconds(f["at_s"], "-"),
            "lasting": seconds(f["duration_s"], "-"),
            "recovery": recovery(f["recovery_time_s"]),
        }
        for f in sorted(faults, key=lambda f: f["at_s"])
    ]
    return {"title": title, "rows": rows}


def _outcomes(summaries: list[dict]) -> dict[str, Any]:
    """Each outcome's sessions and share of all sessions, per summary (A and B)."""
    header = ["outcome", "sessions", "share"]
    if len(summaries) == 2:
        header = ["outcome", "A sessions", "A share", "B sessions", "B share"]
    names = dict.fromkeys(k for s in summaries for k in s["outcomes"])
    rows = [[name, *(c for s in summaries for c in _count_cells(s, name))] for name in names]
    return {"header": header, "rows": rows}


def _count_cells(summary: dict, outcome: str) -> list[str]:
    """An outcome's sessions and share of all sessions, as two cells."""
    count = summary["outcomes"].get(outcome, 0)
    share = count / (summary["sessions"] or 1)
    return [fmt_kpi(count), f"{share:.1%}"]


def render_comparison(comparison: Comparison) -> str:
    """A and B side by side: their questions, B - A per KPI with its paired CI, plots."""
    a, b = comparison.a.result(), comparison.b.result()
    sa, sb = a.summary, b.summary
    table = comparison.table()
    headline = [k for k in HEADLINE if k in table.index]
    in_b = _plots(b)
    pairs = [p for p in _plots(a) if p in in_b]
    return render(
        "comparison.html.j2",
        title=f"{sa['scenario']} vs {sb['scenario']} — campaign-sim comparison",
        provenance=describe(comparison.provenance),
        answer=comparison_answer(comparison.a, comparison.b, table),
        a={"label": "A", "name": sa["scenario"], "question": _question(a.scenario)},
        b={"label": "B", "name": sb["scenario"], "question": _question(b.scenario)},
        seed=sa["seed"],
        replications=sa["replications"],
        headline=_differences(table, headline),
        every=_differences(table, list(table.index)),
        outcomes=_outcomes([sa, sb]),
        faults=_faults_sections([("Faults of A", sa), ("Faults of B", sb)]),
        figures=[_pair_figure(plot, a, b) for plot in pairs],
    )


def _differences(table: pd.DataFrame, kpis: list[str]) -> list[dict[str, Any]]:
    """Per KPI: A, B, B - A and its CI as text, the relative change, significance."""
    rows = []
    for kpi in kpis:
        row = table.loc[kpi].to_dict()
        relative = row["relative"]
        rows.append(
            {
                "kpi": kpi,
                "cells": difference_cells(row, kpi_kind(kpi)),
                "relative": f"{relative:+.1%}" if math.isfinite(relative) else "-",
                "significant": "yes" if row["significant"] else "",
            }
        )
    return rows


def _pair_figure(plot: Callable[..., Axes], a: SimulationResult, b: SimulationResult) -> str:
    """One plot of A and of B side by side, sharing the y axis."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(15, 3), sharey=True)
    for ax, result, side in zip(axes, (a, b), "AB", strict=True):
        plot(result, ax=ax)
        ax.set_title(f"{side}: {ax.get_title()}")
    # The right-hand axes (twins sharing a side's x axis) too, in the order drawn.
    twins_a, twins_b = (
        [t for t in fig.axes if t is not ax and t in ax.get_shared_x_axes().get_siblings(ax)]
        for ax in axes
    )
    if len(twins_a) == len(twins_b):
        for pair in zip(twins_a, twins_b, strict=True):
            lows, highs = zip(*(t.get_ylim() for t in pair), strict=True)
            for twin in pair:
                twin.set_ylim(min(lows), max(highs))
    fig.tight_layout()
    return svg(fig)


SWEEP_KPIS = (
    "checkout_latency_ms.p99",
    "conversion_rate",
    "gmv",
    "payment_success_rate",
    "lost_gmv_total",
)
"""KPIs a sweep's report shows besides the chosen one (those the runs have)."""


def render_sweep(sweep: Sweep, kpi: str | None = None) -> str:
    """The grid, a plot per KPI against the first swept field, and each point's KPIs."""
    scenario = sweep.runs[0].scenario
    table = sweep.table()
    present = set(table["kpi"])
    chosen = [kpi] if kpi else []
    shown = [k for k in dict.fromkeys([*chosen, *SWEEP_KPIS]) if k in present]
    paths = list(sweep.grid)
    rows = []
    for point, frame in table.groupby("point", sort=True):
        by_kpi = frame.set_index("kpi")
        values = [str(point), *(fmt_grid_value(frame[p].iloc[0]) for p in paths)]
        values += [
            fmt_kpi(table_estimate(by_kpi.loc[k].to_dict()), kpi_kind(k))
            if k in by_kpi.index
            else "-"  # no replication of this point has the KPI
            for k in shown
        ]
        rows.append(values)
    return render(
        "sweep.html.j2",
        title=f"sweep of {scenario.name} — campaign-sim report",
        provenance=describe(sweep.provenance),
        answer=sweep_answer(sweep, shown[0] if shown else "checkout_latency_ms.p99"),
        name=scenario.name,
        question=_question(scenario),
        points=len(sweep.points),
        grid=[(p, ", ".join(fmt_grid_value(v) for v in vs)) for p, vs in sweep.grid.items()],
        seed=sweep.runs[0].seed,
        replications=len(sweep.runs[0].summaries),
        first_path=paths[0],
        figures=[svg(sweep.plot(k)) for k in shown],
        header=["point", *paths, *shown],
        rows=rows,
    )


def write_report(result: SimulationResult, path: str | Path) -> Path:
    """Write the report to ``path`` and return it."""
    out = Path(path)
    out.write_text(render_report(result), encoding="utf-8")
    return out


def write_comparison_report(comparison: Comparison, path: str | Path) -> Path:
    """Write a comparison's report (A and B side by side) to ``path`` and return it."""
    out = Path(path)
    out.write_text(render_comparison(comparison), encoding="utf-8")
    return out


def write_sweep_report(sweep: Sweep, path: str | Path, kpi: str | None = None) -> Path:
    """Write a sweep's report (``kpi`` first) to ``path`` and return it."""
    out = Path(path)
    out.write_text(render_sweep(sweep, kpi), encoding="utf-8")
    return out
