"""The optimiser: known optima found, noise handled, searches resumed, bad input refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import simulator
from simulator.experiment import SearchError, run_optimization, runner
from simulator.experiment.racing import Evaluator
from simulator.scenario.loader import extension, load_scenario
from simulator.validation.theory import mmc_mean_wait
from tests.conftest import SCENARIOS

cli = CliRunner()
MMC = SCENARIOS / "validation" / "mmc.yaml"
MM1 = SCENARIOS / "validation" / "mm1.yaml"

# M/M/c: Poisson arrivals at 8/s, exponential service of mean 0.4 s (the mmc preset).
ARRIVALS, SERVICE, TARGET_WAIT_S = 8.0, 0.4, 0.03
SHORT = ["duration_s=1500", "warmup_s=200"]
QUICK = ["duration_s=600", "warmup_s=100"]


def fewest_servers(target: float) -> int:
    """c*: the fewest servers whose Erlang-C mean wait is within the target."""
    c = math.floor(ARRIVALS * SERVICE) + 1
    while mmc_mean_wait(ARRIVALS, SERVICE, c) > target:
        c += 1
    return c


def staffing(quick: bool = True, **options):
    """The M/M/c staffing search: quick (600 s runs, a 0.1 s target) or the validation one."""
    target, overrides = (0.1, QUICK) if quick else (TARGET_WAIT_S, SHORT)
    return run_optimization(
        MMC,
        ["database.pool_size=4:12"],
        minimize="stations.database.servers",
        subject_to=[f"stations.database.wait_mean_s<={target}"],
        overrides=overrides,
        progress=False,
        **options,
    )


def test_mmc_staffing_returns_exactly_the_erlang_c_optimum(tmp_path):
    """The fewest servers meeting an Erlang-C mean-wait target is c*, not c* - 1 or c* + 1.

    At 8/s and 0.4 s the waits are 0.064 s with 5 servers and 0.018 s with 6, so for a
    0.03 s target c* = 6 and c* - 1 violates it by a factor of two. Replication budget:
    12 trials of 3 to 12 replications, 3 plans confirmed with 20: at most 150 in all.
    """
    c_star = fewest_servers(TARGET_WAIT_S)
    assert c_star == 6 and mmc_mean_wait(ARRIVALS, SERVICE, c_star - 1) > 2 * TARGET_WAIT_S
    result = staffing(quick=False, trials=12, workers=2, out=tmp_path)
    assert result.feasible
    assert result.chosen is not None and result.chosen.values == {"database.pool_size": c_star}
    trials = result.trials
    below = trials[trials["database.pool_size"] == c_star - 1]
    assert len(below) and not below["feasible"].any()  # tried, and rejected with confidence
    assert result.replications_total <= 150
    chosen = result.confirmation[result.confirmation["chosen"]].iloc[0]
    wait = chosen[f"stations.database.wait_mean_s<={TARGET_WAIT_S}: value"]
    assert wait == pytest.approx(mmc_mean_wait(ARRIVALS, SERVICE, c_star), rel=0.25)
    others = result.confirmation[~result.confirmation["chosen"]]
    lows = others["stations.database.servers difference ci_low"]
    assert (lows > 0).all()  # every runner-up costs more, surely


def test_a_two_channel_budget_split_finds_the_analytic_optimum(tmp_path):
    """Concave responses: the split that maximises visitors is the analytic one.

    Visitors of a channel are (R / cpc) (spend / R) ** e. With e = 0.5 for both, CPC 1
    and 2, the marginal visitors are equal when spend_a / spend_b = (cpc_b / cpc_a) **
    (1 / (1 - e)) = 4: channel a takes 80% of the budget. Tolerance: 5 points of share
    (the visitors lost there are 0.2% of the optimum, below the noise of one run).
    """
    channel = (
        "{name: %s, budget_cny: 2500, cpc_cny: %d, returns_exponent: 0.5, "
        "reference_spend_cny: 5000}"
    )
    overrides = [
        "traffic.baseline_per_s=0.001",
        "duration_s=600",
        "warmup_s=0",
        "gateway.workers=1000",
        f"channels=[{channel % ('a', 1)}, {channel % ('b', 2)}]",
    ]
    result = run_optimization(
        MM1,
        ["channels[0].budget_cny+channels[1].budget_cny=5000"],
        maximize="sessions",
        trials=20,
        overrides=overrides,
        workers=2,
        out=tmp_path,
        progress=False,
    )
    assert result.chosen is not None
    values = result.chosen.values
    assert values["channels[0].budget_cny"] + values["channels[1].budget_cny"] == pytest.approx(
        5000
    )
    assert values["channels[0].budget_cny"] / 5000 == pytest.approx(0.8, abs=0.05)


def test_an_interrupted_search_resumes_to_the_same_answer(tmp_path, monkeypatch):
    """Ctrl-C in the middle of a trial keeps what finished; the rerun ends as if unbroken."""
    options = {"trials": 8, "workers": 1, "confirm_replications": 12}
    whole = staffing(out=tmp_path / "whole", **options)
    real_run_task, calls = runner.run_task, []

    def interrupted_at_the_25th(task):
        calls.append(task)
        if len(calls) == 25:
            raise KeyboardInterrupt
        return real_run_task(task)

    monkeypatch.setattr(runner, "run_task", interrupted_at_the_25th)
    with pytest.raises(simulator.experiment.Interrupted, match="trials finished"):
        staffing(out=tmp_path / "broken", **options)
    monkeypatch.setattr(runner, "run_task", real_run_task)
    resumed = staffing(out=tmp_path / "broken", **options)
    assert resumed.replications_spent < whole.replications_spent  # the finished ones kept
    assert resumed.chosen is not None and whole.chosen is not None
    assert resumed.chosen.values == whole.chosen.values
    pd.testing.assert_frame_equal(resumed.trials, whole.trials)
    pd.testing.assert_frame_equal(resumed.confirmation, whole.confirmation)


def test_the_same_search_on_a_dask_cluster_gives_the_same_trials(tmp_path):
    """Replications sent to a real LocalCluster come back identical, and so do the trials."""
    distributed = pytest.importorskip("distributed")
    here = staffing(trials=4, workers=1, confirm=1, confirm_replications=12)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        there = staffing(
            trials=4, scheduler=cluster.scheduler_address, confirm=1, confirm_replications=12
        )
    pd.testing.assert_frame_equal(here.trials, there.trials)
    pd.testing.assert_frame_equal(here.confirmation, there.confirmation)


def test_best_yaml_extends_the_input_and_loads_as_the_chosen_plan(tmp_path):
    """``best.yaml`` is a ready scenario: the input extended with the chosen overrides."""
    result = staffing(trials=3, workers=2, confirm=1, confirm_replications=12, out=tmp_path)
    result.write(tmp_path)
    text = (tmp_path / "best.yaml").read_text()
    first = text.split("\n")[0]
    assert first.startswith("extends: ") and not Path(first.removeprefix("extends: ")).is_absolute()
    best = load_scenario(tmp_path / "best.yaml")
    assert result.chosen is not None
    expected = result.chosen.scenario.model_dump()
    got = best.model_dump()
    for key in ("name", "description"):
        expected.pop(key), got.pop(key)
    assert got == expected
    assert best.name == "mmc-best"
    for name in (
        "trials.parquet",
        "trials.csv",
        "confirmation.csv",
        "answer.txt",
        "optuna.journal",
    ):
        assert (tmp_path / name).exists()


def test_an_override_inside_a_list_is_written_as_the_whole_list():
    """``extends`` replaces lists, so the child file carries the list, changed."""
    child = extension(MM1, ["payment.channels[0].timeout_ms=800", "gateway.workers=3"])
    assert child["gateway"] == {"workers": 3}
    channels = child["payment"]["channels"]
    assert len(channels) == 1 and channels[0]["timeout_ms"] == 800
    assert channels[0]["name"] == "instant"  # the rest of the item kept


def test_two_variables_get_optunas_importances_and_a_report_figure(tmp_path):
    """With two variables, Optuna's PED-ANOVA importances are kept (summing to 1) and drawn."""
    result = run_optimization(
        MMC,
        ["database.pool_size=5:8", "database.read_time_ms.mean=300:400"],
        minimize="stations.database.wait_mean_s",
        trials=5,
        confirm=2,
        confirm_replications=12,
        overrides=["duration_s=300", "warmup_s=20"],
        workers=1,
        progress=False,
    )
    assert set(result.importance) == {"database.pool_size", "database.read_time_ms.mean"}
    assert sum(result.importance.values()) == pytest.approx(1.0)
    from simulator.present.search_report import render_optimization

    assert "importance (Optuna, PED-ANOVA" in render_optimization(result)


def test_two_objectives_give_a_confirmed_front_and_its_knee(tmp_path):
    """Cost against wait: NSGA-II's front is confirmed, the knee chosen, the report drawn."""
    result = run_optimization(
        MMC,
        ["database.pool_size=4:9"],
        minimize=["stations.database.servers", "stations.database.wait_mean_s"],
        trials=8,
        confirm_replications=12,
        overrides=["duration_s=300", "warmup_s=20"],
        workers=2,
        out=tmp_path,
        progress=False,
    )
    confirmed = result.confirmation
    assert result.chosen is not None and "the knee of the" in result.answer()
    servers = confirmed["stations.database.servers"].to_numpy()
    waits = confirmed["stations.database.wait_mean_s"].to_numpy()
    order = np.argsort(servers)
    assert (np.diff(waits[order]) < 0).all()  # a front: each server more, less waiting
    from simulator.present.search_report import render_optimization

    assert "Trade-off between the objectives" in render_optimization(result)


def test_a_folder_holding_another_search_is_refused(tmp_path):
    """Trials made with another --set are not mixed into this search: a clear refusal."""
    staffing(trials=2, workers=2, confirm=1, confirm_replications=12, out=tmp_path)
    with pytest.raises(SearchError, match="holds 2 trials of another search"):
        run_optimization(
            MMC,
            ["database.pool_size=4:12"],
            minimize="stations.database.servers",
            subject_to=["stations.database.wait_mean_s<=0.1"],
            overrides=["duration_s=500", "warmup_s=100"],
            trials=2,
            out=tmp_path,
            progress=False,
        )


class _TwoBlocks(Evaluator):
    """Replications from a known model instead of the simulator.

    On the search's replications every plan meets the 0.1 s wait limit; on the fresh
    confirmation block only plans of at least ``holds_from`` servers do, as when a
    search's best plans sat near a limit and were lucky.
    """

    holds_from = 7

    def replicate(self, plans, n, confirmation=False):
        for plan in plans:
            servers = plan.values["database.pool_size"]
            rows = plan.confirmed if confirmation else plan.rows
            noise = np.random.default_rng(servers).normal(0, 0.005, size=n)
            failing = confirmation and servers < self.holds_from
            for r in range(len(rows), n):
                wait = (0.2 if failing else 0.05) + noise[r]
                rows.append({"stations.database.servers": servers, "wait": wait})
            if not confirmation:
                plan.n = max(plan.n, n)


def _search_over(servers, holds_from):
    import optuna

    from simulator.experiment.optimization import confirm
    from simulator.experiment.racing import Problem
    from simulator.experiment.search import parse_constraint, parse_objective, parse_vary

    problem = Problem(
        (parse_vary("database.pool_size=4:8"),),
        (parse_objective("stations.database.servers", False),),
        (parse_constraint("wait<=0.1"),),
    )
    evaluator = _TwoBlocks(MMC, QUICK, problem, 1, 1, None, None)
    evaluator.holds_from = holds_from
    study = optuna.create_study()
    for c in servers:
        plan = evaluator.plan({"database.pool_size": c})
        evaluator.replicate([plan], 4)
        study.add_trial(
            optuna.trial.create_trial(
                params={"database.pool_size": c},
                distributions={"database.pool_size": optuna.distributions.IntDistribution(4, 8)},
                value=c,
                user_attrs={"plan": plan.key},
            )
        )
    return confirm(study, evaluator, count=3, n=12)


def test_when_fresh_replications_reject_the_best_plans_the_next_are_confirmed():
    """The 3 cheapest fail on the confirmation block: 7 and 8 are confirmed, 7 chosen."""
    result = _search_over([8, 4, 6, 5, 7], holds_from=7)
    assert result.feasible
    assert result.chosen is not None and result.chosen.values == {"database.pool_size": 7}
    assert [p.values["database.pool_size"] for p in result.plans] == [4, 5, 6, 7, 8]
    assert [p.values["database.pool_size"] for p in result.rejected] == [4, 5, 6]
    table = result.confirmation.set_index("database.pool_size")
    assert not table.loc[[4, 5, 6], "meets every constraint"].any()
    assert table.loc[[7, 8], "meets every constraint"].all()
    # the bound is on the wait itself: above its mean, below the limit where it holds
    assert (table["wait<=0.1: bound"] > table["wait<=0.1: value"]).all()
    assert (table.loc[[7, 8], "wait<=0.1: bound"] <= 0.1).all()
    answer = result.answer()
    assert "failed on the fresh replications: database.pool_size=4;" in answer
    assert "It meets every constraint" in answer


def test_when_no_plan_holds_on_fresh_replications_the_least_violating_is_shown():
    """Every plan confirmed, none holds: the answer says so and names the closest."""
    result = _search_over([8, 4, 6, 5, 7], holds_from=99)
    assert not result.feasible and len(result.plans) == 5
    assert result.chosen is not None
    assert result.answer().startswith("No plan met every constraint")
