"""End-to-end runs: reproducible, conserving sessions, sharing users across variants."""

from __future__ import annotations

import gc
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator
from simulator.measure.outcomes import Outcome
from tests.conftest import SCENARIOS, exp, fixed, small


def test_same_seed_gives_byte_identical_outputs(tmp_path):
    """Same scenario and seed: summary.json and timeseries.parquet equal byte for byte."""
    a = simulator.simulate(small(), seed=5).write(tmp_path / "a")
    b = simulator.simulate(small(), seed=5).write(tmp_path / "b")
    for name in ("summary.json", "timeseries.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_different_seed_gives_different_results():
    """The seed matters: another seed, other arrivals."""
    a = simulator.simulate(small(), seed=5).summary
    b = simulator.simulate(small(), seed=6).summary
    assert a["outcomes"] != b["outcomes"]


def test_scenario_seed_is_the_default():
    """Without a seed argument the scenario's own seed is used."""
    result = simulator.simulate(small(seed=9))
    assert result.summary["seed"] == 9
    assert result.summary == simulator.simulate(small(), seed=9).summary | {
        "provenance": result.summary["provenance"]
    }


def test_variants_differing_in_one_component_see_the_same_users():
    """Common random numbers: a bigger DB pool changes waits, not who arrives or intends what.

    With unlimited patience and capacity nobody is lost, so both variants must have the
    same sessions, the same outcome counts and the same GMV; only latencies differ.
    """
    relaxed = {
        "segments": [
            {**small()["segments"][0], "patience_s": fixed(1e6)},
        ],
        "gateway": {"workers": 64, "service_time_ms": exp(5)},
        "inventory": {"stock_per_item": None},
    }
    base = small(**relaxed)
    bigger = small(**relaxed)
    bigger["database"] = {**bigger["database"], "pool_size": 1, "pool_timeout_ms": 1e9}
    a = simulator.simulate(base, seed=2).summary
    b = simulator.simulate(bigger, seed=2).summary
    assert a["sessions"] == b["sessions"]
    assert a["outcomes"]["browsed"] == b["outcomes"]["browsed"]
    assert a["outcomes"]["bounced"] == b["outcomes"]["bounced"]
    assert (
        a["orders"] + a["outcomes"]["payment_failed"]
        == b["orders"] + b["outcomes"]["payment_failed"]
    )
    assert a["stations"]["database"]["wait_mean_s"] < b["stations"]["database"]["wait_mean_s"]


def test_summary_has_the_contract_keys_and_consistent_counts():
    """The summary holds the contract keys; counts agree across components."""
    s = simulator.simulate(small(), seed=1).summary
    for key in (
        "sessions",
        "outcomes",
        "orders",
        "gmv",
        "conversion_rate",
        "checkout_latency_ms",
        "cache_hit_ratio",
        "db_peak_qps",
        "payment_success_rate",
        "on_time_delivery_rate",
        "provenance",
    ):
        assert key in s, key
    assert sum(s["outcomes"].values()) == s["sessions"]
    assert s["orders"] == s["outcomes"]["ordered"]
    assert s["delivery_time_h"]["count"] == s["orders"]
    lat = s["checkout_latency_ms"]
    assert lat["p50"] <= lat["p95"] <= lat["p99"]
    assert s["provenance"]["scenario"]["name"] == "small"
    assert s["provenance"]["versions"]["simpy"]


def test_timeseries_totals_match_the_summary():
    """Per-interval rows add up to the run's totals."""
    result = simulator.simulate(small(), seed=1)
    ts, s = result.timeseries, result.summary
    assert ts["arrivals"].sum() == s["sessions"]
    for outcome in Outcome:
        assert ts[f"outcome_{outcome.label}"].sum() == s["outcomes"][outcome.label]
    assert ts["cache_hits"].sum() == s["cache_hits"]
    assert ts["db_queries"].sum() == s["db_queries"]
    assert math.isclose(ts["gmv_cny"].sum(), s["gmv"], rel_tol=1e-9)
    assert ts["db_utilisation"].max() <= 1 + 1e-9
    assert ts["payment_success_rate"].max() <= 1  # a payment's attempt and answer share a row
    assert ts["payment_attempts"].sum() == s["payment_attempts"]
    assert list(ts["t_s"][:3]) == [0.0, 1.0, 2.0]


def test_gmv_is_the_sum_of_paid_orders():
    """GMV divided by orders is the AOV, and each order has a delivery."""
    s = simulator.simulate(small(), seed=4).summary
    assert math.isclose(s["aov"] * s["orders"], s["gmv"], rel_tol=1e-9)


def test_stock_is_never_oversold():
    """Atomic deduction: units sold never exceed the stock."""
    scenario = small(inventory={"stock_per_item": 2}, catalogue={"items": 3, "zipf_exponent": 0})
    s = simulator.simulate(scenario, seed=1).summary
    assert s["orders"] <= 2 * 3
    assert s["outcomes"]["sold_out"] > 0


@st.composite
def small_scenarios(draw):
    """Random small shops: any rates, capacities, patience, stock."""
    segment = {
        **small()["segments"][0],
        "bounce_rate": draw(st.floats(0, 1)),
        "pages_mean": draw(st.floats(1, 4)),
        "add_to_cart_rate": draw(st.floats(0, 1)),
        "checkout_rate": draw(st.floats(0, 1)),
        "patience_s": exp(draw(st.floats(0.05, 5))),
        "think_time_s": exp(draw(st.floats(0.1, 3))),
    }
    return small(
        duration_s=draw(st.floats(1, 20)),
        traffic={
            "baseline_per_s": draw(st.floats(0.5, 40)),
            "spike": {
                "start_s": draw(st.floats(0, 10)),
                "ramp_s": draw(st.floats(0, 5)),
                "hold_s": draw(st.floats(0, 5)),
                "decay_s": draw(st.floats(0, 5)),
                "multiplier": draw(st.floats(1, 10)),
            },
        },
        segments=[segment],
        gateway={
            "workers": draw(st.integers(1, 6)),
            "queue_limit": draw(st.one_of(st.none(), st.integers(0, 10))),
            "service_time_ms": exp(draw(st.floats(1, 50))),
        },
        database={
            "pool_size": draw(st.integers(1, 3)),
            "pool_timeout_ms": draw(st.floats(1, 500)),
            "read_time_ms": exp(draw(st.floats(1, 50))),
            "write_time_ms": exp(draw(st.floats(1, 50))),
        },
        inventory={"stock_per_item": draw(st.one_of(st.none(), st.integers(0, 3)))},
        catalogue={"items": draw(st.integers(1, 20)), "zipf_exponent": draw(st.floats(0, 2))},
    )


@given(small_scenarios(), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_session_ends_in_exactly_one_outcome(scenario, seed):
    """For any small shop, outcomes sum to sessions and every station balances."""
    result = simulator.simulate(scenario, seed=seed)
    s = result.summary
    assert sum(s["outcomes"].values()) == s["sessions"]
    assert s["sessions"] == result.timeseries["arrivals"].sum()
    for name, station in s["stations"].items():
        assert station["in_progress"] == 0, name
    assert 0 <= (s["conversion_rate"] or 0) <= 1


def test_a_visit_starting_as_the_doors_close_is_counted():
    """The last arrival's visit runs to its end even if it starts as arrivals stop."""
    scenario = small(duration_s=1.0, traffic={"baseline_per_s": 1.0})
    for seed in range(30):
        result = simulator.simulate(scenario, seed=seed)
        assert result.summary["sessions"] == result.timeseries["arrivals"].sum()


def test_a_run_leaves_next_to_no_cyclic_garbage():
    """A run goes with the cyclic collector paused: its objects must form no cycles.

    A retry storm queues thousands of requests with timers, orphaned requests and
    retries; were any of them (or a session) caught in a reference cycle, the run would
    leave at least one unreachable object per session for the collector to find.
    """
    from simulator.model.campaign import run

    def collected() -> int:  # by every collection so far, automatic ones included
        return sum(generation["collected"] for generation in gc.get_stats())

    scenario = simulator.load_scenario(SCENARIOS / "retry-storm.yaml", ["duration_s=400"])
    gc.collect()
    before = collected()
    record = run(scenario, seed=scenario.seed)
    assert gc.isenabled()  # given back as it was
    gc.collect()
    cycles = collected() - before
    sessions = sum(record.sessions.outcomes)
    assert sessions > 10_000
    assert cycles < sessions / 100, f"{cycles} objects in cycles after {sessions} sessions"


def test_the_collector_stays_as_the_caller_left_it():
    """A caller who paused the collector finds it paused after a run, and vice versa."""
    gc.disable()
    try:
        simulator.simulate(small(), seed=3)
        assert not gc.isenabled()
    finally:
        gc.enable()
    simulator.simulate(small(), seed=3)
    assert gc.isenabled()
