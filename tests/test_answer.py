"""The answer first: the KPI registry, intervals inside a KPI's range, SLO lines, verdicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from simulator.experiment.answer import SloCheck, check_slos, verdict
from simulator.experiment.estimates import aggregate, bounded_interval, difference, interval
from simulator.interface.cli import app
from simulator.results.registry import kpi
from simulator.scenario.loader import ScenarioError, load_scenario
from tests.conftest import SCENARIOS

runner = CliRunner()
BASELINE = str(SCENARIOS / "baseline.yaml")
SHORT = ["--set", "duration_s=60", "--seed", "3"]


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("path", "unit", "low", "high", "better", "scales"),
    [
        ("orders", "orders", 0, math.inf, +1, True),
        ("gmv", "CNY", 0, math.inf, +1, False),
        ("net_profit", "CNY", -math.inf, math.inf, +1, False),
        ("conversion_rate", "%", 0, 1, +1, False),
        ("payment_success_by_channel.alipay", "%", 0, 1, +1, False),
        ("checkout_latency_ms.p99", "ms", 0, math.inf, -1, False),
        ("recovery_time_s.checkout", "s", 0, math.inf, -1, False),
        ("cache_hits", "lookups", 0, math.inf, 0, True),
        ("lost_gmv.rejected", "CNY", 0, math.inf, -1, False),
        ("stations.database.utilisation", "%", 0, 1, 0, False),
        ("funnel.member.browse_to_paid", "%", 0, 1, +1, False),
    ],
)
def test_the_registry_knows_each_family(path, unit, low, high, better, scales):
    """Unit, range, direction and scaling of one KPI of each family."""
    info = kpi(path)
    assert (info.unit, info.low, info.high, info.better, info.scales) == (
        unit,
        low,
        high,
        better,
        scales,
    )


def test_a_kpi_prints_in_its_unit():
    """Percentages, whole yuan, counts with separators; a cache count is not money."""
    assert kpi("conversion_rate").format(0.0753) == "7.53%"
    assert kpi("gmv").format(18_673_040.2) == "18,673,040"
    assert kpi("orders").format(11_333) == "11,333"
    assert kpi("cache_hits").kind == ""  # "cache" once matched "cac", the acquisition cost
    assert kpi("gmv").heading == "GMV (CNY)" and kpi("orders").heading == "orders"


# --------------------------------------------------------------------------- intervals


def test_a_count_interval_never_goes_below_zero():
    """Skewed counts: the t interval reaches below 0, the reported one stops at 0."""
    values = [0, 0, 0, 0, 60]
    _, raw_low, _ = interval("requests_shed", values)
    mean, low, high = bounded_interval("requests_shed", values)
    assert raw_low < 0 and low == 0 and high > mean == 12


def test_a_ratio_interval_stays_within_one():
    """A success rate near 1: the interval's top is cut at 1, its bottom kept."""
    values = [1.0, 1.0, 1.0, 0.9]
    _, raw_low, raw_high = interval("payment_success_rate", values)
    _, low, high = bounded_interval("payment_success_rate", values)
    assert raw_high > 1 and high == 1 and low == raw_low


def test_an_unbounded_kpi_keeps_its_interval():
    """Net profit may be negative: nothing is cut."""
    values = [-5.0, 10.0, -20.0]
    assert bounded_interval("net_profit", values) == interval("net_profit", values)


def test_replicated_summaries_report_bounded_intervals():
    """aggregate() (summary.json, kpis.csv) uses the cut intervals."""
    summaries = [
        {"scenario": "x", "seed": 1, "replication": r, "provenance": {}, "requests_shed": v}
        for r, v in enumerate([0, 0, 0, 0, 60])
    ]
    leaf = aggregate(summaries, seed=1)["requests_shed"]
    assert leaf["ci_low"] == 0 and leaf["ci_high"] > 12


def test_a_difference_of_ratios_stays_within_plus_minus_one():
    """B - A of a ratio lies in [-1, 1]; a count's difference is not cut at 0."""
    row = difference("payment_success_rate", [0.0, 0.0, 0.0], [1.0, 1.0, 0.5], seed=1)
    assert -1 <= row["ci_low"] and row["ci_high"] <= 1
    counts = difference("orders", [10, 12, 14], [5, 6, 9], seed=1)
    assert counts["ci_high"] < 0  # a fall in orders keeps its negative interval


# --------------------------------------------------------------------------- SLO and verdicts


def test_an_slo_is_judged_on_the_run_and_on_the_mean_of_replications():
    """One run: its value. Replications: the mean, with a warning when the CI straddles."""
    scenario = load_scenario(
        BASELINE, ["slo=['checkout_latency_ms.p99 <= 1000', 'orders >= 0.01 * sessions']"]
    )
    [latency, orders] = check_slos(
        scenario, [{"checkout_latency_ms.p99": 900.0, "orders": 5.0, "sessions": 1000.0}]
    )
    assert latency.passed and latency.line().startswith("✓ checkout_latency_ms.p99 <= 1000")
    assert not orders.passed and orders.limit == 10 and orders.line().startswith("✗")
    runs = [{"checkout_latency_ms.p99": v, "orders": 50.0, "sessions": 1000.0} for v in (700, 1200)]
    latency = check_slos(scenario, runs)[0]
    assert latency.passed and latency.uncertain and "CI crosses the limit" in latency.line()


def test_an_slo_with_no_value_fails():
    """A threshold on a KPI the run left empty is not met."""
    check = SloCheck("tracking_lag_h <= 4", "tracking_lag_h", math.nan, None, None, 4, True, 1)
    assert not check.passed and "no value" in check.line()


def test_the_verdict_says_which_side_is_better_and_whether_it_is_real():
    """Direction from the registry; real only when the paired CI excludes 0."""
    lost = {"a_mean": 391.6, "b_mean": 19.0, "difference": -372.6, "ci_low": -400.0}
    lost["ci_high"] = -345.0
    text = verdict("payments_lost_to_outage", lost, 10)
    assert "B is better, and the difference is real" in text
    noisy = {"a_mean": 100.0, "b_mean": 98.0, "difference": -2.0, "ci_low": -9.0, "ci_high": 5.0}
    text = verdict("orders", noisy, 5)
    assert "not distinguishable from noise at 5 replications (B looks worse)" in text


def test_a_bad_slo_or_answer_is_refused_when_loaded():
    """Not a comparison, or not a KPI path: the field is named."""
    with pytest.raises(ScenarioError, match=r"slo: \[0\].*equality"):
        load_scenario(BASELINE, ["slo=['orders == 5']"])
    with pytest.raises(ScenarioError, match=r"answers: \[1\].*not a KPI path"):
        load_scenario(BASELINE, ["answers=[orders, 'gmv + 1']"])


# --------------------------------------------------------------------------- the command line


def test_run_prints_the_answer_first_and_exits_1_on_a_missed_slo(tmp_path):
    """Question and answer KPIs before the table; ✗ lines; status 1; outputs all written."""
    args = ["run", BASELINE, *SHORT, "--out", str(tmp_path / "a")]
    slo = ["--set", "slo=['orders >= 1', 'checkout_latency_ms.p99 <= 0.001']"]
    result = runner.invoke(app, [*args, *slo, "--set", "answers=[orders, gmv]"])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("How does the shop behave")
    assert lines[1].startswith("  orders: ") and lines[2].startswith("  GMV: ")
    assert lines[3].startswith("  ✓ orders >= 1") and lines[4].startswith("  ✗ checkout")
    assert lines.index(lines[4]) < next(i for i, line in enumerate(lines) if "KPI" in line)
    assert "1 of 2 service-level thresholds not met" in result.stderr
    assert (tmp_path / "a" / "report.html").exists()
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["orders"] >= 1


def test_run_exits_0_when_every_slo_is_met(tmp_path):
    args = ["run", BASELINE, *SHORT, "--out", str(tmp_path), "--set", "slo=['orders >= 1']"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "✓ orders >= 1" in result.stdout


def test_an_answer_the_run_does_not_report_is_bad_input_after_the_results(tmp_path):
    """Exit 2 naming the field and a close match; the run's files are kept."""
    args = ["run", BASELINE, *SHORT, "--out", str(tmp_path), "--set", "answers=[order]"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "answers[0]: the run reports no KPI 'order'; did you mean orders?" in result.stderr
    assert (tmp_path / "summary.json").exists()
    assert np.isfinite(json.loads((tmp_path / "summary.json").read_text())["gmv"])


def test_a_sweep_reports_paired_differences_from_its_first_point(tmp_path):
    """Each point minus point 0, paired over the same replications' streams."""
    from simulator.experiment import run_sweep

    swept = run_sweep(
        BASELINE,
        {"gateway.workers": ["1", "16"]},
        3,
        overrides=["duration_s=120"],
        workers=1,
        progress=False,
    )
    table = swept.differences().set_index(["point", "kpi"])
    same = table.loc[(0, "orders")]
    assert same["difference"] == 0 and same["ci_low"] == same["ci_high"] == 0
    changed = table.loc[(1, "checkout_latency_ms.p99")]
    a = swept.runs[0].values()["checkout_latency_ms.p99"].tolist()
    b = swept.runs[1].values()["checkout_latency_ms.p99"].tolist()
    expected = difference("checkout_latency_ms.p99", a, b, swept.runs[0].seed)
    assert changed["difference"] == pytest.approx(expected["difference"])
    assert changed["ci_low"] == pytest.approx(expected["ci_low"])
    assert changed["difference"] < 0  # 16 workers instead of 1: checkout waits less
    result = runner.invoke(
        app,
        ["sweep", BASELINE, "--grid", "gateway.workers=1,16", "-r", "3", "--set"]
        + ["duration_s=120", "--out", str(tmp_path), "--no-progress", "--workers", "1"],
        terminal_width=60,
    )
    assert result.exit_code == 0, result.output
    assert "reference" in result.stdout and "[paired 95% CI]" in result.stdout
    assert (tmp_path / "differences.csv").exists()
