"""The resilience presets show what their descriptions claim, on one seed.

Runs are cut short where the claim is settled early (each test says why its cut is
enough); the figures in the README come from the full presets.
"""

from __future__ import annotations

import numpy as np
import pytest

import simulator
from tests.conftest import SCENARIOS, assert_books_balance


def _run(name: str, *overrides: str):
    scenario = simulator.load_scenario(SCENARIOS / f"{name}.yaml", list(overrides))
    return simulator.simulate(scenario)


# ------------------------------------------------------------------- retry storm


@pytest.fixture(scope="module")
def storm():
    """Trigger at 300-360 s; 600 s leaves four minutes to see who recovers."""
    return {
        "unprotected": _run("retry-storm", "duration_s=600"),
        "protected": _run("retry-storm-protected", "duration_s=600"),
        "no trigger": _run("retry-storm", "duration_s=600", "faults=[]"),
    }


def _orders_per_s(result, start: int, end: int) -> float:
    return result.timeseries["orders"].to_numpy()[start:end].mean()


def test_unprotected_shop_stays_down_after_the_trigger_has_passed(storm):
    unprotected, healthy = storm["unprotected"], storm["no trigger"]
    label = "capacity_reduced:gateway@300s"
    assert unprotected.summary["recovery_time_s"][label] is None
    # Four minutes after capacity came back, orders have not: the users' refreshes keep
    # the workers busy with requests whose users have already given up.
    assert _orders_per_s(unprotected, 400, 600) < 0.05 * _orders_per_s(healthy, 400, 600)
    gateway = unprotected.timeseries["gateway_utilisation"].to_numpy()
    assert gateway[400:600].min() > 0.99
    # The same shop without the trigger is healthy: the failure is metastable, not overload.
    assert healthy.timeseries["gateway_utilisation"].to_numpy()[100:600].mean() < 0.8
    assert healthy.summary["retries"] == 0
    # Hundreds of thousands of refreshes, and every station's books still close.
    assert_books_balance(unprotected.summary)


def test_admission_control_lets_the_shop_recover(storm):
    protected, healthy = storm["protected"], storm["no trigger"]
    recovery = protected.summary["recovery_time_s"]["capacity_reduced:gateway@300s"]
    assert recovery is not None and recovery <= 30
    assert _orders_per_s(protected, 400, 600) > 0.8 * _orders_per_s(healthy, 400, 600)


# ------------------------------------------------------------ late peak shaving


@pytest.fixture(scope="module")
def shaving():
    """The spike ramps from 600 s to 900 s and holds to 1200 s: 1300 s shows every limiter."""
    return {
        name: _run(name, "duration_s=1300")
        for name in (
            "late-peak-shaving",
            "late-peak-shaving-at-capacity",
            "late-peak-shaving-dynamic",
        )
    }


def test_a_threshold_set_too_high_sheds_late_and_the_others_do_not(shaving):
    high = shaving["late-peak-shaving"].summary
    at_capacity = shaving["late-peak-shaving-at-capacity"].summary
    dynamic = shaving["late-peak-shaving-dynamic"].summary
    # Each limiter bites during the ramp, the one set too high a minute after the others.
    for summary in (high, at_capacity, dynamic):
        assert summary["time_to_limit_s"] is not None and summary["requests_shed"] > 0
    assert high["time_to_limit_s"] > at_capacity["time_to_limit_s"] + 30
    assert high["time_to_limit_s"] > dynamic["time_to_limit_s"] + 30
    # By then the backlog has formed: users wait until they give up. The others keep
    # the workers' backlog short, so almost nobody gives up.
    assert high["outcomes"]["abandoned"] > 0.1 * high["sessions"]
    for summary in (at_capacity, dynamic):
        assert summary["outcomes"]["abandoned"] < 0.001 * summary["sessions"]
        assert summary["checkout_latency_ms"]["p99"] < 0.3 * high["checkout_latency_ms"]["p99"]


@pytest.fixture(scope="module")
def capacity():
    """Arrivals to 1000 s cover the ramp and the whole peak."""
    return {
        arm: _run(name, "duration_s=1000").summary
        for arm, name in (("over", "qps-over-capacity"), ("upgraded", "qps-over-capacity-upgraded"))
    }


def test_demand_over_capacity_loses_orders_that_the_upgrade_keeps(capacity):
    """A full queue rejects visits for as long as demand is over capacity; x1.75 almost none."""
    over, upgraded = capacity["over"], capacity["upgraded"]
    assert over["outcomes"]["rejected"] > 0.05 * over["sessions"]
    assert upgraded["outcomes"]["rejected"] < 0.005 * upgraded["sessions"]
    assert upgraded["orders"] > 1.1 * over["orders"]


def test_the_upgrade_pays_for_its_instances_many_times_over(capacity):
    """Each worker is an instance billed for the whole run; the orders kept pay for the extra.

    Net profit differs by the margin gained less the extra instance-hours at the price,
    so the price at which the upgrade stops paying is margin gained / extra hours.
    """
    over, upgraded = capacity["over"], capacity["upgraded"]
    costs = over["provenance"]["scenario"]["costs"]
    assert costs["workers_per_app_instance"] == 1
    price = costs["app_instance_hour_cny"]
    hours = {}
    for arm, summary, workers in (("over", over, 24), ("upgraded", upgraded, 42)):
        hours[arm] = workers * summary["run"]["stations_idle_at_s"] / 3600
        billed = summary["profit_and_loss"]["infrastructure"]["app_instances"]
        assert billed == pytest.approx(hours[arm] * price)
    extra_hours = hours["upgraded"] - hours["over"]
    extra_cost = upgraded["infrastructure_cost"] - over["infrastructure_cost"]
    # The rest of the extra infrastructure is the payment fees on the orders kept.
    fees = [s["profit_and_loss"]["infrastructure"]["payment_fees"] for s in (over, upgraded)]
    assert extra_cost == pytest.approx(extra_hours * price + fees[1] - fees[0])
    gained = upgraded["net_profit"] - over["net_profit"] + extra_hours * price
    assert upgraded["net_profit"] > over["net_profit"]
    assert gained / extra_hours > 100 * price  # it would pay at a hundred times the price


# --------------------------------------------------------------------- failover


@pytest.fixture(scope="module")
def failover():
    """The primary dies at 700 s; arrivals to 760 s cover the failure and the failover."""
    return {
        mode: _run(name, "duration_s=760")
        for mode, name in (("sync", "db-primary-failover"), ("async", "db-primary-failover-async"))
    }


def test_synchronous_replication_loses_no_committed_order_and_async_loses_some(failover):
    assert failover["sync"].summary["lost_writes"] == 0
    lost = failover["async"].summary["lost_writes"]
    # About the orders committed in the last second (the lag) before the failure.
    orders = failover["async"].timeseries["orders"].to_numpy()
    assert 0 < lost <= 3 * max(orders[690:700].max(), 1)


def test_the_standby_serves_after_detection_and_promotion(failover):
    summary = failover["sync"].summary
    assert summary["failovers"] == [{"died_at_s": 700.0, "standby_serving_at_s": 716.0}]
    errors = failover["sync"].timeseries["outcome_error"].to_numpy()
    assert errors[:700].sum() == 0 and errors[700:716].sum() > 0
    assert errors[720:].sum() == 0  # the standby serves: no more failures
    assert summary["recovery_time_s"]["database_primary_failure:shard0@700s"] <= 30


# ---------------------------------------------------------------- datacenter loss


@pytest.fixture(scope="module")
def datacenter():
    """The site is lost at 600 s; detection takes 15 s, the TTL 300 s: 1000 s covers both."""
    return {
        routing: _run(name, "duration_s=1000")
        for routing, name in (
            ("dns", "cross-dc-dns-failover"),
            ("anycast", "cross-dc-anycast-failover"),
        )
    }


def test_dns_strands_users_for_about_the_ttl_and_anycast_for_the_switch(datacenter):
    detection = 15.0
    dns = datacenter["dns"].summary["stranded_until_s"]["shanghai"] - 600
    anycast = datacenter["anycast"].summary["stranded_until_s"]["shanghai"] - 600
    # The last stranded request comes just before everyone's resolver has refreshed
    # (detection + TTL) or the route is withdrawn (detection + switch).
    assert detection + 300 - 10 < dns <= detection + 300
    assert detection + 5 - 2 < anycast <= detection + 5
    stranded = datacenter["dns"].timeseries["stranded_requests"].to_numpy()
    # DNS strands less and less as resolvers refresh: the traffic tails off over the TTL.
    early, late = stranded[615:715].sum(), stranded[815:915].sum()
    assert early > 2 * late > 0


def test_a_lost_site_takes_its_share_of_the_servers(datacenter):
    workers = datacenter["anycast"].timeseries["gateway_workers"].to_numpy()
    assert workers[599] == 64 and workers[601] == 32


# ----------------------------------------------------------------- elastic scaling


def test_scheduled_capacity_rides_out_the_spike_that_reactive_scaling_cannot():
    """The spike peaks from 660 s to 960 s; arrivals to 1000 s cover it."""
    reactive = _run("elastic-scaling", "duration_s=1000")
    scheduled = _run("elastic-scaling-scheduled", "duration_s=1000")
    assert (
        scheduled.summary["outcomes"]["rejected"] < 0.1 * reactive.summary["outcomes"]["rejected"]
    )
    instances = reactive.timeseries["gateway_instances"].to_numpy()
    # Reactive capacity arrives only a window plus the provisioning delay into the spike.
    assert instances[600:660].max() == 3
    assert reactive.summary["peak_instances"] > 3
    planned = scheduled.timeseries["gateway_instances"].to_numpy()
    assert planned[540:960].min() == 16 and np.all(planned[:540] == 3)
