"""Optimisation: the cheapest (or most profitable) plan that meets the service levels.

A plan is a set of overrides of the base scenario, chosen by Optuna (TPE for one
objective, NSGA-II for two, both with their constraint handling) from the decision
variables of :mod:`.search`. Every evaluation of a plan is a random variable, so:

* **Common random numbers.** Every plan runs replications 0, 1, 2, ... on the same
  stream keys, so two plans meet the same users and their difference is paired.
* **A constraint is met only when its one-sided upper confidence bound is within its
  limit** (Student t on the per-replication slack, at level 1 - 0.05/m for m
  constraints, Bonferroni). Requiring evidence of compliance, not absence of evidence
  of violation, keeps a plan that is too small but lucky from being chosen; and with
  the Bonferroni level all m constraints hold together with confidence >= 95%.
* **Racing.** Each trial starts with a few replications and doubles them (up to a
  cap) while it is undecided: while a constraint's bounds straddle its limit (the
  lower one within it, the upper one past it), or its objective's paired interval
  against the incumbent straddles zero;
  decided plans stop early. This is the racing idea of Maron and Moore ("The racing
  algorithm: model selection for lazy learners", 1997), with the doubling schedule of
  successive halving (Jamieson and Talwalkar, 2016); the incumbent is given the same
  number of replications as its challenger, so their comparison stays paired.
* **Confirmation.** The best few plans are re-run on a fresh block of replications
  (shared by them, apart from the search's, so the luck that made them look good does
  not carry over) and the answer is chosen among them, with paired differences against
  the runner-up.

The study lives in the output folder (Optuna's journal file, ``optuna.journal``) and
every replication in ``plans/<plan>/replications/``, so an interrupted search resumes
where it stopped. Each trial's sampler is seeded from (seed, trial number) and its
settings do not depend on the number of trials asked for, so what the sampler proposes
depends only on the finished trials: a resumed (or extended) search makes exactly the
proposals, and gives exactly the answer, of an uninterrupted one. The study remembers
what it searched (problem, scenario, seed, replications); a folder holding another
search is refused rather than mixed.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.experiment.optimization import Optimization, importance, trials_table
from simulator.experiment.optimization import confirm as confirm_plans
from simulator.experiment.racing import Evaluator, Plan, Problem
from simulator.experiment.runner import (
    Interrupted,
    ScenarioLike,
    Scheduler,
    SchedulerError,
    load,
)
from simulator.experiment.search import (
    Constraint,
    Range,
    SearchError,
    Variable,
    parse_constraint,
    parse_objective,
    parse_vary,
)
from simulator.experiment.store import WORDS
from simulator.results.provenance import Invocation
from simulator.scenario.loader import ScenarioError, field_type
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    import optuna

__all__ = ["Optimization", "Plan", "optimize", "run_optimization"]

STUDY = "campaign-sim"
"""The study's name in the journal."""
STARTUP_TRIALS = 4
"""TPE's random trials before it models the results (Optuna's default is 10, for long
searches; a simulation's trials are dear, and few)."""
POPULATION = 8
"""NSGA-II's population per generation (two objectives)."""


# --------------------------------------------------------------------------- Optuna


def _sampler(problem: Problem, seed: int, number: int) -> optuna.samplers.BaseSampler:
    """Trial ``number``'s sampler, seeded from (seed, number): proposals depend on history only."""
    import optuna

    derived = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
    if len(problem.objectives) == 1:
        return optuna.samplers.TPESampler(
            seed=derived,
            n_startup_trials=STARTUP_TRIALS,
            multivariate=True,
            constant_liar=False,
        )
    return optuna.samplers.NSGAIISampler(seed=derived, population_size=POPULATION)


def _study(folder: Path | None, problem: Problem, identity: str) -> optuna.Study:
    """The study, from the folder's journal when it holds this very search."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    directions: list[Any] = [o.direction for o in problem.objectives]
    if folder is None:
        storage: optuna.storages.BaseStorage = optuna.storages.InMemoryStorage()
    else:
        folder.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    study = optuna.create_study(
        storage=storage, study_name=STUDY, directions=directions, load_if_exists=True
    )
    stored = study.user_attrs.get("search")
    if stored is not None and stored != identity:
        finished = [t for t in study.trials if t.state.is_finished()]
        if finished:
            raise SearchError(
                f"{folder}/ holds {len(finished)} trials of another search ("
                f"{study.user_attrs.get('problem', '?')}; or the same with another scenario, "
                f"--set, seed or replication settings); give another --out, or delete the "
                f"folder to start again"
            )
        optuna.delete_study(study_name=STUDY, storage=storage)  # nothing of it finished
        study = optuna.create_study(storage=storage, study_name=STUDY, directions=directions)
    study.set_user_attr("search", identity)
    study.set_user_attr("problem", problem.describe())
    return study


def _identity(problem: Problem, base: Scenario, seed: int, first: int, most: int) -> str:
    """What makes two searches the same: trials of one are trials of the other."""
    import hashlib

    sale = base.model_dump_json(exclude=WORDS, exclude_defaults=True)  # words aside
    scenario = hashlib.sha1(sale.encode()).hexdigest()[:16]
    variables = "; ".join(repr(v) for v in problem.variables)
    return (
        f"{problem.describe()} | {variables} | scenario {scenario} | seed {seed} | "
        f"replications {first} to {most} | TPE startup {STARTUP_TRIALS}, NSGA-II {POPULATION}"
    )


def _replay(study: optuna.Study, evaluator: Evaluator) -> None:
    """Rebuild the plans (and their replication counts) of the study's finished trials."""
    for trial in study.trials:
        if not trial.state.is_finished() or "plan" not in trial.user_attrs:
            continue
        plan = evaluator.plan(trial.user_attrs["values"])
        plan.n = max(plan.n, trial.user_attrs["replications"])
        for key, n in trial.user_attrs.get("extended", {}).items():
            evaluator.plans[key].n = max(evaluator.plans[key].n, n)
    for plan in evaluator.plans.values():
        evaluator.replicate([plan], plan.n)


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    evaluator: Evaluator,
    first: int,
    most: int,
) -> None:
    """Suggest a plan, race its replications, tell the study what it found."""
    from optuna.trial import TrialState

    values: dict[str, Any] = {}
    for variable in evaluator.problem.variables:
        values |= variable.suggest(trial)
    trial.set_user_attr("values", json.loads(json.dumps(values)))
    try:
        plan = evaluator.plan(values)
    except ScenarioError as exc:  # a combination the schema refuses: this trial fails
        trial.set_user_attr("error", "; ".join(str(p) for p in exc.problems))
        study.tell(trial, state=TrialState.FAIL)
        return
    incumbent = evaluator.incumbent()
    extended: dict[str, int] = {}
    n = first
    evaluator.replicate([plan], n)
    while n < most and not evaluator.settled(plan, incumbent):
        n = min(2 * n, most)
        batch = [plan]
        if incumbent is not None and incumbent is not plan and incumbent.n < n:
            batch.append(incumbent)
            extended[incumbent.key] = n
        evaluator.replicate(batch, n)
    stats = evaluator.stats(plan)
    trial.set_user_attr("plan", plan.key)
    trial.set_user_attr("replications", plan.n)
    trial.set_user_attr("extended", extended)
    trial.set_user_attr("intervals", [[low, high] for _, low, high in stats.objective])
    trial.set_user_attr("bounds", [upper for _, _, upper in stats.slack])
    trial.set_user_attr("sides", [list(side) for side in stats.sides])
    trial.set_user_attr("feasible", stats.feasible)
    for number, (_, _, upper) in enumerate(stats.slack):
        # Optuna's constraint: <= 0 is feasible; an unknown bound counts as violated
        trial.set_constraint(f"c{number}", upper if math.isfinite(upper) else 1e300)
    means = [mean for mean, _, _ in stats.objective]
    if all(math.isfinite(m) for m in means):
        study.tell(trial, means)
    else:
        study.tell(trial, state=TrialState.FAIL)


# --------------------------------------------------------------------------- entry point


def run_optimization(
    scenario: ScenarioLike,
    vary: Sequence[str | Variable],
    *,
    minimize: Sequence[str] | str = (),
    maximize: Sequence[str] | str = (),
    subject_to: Sequence[str | Constraint] = (),
    trials: int = 30,
    replications: int = 3,
    max_replications: int = 12,
    confirm: int = 3,
    confirm_replications: int = 20,
    seed: int | None = None,
    overrides: Iterable[str] = (),
    workers: int | None = None,
    scheduler: Scheduler = None,
    out: str | Path | None = None,
    progress: bool | None = True,
    invocation: Invocation | None = None,
) -> Optimization:
    """Search for the best plan that meets the constraints, then confirm it.

    Args:
        scenario: the base scenario (file, preset name, mapping or Scenario).
        vary: decision variables, as ``--vary`` strings (``"gateway.workers=8:64"``).
        minimize: KPI expression(s) to minimise; one or two objectives in all.
        maximize: KPI expression(s) to maximise (after the minimised ones).
        subject_to: constraints, as ``"checkout_latency_ms.p99<=1000"``.
        trials: trials in all (a resumed search counts the ones already finished).
        replications: replications a trial starts with (at least 2).
        max_replications: the most racing gives a trial.
        confirm: plans re-run in the confirmation stage.
        confirm_replications: replications of each of them (at least max_replications).
        seed: the seed of every replication and of the sampler (default: the scenario's).
        overrides: ``PATH=VALUE`` strings applied to every plan.
        workers: local worker processes, as :func:`run_replications`.
        scheduler: a Dask scheduler address or ``distributed.Client``.
        out: the output folder (Optuna's journal and every replication); a later call
            with the same folder and problem resumes.
        progress: show a progress bar of trials with the incumbent's value.
        invocation: the command that asked for it, for the provenance (default: this
            call).

    Raises:
        SearchError: a bad variable, objective or constraint (an unknown KPI is found
            on the first replication), or numbers of trials or replications that
            cannot work.
        ScenarioError: an override or a variable's value the scenario does not accept.
        Interrupted: on Ctrl-C; finished trials and replications are kept in ``out``.
    """
    import optuna

    overrides = list(overrides)
    if invocation is None:
        invocation = Invocation.python(
            "simulator.experiment.run_optimization",
            scenario,
            list(vary),
            overrides=overrides,
            minimize=minimize,
            maximize=maximize,
            subject_to=list(subject_to),
            trials=trials,
            seed=seed,
        )
    problem = _problem(vary, minimize, maximize, subject_to)
    _check_budget(trials, replications, max_replications, confirm, confirm_replications)
    overrides = list(overrides)
    base = load(scenario, overrides)
    problem = replace(problem, variables=tuple(_typed(v) for v in problem.variables))
    _check_variables(scenario, overrides, problem.variables)
    seed = base.seed if seed is None else seed
    identity = _identity(problem, base, seed, replications, max_replications)
    folder = None if out is None else Path(out)
    client, owned = _client(scheduler)
    # plans start from the scenario as loaded now: a file edited during the search
    # changes nothing of it
    evaluator = Evaluator(base, [], problem, seed, workers, client, folder)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bar = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = _study(folder, problem, identity)
            _replay(study, evaluator)
            done = sum(t.state.is_finished() for t in study.trials)
            bar = _trial_bar(trials, min(done, trials), progress)
            _show_incumbent(bar, evaluator)
            try:
                for stale in [
                    t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING
                ]:
                    study.sampler = _sampler(problem, seed, stale.number)
                    trial = optuna.trial.Trial(study, stale._trial_id)
                    _run_trial(study, trial, evaluator, replications, max_replications)
                    bar.update()
                    _show_incumbent(bar, evaluator)
                while len(study.trials) < trials:
                    study.sampler = _sampler(problem, seed, len(study.trials))
                    _run_trial(study, study.ask(), evaluator, replications, max_replications)
                    bar.update()
                    _show_incumbent(bar, evaluator)
                bar.set_description("confirming")
                result = confirm_plans(study, evaluator, confirm, confirm_replications)
            except KeyboardInterrupt:
                finished = sum(t.state.is_finished() for t in study.trials)
                raise Interrupted(finished, trials, folder, what="trials") from None
    finally:
        if bar is not None:
            bar.close()
        optuna.logging.set_verbosity(verbosity)
        if owned:
            client.close()
    result.base, result.source = base, _source(scenario)
    result.overrides, result.seed, result.study = overrides, seed, study
    result.trials = trials_table(study, problem)
    result.replications_spent = evaluator.spent
    result.importance = importance(study, problem)
    result.invocation = invocation
    return result


def optimize(
    scenario: ScenarioLike, vary: Sequence[str | Variable], **options: Any
) -> pd.DataFrame:
    """The confirmation table of :func:`run_optimization` (options as there)."""
    return run_optimization(scenario, vary, **options).confirmation


def _problem(
    vary: Sequence[str | Variable],
    minimize: Sequence[str] | str,
    maximize: Sequence[str] | str,
    subject_to: Sequence[str | Constraint],
) -> Problem:
    minimize = [minimize] if isinstance(minimize, str) else list(minimize)
    maximize = [maximize] if isinstance(maximize, str) else list(maximize)
    objectives = [parse_objective(t, False) for t in minimize]
    objectives += [parse_objective(t, True) for t in maximize]
    if not 1 <= len(objectives) <= 2:
        raise SearchError(
            f"give one objective (--minimize or --maximize), or two for a Pareto front "
            f"(got {len(objectives)})"
        )
    variables = [parse_vary(v) if isinstance(v, str) else v for v in vary]
    if not variables:
        raise SearchError("give at least one --vary PATH=LOW:HIGH (or PATH=A,B,C)")
    paths = [p for v in variables for p in v.paths]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:
        raise SearchError(f"--vary: {', '.join(twice)} varied twice")
    constraints = [parse_constraint(c) if isinstance(c, str) else c for c in subject_to]
    return Problem(tuple(variables), tuple(objectives), tuple(constraints))


def _check_budget(trials: int, first: int, most: int, confirm: int, confirming: int) -> None:
    if trials < 1:
        raise SearchError(f"--trials {trials}: at least 1")
    if first < 2:
        raise SearchError(f"-r {first}: a trial needs at least 2 replications for an interval")
    if most < first:
        raise SearchError(f"--max-replications {most}: at least -r ({first})")
    if confirm < 1:
        raise SearchError(f"--confirm {confirm}: at least 1 plan")
    if confirming < most:
        raise SearchError(
            f"--confirm-replications {confirming}: at least --max-replications ({most})"
        )


def _typed(variable: Variable) -> Variable:
    """A range of whole numbers over a field of decimals (``mean=300:450``) stays decimal."""
    if isinstance(variable, Range) and variable.integer:
        if field_type(variable.path) is float:
            return replace(variable, integer=False)
    return variable


def _check_variables(
    scenario: ScenarioLike, overrides: list[str], variables: Sequence[Variable]
) -> None:
    """Each variable's extremes make a valid scenario; problems are named by --vary.

    A split is also tried uneven (shares 1 : 2 : ... of the total), which a field of
    whole numbers refuses: a split proposes decimals.
    """
    for variable in variables:
        for values in variable.extremes():
            sets = [
                f"{p}={json.dumps(v) if not isinstance(v, str) else v}" for p, v in values.items()
            ]
            try:
                load(scenario, [*overrides, *sets])
            except ScenarioError as exc:
                mine = {f"--set {s}" for s in sets}
                raise ScenarioError(
                    replace(p, source=p.source.replace("--set", "--vary", 1))
                    if p.source in mine
                    else p
                    for p in exc.problems
                ) from None


def _client(scheduler: Scheduler) -> tuple[Scheduler, bool]:
    """One Dask client for the whole search (not one per batch); owned when made here."""
    if scheduler is None or not isinstance(scheduler, str):
        return scheduler, False
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerError(
            "a Dask scheduler needs the dask extra: pip install 'campaign-sim[dask]'"
        ) from None
    try:
        return Client(scheduler), True
    except (OSError, ValueError) as exc:
        raise SchedulerError(f"cannot use the Dask scheduler at {scheduler}: {exc}") from None


def _source(scenario: ScenarioLike) -> Path | None:
    """The file a scenario came from, when it did (best.yaml extends it)."""
    if isinstance(scenario, str):
        from simulator.scenario.presets import resolve

        return resolve(scenario)
    return scenario if isinstance(scenario, Path) else None


def _trial_bar(total: int, initial: int, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        monitor_interval = 0  # no monitor thread: local workers can then be forked

    return Bar(
        total=total,
        initial=initial,
        unit="trial",
        desc="trials",
        disable=None if enabled is None else not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _show_incumbent(bar: Any, evaluator: Evaluator) -> None:
    incumbent = evaluator.incumbent()
    if incumbent is not None:
        value = evaluator.stats(incumbent).objective[0][0]
        bar.set_postfix_str(f"best {value:,.6g} ({incumbent.label()})", refresh=False)
