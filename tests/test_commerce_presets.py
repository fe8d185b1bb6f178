"""The commerce presets show what their descriptions claim, on one seed.

Runs are cut short where the claim is settled early (each test says why its cut is
enough); the figures in the README come from the full presets.
"""

from __future__ import annotations

import pytest

import simulator
from tests.conftest import SCENARIOS, assert_books_balance


def _summary(name: str, *overrides: str) -> dict:
    scenario = simulator.load_scenario(SCENARIOS / f"{name}.yaml", list(overrides))
    summary = simulator.simulate(scenario).summary
    assert_books_balance(summary)
    return summary


def test_failover_keeps_the_payments_a_dead_channel_would_lose():
    # The outage is at 700-1000 s; 1,100 s covers it and the switch back.
    with_failover = _summary("payment-channel-failover", "duration_s=1100")
    without = _summary("payment-channel-no-failover", "duration_s=1100")
    (switch,) = with_failover["payment_failovers"]
    assert switch["switched_at_s"] - switch["breaker_opened_at_s"] == pytest.approx(0.2)
    assert with_failover["payments_lost_to_outage"] * 20 < without["payments_lost_to_outage"]
    assert with_failover["lost_gmv"]["payment_failed"] < without["lost_gmv"]["payment_failed"]
    assert with_failover["gmv"] > without["gmv"]


def test_a_failing_coupon_lock_over_issues_and_an_atomic_quota_does_not():
    # The rain is over by 810 s.
    locked = _summary("coupon-over-issue-lock-failure", "duration_s=900")
    atomic = _summary("coupon-over-issue-atomic", "duration_s=900")
    assert locked["coupons_over_issued"] > 0
    assert locked["coupons_issued"] == locked["coupon_quota"] + locked["coupons_over_issued"]
    assert atomic["coupons_over_issued"] == 0
    assert atomic["coupons_issued"] == atomic["coupon_quota"]


def test_only_atomic_stock_deduction_sells_no_more_than_the_slot_holds():
    # The slot sells out about a minute after it opens at 600 s.
    oversold = {
        mode: _summary(name, "duration_s=900")["oversold_units"]
        for mode, name in [
            ("read_then_write", "oversell-non-atomic-stock"),
            ("atomic", "oversell-atomic-stock"),
            ("async", "oversell-async-stock"),
        ]
    }
    assert oversold["atomic"] == 0
    assert oversold["read_then_write"] > 0 and oversold["async"] > 0


def test_the_under_stocked_hot_sku_sells_out_and_loses_buyers():
    short = _summary("hot-sku-stockout")
    stocked = _summary("hot-sku-stockout-forecast")
    assert short["sold_out_at_s"]["mate60-pro"] is not None
    assert short["lost_gmv"]["sold_out"] > 0 and stocked["lost_gmv"]["sold_out"] == 0
    lost_share = short["outcomes"]["sold_out"] / (short["outcomes"]["sold_out"] + 4200)
    assert 0.10 < lost_share < 0.20  # about the 15% of the seed


def test_tiered_reduction_raises_aov_and_margin_and_young_users_prefer_the_discount():
    tiered = _summary("tiered-reduction-vs-discount")
    flat = _summary("tiered-reduction-vs-discount-flat")
    assert tiered["aov"] > flat["aov"]
    assert tiered["gross_margin"] > flat["gross_margin"]
    assert flat["discount_cost"] > tiered["discount_cost"]
    # Each segment converts better under the mechanic its response favours.
    young, family = "new", "returning"
    assert flat["funnel"][young]["browse_to_paid"] > tiered["funnel"][young]["browse_to_paid"]
    assert tiered["funnel"][family]["browse_to_paid"] > flat["funnel"][family]["browse_to_paid"]
    assert set(flat["orders_by_mechanic"]) == {"discount"}


def test_presale_spreads_the_peak_and_the_flash_sale_sharpens_it():
    presale = _summary("presale-vs-flash-sale")
    flash = _summary("presale-vs-flash-sale-flash")
    assert flash["peak_arrivals_per_s"] > 1.5 * presale["peak_arrivals_per_s"]
    assert presale["deposits_forfeited"] > 0 and presale["outcomes"]["deposit_forfeited"] > 0
    assert set(presale["orders_by_mechanic"]) == {"none", "presale"}
    assert set(flash["orders_by_mechanic"]) == {"none", "flash_sale"}
    assert flash["returned_orders"] > presale["returned_orders"]
