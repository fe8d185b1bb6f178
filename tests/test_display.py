"""In a notebook, results show as compact KPI tables: the question, then the answer KPIs.

A run, replications, a comparison and a sweep each have a ``_repr_html_``; every number
in it prints through the KPI registry, every text is escaped. The launch-spike preset at
a hundredth of its size (a quarter of a second a run) stands in for a sale.
"""

from __future__ import annotations

import re

import pytest

import simulator
from simulator import experiment
from simulator.experiment.answer import verdict
from simulator.results.display import HEADLINE, Row, kpi_table, lookup, side_by_side
from simulator.results.registry import DEFAULT_ANSWERS, kpi
from tests.conftest import SCENARIOS

SPIKE = SCENARIOS / "sale-start-spike.yaml"
SMALL = ["scale=1/100"]
QUESTION = "Does the everyday architecture survive the launch spike"
OPTIONS = {"overrides": SMALL, "workers": 1, "progress": False}
ANSWERS = ["payments_lost_to_outage", "gmv"]


def rows_in_order(html: str) -> list[str]:
    """The KPI paths of a table's rows, top to bottom (each row's name carries its path)."""
    return re.findall(r'<th style="[^"]*" title="([^"]+)">', html)


def numbers_are_formatted(html: str) -> bool:
    """No number in scientific notation, no Python float noise, no raw NaN."""
    return not re.search(r"\d[eE][+-]?\d|\d\.\d{7,}|\bnan\b", html)


@pytest.fixture(scope="module")
def result():
    return simulator.simulate(experiment.load(SPIKE, SMALL), seed=1)


@pytest.fixture(scope="module")
def replications():
    return experiment.run_replications(SPIKE, 3, **OPTIONS)


@pytest.fixture(scope="module")
def comparison():
    a, b = "payment-channel-no-failover", "payment-channel-failover"
    overrides = ["scale=1/40", f"answers=[{', '.join(ANSWERS)}]"]
    return experiment.run_comparison(a, b, 3, **{**OPTIONS, "overrides": overrides})


@pytest.fixture(scope="module")
def sweep():
    return experiment.run_sweep(SPIKE, {"database.pool_size": [5, 80]}, 2, **OPTIONS)


def test_a_result_shows_its_question_then_answer_kpis_then_headline(result):
    html = result._repr_html_()
    assert QUESTION in html
    shown = rows_in_order(html)
    assert shown[: len(DEFAULT_ANSWERS)] == list(DEFAULT_ANSWERS)
    assert set(shown[len(DEFAULT_ANSWERS) :]) <= set(HEADLINE)
    assert "gmv" in shown and len(shown) <= len(DEFAULT_ANSWERS) + len(HEADLINE)
    gmv = kpi("gmv").format(result.summary["gmv"])
    assert f">{gmv}</td>" in html and "," in gmv  # whole yuan with thousands separators
    assert numbers_are_formatted(html)


def test_a_result_prints_as_one_short_line(result):
    """A bare ``result`` no longer prints the whole summary (it was 20,000 characters)."""
    text = repr(result)
    assert len(text) < 500 and "\n" not in text
    assert "sale-start-spike" in text and "seed 1" in text
    assert kpi("orders").format(result.summary["orders"]) in text


def test_a_table_shows_the_kpis_asked_for(result):
    html = result.html(["payment_success_rate", "db_peak_qps", "no.such_kpi"])
    assert rows_in_order(html) == ["payment_success_rate", "db_peak_qps", "no.such_kpi"]
    assert f"{result.summary['payment_success_rate']:.2%}" in html
    assert ">-</td>" in html  # a KPI the run lacks shows as a dash


def test_replications_show_mean_and_interval_answer_kpis_first(replications):
    html = replications._repr_html_()
    assert QUESTION in html and "3 replications" in html and "mean [95% CI]" in html
    assert rows_in_order(html)[: len(DEFAULT_ANSWERS)] == list(DEFAULT_ANSWERS)
    row = replications.table().loc["conversion_rate"]
    info = kpi("conversion_rate")
    expected = f"{info.format(row['mean'])} [{info.format(row['ci_low'])}, "
    assert expected in html
    assert numbers_are_formatted(html)
    assert len(repr(replications)) < 200


def test_a_replicated_result_shows_its_estimates_with_intervals(tmp_path):
    """``Replications.result()`` holds means carrying intervals: its table shows both."""
    runs = experiment.run_replications(SPIKE, 2, **OPTIONS, out=tmp_path)
    result = runs.result()
    html = result._repr_html_()
    assert "2 replications" in html
    orders = result.summary["orders"]
    info = kpi("orders")
    assert f"{info.format(orders)} [{info.format(orders.ci_low)}, " in html
    assert "2 replications" in repr(result)


def test_a_comparison_shows_a_b_the_paired_difference_and_the_verdicts(comparison):
    html = comparison._repr_html_()
    assert "how many payments are lost with automatic failover" in html  # B's question
    assert "A = payment-channel-no-failover, B = payment-channel-failover" in html
    assert "B - A [paired 95% CI]" in html
    assert rows_in_order(html)[:2] == ANSWERS
    table = comparison.table()
    for path in ANSWERS:  # a verdict in words on each answer KPI, below the table
        assert f"<li>{verdict(path, table.loc[path].to_dict(), 3)}</li>" in html
    assert numbers_are_formatted(html)
    assert "payment-channel-failover" in repr(comparison) and len(repr(comparison)) < 300


def test_a_sweep_shows_each_point_against_point_0(sweep):
    html = sweep._repr_html_()
    assert QUESTION in html and "database.pool_size" in html
    assert "- point 0 [paired 95% CI]" in html and ">reference</td>" in html
    shown = rows_in_order(html)
    assert shown == [path for path in DEFAULT_ANSWERS for _ in range(2)]  # a row per point
    change = sweep.differences(kpis=["checkout_latency_ms.p99"]).iloc[1]
    info = kpi("checkout_latency_ms.p99")
    shown = info.format_change
    assert f"{shown(change['difference'])} [{shown(change['ci_low'])}, " in html
    assert numbers_are_formatted(html)
    assert "database.pool_size=5, 80" in repr(sweep)


def test_a_sweep_table_of_chosen_kpis(sweep):
    html = sweep.html(["db_pool_timeouts"])
    assert rows_in_order(html) == ["db_pool_timeouts", "db_pool_timeouts"]
    missing = sweep.html(["no.such_kpi"])  # a KPI no point has: dashes, not an error
    assert rows_in_order(missing) == ["no.such_kpi"] * 2 and missing.count(">-</td>") == 4


def test_every_text_is_escaped():
    """A description with markup shows as written: it cannot inject into the page."""
    description = 'Is <script>alert("x")</script> & co safe?\nMore.'
    scenario = experiment.load(SPIKE, [*SMALL, "duration_s=60", f"description={description}"])
    run = simulator.simulate(scenario, seed=1)
    html = run._repr_html_()
    assert "<script>" not in html
    assert "Is &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co safe?" in html
    assert "More." not in html  # only the question, the description's first line
    table = kpi_table("a < b", "c & d", ["<KPI>"], [Row("orders", ["<1>"])], ["x > y"])
    assert all(t in table for t in ("a &lt; b", "c &amp; d", "&lt;KPI&gt;", "&lt;1&gt;"))
    assert "x &gt; y" in table


def test_lookup_reads_dotted_paths_whose_keys_hold_dots():
    summary = {"recovery_time_s": {"outage 1.5": 30.0}, "orders": 3}
    assert lookup(summary, "recovery_time_s.outage 1.5") == 30.0
    assert lookup(summary, "orders") == 3 and lookup(summary, "orders.x") is None


def test_runs_side_by_side_a_column_each(result):
    other = simulator.simulate(experiment.load(SPIKE, [*SMALL, "duration_s=600"]), seed=1)
    html = side_by_side({"whole": result, "10 min": other}, ["orders", "cache_hit_ratio"])
    assert rows_in_order(html) == ["orders", "cache_hit_ratio"]
    assert ">whole</th>" in html and ">10 min</th>" in html
    for run in (result, other):
        assert f">{run.summary['cache_hit_ratio']:.2%}</td>" in html
    assert numbers_are_formatted(html)


def test_a_comparison_of_chosen_kpis_judges_the_answer_kpis_among_them(comparison):
    html = comparison.html(["orders", "gmv"])
    assert rows_in_order(html) == ["orders", "gmv"]
    assert html.count("<li>") == 1 and "<li>GMV (CNY): B " in html  # gmv answers, orders does not
