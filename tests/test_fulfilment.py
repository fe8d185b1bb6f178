"""Warehouses, carriers, tracking and customer service.

The queueing checks follow the foundation's validation style: independent
replications, a warm-up deleted, and the closed form inside the replication means'
95% Student-t interval.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import simulator
from simulator.measure.streams import Streams
from simulator.model.components.customer_service import CustomerService
from simulator.model.components.roster import DAY_S, Roster, RosteredQueue
from simulator.model.components.tracking import BIN_S, TrackingFeed
from simulator.scenario.loader import ScenarioError, load_scenario
from simulator.scenario.logistics import CustomerService as ServiceConfig
from simulator.scenario.logistics import Shift, Surge, Tracking
from simulator.validation.theory import erlang_c, mmc_mean_wait, mmcm_abandonment
from tests.conftest import assert_books_balance, exp, fixed, small
from tests.test_theory import confidence_interval

HOUR = 3600.0

BUYER = {
    "name": "buyers",
    "share": 1.0,
    "bounce_rate": 0.0,
    "pages_mean": 1,
    "think_time_s": fixed(0.1),
    "add_to_cart_rate": 1.0,
    "checkout_rate": 1.0,
    "basket_value_cny": fixed(100),
    "patience_s": fixed(1e6),
}


def sale(
    duration_s: float = 600, rate: float = 10, clock_at_start_h: float = 0.0, **fulfilment: Any
) -> dict[str, Any]:
    """Users who all buy, one region and warehouse unless told otherwise."""
    scenario = small(
        duration_s=duration_s,
        traffic={"baseline_per_s": rate},
        segments=[BUYER],
        clock_at_start_h=clock_at_start_h,
    )
    scenario["gateway"] = {"workers": 400, "service_time_ms": exp(2)}
    scenario["database"]["pool_size"] = 400
    scenario["inventory"] = {}
    for channel in scenario["payment"]["channels"]:
        channel.update(capacity=400, success_probability=1.0, timeout_ms=1e9)
    scenario["fulfilment"] = {
        "regions": [{"name": "east", "share": 1.0}],
        "warehouses": [{"name": "east", "region": "east", "pickers": 2, "pick_time_s": fixed(60)}],
        "transit_time_h": fixed(10),
        "promised_delivery_h": 48,
        **fulfilment,
    }
    return scenario


# ------------------------------------------------------------------ roster


def test_roster_reads_shifts_on_the_clock_and_adds_surge_and_cuts():
    roster = Roster(
        1,
        shifts=[Shift(from_h=8, to_h=20, staff=4), Shift(from_h=22, to_h=2, staff=3)],
        surge=[Surge(from_s=0, to_s=HOUR, staff=5)],
        cuts=[(10 * HOUR, 11 * HOUR, 0.5)],
        clock_at_start_h=7,  # t = 0 is 07:00
    )
    assert roster.on_duty(0) == 1 + 5  # 07:00, the surge on top of the base
    assert roster.on_duty(HOUR) == 4  # 08:00, surge over
    assert roster.on_duty(10 * HOUR + 1) == 2  # 17:00: half the day shift, for the fault
    assert roster.on_duty(15 * HOUR) == 3  # 22:00 shift, wraps midnight
    assert roster.on_duty(18 * HOUR + 1) == 3  # 01:00
    assert roster.on_duty(19 * HOUR) == 1  # 02:00, base again
    assert roster.most == 4 + 5
    # The fourth server, off at 21:00, is next on at 08:00 the next day.
    assert roster.next_on(3, 14 * HOUR) == DAY_S + HOUR
    assert roster.next_on(0, 14 * HOUR) == 14 * HOUR
    assert roster.next_on(5, 2 * HOUR) == math.inf  # a surge-only server after the surge
    staff = [s for _, s in roster.changes(0, DAY_S)]
    assert staff[:3] == [6, 4, 2] and all(a != b for a, b in zip(staff, staff[1:], strict=False))


def test_a_rostered_queue_starts_nobody_off_duty_and_serves_in_arrival_order():
    roster = Roster(1, shifts=[Shift(from_h=9, to_h=17, staff=3)], clock_at_start_h=6)
    rng = np.random.default_rng(5)
    queue = RosteredQueue("q", roster, lambda: float(rng.exponential(900)))
    starts = []
    for t in np.cumsum(rng.exponential(300, 2000)):
        start, finish = queue.arrive(float(t))  # type: ignore[misc]
        assert start >= t and finish > start
        starts.append(start)
    queue.close()
    assert starts == sorted(starts)  # FCFS: nobody starts before someone ahead
    # Every start has a server on duty at that moment (one busy server per start).
    assert all(roster.on_duty(s) >= 1 for s in starts)
    by_hour = np.bincount(((np.array(starts) / HOUR + 6) % 24).astype(int), minlength=24)
    assert by_hour.sum() == 2000
    summary = queue.stats.summary(queue.closed_at)
    # Busy time over the staff on duty; a little over 1 allows for the orders that
    # pickers going off duty finish in hand.
    assert summary["served"] == 2000 and 0.5 < summary["utilisation"] < 1.05


# ------------------------------------------------------------------ warehouses


def test_a_backlog_drains_at_the_rostered_capacity_after_the_sale():
    """6,000 orders in 10 minutes on 2 pickers (120/h by day 08-20, 60/h at night)."""
    scenario = sale(clock_at_start_h=0.0)
    scenario["fulfilment"]["warehouses"][0] |= {
        "pickers": 1,
        "shifts": [{"from_h": 8, "to_h": 20, "staff": 2}],
    }
    result = simulator.simulate(scenario)
    summary, table = result.summary, result.logistics
    assert table is not None
    orders = summary["orders"]
    assert orders > 5000
    assert summary["warehouse_peak_backlog"]["east"] > 0.9 * orders
    hours = table["t_s"] / HOUR
    # Hours wholly inside a shift: not the first of one, when pickers going off duty
    # finish the orders in hand and those coming on start at the hour.
    day = (hours % 24 >= 9) & (hours % 24 < 20)
    night = ((hours % 24 >= 21) | (hours % 24 < 8)) & (hours >= 1)
    busy = table["east_backlog"] > 200  # still a backlog at the end of the hour
    assert (table.loc[busy & day, "east_packed"] == 120).all()
    assert (table.loc[busy & night, "east_packed"] == 60).all()
    assert (busy & day).sum() > 20 and (busy & night).sum() > 20
    # The backlog falls by exactly the capacity of each such hour.
    drop = -table["east_backlog"].diff()
    assert (drop[busy & day & busy.shift(1, fill_value=False)] == 120).all()
    cleared = summary["warehouse_backlog_cleared_at_s"]["east"]
    packed_by_roster = sum(
        120 if 8 <= h % 24 < 20 else 60 for h in range(math.ceil(cleared / HOUR))
    )
    assert packed_by_roster >= orders > packed_by_roster - 120
    assert_books_balance(summary)


def test_a_warehouse_capacity_fault_cuts_the_pickers_for_its_window():
    scenario = sale()
    scenario["fulfilment"]["warehouses"][0]["pickers"] = 4
    scenario["faults"] = [
        {
            "kind": "capacity_reduced",
            "component": "warehouse.east",
            "at_s": 3 * HOUR,
            "duration_s": 4 * HOUR,
            "remaining": 0.5,
        }
    ]
    table = simulator.simulate(scenario).logistics
    assert table is not None
    assert list(table["east_packed"][1:3]) == [240, 240]
    assert 120 <= table["east_packed"][3] <= 122  # the pickers sent off finish in hand
    assert list(table["east_packed"][4:7]) == [120] * 3
    assert list(table["east_pickers"][2:8]) == [4, 2, 2, 2, 2, 4]
    assert table["east_packed"][8] == 240


def test_orders_packed_after_the_cut_off_ship_with_the_next_days_collection():
    scenario = sale(duration_s=3600, rate=2, clock_at_start_h=17.5)  # 17:30 to 18:30
    scenario["fulfilment"]["warehouses"][0] |= {
        "pickers": 1000,
        "pick_time_s": fixed(1),
        "cutoffs_h": [18],
    }
    orders = simulator.simulate(scenario, keep_orders=True).orders
    assert orders is not None
    packed = orders["t_s"] + 1
    today = packed <= 1800
    assert today.any() and (~today).any()
    assert (orders.loc[today, "shipped_at_s"] == 1800).all()
    assert (orders.loc[~today, "shipped_at_s"] == 1800 + DAY_S).all()
    assert (orders["delivered_at_s"] == orders["shipped_at_s"] + 10 * HOUR).all()


def test_a_full_collection_leaves_the_rest_for_the_next_in_packing_order():
    scenario = sale(duration_s=1200, rate=2, clock_at_start_h=17.5)
    scenario["fulfilment"]["warehouses"][0] |= {
        "pickers": 1000,
        "pick_time_s": fixed(1),
        "cutoffs_h": [12, 18],
        "capacity_per_pickup": 100,
    }
    result = simulator.simulate(scenario, keep_orders=True)
    orders = result.orders
    assert orders is not None and len(orders) > 300
    loads = orders.groupby("shipped_at_s").size()
    assert (loads <= 100).all() and (loads.iloc[:-1] == 100).all()
    assert list(loads.index[:3]) == [1800, 1800 + 18 * HOUR, 1800 + DAY_S]
    # Collections take parcels in the order they were packed.
    assert orders.sort_values("t_s")["shipped_at_s"].is_monotonic_increasing
    assert result.summary["ship_within_72h_rate"] < 1


def test_delivery_kpis_agree_with_the_order_table():
    scenario = sale(duration_s=1800, clock_at_start_h=23.0)
    scenario["fulfilment"] |= {
        "transit_time_h": {"dist": "lognormal", "mean": 20, "cv": 0.5},
        "promised_delivery_h": 30,
    }
    scenario["fulfilment"]["warehouses"][0] |= {"pickers": 20, "cutoffs_h": [6, 18]}
    result = simulator.simulate(scenario, keep_orders=True)
    summary, orders = result.summary, result.orders
    assert orders is not None
    lead = orders["delivered_at_s"] - orders["t_s"]
    day = (orders["t_s"] + 23 * HOUR) // DAY_S
    delivered_day = (orders["delivered_at_s"] + 23 * HOUR) // DAY_S
    assert summary["next_day_delivery_rate"] == pytest.approx((delivered_day <= day + 1).mean())
    assert summary["on_time_delivery_rate"] == pytest.approx((lead <= 30 * HOUR).mean())
    shipped = orders["shipped_at_s"] - orders["t_s"]
    assert summary["ship_within_72h_rate"] == pytest.approx((shipped <= 72 * HOUR).mean())
    assert 0 < summary["next_day_delivery_rate"] < 1
    assert summary["delivery_time_h"]["p50"] == pytest.approx(lead.median() / HOUR, rel=0.01)


def test_a_multi_day_backlog_costs_no_simulation_events():
    """The same sale with a 4x slower warehouse: days more of deliveries, no more events."""
    runs = {}
    for pick_s in (60, 240):
        scenario = sale(duration_s=600, rate=10)
        scenario["fulfilment"]["warehouses"][0]["pick_time_s"] = exp(pick_s)
        runs[pick_s] = simulator.simulate(scenario).summary
    fast, slow = runs[60]["run"], runs[240]["run"]
    assert slow["last_delivery_at_s"] > 5 * DAY_S
    assert slow["last_delivery_at_s"] > 3 * fast["last_delivery_at_s"]
    assert slow["events"] == fast["events"]
    assert slow["stations_idle_at_s"] < 700  # the clock stopped with the sessions
    assert slow["events"] < 30 * runs[240]["sessions"]


# ------------------------------------------------------------------ allocation


def _two_regions(**fulfilment: Any) -> dict[str, Any]:
    scenario = sale(duration_s=900, rate=10)
    scenario["fulfilment"] = {
        "regions": [{"name": "east", "share": 0.8}, {"name": "west", "share": 0.2}],
        "warehouses": [
            {
                "name": "east",
                "region": "east",
                "pickers": 3,
                "pick_time_s": exp(60),
                "transit_time_h": {"west": fixed(30)},
            },
            {
                "name": "west",
                "region": "west",
                "pickers": 6,
                "pick_time_s": exp(60),
                "transit_time_h": {"east": fixed(30)},
            },
        ],
        "transit_time_h": fixed(10),
        "promised_delivery_h": 48,
        **fulfilment,
    }
    return scenario


def test_orders_ship_from_the_nearest_warehouse_unless_it_is_overloaded():
    nearest = simulator.simulate(_two_regions(), keep_orders=True)
    diverted = simulator.simulate(_two_regions(divert_over_backlog_h=2), keep_orders=True)
    assert nearest.orders is not None and diverted.orders is not None
    assert (nearest.orders["region"] == nearest.orders["warehouse"]).all()
    assert nearest.summary["shipped_from_other_region"] == 0
    away = diverted.orders["region"] != diverted.orders["warehouse"]
    assert away.sum() == diverted.summary["shipped_from_other_region"] > 0
    # The far pair's 30 h transit, in exchange for packing sooner.
    lead = diverted.orders["delivered_at_s"] - diverted.orders["shipped_at_s"]
    assert np.allclose(lead[away], 30 * HOUR) and np.allclose(lead[~away], 10 * HOUR)
    peak = "warehouse_peak_backlog"
    assert diverted.summary[peak]["east"] < nearest.summary[peak]["east"]
    assert diverted.summary[peak]["west"] > nearest.summary[peak]["west"]
    assert diverted.summary["ship_time_h"]["p95"] < nearest.summary["ship_time_h"]["p95"]


@pytest.mark.parametrize("fallback", [True, False])
def test_split_stock_comes_from_another_region_only_with_fallback(fallback):
    scenario = _two_regions()
    scenario["catalogue"] = {"items": 3, "zipf_exponent": 0.0}
    scenario["inventory"] = {
        "stock_per_item": 30,
        "split_across_warehouses": True,
        "fallback_to_other_warehouses": fallback,
    }
    result = simulator.simulate(scenario, keep_orders=True)
    orders = result.orders
    assert orders is not None
    away = (orders["region"] != orders["warehouse"]).sum()
    if fallback:
        assert result.summary["stock_units_sold"] == 90  # every unit found a buyer
        assert away > 0
    else:
        assert away == 0
        # east holds 24 of each item's 30 (its region's 80%), west 6
        assert (orders.groupby(["warehouse", "item"])["units"].sum() <= 24).all()
        assert result.summary["outcomes"]["sold_out"] > 0


# ------------------------------------------------------------------ tracking


def test_tracking_lag_is_the_backlog_over_the_throughput():
    """2 updates/s for an hour into a queue that takes 1/s: lag grows 0 -> 1 h."""
    feed = TrackingFeed(Tracking(throughput_per_s=1.0))
    for t in np.arange(0, HOUR, 0.5):
        feed.publish(float(t))
    feed.close()
    assert feed.lag_s.max() == pytest.approx(HOUR, abs=BIN_S)
    assert feed.lag_quantile(0.5) == pytest.approx(HOUR / 2, abs=BIN_S)
    assert feed.lag_quantile(0.95) == pytest.approx(0.95 * HOUR, abs=BIN_S)
    # after the hour the queue drains at 1/s: 3,600 messages take an hour
    assert feed.backlog[int(HOUR / BIN_S) - 1] == pytest.approx(HOUR, abs=BIN_S)
    fast = TrackingFeed(Tracking(throughput_per_s=10.0))
    for t in np.arange(0, HOUR, 0.5):
        fast.publish(float(t))
    fast.close()
    assert fast.lag_s.max() == 0


# ------------------------------------------------------------------ customer service


def _desk(agents: int, handle_s: float, replication: int, **extra: Any) -> CustomerService:
    config = ServiceConfig.model_validate(
        {
            "enquiries": {"order_status": {"probability": 1.0, "simple": False}},
            "agents": agents,
            "handle_time_s": exp(handle_s),
            **extra,
        }
    )
    return CustomerService(config, Streams(77, replication), 0.0, promise_s=1e12)


def _poisson_desk(rate: float, horizon: float, warmup: float, replication: int, **kw: Any):
    desk = _desk(replication=replication, **kw)
    times = np.cumsum(np.random.default_rng(replication).exponential(1 / rate, int(rate * horizon)))
    for t in times.tolist():
        desk.order(t, t, False)
    desk.close(None, warmup_s=warmup)
    return desk


def test_single_queue_customer_service_matches_erlang_c():
    """4 agents, exponential 100 s handling, Poisson enquiries at utilisation 0.8."""
    rate, handle, agents = 0.032, 100.0, 4
    waits, waited = [], []
    for r in range(10):
        desk = _poisson_desk(rate, 1_600_000, 20_000, r, agents=agents, handle_s=handle)
        station = desk.queue.stats.summary(desk.queue.closed_at)
        waits.append(station["wait_mean_s"])
        waited.append(station["waited_fraction"])
        # the desk's figure counts enquiries asked after warm-up, the station's those
        # that started after it: nearly the same customers
        assert desk.figures()["cs_wait_s"]["mean"] == pytest.approx(
            station["wait_mean_s"], rel=0.01
        )
    low, high = confidence_interval(waits)
    assert low <= mmc_mean_wait(rate, handle, agents) <= high, (low, high)
    assert (high - low) / 2 < 0.1 * mmc_mean_wait(rate, handle, agents)  # the check has power
    low, high = confidence_interval(waited)
    assert low <= erlang_c(agents, rate * handle) <= high, (low, high)


def test_impatient_customers_abandon_as_erlang_a_says():
    """The same desk at utilisation 1.1 with exponential patience of mean 200 s."""
    rate, handle, agents, patience = 0.044, 100.0, 4, 200.0
    shares = []
    for r in range(10):
        desk = _poisson_desk(
            rate, 200_000, 10_000, r, agents=agents, handle_s=handle, patience_s=exp(patience)
        )
        shares.append(desk.figures()["cs_abandon_rate"])
    low, high = confidence_interval(shares)
    assert low <= mmcm_abandonment(rate, handle, agents, patience) <= high, (low, high)


def _serviced(**service: Any) -> dict[str, Any]:
    scenario = sale(duration_s=600, rate=5)
    for channel in scenario["payment"]["channels"]:
        channel["success_probability"] = 0.9
    scenario["fulfilment"]["promised_delivery_h"] = 12
    # one daily collection: each day's 'collected' updates arrive at once and queue
    scenario["fulfilment"]["warehouses"][0] |= {"pickers": 50, "cutoffs_h": [18]}
    scenario["fulfilment"]["tracking"] = {"throughput_per_s": 0.5}
    scenario["customer_service"] = {
        "enquiries": {
            "late_parcel": {"probability": 1.0, "simple": False},
            "stale_tracking": {"probability": 1.0, "simple": True, "after_h": 0.5},
            "payment_failed": {"probability": 1.0, "simple": False},
            "order_status": {"probability": 1.0, "simple": True},
        },
        "agents": 10,
        "handle_time_s": exp(120),
        "patience_s": exp(600),
        **service,
    }
    return simulator.simulate(scenario).summary


def test_enquiries_come_from_what_happened_to_each_customer():
    summary = _serviced()
    asked = summary["cs_enquiries_by_reason"]
    assert asked["order_status"] == summary["orders"]
    assert asked["payment_failed"] == summary["outcomes"]["payment_failed"] > 0
    late = summary["orders"] - round(summary["on_time_delivery_rate"] * summary["orders"])
    assert asked["late_parcel"] == late > 0
    assert asked["stale_tracking"] > 0 and summary["tracking_lag_h"]["max"] > 0.5
    assert asked["coupon"] == 0
    assert summary["cs_to_agents"] == summary["cs_enquiries"] and summary["cs_deflected"] == 0
    assert summary["cs_answered"] + summary["cs_abandoned"] == summary["cs_to_agents"]
    assert summary["cs_abandon_rate"] > 0
    assert_books_balance(summary)
    deflected = _serviced(bot_deflection=1.0)
    simple = deflected["cs_enquiries_by_reason"]
    assert deflected["cs_deflected"] == simple["order_status"] + simple["stale_tracking"]
    assert deflected["cs_to_agents"] == simple["late_parcel"] + simple["payment_failed"]
    assert deflected["cs_wait_s"]["mean"] < summary["cs_wait_s"]["mean"]


# ------------------------------------------------------------------ schema


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"warehouses": [{"name": "x", "region": "north", "pickers": 1, "pick_time_s": exp(1)}]},
            r"fulfilment: .*warehouses\[0\]\.region: no region 'north'",
        ),
        (
            {
                "warehouses": [
                    {
                        "name": "east",
                        "region": "east",
                        "pickers": 1,
                        "pick_time_s": exp(1),
                        "shifts": [
                            {"from_h": 8, "to_h": 20, "staff": 2},
                            {"from_h": 18, "to_h": 2, "staff": 1},
                        ],
                    }
                ]
            },
            r"fulfilment\.warehouses\[0\]\.shifts: .*overlap",
        ),
        (
            {"warehouses": [{"name": "e", "region": "east", "pickers": 0, "pick_time_s": exp(1)}]},
            "nobody is ever on duty",
        ),
    ],
)
def test_bad_fulfilment_is_a_clear_error(change, message):
    scenario = sale()
    scenario["fulfilment"] |= change
    with pytest.raises(ScenarioError, match=message):
        load_scenario(scenario)


def test_a_warehouse_fault_other_than_capacity_is_a_clear_error():
    scenario = sale()
    scenario["faults"] = [
        {"kind": "latency_multiplied", "component": "warehouse.east", "at_s": 0, "factor": 2}
    ]
    with pytest.raises(ScenarioError, match=r"faults: \[0\]\.kind: a warehouse can only lose"):
        load_scenario(scenario)
