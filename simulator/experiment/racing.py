"""Plans and racing: a plan's replications, its figures, and when to stop giving it more.

Every plan runs replications 0, 1, 2, ... on the same stream keys (common random
numbers), so two plans meet the same users and their difference is paired. Its figures:

* each objective's mean with a two-sided 95% Student-t interval;
* each constraint's *slack* (how far past its limit a replication is; <= 0 meets it)
  with one-sided bounds at level 1 - 0.05/m for m constraints (Bonferroni). A
  constraint counts as met only when the upper bound is <= 0: evidence of compliance,
  not absence of evidence of violation, so a plan too small but lucky is not chosen,
  and all m constraints hold together with confidence >= 95%.

A replication where a constraint's KPI has no value (None: nothing it measures
happened) leaves that constraint unjudged, so not met.

The racing rule (:meth:`Evaluator.settled`) says when more replications would not
change what is known of a plan: a constraint decided either way, and the objective's
paired interval against the incumbent clear of zero. It is the racing idea of Maron and
Moore ("The racing algorithm: model selection for lazy learners", 1997).

The confirmation stage runs its own block of replications (keys from
:data:`CONFIRM_KEYS` on), shared by every confirmed plan: the search chose those plans
on replications 0, 1, 2, ..., and judging them again on the same ones would carry over
the luck that made them look good (the winner's curse), as would the repeated looks of
racing. On a fresh block each confirmed plan's bounds are the plain confidence bounds
they claim to be.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator.experiment.estimates import LEVEL, flatten
from simulator.experiment.runner import ScenarioLike, Scheduler, Task, collect, load
from simulator.experiment.search import (
    Constraint,
    Objective,
    SearchError,
    Variable,
    check_kpis,
)
from simulator.experiment.store import Store
from simulator.scenario.schema import Scenario

__all__ = ["ALPHA", "CONFIRM_KEYS", "Evaluator", "Plan", "Problem", "Stats"]

CONFIRM_KEYS = 1_000_000
"""The confirmation stage's replications use keys from here on, apart from the search's."""
ALPHA = 1 - LEVEL
"""Error rate shared by the constraints (Bonferroni) and the paired comparisons."""


def _t(level: float, dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(level, dof))


# --------------------------------------------------------------------------- plans


@dataclass
class Plan:
    """One point of the search: overrides of the base scenario and its replications.

    Attributes:
        key: a short name derived from the overrides (its folder under ``plans/``).
        values: field path -> value chosen.
        scenario: the base scenario with the overrides applied.
        rows: each search replication's KPIs (flat, by dotted path), in order.
        n: the search replications asked of it (``rows`` may run ahead of it while a
            batch is read back from disk).
        confirmed: the confirmation block's KPIs, in order.
    """

    key: str
    values: dict[str, Any]
    scenario: Scenario = field(repr=False)
    rows: list[dict[str, float]] = field(default_factory=list, repr=False)
    n: int = 0
    confirmed: list[dict[str, float]] = field(default_factory=list, repr=False)

    def overrides(self) -> list[str]:
        """The plan as ``--set`` strings."""
        return [f"{path}={_text(value)}" for path, value in self.values.items()]

    def label(self) -> str:
        """The plan in words: ``gateway.workers=24, cache.rebuild=mutex``."""
        return ", ".join(f"{path}={_show(value)}" for path, value in self.values.items())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _plan_key(values: Mapping[str, Any]) -> str:
    text = json.dumps(sorted((p, _text(v)) for p, v in values.items()))
    return "p" + hashlib.sha1(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Stats:
    """A plan's figures over its first n replications."""

    n: int
    objective: list[tuple[float, float, float]]  # (mean, low, high) per objective
    slack: list[tuple[float, float, float]]  # (mean, lower, upper bound) per constraint
    sides: list[tuple[float, float]]  # each constraint's left side and limit, means
    met_share: float  # share of replications meeting every constraint

    @property
    def feasible(self) -> bool:
        """Every constraint's upper bound within its limit."""
        return all(upper <= 0 for _, _, upper in self.slack)

    @property
    def infeasible(self) -> bool:
        """Some constraint's lower bound past its limit: decided against."""
        return any(lower > 0 for _, lower, _ in self.slack)

    @property
    def violation(self) -> float:
        """How far the means are past the limits (0 when within; inf unknown), for ranking."""
        return sum(max(mean, 0.0) if math.isfinite(mean) else math.inf for mean, _, _ in self.slack)


def _mean_interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval; infinite with fewer than 2 values."""
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return math.nan, -math.inf, math.inf
    mean = float(values.mean())
    if n < 2:
        return mean, -math.inf, math.inf
    sd = float(values.std(ddof=1))
    half = _t(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n) if sd > 0 else 0.0
    return mean, mean - half, mean + half


def _bounds(values: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Mean with one-sided lower and upper bounds, each at level 1 - alpha.

    A missing value (NaN) leaves the bounds infinite: what was not measured is not met.
    """
    n = len(values)
    if n < 2 or not np.isfinite(values).all():
        finite = values[np.isfinite(values)]
        return (float(finite.mean()) if len(finite) else math.nan), -math.inf, math.inf
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = _t(1 - alpha, n - 1) * sd / math.sqrt(n) if sd > 0 else 0.0
    return mean, mean - half, mean + half


# --------------------------------------------------------------------------- evaluating


@dataclass(frozen=True)
class Problem:
    """What to vary, what to optimise and what to respect."""

    variables: tuple[Variable, ...]
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]

    def describe(self) -> str:
        """The problem in one line: objectives, variables, constraints."""
        subject = "; ".join(str(c) for c in self.constraints) or "nothing"
        return (
            f"{'; '.join(str(o) for o in self.objectives)} over "
            f"{'; '.join(str(v) for v in self.variables)}, subject to {subject}"
        )


class Evaluator:
    """Runs plans' replications (through the experiment runner) and keeps their figures."""

    def __init__(
        self,
        base: ScenarioLike,
        overrides: list[str],
        problem: Problem,
        seed: int,
        workers: int | None,
        scheduler: Scheduler,
        folder: Path | None,
    ) -> None:
        self.base, self.overrides, self.problem = base, overrides, problem
        self.seed, self.workers, self.scheduler, self.folder = seed, workers, scheduler, folder
        self.plans: dict[str, Plan] = {}
        self.spent = 0  # replications run here (not read back from the folder)
        self.kpis_checked = False

    def plan(self, values: Mapping[str, Any]) -> Plan:
        """The plan with these values (the same object when seen before)."""
        key = _plan_key(values)
        if key not in self.plans:
            overrides = [f"{path}={_text(value)}" for path, value in values.items()]
            scenario = load(self.base, [*self.overrides, *overrides])
            self.plans[key] = Plan(key, dict(values), scenario)
        return self.plans[key]

    def replicate(self, plans: Iterable[Plan], n: int, confirmation: bool = False) -> None:
        """Give every plan at least n replications, the same keys for all.

        The search's are replications 0..n-1; the confirmation's, ``CONFIRM_KEYS`` on.
        """
        wanted: list[tuple[Plan, int]] = []
        for plan in plans:
            if confirmation:
                start = CONFIRM_KEYS + len(plan.confirmed)
                wanted += [(plan, r) for r in range(start, CONFIRM_KEYS + n)]
            else:
                plan.n = max(plan.n, n)
                wanted += [(plan, r) for r in range(len(plan.rows), plan.n)]
        if not wanted:
            return
        tasks = [
            Task(i, plan.scenario, self.seed, r, f"plans/{plan.key}/{_rep_folder(r)}", False)
            for i, (plan, r) in enumerate(wanted)
        ]
        store = Store(self.folder)
        self.spent += sum(store.finished(t) is None for t in tasks)
        summaries = collect(tasks, self.folder, self.workers, self.scheduler, False, False)
        for (plan, _), summary in zip(wanted, summaries, strict=True):
            (plan.confirmed if confirmation else plan.rows).append(flatten(summary))
        if not self.kpis_checked:
            self._check(wanted[0][0])

    def _check(self, plan: Plan) -> None:
        """The KPIs the search reads exist, and the objectives have values."""
        problem = self.problem
        check_kpis(problem.objectives, problem.constraints, plan.rows[0])
        for objective in problem.objectives:
            if not any(math.isfinite(objective.expression(row)) for row in plan.rows):
                raise SearchError(
                    f"--{objective.direction} {objective.expression}: no value on any "
                    f"replication of the first plan ({plan.label()}); a KPI is empty when "
                    f"nothing it measures happens in the run: choose one these runs measure"
                )
        self.kpis_checked = True

    def stats(self, plan: Plan, n: int | None = None, confirmation: bool = False) -> Stats:
        """The plan's figures over its first n replications (default: all asked).

        With ``confirmation``, over the confirmation block's replications.
        """
        if confirmation:
            rows = plan.confirmed[:n]
        else:
            rows = plan.rows[: plan.n if n is None else n]
        constraints = self.problem.constraints
        objective = [
            _mean_interval(np.array([o.expression(r) for r in rows]), LEVEL)
            for o in self.problem.objectives
        ]
        slacks = [np.array([c.slack(r) for r in rows]) for c in constraints]
        slack = [_bounds(s, ALPHA / len(constraints)) for s in slacks]
        sides = [
            (_nanmean([c.left(r) for r in rows]), _limit([c.right(r) for r in rows]))
            for c in constraints
        ]
        met = np.all([s <= 0 for s in slacks], axis=0) if constraints else np.ones(len(rows))
        return Stats(len(rows), objective, slack, sides, float(np.mean(met)) if rows else 0.0)

    def paired(
        self, plan: Plan, other: Plan, index: int = 0, confirmation: bool = False
    ) -> tuple[float, float, float]:
        """Objective ``index`` of ``plan`` minus ``other``'s, paired over common replications."""
        mine, theirs = (
            (plan.confirmed, other.confirmed) if confirmation else (plan.rows, other.rows)
        )
        n = min(len(mine), len(theirs)) if confirmation else min(plan.n, other.n)
        objective = self.problem.objectives[index].expression
        pairs = zip(mine[:n], theirs[:n], strict=True)
        return _mean_interval(np.array([objective(a) - objective(b) for a, b in pairs]), LEVEL)

    def better(self, a: float, b: float, index: int = 0) -> bool:
        """Objective value a beats b."""
        return a > b if self.problem.objectives[index].maximize else a < b

    def incumbent(self) -> Plan | None:
        """The feasible plan with the best mean objective so far (one objective only)."""
        if len(self.problem.objectives) > 1:
            return None
        best: tuple[Plan, float] | None = None
        for plan in self.plans.values():
            if not plan.n:
                continue
            stats = self.stats(plan)
            value = stats.objective[0][0]
            if stats.feasible and math.isfinite(value):
                if best is None or self.better(value, best[1]):
                    best = (plan, value)
        return None if best is None else best[0]

    def settled(self, plan: Plan, incumbent: Plan | None) -> bool:
        """The racing rule: nothing more to learn about this plan from more replications."""
        stats = self.stats(plan)
        if stats.infeasible:
            return True  # a constraint is violated, with confidence
        if not stats.feasible:
            return False  # a constraint's interval straddles its limit
        if incumbent is None or incumbent is plan or len(self.problem.objectives) > 1:
            return True
        _, low, high = self.paired(plan, incumbent)
        return low > 0 or high < 0 or low == high  # differs, or no noise in the difference


def _limit(values: Sequence[float]) -> float:
    """A limit's value: itself when the same in every replication, else the mean."""
    finite = [v for v in values if math.isfinite(v)]
    if finite and all(v == finite[0] for v in finite):
        return finite[0]
    return _nanmean(finite)


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _rep_folder(replication: int) -> str:
    return f"replications/r{replication:04d}"
