"""The answer of a search: the confirmation stage, the chosen plan, its tables and file.

The best few plans of the search are re-run with many more replications (on the same
keys, so the search's replications are reused) and the answer is chosen among them:
the best mean objective among those meeting every constraint (for two objectives, the
knee of their front), compared pairwise with the runner-up.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.experiment.estimates import LEVEL
from simulator.experiment.racing import ALPHA, Evaluator, Plan, Problem, Stats
from simulator.results.provenance import Invocation, experiment_provenance, write_provenance
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    import optuna

__all__ = ["Optimization", "confirm", "importance", "plan_yaml", "trials_table"]


# --------------------------------------------------------------------------- the answer


@dataclass
class Optimization:
    """A finished search: the trials, the confirmation stage and the chosen plan.

    Attributes:
        problem: the variables, objectives and constraints.
        plans: the plans confirmed, in the order confirmed (best of each batch first).
        confirmation: per confirmed plan, its figures over ``confirm_replications``
            replications and its paired difference from the chosen plan.
        chosen: the plan chosen (the least violating one when ``feasible`` is False).
        rejected: confirmed plans that failed a constraint on the fresh replications,
            although the search's own replications had them feasible.
        feasible: whether the chosen plan meets every constraint.
        trials: one row per trial (also ``trials.parquet``).
        replications_spent: replications run by this call (not read back from disk).
        importance: Optuna's parameter importances for the first objective.
        invocation: the command or call that ran the search.
    """

    problem: Problem
    plans: list[Plan]
    confirmation: pd.DataFrame
    chosen: Plan | None
    feasible: bool
    confirm_replications: int
    _evaluator: Any = field(repr=False)
    rejected: list[Plan] = field(default_factory=list)
    base: Scenario | None = field(default=None, repr=False)
    source: Path | None = None
    overrides: list[str] = field(default_factory=list)
    seed: int = 0
    study: Any = field(default=None, repr=False)
    trials: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    replications_spent: int = 0
    importance: dict[str, float] = field(default_factory=dict)
    invocation: Invocation | None = None

    @property
    def provenance(self) -> dict[str, Any]:
        """Version, command, overrides, seed, replications and scale (``provenance.json``)."""
        if self.base is None:
            raise ValueError("the search's scenario is not known")
        invocation = self.invocation or Invocation("unknown")
        return experiment_provenance(
            invocation, [self.base], self.seed, self.confirm_replications, "each confirmed plan"
        )

    @property
    def replications_total(self) -> int:
        """Replications behind the answer: every plan's, the confirmation's included."""
        return sum(p.n + len(p.confirmed) for p in self._evaluator.plans.values())

    def _stats(self, plan: Plan) -> Stats:
        return self._evaluator.stats(plan, self.confirm_replications, confirmation=True)

    def answer(self) -> str:
        """The answer in words: the plan, its objective with CI, constraints, runner-up."""
        if self.chosen is None:
            return "No trial finished with a value of the objective: nothing to choose from."
        plan, s = self.chosen, self._stats(self.chosen)
        n = self.confirm_replications
        objectives = "; ".join(
            f"{o.expression} = {_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]"
            for o, (m, lo, hi) in zip(self.problem.objectives, s.objective, strict=True)
        )
        lines = []
        if not self.feasible:
            lines.append(
                "No plan met every constraint at the required confidence. The least "
                f"violating plan of the {len(self.plans)} confirmed: {plan.label()}."
            )
        elif len(self.problem.objectives) > 1:
            lines.append(
                f"Chosen plan: {plan.label()}, the knee of the {len(self.plans)} confirmed "
                f"plans on the front (nearest the best of both objectives, each scaled to "
                f"the front's range); the others are in the confirmation table."
            )
        else:
            lines.append(f"Chosen plan: {plan.label()}.")
        if self.feasible and self.rejected:
            lines.append(
                f"Confirmed after {len(self.rejected)} plan(s) the search found feasible "
                f"failed on the fresh replications: "
                + "; ".join(p.label() for p in self.rejected)
                + " (see the confirmation table)."
            )
        lines.append(f"{objectives} (mean [95% CI] over {n} replications).")
        if self.problem.constraints:
            m = len(self.problem.constraints)
            level = 1 - ALPHA / m
            parts = [
                f"{c}: {_fmt(left)}, {'upper' if c.at_most else 'lower'} bound "
                f"{_fmt(_side_bound(c, upper, limit))} against {_fmt(limit)}"
                for c, (_, _, upper), (left, limit) in zip(
                    self.problem.constraints, s.slack, s.sides, strict=True
                )
            ]
            verdict = "It meets every constraint" if self.feasible else "It does not meet them all"
            how = (
                f"judged by its one-sided {level:.0%} confidence bound"
                if m == 1
                else f"each judged by its one-sided {level:.1%} confidence bound, Bonferroni "
                f"over {m}, so all hold together with confidence >= {LEVEL:.0%}"
            )
            lines.append(
                f"{verdict} ({how}): "
                + "; ".join(parts)
                + f". {s.met_share:.0%} of the {n} simulated sales met all of them."
            )
        runner = self._runner_up()
        if runner is not None and self.feasible and len(self.problem.objectives) == 1:
            diff, low, high = self._evaluator.paired(runner, plan, confirmation=True)
            objective = self.problem.objectives[0]
            worse = diff < 0 if objective.maximize else diff > 0
            real = low > 0 or high < 0
            verdict = (
                "the two plans tie on it in every replication"
                if low == high == 0
                else "the chosen plan is better, and the difference is real"
                if real and worse
                else "the difference is not distinguishable from noise at "
                f"{n} replications: either plan will do"
                if not real
                else "the runner-up is better on the objective but fails a constraint"
            )
            lines.append(
                f"Runner-up {runner.label()}: {objective.expression} differs by {_fmt(diff)} "
                f"[{_fmt(low)}, {_fmt(high)}] (runner-up minus chosen, paired over {n} "
                f"replications): {verdict}."
            )
        return "\n".join(lines)

    def _runner_up(self) -> Plan | None:
        others = [p for p in self.plans if p is not self.chosen]
        passing = [p for p in others if self._stats(p).feasible]
        if not passing:
            return None
        return _best_few(self._evaluator, passing, {p.key: self._stats(p) for p in passing}, 1)[0]

    def best_yaml(self, folder: str | Path | None = None) -> str:
        """The chosen plan as a scenario file: ``extends:`` the input, with the overrides.

        Args:
            folder: where the file will be written (``extends`` is relative to it).
        """
        if self.chosen is None or self.base is None:
            raise ValueError("no plan was chosen")
        return plan_yaml(self, self.chosen, None if folder is None else Path(folder))

    def write(self, out: str | Path) -> Path:
        """Write trials, confirmation (Parquet, CSV), ``best.yaml``, ``answer.txt``, provenance.

        ``provenance.json`` says which command made them; ``best.yaml`` ends with it as a
        comment.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.trials.to_parquet(out / "trials.parquet", index=False)
        self.trials.to_csv(out / "trials.csv", index=False)
        self.confirmation.to_parquet(out / "confirmation.parquet", index=False)
        self.confirmation.to_csv(out / "confirmation.csv", index=False)
        if self.chosen is not None:
            made = f"# made by {self._made_by()}\n"  # last: the file opens with extends
            (out / "best.yaml").write_text(self.best_yaml(out) + made, encoding="utf-8")
        (out / "answer.txt").write_text(self.answer() + "\n", encoding="utf-8")
        if self.base is not None:
            write_provenance(out, self.provenance)
        return out

    def _made_by(self) -> str:
        """``campaign-sim VERSION: COMMAND``, for a comment line."""
        p = self.provenance
        return f"campaign-sim {p['version']}: {p['command']}".replace("\n", " ")


def _side_bound(constraint: Any, slack_bound: float, limit: float) -> float:
    """The one-sided confidence bound on a constraint's left side, from its slack's.

    Upper for ``<=`` (the side must be at most the limit), lower for ``>=``; with a
    limit that reads KPIs, against the limit's mean.
    """
    return limit + slack_bound if constraint.at_most else limit - slack_bound


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "n/a" if math.isnan(value) else ("+inf" if value > 0 else "-inf")
    if value != 0 and abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


# --------------------------------------------------------------------------- confirmation


def confirm(study: optuna.Study, evaluator: Evaluator, count: int, n: int) -> Optimization:
    """Re-run the best few plans with n replications each and choose among them.

    When every plan of a batch fails on the fresh replications, the next few plans the
    search found feasible are confirmed in turn (best first), until one passes or none
    is left: a search whose best plans sat near a limit still ends with the cheapest plan
    that holds, not with none.
    """
    import optuna

    problem = evaluator.problem
    told = dict.fromkeys(  # in trial order: the same in every process
        t.user_attrs["plan"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
    )
    plans = [evaluator.plans[key] for key in told]
    stats = {p.key: evaluator.stats(p) for p in plans}
    waiting = [p for p in plans if stats[p.key].feasible]
    if not waiting:  # the least violating ones: an infeasible search still shows how close
        waiting = sorted(plans, key=lambda p: (stats[p.key].violation, p.key))[:count]
    candidates: list[Plan] = []
    confirmed: dict[str, Stats] = {}
    passing: list[Plan] = []
    while waiting and not passing:
        batch = _best_few(evaluator, waiting, stats, count)
        keys = {p.key for p in batch}
        waiting = [p for p in waiting if p.key not in keys]
        evaluator.replicate(batch, n, confirmation=True)
        confirmed |= {p.key: evaluator.stats(p, n, confirmation=True) for p in batch}
        candidates += batch
        passing = [p for p in batch if confirmed[p.key].feasible]
    if passing:
        chosen = _choose(evaluator, passing, confirmed)
    elif candidates:
        chosen = min(candidates, key=lambda p: (confirmed[p.key].violation, p.key))
    else:
        chosen = None
    table = _confirmation_table(evaluator, candidates, confirmed, chosen)
    return Optimization(
        problem=problem,
        plans=candidates,
        confirmation=table,
        chosen=chosen,
        feasible=bool(passing),
        confirm_replications=n,
        rejected=[p for p in candidates if not confirmed[p.key].feasible],
        _evaluator=evaluator,
    )


def _best_few(
    evaluator: Evaluator, plans: list[Plan], stats: Mapping[str, Stats], count: int
) -> list[Plan]:
    """One objective: the best means. Two: the front, spread evenly if it is long."""
    if len(evaluator.problem.objectives) == 1:
        sign = -1.0 if evaluator.problem.objectives[0].maximize else 1.0
        return sorted(plans, key=lambda p: (sign * stats[p.key].objective[0][0], p.key))[:count]
    front = _front(evaluator, plans, stats)
    if len(front) <= count:
        return front
    picks = np.linspace(0, len(front) - 1, count).round().astype(int)
    return [front[i] for i in dict.fromkeys(picks.tolist())]


def _front(evaluator: Evaluator, plans: list[Plan], stats: Mapping[str, Stats]) -> list[Plan]:
    """The plans no other plan beats on both objectives (by mean), by the first objective."""
    signs = [-1.0 if o.maximize else 1.0 for o in evaluator.problem.objectives]

    def point(plan: Plan) -> tuple[float, ...]:
        return tuple(s * m for s, (m, _, _) in zip(signs, stats[plan.key].objective, strict=True))

    points = {p.key: point(p) for p in plans}
    front = [
        p
        for p in plans
        if not any(
            all(a <= b for a, b in zip(points[q.key], points[p.key], strict=True))
            and points[q.key] != points[p.key]
            for q in plans
        )
    ]
    return sorted(front, key=lambda p: (points[p.key], p.key))


def _choose(evaluator: Evaluator, plans: list[Plan], stats: Mapping[str, Stats]) -> Plan:
    """One objective: the best mean. Two: the front's knee, nearest the ideal point.

    The knee is the plan whose objectives, each scaled to [0, 1] over the confirmed
    front (0 the best seen), are nearest (Euclidean) to (0, 0): the plan that gives up
    least on either objective.
    """
    if len(evaluator.problem.objectives) == 1:
        return _best_few(evaluator, plans, stats, 1)[0]
    front = _front(evaluator, plans, stats)
    signs = [-1.0 if o.maximize else 1.0 for o in evaluator.problem.objectives]
    values = np.array(
        [[s * stats[p.key].objective[i][0] for i, s in enumerate(signs)] for p in front]
    )
    spread = values.max(axis=0) - values.min(axis=0)
    scaled = (values - values.min(axis=0)) / np.where(spread > 0, spread, 1.0)
    return front[int(np.argmin(np.hypot(scaled[:, 0], scaled[:, 1])))]


def _confirmation_table(
    evaluator: Evaluator, plans: list[Plan], stats: Mapping[str, Stats], chosen: Plan | None
) -> pd.DataFrame:
    problem = evaluator.problem
    rows = []
    for plan in plans:
        s = stats[plan.key]
        row: dict[str, Any] = {"plan": plan.key, "chosen": plan is chosen, **plan.values}
        row["replications"] = s.n
        for objective, (mean, low, high) in zip(problem.objectives, s.objective, strict=True):
            name = str(objective.expression)
            row |= {name: mean, f"{name} ci_low": low, f"{name} ci_high": high}
        for constraint, (_, _, upper), (left, limit) in zip(
            problem.constraints, s.slack, s.sides, strict=True
        ):
            row |= {
                f"{constraint}: value": left,
                f"{constraint}: limit": limit,
                f"{constraint}: bound": _side_bound(constraint, upper, limit),
            }
        row["meets every constraint"] = s.feasible
        row["share of runs meeting all"] = s.met_share
        for index, objective in enumerate(problem.objectives):
            name = f"{objective.expression} difference"
            if chosen is not None and plan is not chosen:
                diff, low, high = evaluator.paired(plan, chosen, index, confirmation=True)
            else:
                diff = low = high = math.nan
            row |= {name: diff, f"{name} ci_low": low, f"{name} ci_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def trials_table(study: optuna.Study, problem: Problem) -> pd.DataFrame:
    """One row per trial: the plan, its replications, figures, and the best so far.

    Figures are those the trial told Optuna, over the replications its plan had then;
    a plan given more later (as the incumbent, or in the confirmation) has its final
    figures in the confirmation table.
    """
    rows = []
    best = math.nan
    objective = problem.objectives[0]
    for t in study.trials:
        attrs = t.user_attrs
        if "values" not in attrs:
            continue
        row: dict[str, Any] = {
            "trial": t.number,
            "state": t.state.name,
            "plan": attrs.get("plan", ""),
        }
        row |= attrs["values"]
        row["replications"] = attrs.get("replications", 0)
        n = len(problem.objectives)
        values = t.values or [math.nan] * n
        intervals = attrs.get("intervals", [[math.nan, math.nan]] * n)
        for o, value, (low, high) in zip(problem.objectives, values, intervals, strict=True):
            name = str(o.expression)
            row |= {name: value, f"{name} ci_low": low, f"{name} ci_high": high}
        m = len(problem.constraints)
        sides = attrs.get("sides", [[math.nan, math.nan]] * m)
        bounds = attrs.get("bounds", [math.nan] * m)
        for c, (left, limit), bound in zip(problem.constraints, sides, bounds, strict=True):
            row |= {
                f"{c}: value": left,
                f"{c}: limit": limit,
                f"{c}: bound": _side_bound(c, bound, limit),
            }
        row["feasible"] = bool(attrs.get("feasible", False))
        row["error"] = attrs.get("error", "")
        if row["feasible"] and math.isfinite(values[0]):
            if math.isnan(best) or (values[0] > best if objective.maximize else values[0] < best):
                best = values[0]
        row["best so far"] = best
        rows.append(row)
    return pd.DataFrame(rows)


def importance(study: optuna.Study, problem: Problem) -> dict[str, float]:
    """Optuna's PED-ANOVA parameter importances for the first objective, when computable.

    PED-ANOVA (Watanabe et al., 2023; Optuna's default evaluator) measures how much each
    parameter's distribution among the best trials differs from its distribution among
    all of them; it needs no random forest (fANOVA would need scikit-learn) and is
    deterministic. Computed over every completed trial, feasible or not.
    """
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 3 or len({p for t in complete for p in t.params}) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(
                optuna.importance.get_param_importances(
                    study,
                    evaluator=PedAnovaImportanceEvaluator(),
                    target=lambda t: t.values[0],
                )
            )
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}  # too few distinct plans to tell the best from the rest


def plan_yaml(result: Optimization, plan: Plan, folder: Path | None = None) -> str:
    """A plan as a scenario file: ``extends:`` the input when it is a file, else whole."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import LiteralScalarString

    from simulator.scenario.loader import extension

    base = result.base
    assert base is not None
    problem = result.problem
    subject = "; ".join(str(c) for c in problem.constraints) or "no constraint"
    objectives = ", ".join(str(o) for o in problem.objectives)
    question = base.description.strip().partition("\n")[0]
    description = LiteralScalarString(
        f"{question}\nThe plan campaign-sim optimize chose ({objectives}; subject to "
        f"{subject}; seed {result.seed}, {result.confirm_replications} replications in the "
        f"confirmation stage): {plan.label()}.\n"
    )
    sets = [*result.overrides, *plan.overrides()]
    if result.source is not None:
        here = (folder or Path.cwd()).resolve()
        data: dict[str, Any] = {
            "extends": Path(os.path.relpath(result.source.resolve(), here)).as_posix(),
            "name": f"{base.name}-best",
            "description": description,
        }
        data |= extension(result.source, sets)
    else:
        data = plan.scenario.model_dump(mode="json", by_alias=True)
        data |= {"name": f"{base.name}-best", "description": description}
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 100
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
