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
from simulator.experiment.search import (
    Choice,
    Range,
    Split,
    parse_constraint,
    parse_expression,
    parse_vary,
)
from simulator.interface.cli import app
from simulator.scenario.loader import extension, load_scenario
from simulator.validation.theory import mmc_mean_wait
from tests.conftest import SCENARIOS

cli = CliRunner()
MMC = SCENARIOS / "validation" / "mmc.yaml"
MM1 = SCENARIOS / "validation" / "mm1.yaml"

# M/M/c: Poisson arrivals at 8/s, exponential service of mean 0.4 s (the mmc preset).
ARRIVALS, SERVICE, TARGET_WAIT_S = 8.0, 0.4, 0.03
SHORT = ["duration_s=1500", "warmup_s=200"]


def fewest_servers(target: float) -> int:
    """c*: the fewest servers whose Erlang-C mean wait is within the target."""
    c = math.floor(ARRIVALS * SERVICE) + 1
    while mmc_mean_wait(ARRIVALS, SERVICE, c) > target:
        c += 1
    return c


def staffing(**options):
    return run_optimization(
        MMC,
        ["database.pool_size=4:12"],
        minimize="stations.database.servers",
        subject_to=[f"stations.database.wait_mean_s<={TARGET_WAIT_S}"],
        overrides=SHORT,
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
    result = staffing(trials=12, workers=2, out=tmp_path)
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


# --------------------------------------------------------------------------- parsing


def test_vary_specs_become_typed_variables():
    """Integer and float ranges, log scales, steps, choices and splits are told apart."""
    assert parse_vary("gateway.workers=8:64") == Range("gateway.workers", 8, 64, True)
    assert parse_vary("x.y=0.5:2") == Range("x.y", 0.5, 2, False)
    assert parse_vary("x.y=1:100:log").log
    assert parse_vary("x.y=8:64:8").step == 8
    assert parse_vary("cache.rebuild=none, mutex,xfetch") == Choice(
        "cache.rebuild", ("none", "mutex", "xfetch")
    )
    assert parse_vary("a.b + c.d=5800000") == Split(("a.b", "c.d"), 5_800_000)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gateway.workers=64:8", "empty range"),
        ("gateway.workers=8:8", "empty range"),
        ("gateway.workers", "expected PATH=LOW:HIGH"),
        ("gateway.workers=8", "at least two choices"),
        ("gateway.workers=a:9", "LOW 'a' is not a number"),
        ("x=0:10:log", "log scale needs LOW > 0"),
        ("a+a=10", "distinct field paths"),
        ("a+b=-1", "total must be positive"),
    ],
)
def test_bad_vary_specs_are_named(spec, message):
    with pytest.raises(SearchError, match=message) as caught:
        parse_vary(spec)
    assert spec in str(caught.value)


def test_expressions_read_kpis_and_arithmetic():
    """Numbers, dotted paths, backquoted names, + - * / and brackets; a missing KPI is NaN."""
    expression = parse_expression("lost_gmv_total - 0.01 * (gmv + `x.taobao-ads.spend`)", "t")
    assert expression.kpis == ("lost_gmv_total", "gmv", "x.taobao-ads.spend")
    row = {"lost_gmv_total": 50.0, "gmv": 1000.0, "x.taobao-ads.spend": 1000.0}
    assert expression(row) == pytest.approx(30.0)
    assert math.isnan(expression({"gmv": 1.0}))
    with pytest.raises(SearchError, match="only numbers, KPI paths"):
        parse_expression("__import__('os')", "--minimize")


def test_constraints_give_a_slack_that_is_negative_when_met():
    at_most = parse_constraint("checkout_latency_ms.p99 <= 1000")
    at_least = parse_constraint("conversion_rate>=0.02")
    assert at_most.slack({"checkout_latency_ms.p99": 900.0}) == -100
    assert at_least.slack({"conversion_rate": 0.01}) == pytest.approx(0.01)
    for bad, message in [("a == 1", "equality"), ("a", "one comparison"), ("a <= ", "both sides")]:
        with pytest.raises(SearchError, match=message):
            parse_constraint(bad)


class Fixed:
    """A stand-in for Optuna's trial that answers each float with the next given value."""

    def __init__(self, values):
        self.values = iter(values)

    def suggest_float(self, name, low, high, *, step=None, log=False):
        """The next value, whatever the range."""
        return next(self.values)


def test_stick_breaking_maps_uniform_numbers_to_a_uniform_split():
    """Each share of a uniform Dirichlet(1, 1, 1) point averages 1/3; shares sum to the total."""
    split = Split(("a", "b", "c"), 90.0)
    rng = np.random.default_rng(5)
    shares = np.array(
        [list(split.suggest(Fixed(rng.uniform(size=2))).values()) for _ in range(20_000)]
    )
    assert np.allclose(shares.sum(axis=1), 90.0)
    assert (shares >= 0).all()
    assert np.allclose(shares.mean(axis=0), 30.0, atol=0.5)  # sd of a mean: 0.15
    # the first share of Dirichlet(1,1,1) is Beta(1, 2): P(share < 1/2) = 3/4
    assert np.mean(shares[:, 0] < 45.0) == pytest.approx(0.75, abs=0.015)


# --------------------------------------------------------------------------- the command


def _optimize(tmp_path, *args):
    return cli.invoke(
        app,
        [
            *("optimize", str(MMC), "--set", "duration_s=600", "--set", "warmup_s=100"),
            *("--workers", "2", "--no-progress", "--out", str(tmp_path)),
            *args,
        ],
    )


def test_cli_optimize_prints_the_answer_and_writes_the_report(tmp_path):
    result = _optimize(
        tmp_path,
        *("--vary", "database.pool_size=5:8", "--minimize", "stations.database.servers"),
        *("--subject-to", "stations.database.wait_mean_s<=0.1", "--trials", "4"),
        *("--confirm", "2", "--confirm-replications", "12"),
    )
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(tmp_path / "trials.csv")
    cheapest = int(trials[trials["feasible"]]["database.pool_size"].min())
    assert f"Chosen plan: database.pool_size={cheapest}." in result.output
    html = (tmp_path / "report.html").read_text()
    assert "The answer" in html and f"Chosen plan: database.pool_size={cheapest}." in html
    assert "<svg" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vary", "database.no_such=1:4", "--minimize", "sessions"], "--vary database.no_such"),
        (
            ["--vary", "database.pool_size=0:4", "--minimize", "sessions"],
            "--vary database.pool_size=0",
        ),
        (["--vary", "database.pool_size=9:4", "--minimize", "sessions"], "empty range"),
        (["--vary", "database.pool_size=4:9"], "give one objective"),
        (
            [
                "--vary",
                "database.pool_size=4:9",
                "--minimize",
                "sessions",
                "--subject-to",
                "no_kpi<=1",
            ],
            "the runs report no KPI 'no_kpi'",
        ),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(tmp_path, args, message):
    result = _optimize(tmp_path, "--trials", "2", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_infeasible_search_says_so_and_shows_the_least_violating_plan(tmp_path):
    result = _optimize(
        tmp_path,
        *("--vary", "database.pool_size=5:7", "--minimize", "stations.database.servers"),
        *("--subject-to", "stations.database.wait_mean_s<=0.0000001", "--trials", "3"),
        *("--confirm", "2", "--confirm-replications", "12"),
    )
    assert result.exit_code == 2, result.output
    assert "No plan met every constraint" in result.output
    biggest = int(pd.read_csv(tmp_path / "trials.csv")["database.pool_size"].max())
    assert f"least violating plan of the 2 confirmed: database.pool_size={biggest}." in (
        " ".join(result.output.split())  # as printed, unwrapped
    )
    assert (tmp_path / "trials.csv").exists() and (tmp_path / "report.html").exists()


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
            subject_to=[f"stations.database.wait_mean_s<={TARGET_WAIT_S}"],
            overrides=["duration_s=1000", "warmup_s=200"],
            trials=2,
            out=tmp_path,
            progress=False,
        )


def test_a_split_over_whole_number_fields_is_refused_before_anything_runs():
    """A split proposes decimals; a field of whole numbers says so at once, named by --vary."""
    with pytest.raises(simulator.ScenarioError) as caught:
        run_optimization(
            MMC,
            ["database.pool_size+gateway.workers=40"],
            minimize="sessions",
            overrides=SHORT,
            progress=False,
        )
    assert any(p.source.startswith("--vary database.pool_size=") for p in caught.value.problems)


def test_an_objective_with_no_value_is_refused_after_the_first_plan(tmp_path):
    """A KPI that is empty in these runs (no orders: no order latency) cannot be optimised."""
    with pytest.raises(SearchError, match="no value on any replication of the first plan"):
        run_optimization(
            MMC,
            ["database.pool_size=4:6"],
            minimize="checkout_latency_ms.p99",
            overrides=["duration_s=300", "warmup_s=20"],
            trials=2,
            workers=1,
            out=tmp_path,
            progress=False,
        )
