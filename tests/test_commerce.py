"""Commerce: stock and coupon correctness, payment failover, promotions, the books."""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

import simulator
from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams
from simulator.model.components.inventory import SOLD_OUT, Stock
from simulator.model.users import Population
from simulator.scenario.commerce import Deduction
from simulator.scenario.loader import ScenarioError, load_scenario
from tests.conftest import assert_books_balance, exp, fixed, small

# ------------------------------------------------------------------ stock mechanics


def _buyers(
    mode: dict[str, Any],
    stock: list[int | None],
    rate_per_s: float,
    buyers: int,
    seed: int,
    units: int = 1,
    put_back_share: float = 0.0,
) -> Stock:
    """Poisson buyers taking ``units`` each from random keys; some put them back later."""
    env = simpy.Environment()
    counted = Stock(env, Deduction(**mode), stock, Streams(seed), "inventory")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / rate_per_s, buyers)
    keys = rng.integers(0, len(stock), buyers)
    backs = rng.random(buyers) < put_back_share

    def buyer(key: int, back: bool):
        if counted.atomic:
            got = counted.take((key,), units)
            yield env.timeout(0.001)
        else:
            got = yield from counted.take_slowly((key,), units, env.now + 10)
        if back and isinstance(got, int) and got != SOLD_OUT:
            yield env.timeout(0.05)
            counted.put_back(got, units)

    def arrive():
        for gap, key, back in zip(gaps, keys, backs, strict=True):
            yield env.timeout(gap)
            env.process(buyer(int(key), bool(back)))

    env.process(arrive())
    env.run()
    counted.finish()
    return counted


@settings(max_examples=40, deadline=None)
@given(
    stock=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    rate=st.floats(10, 5_000),
    buyers=st.integers(1, 400),
    units=st.integers(1, 3),
    put_back=st.floats(0, 0.5),
    seed=st.integers(0, 2**16),
)
def test_atomic_deduction_never_oversells(stock, rate, buyers, units, put_back, seed):
    counted = _buyers({"deduction": "atomic"}, stock, rate, buyers, seed, units, put_back)
    assert counted.oversold() == [0] * len(stock)
    for key, initial in enumerate(stock):
        assert 0 <= counted.taken[key] <= initial
        assert counted.count[key] == initial - counted.taken[key]  # the counter is the truth


@settings(max_examples=8, deadline=None)
@given(
    stock=st.integers(1, 40),
    rate=st.floats(20, 400),
    units=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_atomic_stock_never_oversells_in_a_whole_shop(stock, rate, units, seed):
    scenario = small(
        duration_s=20,
        seed=seed,
        traffic={"baseline_per_s": rate},
        catalogue={"items": 5, "zipf_exponent": 1.0},
    )
    scenario["inventory"] = {"stock_per_item": stock}
    scenario["segments"][0]["units"] = fixed(units)
    summary = simulator.simulate(scenario).summary
    assert summary["oversold_units"] == 0
    assert summary["stock_units_sold"] <= 5 * stock
    assert_books_balance(summary)


def _oversold(mode: dict[str, Any], rate_per_s: float, seeds: range) -> list[int]:
    return [sum(_buyers(mode, [200], rate_per_s, 600, seed).oversold()) for seed in seeds]


def _clearly_more(more: list[int], less: list[int]) -> None:
    """Mean of ``more`` above ``less`` by over 3 standard errors of the difference."""
    se = math.sqrt(statistics.variance(more) / len(more) + statistics.variance(less) / len(less))
    assert statistics.mean(more) - statistics.mean(less) > 3 * max(se, 1e-9)


def test_read_then_write_oversells_more_as_the_race_window_grows():
    seeds = range(12)
    by_window = [
        _oversold({"deduction": "read_then_write", "race_window_ms": exp(w)}, 200, seeds)
        for w in (0.1, 1, 5)
    ]
    assert all(n > 0 for n in by_window[2])
    assert max(by_window[2]) < 400  # not saturated: some buyers still found none
    _clearly_more(by_window[1], by_window[0])
    _clearly_more(by_window[2], by_window[1])


def test_read_then_write_oversells_more_as_concurrency_grows():
    mode = {"deduction": "read_then_write", "race_window_ms": exp(1)}
    seeds = range(12)
    low, mid, high = (_oversold(mode, rate, seeds) for rate in (20, 200, 1000))
    _clearly_more(mid, low)
    _clearly_more(high, mid)


def _lock(**lock: Any) -> dict[str, Any]:
    return {"deduction": "lock", "lock": {"hold_time_ms": exp(20), **lock}}


def test_an_expiring_lock_lease_over_issues_coupons():
    quota = [100]
    short = _buyers(_lock(lease_ms=30, wait_timeout_ms=60_000), quota, 100, 400, seed=1)
    assert short.leases_expired > 0
    assert sum(short.oversold()) > 0
    # A lease no hold outlives, a lock that never fails: exactly the quota, no more.
    long = _buyers(_lock(lease_ms=60_000, wait_timeout_ms=60_000), quota, 100, 400, seed=1)
    assert long.leases_expired == 0
    assert long.oversold() == [0] and long.taken == [100]


def test_a_lock_that_fails_to_exclude_over_issues_too():
    failing = _lock(lease_ms=60_000, failure_probability=0.3, wait_timeout_ms=60_000)
    counted = _buyers(failing, [100], 100, 400, seed=2)
    assert counted.grants_not_exclusive > 0 and sum(counted.oversold()) > 0


def test_lock_contention_fails_claims_that_wait_too_long():
    counted = _buyers(_lock(lease_ms=60_000, wait_timeout_ms=10), [10_000], 500, 400, seed=3)
    assert counted.lock_timeouts > 0
    assert counted.oversold() == [0]


def test_async_deduction_oversells_while_the_queue_lags_and_finds_every_shortfall():
    slow = {"deduction": "async", "queue": {"consumer_time_ms": exp(8)}}
    counted = _buyers(slow, [100], 200, 600, seed=4)
    assert sum(counted.oversold()) > 0
    # Nobody put units back, so what the consumer could not deduct is what was oversold.
    assert counted.shortfalls == sum(counted.oversold())
    assert counted.count == [0]


def test_purchase_limit_caps_the_units_of_an_order():
    scenario = small()
    scenario["segments"][0]["units"] = fixed(3)
    scenario["inventory"] = {"stock_per_item": 1000, "purchase_limit_per_user": 2}
    summary = simulator.simulate(scenario).summary
    assert summary["stock_units_sold"] == 2 * summary["orders"]


def test_split_stock_falls_back_to_another_warehouse_only_when_allowed():
    def sold(fallback: bool) -> dict[str, Any]:
        scenario = small(catalogue={"items": 3, "zipf_exponent": 0.0}, duration_s=120)
        scenario["inventory"] = {
            "stock_per_item": 9,
            "split_across_warehouses": True,
            "fallback_to_other_warehouses": fallback,
        }
        return simulator.simulate(scenario).summary

    with_fallback, without = sold(True), sold(False)
    assert with_fallback["stock_units_sold"] == 27  # every unit found a buyer
    assert without["stock_units_sold"] <= 27
    assert with_fallback["outcomes"]["sold_out"] <= without["outcomes"]["sold_out"]


# ------------------------------------------------------------------ payments


def _two_channels(**payment: Any) -> dict[str, Any]:
    """A busy shop whose channel a goes down from 60 s to 120 s."""
    scenario = small(duration_s=180, traffic={"baseline_per_s": 40})
    scenario["inventory"] = {}
    scenario["payment"].update(payment)
    scenario["faults"] = [
        {"kind": "component_down", "component": "payment.a", "at_s": 60, "duration_s": 60}
    ]
    return scenario


_FAILOVER = {
    "circuit_breaker": {"window_calls": 10, "minimum_calls": 5, "open_wait_s": 20},
    "switch_ms": 200,
}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_breaker_opening_is_one_failover_however_many_payments_were_in_flight(seed):
    """Payments still in flight when the breaker opens do not book the switch again."""
    scenario = _two_channels(failover=_FAILOVER) | {"seed": seed}
    scenario["traffic"] = {"baseline_per_s": 200}
    switches = simulator.simulate(scenario).summary["payment_failovers"]
    opened = [(s["channel"], s["breaker_opened_at_s"]) for s in switches]
    assert len(set(opened)) == len(opened), opened  # each opening booked once
    # a's breaker opens once and is open or half-open until the outage ends; b, taking
    # a's share at this rate, may open on its own overload.
    ((_, at),) = [entry for entry in opened if entry[0] == "a"]
    assert 60 <= at < 61


def test_with_failover_an_outage_loses_only_the_payments_sent_before_the_switch():
    result = simulator.simulate(_two_channels(failover=_FAILOVER))
    summary = result.summary
    (switch,) = summary["payment_failovers"]
    assert switch["channel"] == "a" and 60 <= switch["breaker_opened_at_s"] < 61
    assert math.isclose(switch["switched_at_s"] - switch["breaker_opened_at_s"], 0.2)
    campaign_lost = _lost_times(_two_channels(failover=_FAILOVER))
    before_switch = [t for t in campaign_lost if t <= switch["switched_at_s"]]
    # After the switch only the breaker's half-open trials reach the dead channel:
    # 1 round every 20 s of open wait while it is down, 3 trials at most each.
    assert len(campaign_lost) - len(before_switch) <= 3 * 3
    assert all(60 <= t for t in campaign_lost)
    assert summary["payments_rerouted"] > 0
    without = simulator.simulate(_two_channels()).summary
    assert summary["payments_lost_to_outage"] * 10 < without["payments_lost_to_outage"]
    assert summary["orders"] > without["orders"]
    assert_books_balance(summary)


def _lost_times(scenario: dict[str, Any]) -> list[float]:
    from simulator.model.campaign import build

    campaign = build(load_scenario(scenario), seed=3)
    campaign.env.run(until=campaign.shop.all_done)
    return list(campaign.payments.channels[0].lost_to_outage)


def test_users_retry_a_failed_payment_on_another_channel():
    plain = simulator.simulate(_two_channels()).summary
    retry = {"probability": 1.0, "delay_s": fixed(2), "max_retries": 1}
    retried = simulator.simulate(_two_channels(user_retry=retry)).summary
    assert retried["outcomes"]["payment_failed"] < plain["outcomes"]["payment_failed"] / 3
    assert retried["payment_attempts"] > plain["payment_attempts"]


def test_async_confirmation_books_the_real_outcome_of_timed_out_payments():
    scenario = small(duration_s=120)
    for channel in scenario["payment"]["channels"]:
        channel["timeout_ms"] = 300  # most payments outlast it
    scenario["inventory"] = {}
    failing = simulator.simulate(scenario).summary
    scenario["payment"]["async_confirmation_s"] = 5
    confirmed = simulator.simulate(scenario).summary
    assert confirmed["payments_confirmed_late"] > 0
    assert confirmed["payment_timeouts"] == 0
    assert confirmed["orders"] > failing["orders"]
    assert_books_balance(confirmed)


# ------------------------------------------------------------------ promotions


def _ladder_scenario(building: dict[str, Any] | None) -> dict[str, Any]:
    scenario = small()
    scenario["segments"][0]["basket_value_cny"] = {"dist": "uniform", "low": 50, "high": 700}
    scenario["segments"][0]["basket_building"] = building
    scenario["promotions"] = {
        "ladder": [{"threshold_cny": 200, "off_cny": 20}, {"threshold_cny": 500, "off_cny": 50}]
    }
    return scenario


def _baskets(scenario: dict[str, Any], n: int = 4000) -> np.ndarray:
    population = Population(load_scenario(scenario), Streams(7))
    return np.array([population.next_user().basket_cny for _ in range(n)])


def test_basket_building_moves_baskets_up_to_the_ladder_thresholds():
    before = _baskets(_ladder_scenario(None))
    after = _baskets(_ladder_scenario({"probability": 1.0, "max_gap": 0.2}))
    moved = after != before
    assert moved.any()
    # Every basket that moved went up to a step exactly, from within 20% below it.
    assert set(np.unique(after[moved])) <= {200.0, 500.0}
    for step in (200.0, 500.0):
        went = moved & (after == step)
        assert np.all(before[went] >= 0.8 * step) and np.all(before[went] < step)
        within = (before >= 0.8 * step) & (before < step)
        assert np.array_equal(went, within)  # probability 1: all of them
    assert after.mean() > before.mean()
    half = _baskets(_ladder_scenario({"probability": 0.5, "max_gap": 0.2}))
    assert 0 < (half != before).sum() < moved.sum()


def _promoted(**promotions: Any) -> dict[str, Any]:
    scenario = small(
        duration_s=120,
        catalogue={
            "items": 50,
            "hot_items": [{"name": "phone", "share": 0.2, "stock": 100}],
        },
    )
    scenario["segments"][0]["basket_value_cny"] = {"dist": "uniform", "low": 50, "high": 700}
    scenario["inventory"] = {}
    scenario["promotions"] = promotions
    return scenario


_EVERYTHING = {
    "discount": 0.05,
    "ladder": [{"threshold_cny": 200, "off_cny": 20}, {"threshold_cny": 500, "off_cny": 50}],
    "coupon": {"value_cny": 10, "threshold_cny": 100},
    "coupon_holders": 0.3,
    "flash_sales": [
        {
            "name": "noon",
            "item": "phone",
            "opens_at_s": 30,
            "burst": {"hold_s": 20, "decay_s": 10, "multiplier": 4},
            "stock": 60,
            "list_price_cny": 4999,
            "price_cny": 3999,
        }
    ],
    "returns": {"flash_sale": 0.08, "ladder": 0.05},
}


def test_gmv_is_the_sum_of_paid_order_values_less_their_discounts():
    result = simulator.simulate(_promoted(**_EVERYTHING), keep_orders=True)
    summary, orders = result.summary, result.orders
    assert len(orders) == summary["orders"] > 0
    assert math.isclose(summary["gmv"], orders["paid_cny"].sum(), rel_tol=1e-12)
    assert math.isclose(
        summary["gmv"], (orders["list_cny"] - orders["discount_cny"]).sum(), rel_tol=1e-12
    )
    assert math.isclose(summary["discount_cost"], orders["discount_cny"].sum(), rel_tol=1e-12)
    assert math.isclose(result.timeseries["gmv_cny"].sum(), summary["gmv"], rel_tol=1e-9)
    flash = orders[orders["mechanic"] == "flash_sale"]
    assert len(flash) > 0  # at the flash price, less a coupon when the buyer held one
    assert (flash["paid_cny"] == 3999 * flash["units"] - flash["coupon_cny"]).all()
    assert flash["units"].sum() <= 60  # the slot's own stock, atomically deducted
    by_mechanic = summary["orders_by_mechanic"]
    assert sum(m["orders"] for m in by_mechanic.values()) == summary["orders"]
    assert summary["returned_orders"] == orders["returned"].sum()
    returned = orders.loc[orders["returned"], "paid_cny"].sum()
    assert math.isclose(summary["refunds"], returned, rel_tol=1e-9)
    assert summary["coupons_redeemed"] == (orders["coupon_cny"] > 0).sum()


def test_lost_gmv_counts_the_buyers_each_cause_stopped():
    scenario = _promoted()
    scenario["inventory"] = {"stock_per_item": 2}
    summary = simulator.simulate(scenario).summary
    lost = summary["lost_gmv"]
    assert summary["outcomes"]["sold_out"] > 0 and lost["sold_out"] > 0
    assert summary["lost_gmv_total"] == pytest.approx(sum(lost.values()))
    funnel = summary["funnel"]["all"]
    assert funnel["browse"] == summary["sessions"]
    assert funnel["paid"] == summary["orders"]
    assert funnel["browse"] >= funnel["cart"] >= funnel["order"] >= funnel["paid"]


def test_a_conversion_uplift_raises_orders_on_the_same_users():
    plain = _promoted(discount=0.1)
    lifted = _promoted(discount=0.1)
    lifted["segments"][0]["response"] = {"discount": 0.5}
    a, b = simulator.simulate(plain).summary, simulator.simulate(lifted).summary
    assert a["sessions"] == b["sessions"]  # same crowd
    assert b["funnel"]["all"]["cart"] > a["funnel"]["all"]["cart"]
    assert b["orders"] > a["orders"]


def test_a_presale_takes_deposits_then_a_second_burst_of_final_payments():
    presale = {
        "name": "pre",
        "item": "phone",
        "deposit_at_s": 10,
        "burst": {"hold_s": 20, "multiplier": 3},
        "stock": 1000,
        "list_price_cny": 5000,
        "deposit_cny": 100,
        "deposit_inflation": 2,
        "final_payment_at_s": 300,
        "final_payment_delay_s": exp(30),
        "forfeit_rate": 0.2,
    }
    result = simulator.simulate(_promoted(presales=[presale]), keep_orders=True)
    summary, orders = result.summary, result.orders
    pre = orders[orders["mechanic"] == "presale"]
    assert len(pre) > 0 and (pre["t_s"] >= 300).all()  # paid in the final window
    assert (pre["paid_cny"] == 4900 * pre["units"]).all()  # the deposit counts twice
    forfeited = summary["outcomes"]["deposit_forfeited"]
    assert forfeited > 0
    assert summary["deposits_forfeited"] == pytest.approx(100 * forfeited)
    share = forfeited / (forfeited + len(pre))
    assert 0.05 < share < 0.4  # about the 20% forfeit rate
    assert_books_balance(summary)


def test_a_coupon_rain_brings_claims_and_counts_any_over_issue():
    rain = {
        "name": "rain",
        "at_s": 20,
        "burst": {"hold_s": 10, "multiplier": 10},
        "quota": 100,
        "coupon": {"value_cny": 20},
        "deduction": "lock",
        "lock": {"lease_ms": 5, "hold_time_ms": exp(5), "wait_timeout_ms": 5000},
    }
    scenario = _promoted(coupon_rains=[rain])
    scenario["gateway"]["workers"] = 64
    summary = simulator.simulate(scenario).summary
    assert summary["coupon_claims"] > 100
    assert summary["coupons_issued"] == 100 + summary["coupons_over_issued"]
    assert summary["coupons_over_issued"] > 0
    rain["deduction"] = "atomic"
    atomic = simulator.simulate(_promoted(coupon_rains=[rain])).summary
    assert atomic["coupons_issued"] == 100 and atomic["coupons_over_issued"] == 0
    assert atomic["coupon_claim_failures"] == atomic["coupon_claims"] - 100


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"flash_sales": [{**_EVERYTHING["flash_sales"][0], "item": "tablet"}]},
            "no hot item named 'tablet'",
        ),
        ({"coupon_holders": 0.5}, "no coupon"),
        (
            {
                "ladder": [
                    {"threshold_cny": 500, "off_cny": 50},
                    {"threshold_cny": 200, "off_cny": 20},
                ]
            },
            "must rise",
        ),
    ],
)
def test_bad_promotions_are_clear_errors(change, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(_promoted(**change))


def test_a_deduction_mode_without_its_settings_is_a_clear_error():
    scenario = small()
    scenario["inventory"] = {"deduction": "lock"}
    with pytest.raises(ScenarioError, match="needs lock"):
        load_scenario(scenario)


def test_orders_are_kept_only_when_asked():
    assert simulator.simulate(small(duration_s=20)).orders is None
    assert Outcome.DEPOSIT_FORFEITED.label == "deposit_forfeited"
