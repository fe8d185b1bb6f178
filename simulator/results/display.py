"""How results show in a notebook: small KPI tables in HTML, the answer first.

A notebook shows the last value of a cell by asking it for ``_repr_html_``, the way a
shop window shows a few goods rather than the stockroom. A run, replications, a
comparison and a sweep answer with a compact table, like the first lines of their
report: the scenario's question (the first line of its description), the KPIs that
answer it (its ``answers:``, or what every sale is judged on), then a handful of
headline KPIs. Each KPI is named by the registry (:mod:`simulator.results.registry`),
its dotted path shown on hover, and every number prints in its unit through the
registry, never as ``3.340000e+04``. Every text is escaped, so a name or a description
shows as written and cannot break the page.

This module builds the tables; the objects choose the rows and cells (the experiments'
own, with intervals and verdicts, are in :mod:`simulator.experiment`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from simulator.results.provenance import SCALE_NOTE, scale_text
from simulator.results.registry import answer_kpis, kpi
from simulator.scenario.presets import question
from simulator.scenario.schema import Scenario

__all__ = [
    "HEADLINE",
    "Html",
    "Row",
    "cell",
    "kpi_table",
    "lookup",
    "result_html",
    "result_line",
    "scale_caption",
    "shown_kpis",
    "side_by_side",
    "value_text",
]

HEADLINE = (
    "sessions",
    "orders",
    "gmv",
    "conversion_rate",
    "checkout_latency_ms.p99",
    "payment_success_rate",
    "cache_hit_ratio",
    "net_profit",
)
"""The headline KPIs a notebook's table shows after the answer KPIs (those a run has)."""

_LEFT = "text-align: left"
_RIGHT = "text-align: right; font-variant-numeric: tabular-nums"


class Html(str):
    """Markup that a notebook shows as HTML (anywhere else it is the markup itself)."""

    def _repr_html_(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Row:
    """One row of a KPI table.

    Attributes:
        path: the KPI's dotted path (its name comes from the registry); "" for none.
        cells: the row's other cells, as text (escaped when the table is built).
        answer: an answer KPI: its name is set in bold.
        label: the row's name instead of the KPI's heading (None: the heading).
    """

    path: str
    cells: Sequence[str]
    answer: bool = False
    label: str | None = None


def shown_kpis(
    scenario: Scenario, available: Collection[str], kpis: Iterable[str] | None = None
) -> list[str]:
    """The KPIs a table shows: ``kpis`` if given, else the answer KPIs then the headline.

    Answer KPIs are shown even when the run lacks them (as ``-``); headline KPIs only
    when it has them.
    """
    if kpis is not None:
        return list(dict.fromkeys(kpis))
    answers = answer_kpis(scenario)
    return answers + [k for k in HEADLINE if k in available and k not in answers]


def lookup(summary: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted KPI path of a (nested) summary, or None.

    A key may itself hold a dot (a fault's label), so each split is tried.
    """
    if path in summary:
        return summary[path]
    for i, char in enumerate(path):
        if char == "." and isinstance(summary.get(path[:i]), Mapping):
            found = lookup(summary[path[:i]], path[i + 1 :])
            if found is not None:
                return found
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def cell(path: str, value: Any, low: Any = None, high: Any = None, change: bool = False) -> str:
    """A KPI's value in its unit, followed by `` [low, high]`` when both bounds are known.

    ``-`` for no value (None, NaN or not a number). With ``change``, the value is a
    difference: a share's in percentage points.
    """
    info = kpi(path)
    show = info.format_change if change else info.format
    number = _number(value)
    text = show(number)
    lo, hi = _number(low), _number(high)
    if number is not None and lo is not None and hi is not None:
        text += f" [{show(lo)}, {show(hi)}]"
    return text


def value_text(value: Any) -> str:
    """A scenario field's value as a table shows it: ``1,522,000``, ``0.25``, ``atomic``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.10f}".rstrip("0")


def scale_caption(scenario: Scenario) -> str:
    """`` · scale 1/10: money at full size; counts simulated`` ("" at full size)."""
    text = scale_text(scenario.scale)
    return "" if text == "1" else f" · scale {text}: {SCALE_NOTE}"


def kpi_table(
    title: str,
    caption: str,
    header: Sequence[str],
    rows: Sequence[Row],
    lines: Sequence[str] = (),
) -> Html:
    """A KPI table as HTML: the title (the question) above, notes below; all text escaped.

    Args:
        title: the line above the table, in bold (the scenario's question).
        caption: what the table is of (scenario, seed, replications, scale).
        header: the column names, the KPI column's first.
        rows: the rows (see :class:`Row`).
        lines: sentences below the table (a comparison's verdicts), one item each.
    """
    out = ['<div class="campaign-sim">']
    if title:
        out.append(f"<p><strong>{escape(title)}</strong></p>")
    out.append("<table>")
    if caption:
        out.append(f'<caption style="{_LEFT}">{escape(caption)}</caption>')
    heads = "".join(
        f'<th style="{_LEFT if i == 0 else _RIGHT}">{escape(h)}</th>' for i, h in enumerate(header)
    )
    out.append(f"<thead><tr>{heads}</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        heading = kpi(row.path).heading if row.path else ""
        name = escape(heading if row.label is None else row.label)
        if row.answer and name:
            name = f"<strong>{name}</strong>"
        hover = f' title="{escape(row.path)}"' if row.path else ""
        cells = "".join(f'<td style="{_RIGHT}">{escape(c)}</td>' for c in row.cells)
        out.append(f'<tr><th style="{_LEFT}"{hover}>{name}</th>{cells}</tr>')
    out.append("</tbody></table>")
    if lines:
        out.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>")
    out.append("</div>")
    return Html("\n".join(out))


def _estimate_bounds(value: Any) -> tuple[Any, Any]:
    """A replicated KPI's interval (an ``Estimate`` carries one), else none."""
    return getattr(value, "ci_low", None), getattr(value, "ci_high", None)


def result_html(
    scenario: Scenario, summary: Mapping[str, Any], kpis: Iterable[str] | None = None
) -> Html:
    """A run's KPI table: the question, the answer KPIs, the headline ones.

    A replicated result (its KPIs are estimates, ``summary["replications"]`` says how
    many) shows each KPI as mean [95% CI].
    """
    flat = _paths(summary)
    paths = shown_kpis(scenario, flat, kpis)
    answers = set(answer_kpis(scenario)) if kpis is None else set()
    rows = [
        Row(path, [cell(path, value, *_estimate_bounds(value))], path in answers)
        for path, value in ((p, lookup(summary, p)) for p in paths)
    ]
    replicated = "replications" in summary
    caption = f"{scenario.name} · seed {summary.get('seed', scenario.seed)}"
    if replicated:
        caption += f" · {summary['replications']} replications"
    elif "replication" in summary:
        caption += f" · replication {summary['replication']}"
    header = ["KPI", "mean [95% CI]" if replicated else "value"]
    return kpi_table(
        question(scenario.description), caption + scale_caption(scenario), header, rows
    )


def side_by_side(
    results: Mapping[str, Any], kpis: Iterable[str], title: str = "", caption: str = ""
) -> Html:
    """Several runs' KPIs side by side: a column per run, a row per KPI.

    Args:
        results: column name -> a run (a ``SimulationResult``, or anything with a
            ``summary``); a replicated result shows mean [95% CI].
        kpis: the dotted KPI paths, in row order.
        title: the line above the table (e.g. the question they answer).
        caption: what the columns are (e.g. the seed they share).
    """
    summaries = {name: result.summary for name, result in results.items()}
    rows = []
    for path in dict.fromkeys(kpis):
        values = [lookup(summary, path) for summary in summaries.values()]
        rows.append(Row(path, [cell(path, v, *_estimate_bounds(v)) for v in values]))
    return kpi_table(title, caption, ["KPI", *summaries], rows)


def result_line(scenario: Scenario, summary: Mapping[str, Any], most: int = 4) -> str:
    """A run in one line: the scenario, its seed and its first answer KPIs, formatted."""
    seed = summary.get("seed", scenario.seed)
    if "replications" in summary:
        runs = f"{summary['replications']} replications"
    else:
        runs = f"replication {summary.get('replication', 0)}"
    shown = "; ".join(
        f"{kpi(path).heading} {cell(path, lookup(summary, path))}"
        for path in answer_kpis(scenario)[:most]
    )
    return f"{scenario.name}, seed {seed}, {runs}: {shown}"


def _paths(summary: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The dotted paths of a summary's numbers (those a table may show)."""
    found: set[str] = set()
    for key, value in summary.items():
        if key == "provenance":
            continue
        if isinstance(value, Mapping):
            found |= _paths(value, f"{prefix}{key}.")
        elif _number(value) is not None:
            found.add(f"{prefix}{key}")
    return found
