"""A self-contained HTML report of a run: the question, the KPIs, the outcomes, the plots.

Everything is inline (CSS and SVG figures), so the file opens from disk with no
network. Every text taken from the scenario file is HTML-escaped.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402

from simulator.experiment.estimates import Estimate, table_estimate  # noqa: E402
from simulator.present.kpis import (  # noqa: E402
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
from simulator.results.chain import SATURATED, chain_of_causes  # noqa: E402
from simulator.results.plots import (  # noqa: E402
    plot_cache,
    plot_latency,
    plot_logistics,
    plot_payments,
    plot_profit_bridge,
    plot_traffic,
)
from simulator.results.result import SimulationResult  # noqa: E402

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

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .question { font-size: 1.2rem; color: #444; }
pre.assumptions { white-space: pre-wrap; background: #f6f6f6; padding: 0.8rem; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { padding: 0.2rem 0.8rem; }
th { text-align: left; border-bottom: 1px solid #999; }
td.num { text-align: right; white-space: nowrap; } td.part { padding-left: 2rem; }
.wide { overflow-x: auto; }
tr:nth-child(even) { background: #fafafa; } figure { margin: 1rem 0; }
figure svg { width: 100%; height: auto; }
.sides, .figures { display: grid; grid-template-columns: 1fr 1fr; gap: 0 2rem; }
details { margin: 0.5rem 0 1rem; }
"""


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


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
    kpis = "".join(
        f"<tr>{_label(name)}<td class='num'>{html.escape(v)}</td></tr>" for name, v in _rows(result)
    )
    outcomes = "".join(
        f"<tr><td>{html.escape(k)}</td>{_count_cells(s, k)}</tr>" for k in s["outcomes"]
    )
    figures = "".join(
        f"<figure>{_svg(plot(result).get_figure(root=True))}</figure>" for plot in _plots(result)
    )
    return _page(
        f"{s['scenario']} — campaign-sim report",
        f"""<h1>{html.escape(s["scenario"])}</h1>
{_question(result.scenario)}
<p>{_provenance(s)}</p>
{_scale_section(s)}<h2>Key figures</h2>
<table id="kpis"><tr><th>KPI</th><th>value</th></tr>{kpis}</table>
{_money_section(result)}
{_chain_section(result)}<h2>How sessions ended</h2>
<table id="outcomes"><tr><th>outcome</th><th>sessions</th><th>share</th></tr>{outcomes}</table>
{_faults_section(s["faults"], replications=s.get("replications", 1))}<h2>Over time</h2>
{figures}""",
    )


def _money_section(result: SimulationResult) -> str:
    """The profit bridge, and the channels' table when the sale buys traffic."""
    s = result.summary
    figure = _svg(plot_profit_bridge(result).get_figure(root=True))
    table = ""
    if len(s["traffic_channels"]) > 1:
        header, *rows = channel_rows(s)
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>"
            + f"<td>{html.escape(row[0])}</td>"
            + "".join(f"<td class='num'>{html.escape(v)}</td>" for v in row[1:])
            + "</tr>"
            for row in rows
        )
        table = (
            "<p>Per traffic channel ('base' is the traffic curve's own visitors). ROI is "
            "GMV per CNY spent; CAC is spend per new customer; LTV/CAC is to be at least "
            "3 [002 §12].</p>"
            f"<div class='wide'><table id='channels'><tr>{head}</tr>{body}</table></div>"
        )
    return f"""<h2>Profit and loss</h2>
<p>Net profit {html.escape(fmt_kpi(s["net_profit"], "cny"))} CNY; every line is in
summary.json under profit_and_loss.</p>
<figure id="profit-bridge">{figure}</figure>
{table}"""


def _chain_section(result: SimulationResult) -> str:
    """The chain of causes of a single run, when more than one part of the shop gave way."""
    s = result.summary
    if "replications" in s:
        return ""
    links = chain_of_causes(s, result.timeseries, result.logistics)
    if len(links) < 3:  # the spike and one station: no chain to tell
        return ""
    rows = "".join(
        f"<tr><td class='num'>{_clock(link.at_s)}</td><td>{html.escape(link.component)}</td>"
        f"<td>{html.escape(link.what)}</td>"
        f"<td class='num'>{_amount(link.orders_lost)}</td><td>{html.escape(link.unit)}</td>"
        f"<td class='num'>{_amount(link.cny)}</td></tr>"
        for link in links
    )
    first = next((link for link in links if link.component != "traffic"), links[0])
    return f"""<section id="chain"><h2>Chain of causes</h2>
<p>{html.escape(first.component.capitalize())} gave way first, at
{_clock(first.at_s)} s; each row is a part of the shop the first time its own
measurement crossed its threshold (a station {SATURATED:.0%} busy in an interval or
turning work away, a payment queueing, a backlog beyond an hour's packing, waits beyond
the service target), with what that link itself cost. A paired comparison with the
defended sale (<code>campaign-sim compare</code>) says what each defence changes.</p>
<table id="chain-links"><tr><th>first at (s)</th><th>component</th><th>what happened</th>
<th>lost</th><th></th><th>CNY lost or spent</th></tr>{rows}</table></section>
"""


def _clock(seconds: float) -> str:
    return f"{seconds:,.0f}"


def _amount(value: float | None) -> str:
    if value is None or value != value:  # NaN: not counted
        return ""
    return f"{value:,.0f}"


def _label(name: str) -> str:
    """A KPI's name cell; an indented name (a part of the row above) stays indented."""
    if name.startswith(" "):
        return f"<td class='part'>{html.escape(name.strip())}</td>"
    return f"<td>{html.escape(name[:1].upper() + name[1:])}</td>"


def _page(title: str, body: str) -> str:
    """A whole self-contained page: inline CSS, no scripts, nothing fetched."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head>
<body>
{body}
</body></html>
"""


def _question(scenario: Scenario) -> str:
    """The scenario's question (its description's first line) and its assumptions."""
    question, _, rest = scenario.description.strip().partition("\n")
    return (
        f'<p class="question">{html.escape(question)}</p>\n'
        f'<pre class="assumptions">{html.escape(rest.strip())}</pre>'
    )


def _plots(result: SimulationResult) -> list[Callable[..., Axes]]:
    """The time plots this run has the components for."""
    plots = [plot_traffic, plot_latency, plot_cache, plot_payments]
    if result.logistics is not None and len(result.logistics):
        plots.append(plot_logistics)
    return plots


def _scale_section(s: dict) -> str:
    """What the run's scale makes incomparable with the full-size sale (nothing at 1)."""
    notes = s.get("scale_notes") or []
    if not notes:
        return ""
    items = "".join(
        f"<li><code>{html.escape(n['field'])}</code>: {html.escape(n['note'])}</li>" for n in notes
    )
    scale = html.escape(_scale(s["scale"]))
    return f"""<section id="scale-notes"><h2>Simulated at scale {scale}</h2>
<p>Money is at full size; counts (sessions, orders) are the simulated ones. These are
not comparable with the full-size sale:</p>
<ul>{items}</ul></section>
"""


def _scale(value: Any) -> str:
    """1/10 rather than 0.1, from a run's scale or a replicated summary's estimate of it."""
    if isinstance(value, dict):
        value = value["mean"]
    return str(Fraction(float(value)).limit_denominator(10_000))


def _provenance(s: dict) -> str:
    """Which runs the figures come from."""
    if "replications" in s:
        return (
            f"Seed {s['seed']}, {s['replications']} replications: each figure is the mean "
            f"with its 95% confidence interval; the plots show replication 0."
        )
    return f"Seed {s['seed']}, replication {s['replication']}."


def _faults_section(
    faults: list[dict], title: str = "Fault timeline", replications: int = 1
) -> str:
    """The fault timeline as a table, with each fault's recovery time; empty without faults.

    Over replications the recovery time is the mean [CI] of those that recovered, and the
    table says how many did not.
    """
    if not faults:
        return ""

    def seconds(v: float | None, missing: str) -> str:
        return missing if v is None else f"{v:,.0f}"

    def recovery(v: float | None) -> str:
        if not isinstance(v, Estimate):
            return seconds(v, "not recovered")
        text = fmt_kpi(v)
        if v.n < replications:
            text += f"; {replications - v.n} of {replications} not recovered"
        return text

    rows = "".join(
        f"<tr><td>{html.escape(f['kind'])}</td>"
        f"<td>{html.escape(f['label'].split(':', 1)[1].rsplit('@', 1)[0])}</td>"
        f"<td class='num'>{seconds(f['at_s'], '-')}</td>"
        f"<td class='num'>{seconds(f['duration_s'], '-')}</td>"
        f"<td class='num'>{html.escape(recovery(f['recovery_time_s']))}</td></tr>"
        for f in sorted(faults, key=lambda f: f["at_s"])
    )
    return (
        f"<h2>{html.escape(title)}</h2>\n<table class='faults'><tr><th>fault</th><th>target</th>"
        "<th>at (s)</th><th>lasting (s)</th><th>recovery (s)</th></tr>"
        f"{rows}</table>\n"
    )


def render_comparison(comparison: Comparison) -> str:
    """A and B side by side: their questions, B - A per KPI with its paired CI, plots."""
    a, b = comparison.a.result(), comparison.b.result()
    sa, sb = a.summary, b.summary
    table = comparison.table()
    headline = [k for k in HEADLINE if k in table.index]
    outcomes = "".join(
        f"<tr><td>{html.escape(k)}</td>{_count_cells(sa, k)}{_count_cells(sb, k)}</tr>"
        for k in dict.fromkeys([*sa["outcomes"], *sb["outcomes"]])
    )
    sides = "".join(
        f"<div><h2>{side}: {html.escape(r.summary['scenario'])}</h2>{_question(r.scenario)}</div>"
        for side, r in (("A", a), ("B", b))
    )
    in_b = _plots(b)
    pairs = [p for p in _plots(a) if p in in_b]
    figures = "".join(f"<figure>{_pair_figure(plot, a, b)}</figure>" for plot in pairs)
    faults = "".join(
        _faults_section(r.summary["faults"], f"Faults of {side}", r.summary["replications"])
        for side, r in (("A", a), ("B", b))
    )
    return _page(
        f"{sa['scenario']} vs {sb['scenario']} — campaign-sim comparison",
        f"""<h1>A: {html.escape(sa["scenario"])} vs B: {html.escape(sb["scenario"])}</h1>
<p>Seed {sa["seed"]}, {sa["replications"]} replications of each on common random numbers:
replication r of A and of B draw from the same streams, so B - A is paired. Each difference
has its 95% confidence interval; it is significant when the interval excludes 0. The plots
show replication 0 of each, on shared axes.</p>
<div class="sides">{sides}</div>
<h2>Key figures: B - A</h2>
{_difference_table("kpis", table, headline)}
<details><summary>All {len(table)} KPIs</summary>
{_difference_table("all-kpis", table, list(table.index))}</details>
<h2>How sessions ended</h2>
<table id="outcomes"><tr><th>outcome</th><th>A sessions</th><th>A share</th>
<th>B sessions</th><th>B share</th></tr>{outcomes}</table>
{faults}<h2>Over time</h2>
{figures}""",
    )


def _difference_table(table_id: str, table: pd.DataFrame, kpis: list[str]) -> str:
    rows = []
    for kpi in kpis:
        row = table.loc[kpi].to_dict()
        cells = "".join(
            f"<td class='num'>{html.escape(c)}</td>" for c in difference_cells(row, kpi_kind(kpi))
        )
        relative = row["relative"]
        rows.append(
            f"<tr><td>{html.escape(kpi)}</td>{cells}"
            f"<td class='num'>{f'{relative:+.1%}' if math.isfinite(relative) else '-'}</td>"
            f"<td>{'yes' if row['significant'] else ''}</td></tr>"
        )
    return (
        f"<table id='{table_id}'><tr><th>KPI</th><th>A</th><th>B</th><th>B - A</th>"
        f"<th>95% CI</th><th>relative</th><th>significant</th></tr>{''.join(rows)}</table>"
    )


def _count_cells(summary: dict, outcome: str) -> str:
    """An outcome's sessions and share of all sessions, as two cells."""
    count = summary["outcomes"].get(outcome, 0)
    share = count / (summary["sessions"] or 1)
    return f"<td class='num'>{fmt_kpi(count)}</td><td class='num'>{share:.1%}</td>"


def _pair_figure(plot: Callable[..., Axes], a: SimulationResult, b: SimulationResult) -> str:
    """One plot of A and of B side by side, sharing the y axis."""
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
    return _svg(fig)


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
    figures = "".join(f"<figure>{_svg(sweep.plot(k))}</figure>" for k in shown)
    paths = list(sweep.grid)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["point", *paths, *shown])
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
        rows.append(
            "<tr>" + "".join(f"<td class='num'>{html.escape(v)}</td>" for v in values) + "</tr>"
        )
    grid = "; ".join(
        f"{html.escape(p)} = {html.escape(', '.join(fmt_grid_value(v) for v in vs))}"
        for p, vs in sweep.grid.items()
    )
    replications = len(sweep.runs[0].summaries)
    return _page(
        f"sweep of {scenario.name} — campaign-sim report",
        f"""<h1>Sweep of {html.escape(scenario.name)}</h1>
{_question(scenario)}
<p>Full factorial grid of {len(sweep.points)} points: {grid}. Seed {sweep.runs[0].seed},
{replications} replications per point on common random numbers (every point draws from the
same streams), so differences between points are paired. Each figure is the mean with its
95% confidence interval.</p>
<h2>KPIs against {html.escape(paths[0])}</h2>
<div class="figures">{figures}</div>
<h2>Every point</h2>
<div class="wide"><table id="points"><tr>{head}</tr>{"".join(rows)}</table></div>""",
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
