"""The answer first: a scenario's answer KPIs, its service-level thresholds and verdicts.

A scenario names the KPIs that answer its question (``answers:``) and may set
service-level objectives (``slo:``, e.g. ``checkout_latency_ms.p99 <= 1000``). Every
table and report opens with them:

* each answer KPI with its value (a replicated run: mean [95% CI]);
* one ✓/✗ line per threshold: a single run meets it when its value does; replications
  when the mean does, with a warning when the confidence interval reaches past the
  limit (another sale may not meet it). The command line exits with status 1 when one
  fails, as load-testing tools do, so a CI pipeline can gate on a plan;
* for a comparison, the verdict in words on each answer KPI: which side is better and
  whether the paired interval says the difference is real.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.experiment.estimates import LEVEL, bounded_interval
from simulator.results.display import cell
from simulator.results.registry import DEFAULT_ANSWERS, answer_kpis, close_matches, kpi
from simulator.scenario.expressions import Constraint, parse_constraint
from simulator.scenario.schema import Scenario

__all__ = [
    "DEFAULT_ANSWERS",
    "SloCheck",
    "answer_kpis",
    "check_slos",
    "unknown_kpis",
    "verdict",
]


def slos(scenario: Scenario) -> list[Constraint]:
    """The scenario's ``slo:`` lines, parsed (they were checked when it was loaded)."""
    return [parse_constraint(text, f"slo[{i}]") for i, text in enumerate(scenario.slo)]


def unknown_kpis(scenario: Scenario, known: Sequence[str]) -> list[str]:
    """Problems with the KPIs ``answers:`` and ``slo:`` name, one line each (none: all fine).

    Args:
        scenario: the scenario as run.
        known: the KPI paths its runs report (the flat summary's keys).
    """
    have = set(known)
    named = [(f"answers[{i}]", [path]) for i, path in enumerate(scenario.answers)]
    named += [(f"slo[{i}]", list(c.kpis)) for i, c in enumerate(slos(scenario))]
    problems = []
    for field, paths in named:
        for path in paths:
            if path not in have:
                close = close_matches(path, list(known))
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                problems.append(f"{field}: the run reports no KPI {path!r}{hint}")
    return problems


@dataclass(frozen=True)
class SloCheck:
    """One threshold judged on a run or on replications.

    Attributes:
        text: the threshold as written.
        path: the KPI its left side is, when it is one ("" for an expression).
        value: its left side (the mean over replications).
        low, high: the 95% confidence interval of that mean (None for a single run).
        limit: its right side (the mean, when it reads KPIs too).
        at_most: ``<=`` (else ``>=``).
        n: runs judged.
    """

    text: str
    path: str
    value: float
    low: float | None
    high: float | None
    limit: float
    at_most: bool
    n: int

    @property
    def passed(self) -> bool:
        """The value (the mean over replications) is within the limit."""
        if math.isnan(self.value):
            return False
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    @property
    def uncertain(self) -> bool:
        """The confidence interval reaches across the limit: another sale may differ."""
        if self.low is None or self.high is None:
            return False
        return self.low <= self.limit <= self.high and self.low != self.high

    def line(self) -> str:
        """``✓ checkout_latency_ms.p99 <= 1000: 850.2 [700.1, 990.0]`` and a warning."""
        shown = cell(self.path, self.value, self.low, self.high)
        mark = "✓" if self.passed else "✗"
        line = f"{mark} {self.text}: {shown}"
        if math.isnan(self.value):
            line += " (no value in this run)"
        elif self.uncertain:
            line += (
                f" ({'met' if self.passed else 'missed'} on the mean of {self.n} runs; its "
                f"{LEVEL:.0%} CI crosses the limit, so another sale may go either way)"
            )
        return line


def check_slos(scenario: Scenario, runs: Sequence[Mapping[str, float]]) -> list[SloCheck]:
    """Each ``slo:`` line judged on one run's or several replications' flat KPIs."""
    checks = []
    for c in slos(scenario):
        lefts = np.array([c.left(r) for r in runs], dtype=float)
        rights = np.array([c.right(r) for r in runs], dtype=float)
        present = lefts[np.isfinite(lefts)]
        value = float(present.mean()) if len(present) else math.nan
        low = high = None
        path = c.left.text if c.left.kpis == (c.left.text,) else ""
        if len(present) >= 2:
            _, low, high = bounded_interval(path, present.tolist())
        limit = float(np.nanmean(rights)) if np.isfinite(rights).any() else math.nan
        checks.append(SloCheck(c.text, path, value, low, high, limit, c.at_most, len(runs)))
    return checks


def verdict(path: str, row: Mapping[Any, Any], n: int) -> str:
    """A comparison's answer on one KPI in words, from its row of the comparison table.

    ``payments lost to channel outages: B 19.0 against A 391.6; B - A = -372.6
    [-400.2, -345.0] (paired 95% CI over 10 replications): B is better, and the
    difference is real.``
    """
    info = kpi(path)
    a, b, diff = row["a_mean"], row["b_mean"], row["difference"]
    low, high = row["ci_low"], row["ci_high"]
    text = (
        f"{info.heading}: B {info.format(b)} against A {info.format(a)}; "
        f"B - A = {info.format_change(diff)} [{info.format_change(low)}, "
        f"{info.format_change(high)}] "
        f"(paired {LEVEL:.0%} CI over {n} replications)"
    )
    if not all(math.isfinite(v) for v in (diff, low, high)):
        return f"{text}: too few runs with a value to judge."
    if low == high == 0 or diff == 0 and low == high:
        return f"{text}: the same in every replication."
    real = low > 0 or high < 0
    better = info.is_better(diff)
    side = "" if better is None else ("B is better" if better else "B is worse")
    if real:
        return f"{text}: {side + ', and ' if side else ''}the difference is real."
    return (
        f"{text}: the difference is not distinguishable from noise at {n} replications"
        f"{' (B looks ' + ('better' if better else 'worse') + ')' if side else ''}."
    )


def answer_lines(
    scenario: Scenario, kpis: Mapping[str, float], intervals: Mapping[str, tuple] | None = None
) -> list[str]:
    """The question and each answer KPI as a line: ``orders: 11,333 [11,200, 11,450]``.

    Args:
        scenario: the scenario as run.
        kpis: KPI path -> value (a run's) or mean (replications').
        intervals: KPI path -> (low, high), for replications.
    """
    question = scenario.description.strip().partition("\n")[0]
    lines = [question]
    for path in answer_kpis(scenario):
        info = kpi(path)
        text = cell(path, kpis.get(path, math.nan), *(intervals or {}).get(path, (None, None)))
        unit = f" {info.unit}" if info.unit in ("CNY", "ms", "s", "h") else ""
        lines.append(f"  {info.label}: {text}{unit}")
    return lines


METHOD = (
    "Intervals are 95% confidence intervals over the replications: Student t, or the BCa "
    "bootstrap for tail quantiles (p95, p99, max) from 20 replications on; each is cut to "
    "its KPI's range (counts, durations and money never below 0, ratios within [0, 1]), "
    "which keeps its coverage since the true value lies in the range. A difference B - A "
    "is paired replication by replication (common random numbers)."
)
"""How the intervals in an answer were made, as the reports state it."""


def _question(scenario: Scenario) -> str:
    """A scenario's question: its description's first line."""
    return scenario.description.strip().partition("\n")[0]


def _estimates(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A summary's numeric leaves by dotted path, keeping replicated ones' intervals."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= _estimates(value, f"{path}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[path] = value
    return out


def run_answer(scenario: Scenario, summary: Mapping[str, Any]) -> dict[str, Any]:
    """A run's (or replications') answer block: answer KPIs, SLO lines, the method.

    ``summary`` is a result's: plain numbers for one run, Estimates (means carrying
    their intervals) for replications; SLOs are judged on the values or the means.
    """
    leaves = _estimates(summary)
    replicated = "replications" in summary
    kpis = []
    for path in answer_kpis(scenario):
        value = leaves.get(path)
        low, high = getattr(value, "ci_low", None), getattr(value, "ci_high", None)
        text = cell(path, None if value is None else float(value), low, high)
        kpis.append((kpi(path).heading, text))
    runs = [{p: float(v) for p, v in leaves.items()}]
    checks = check_slos(scenario, runs)
    slo = []
    for check in checks:
        value = leaves.get(check.path)
        low, high = getattr(value, "ci_low", None), getattr(value, "ci_high", None)
        n = getattr(value, "n", 1)
        check = SloCheck(
            check.text, check.path, check.value, low, high, check.limit, check.at_most, n
        )
        slo.append((check.passed, check.line()))
    return {
        "title": "The answer",
        "question": "",
        "value_header": "mean [95% CI]" if replicated else "value",
        "kpis": kpis,
        "verdicts": [],
        "slo": slo,
        "method": METHOD if replicated else "",
    }


def comparison_answer(a: Any, b: Any, table: Any) -> dict[str, Any]:
    """A comparison's answer block: the verdict per answer KPI, each side's SLO lines.

    Args:
        a: side A's :class:`~simulator.experiment.replications.Replications`.
        b: side B's.
        table: the comparison table (one row per KPI).
    """
    from simulator.experiment.estimates import flatten

    scenario = b.scenario if b.scenario.answers else a.scenario
    n = len(b.summaries)
    verdicts = [
        verdict(p, table.loc[p].to_dict(), n) for p in answer_kpis(scenario) if p in table.index
    ]
    slo = []
    for side, reps in (("A", a), ("B", b)):
        for check in check_slos(reps.scenario, [flatten(s) for s in reps.summaries]):
            slo.append((check.passed, f"{side}: {check.line()}"))
    return {
        "title": "The answer",
        "question": f"{_question(b.scenario)} (A = {a.scenario.name}, B = {b.scenario.name})",
        "value_header": "",
        "kpis": [],
        "verdicts": verdicts,
        "slo": slo,
        "method": METHOD,
    }


def sweep_answer(sweep: Any, path: str) -> dict[str, Any]:
    """A sweep's answer block: one KPI per point and its paired difference from point 0."""
    info = kpi(path)
    table = sweep.table()
    means = {r["point"]: r for r in table[table["kpi"] == path].to_dict("records")}
    differences = sweep.differences()
    changes = differences[differences["kpi"] == path].set_index("point")
    kpis = []
    for point, values in enumerate(sweep.points):
        label = ", ".join(f"{p}={v}" for p, v in values.items())
        row = means.get(point)
        text = "-" if row is None else cell(path, row["mean"], row["ci_low"], row["ci_high"])
        if point == 0:
            text += "; the reference"
        elif point in changes.index and math.isfinite(changes.at[point, "difference"]):
            c = changes.loc[point]
            change = cell(path, c["difference"], c["ci_low"], c["ci_high"], change=True)
            text += f"; {change} against point 0" + (
                ", a real difference" if c["significant"] else ", within noise"
            )
        kpis.append((label, text))
    return {
        "title": f"The answer: {info.heading} at each point",
        "question": "",
        "value_header": "mean [95% CI]; paired difference from point 0",
        "kpis": kpis,
        "verdicts": [],
        "slo": [],
        "method": METHOD,
    }
