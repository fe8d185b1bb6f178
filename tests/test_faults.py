"""The fault timeline and the gateway's protections, on the small test shop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

import simulator
from simulator.measure.recovery import small_window_s
from simulator.model.campaign import build
from simulator.model.components.gateway import TokenBucket, WaitingRoom
from simulator.model.components.health import resize
from simulator.model.components.servers import Servers
from simulator.model.components.station import StationStats
from simulator.scenario.loader import ScenarioError, load_scenario
from simulator.scenario.protections import PeakShaving
from tests.conftest import assert_books_balance, exp, fixed, small


def _run(**changes):
    return simulator.simulate(small(**changes))


# ------------------------------------------------------------------ component faults


def test_a_database_outage_fails_requests_only_while_it_lasts():
    fault = {"kind": "component_down", "component": "database", "at_s": 20, "duration_s": 10}
    result = _run(faults=[fault], duration_s=60)
    errors = result.timeseries["outcome_error"].to_numpy()
    assert errors[20:31].sum() > 0  # pages that missed the cache, and order writes, failed
    assert errors[:20].sum() == 0 and errors[35:].sum() == 0
    assert_books_balance(result.summary)


def test_a_breaker_in_front_of_a_dead_database_opens_and_fails_fast():
    fault = {"kind": "component_down", "component": "database", "at_s": 20, "duration_s": 20}
    policy = {"circuit_breaker": {"window_calls": 10, "minimum_calls": 5, "open_wait_s": 3}}
    summary = _run(faults=[fault], duration_s=60, resilience={"database": policy}).summary
    assert summary["breaker_opened"]["database"] >= 1
    assert 0 < summary["breaker_open_s"] < 25  # open during the outage, closed after it
    assert summary["calls_failed_fast"]["database"] > 0
    assert_books_balance(summary)


def test_latency_multiplied_slows_the_payment_channel_into_timeouts():
    fault = {"kind": "latency_multiplied", "component": "payment.a", "at_s": 0, "factor": 10}
    slow = _run(faults=[fault]).summary
    normal = _run().summary
    assert slow["payment_timeouts"] > normal["payment_timeouts"] + 5
    assert slow["stations"]["payment.a"]["timed_out"] > 5


def test_error_rate_fails_about_that_share_of_calls():
    fault = {"kind": "error_rate", "component": "payment.b", "at_s": 0, "probability": 0.5}
    summary = _run(faults=[fault], duration_s=300).summary
    attempts = summary["stations"]["payment.b"]["arrivals"]
    unavailable = summary["payment_attempts"] - sum(
        s["arrivals"] for k, s in summary["stations"].items() if k.startswith("payment.")
    )
    share = unavailable / (unavailable + attempts)
    n = unavailable + attempts
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / n)  # binomial, 4 standard errors


def test_capacity_reduced_shrinks_the_pool_and_gives_it_back():
    fault = {
        "kind": "capacity_reduced",
        "component": "gateway",
        "at_s": 10,
        "duration_s": 20,
        "remaining": 0.5,
    }
    result = _run(faults=[fault])
    workers = result.timeseries["gateway_workers"].to_numpy()
    assert (workers[:10] == 8).all() and (workers[10:30] == 4).all() and (workers[30:] == 8).all()
    assert_books_balance(result.summary)


def test_a_failing_non_core_call_never_fails_the_page():
    recommendations = {"servers": 4, "service_time_ms": exp(20)}
    fault = {"kind": "component_down", "component": "recommendations", "at_s": 0}
    with_fault = _run(recommendations=recommendations, faults=[fault]).summary
    assert with_fault["outcomes"]["error"] == 0
    assert with_fault["stations"]["recommendations"]["arrivals"] == 0  # refused at once


def test_degradation_skips_the_non_core_call_while_the_gateway_is_busy():
    recommendations = {"servers": 2, "service_time_ms": exp(50)}
    policy = {"degrade_above_utilisation": 0.1}
    summary = _run(
        recommendations=recommendations,
        resilience={"recommendations": policy},
        traffic={"baseline_per_s": 60},
    ).summary
    assert summary["calls_degraded"]["recommendations"] > 0
    calls = summary["stations"]["recommendations"]["arrivals"]
    assert (
        calls + summary["calls_degraded"]["recommendations"]
        == summary["page_latency_ms"]["count"]
        - summary["outcomes"]["rejected"]
        - summary["cache_misses"] * 0
        or calls > 0
    )


# --------------------------------------------------------------- gateway protections


def test_token_bucket_admits_its_rate_plus_the_burst():
    bucket = TokenBucket(rate_per_s=10, burst=5)
    passed = sum(bucket.take(t / 100) for t in range(1000))  # 100 requests/s for 10 s
    assert passed == pytest.approx(5 + 10 * 9.99, abs=1)


def test_waiting_room_lets_in_at_its_rate_and_sheds_beyond_the_bound():
    room = WaitingRoom(PeakShaving(rate_per_s=10, max_wait_ms=500))
    waits = [room.turn(0.0) for _ in range(10)]  # ten arrive at once
    assert waits[:6] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert waits[6:] == [None] * 4  # their turn would come after 0.5 s


def test_rate_limit_sheds_and_every_shed_request_is_accounted_for():
    gateway = small()["gateway"] | {"rate_limit": {"rate_per_s": 15, "burst": 5}}
    summary = _run(gateway=gateway, duration_s=120).summary
    assert summary["requests_shed"] > 0
    assert summary["outcomes"]["rate_limited"] > 0
    # Buyers the limiter shed are booked under their own cause, not as rejected.
    assert summary["lost_gmv"]["rate_limited"] > 0
    assert summary["outcomes"]["rejected"] == 0 == summary["lost_gmv"]["rejected"]
    admitted = summary["stations"]["gateway"]["arrivals"]
    assert admitted <= 15 * 120 + 5 + 15 * 10  # rate x time + burst (+ the drain after)
    assert_books_balance(summary)


def test_a_visit_scoped_limit_never_sheds_a_visit_it_let_in():
    limit = {"rate_per_s": 8, "burst": 2, "new_visits_only": True}
    summary = _run(gateway=small()["gateway"] | {"rate_limit": limit}, duration_s=120).summary
    # One shed request per shed visit, and every shed visit ended shed.
    assert summary["requests_shed"] == summary["outcomes"]["rate_limited"] > 0


def test_waiting_room_evens_out_admissions():
    shaving = {"rate_per_s": 30, "max_wait_ms": 2000}
    result = _run(gateway=small()["gateway"] | {"peak_shaving": shaving}, duration_s=120)
    summary = result.summary
    station = summary["stations"]["gateway"]
    # At most one admission per 1/30 s over the whole run, however bursty the demand.
    assert station["arrivals"] <= 30 * summary["run"]["stations_idle_at_s"] + 1
    assert summary["requests_shed"] > 0
    assert_books_balance(summary)


def test_time_to_limit_is_measured_from_the_spike():
    spike = {"start_s": 30, "ramp_s": 0, "hold_s": 30, "decay_s": 0, "multiplier": 5}
    limit = {"rate_per_s": 60, "burst": 60}
    summary = _run(
        traffic={"baseline_per_s": 10, "spike": spike},
        gateway=small()["gateway"] | {"rate_limit": limit},
        duration_s=90,
    ).summary
    assert summary["time_to_limit_s"] is not None
    assert 0 <= summary["time_to_limit_s"] < 30


def test_serving_abandoned_requests_wastes_work_but_keeps_the_books():
    gateway = {
        "workers": 2,
        "queue_limit": None,
        "serve_abandoned": True,
        "service_time_ms": exp(60),
    }
    result = _run(gateway=gateway, duration_s=60)
    station = result.summary["stations"]["gateway"]
    assert station["abandoned"] == 0  # the station never drops a request...
    assert result.summary["outcomes"]["abandoned"] > 0  # ...though users gave up on some
    assert_books_balance(result.summary)


# -------------------------------------------------------------------- autoscaling


def _scaling(**autoscaling):
    config = {"workers_per_instance": 2, "max_instances": 10} | autoscaling
    gateway = {"workers": 2, "queue_limit": None, "service_time_ms": exp(50), "autoscaling": config}
    spike = {"start_s": 60, "ramp_s": 0, "hold_s": 120, "decay_s": 0, "multiplier": 8}
    return _run(gateway=gateway, traffic={"baseline_per_s": 4, "spike": spike}, duration_s=240)


def test_reactive_scaling_adds_instances_after_the_provisioning_delay():
    result = _scaling(
        target_utilisation=0.6, evaluate_every_s=10, provisioning_delay_s=30, cooldown_s=20
    )
    instances = result.timeseries["gateway_instances"].to_numpy()
    assert result.summary["peak_instances"] > 1
    first_added = int(np.argmax(instances > 1))
    assert first_added >= 60 + 30  # the spike, a window, then the provisioning delay
    assert_books_balance(result.summary)


def test_scheduled_scaling_follows_the_schedule():
    result = _scaling(
        target_utilisation=None,
        provisioning_delay_s=15,
        schedule=[{"at_s": 30, "instances": 5}, {"at_s": 200, "instances": 1}],
    )
    instances = result.timeseries["gateway_instances"].to_numpy()
    assert (instances[:45] == 1).all() and (instances[45:200] == 5).all()
    assert (instances[200:240] == 1).all()  # given back at once
    assert result.summary["peak_instances"] == 5


# ------------------------------------------------------------------ users who retry


def test_users_refresh_failed_requests():
    segment = small()["segments"][0] | {
        "retry": {"probability": 1.0, "max_retries": 2, "delay_s": fixed(0.5)}
    }
    fault = {"kind": "component_down", "component": "gateway", "at_s": 10, "duration_s": 5}
    with_retry = _run(segments=[segment], faults=[fault]).summary
    without = _run(faults=[fault]).summary
    assert with_retry["retries_by_source"]["users"] > 0
    assert without["retries"] == 0
    assert with_retry["outcomes"]["error"] < without["outcomes"]["error"]  # some got through
    assert_books_balance(with_retry)


# ------------------------------------------------------------------------ schema


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"kind": "component_down", "component": "mongo", "at_s": 1}, "no component named"),
        ({"kind": "database_primary_failure", "at_s": 1, "shard": 3}, "shard: 3 is out of range"),
        ({"kind": "datacenter_loss", "at_s": 1, "site": "mars"}, "no site named 'mars'"),
    ],
)
def test_a_fault_naming_something_missing_is_a_clear_error(fault, message):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(small(faults=[fault]))
    problems = [str(p) for p in caught.value.problems]
    assert any("faults" in p and message in p for p in problems), problems


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (
            [
                {"kind": "component_down", "component": "database", "at_s": 1, "duration_s": 10},
                {"kind": "component_down", "component": "database", "at_s": 5, "duration_s": 1},
            ],
            "overlaps [0]",
        ),
        ([{"kind": "database_primary_failure", "at_s": float("inf")}], "finite number"),
        (
            [{"kind": "latency_multiplied", "component": "gateway", "at_s": 1, "factor": 1e200}],
            "less than or equal to 1000",
        ),
    ],
)
def test_faults_that_cannot_be_simulated_are_refused(faults, message):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(small(faults=faults))
    assert any(message in str(p) for p in caught.value.problems), caught.value.problems


def test_raising_capacity_lets_every_waiting_request_in():
    env = simpy.Environment()
    resource = Servers(env, 2)
    requests = [resource.request() for _ in range(10)]
    stats = StationStats("s", 2)
    resize(resource, stats, 8, 0.0)
    assert sum(r.triggered for r in requests) == 8
    resize(resource, stats, 1, 1.0)  # shrinking takes no one's server away
    assert resource.count == 8
    assert stats.server_seconds(0.0, 2.0) == pytest.approx(8 + 1)


def test_a_scale_in_cancels_instances_still_starting_first():
    result = _scaling(
        target_utilisation=None,
        provisioning_delay_s=20,
        schedule=[{"at_s": 10, "instances": 6}, {"at_s": 20, "instances": 3}],
    )
    instances = result.timeseries["gateway_instances"].to_numpy()
    assert (instances[:30] == 1).all()  # the four cancelled of five never start
    assert (instances[31:100] == 3).all()


def test_a_fault_after_the_arrivals_is_not_judged():
    fault = {"kind": "component_down", "component": "gateway", "at_s": 70, "duration_s": 5}
    summary = _run(faults=[fault]).summary  # arrivals stop at 60 s
    assert summary["recovery_time_s"] == {"component_down:gateway@70s": None}


def test_small_recovery_windows_hold_whole_intervals():
    assert small_window_s(1.0) == 10.0
    assert small_window_s(3.0) == 12.0
    assert small_window_s(15.0) == 15.0


def test_the_report_shows_the_fault_timeline():
    from simulator.present.report import render_report

    fault = {"kind": "component_down", "component": "payment.a", "at_s": 20, "duration_s": 10}
    page = render_report(_run(faults=[fault]))
    assert "Fault timeline" in page and "<td>payment.a</td>" in page
    assert "Fault timeline" not in render_report(_run())


def test_build_wires_no_protection_for_a_plain_scenario():
    campaign = build(load_scenario(small()), seed=1)
    assert campaign.guards == {} and campaign.routing is None and campaign.autoscaler is None


def test_scale_keeps_the_protections_in_proportion():
    gateway = small()["gateway"] | {
        "workers": 8,
        "rate_limit": {"rate_per_s": 40, "burst": 20},
        "peak_shaving": {"rate_per_s": 50, "max_wait_ms": 500},
        "autoscaling": {"workers_per_instance": 4, "max_instances": 6},
    }
    scenario = load_scenario(small(gateway=gateway, scale=0.5))
    scaled = build(scenario, seed=1).scenario.gateway
    assert scaled is not None and scaled.rate_limit is not None
    assert scaled.rate_limit.rate_per_s == 20 and scaled.rate_limit.burst == 10
    assert scaled.peak_shaving is not None and scaled.peak_shaving.rate_per_s == 25
    assert scaled.autoscaling is not None and scaled.autoscaling.workers_per_instance == 2
    assert scaled.workers == 4  # the same two instances, each half the size
