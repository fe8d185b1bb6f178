"""Searching: --vary, objectives and constraints parsed; the command; bad input refused."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import simulator
from simulator.experiment import SearchError, run_optimization
from simulator.experiment.search import (
    Choice,
    Range,
    Split,
    parse_constraint,
    parse_expression,
    parse_vary,
)
from simulator.interface.cli import app
from tests.conftest import SCENARIOS

cli = CliRunner()
MMC = SCENARIOS / "validation" / "mmc.yaml"


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


def test_a_split_over_whole_number_fields_is_refused_before_anything_runs():
    """A split proposes decimals; a field of whole numbers says so at once, named by --vary."""
    with pytest.raises(simulator.ScenarioError) as caught:
        run_optimization(
            MMC,
            ["database.pool_size+gateway.workers=40"],
            minimize="sessions",
            overrides=["duration_s=600", "warmup_s=100"],
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
