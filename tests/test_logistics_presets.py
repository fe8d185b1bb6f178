"""The fulfilment and customer-service presets show what their descriptions claim (seed 1).

Each preset runs in full (about 15-25 s each).
"""

from __future__ import annotations

from typing import Any

import pytest

import simulator
from tests.conftest import SCENARIOS

OVERLOAD = "warehouse-overload-logistics-delay"


@pytest.fixture(scope="module")
def overload() -> dict[str, dict[str, Any]]:
    return {
        variant: simulator.simulate(SCENARIOS / f"{OVERLOAD}{variant}.yaml").summary
        for variant in ("", "-surge", "-fallback")
    }


def test_east_overload_misses_the_next_day_target_and_both_remedies_recover_it(overload):
    base, surge, fallback = overload[""], overload["-surge"], overload["-fallback"]
    assert base["next_day_delivery_rate"] < 0.92  # the seeds' target, missed
    assert surge["next_day_delivery_rate"] >= 0.92
    assert fallback["next_day_delivery_rate"] >= 0.92
    assert surge["next_day_delivery_rate"] > fallback["next_day_delivery_rate"]
    # East is the warehouse that cannot keep up: the last to clear its backlog.
    cleared = base["warehouse_backlog_cleared_at_s"]
    assert max(cleared, key=cleared.get) == "east"
    assert surge["warehouse_backlog_cleared_at_s"]["east"] < cleared["east"]
    # The fallback ships from other regions, and spreads the backlog.
    assert base["shipped_from_other_region"] == 0 < fallback["shipped_from_other_region"]
    peaks = fallback["warehouse_peak_backlog"]
    assert peaks["east"] < base["warehouse_peak_backlog"]["east"]
    for summary in overload.values():
        assert summary["ship_within_72h_rate"] == 1.0
        assert summary["orders"] == base["orders"]  # the same sale each time


def test_tracking_runs_hours_late_at_the_collections(overload):
    lag = overload[""]["tracking_lag_h"]
    assert 4 <= lag["p95"] <= 6  # the seeds' 4-6 h
    assert lag["p50"] < 2


def _declared(variant: str) -> simulator.Scenario:
    return simulator.load_scenario(SCENARIOS / f"{OVERLOAD}{variant}.yaml")


def test_the_three_presets_share_one_price_list():
    """The base preset's price list is the surge's and the fallback's too, surge at a premium."""
    costs = _declared("").costs
    assert costs.picker_hour_cny > 0 and costs.parcel_cny > 0
    assert costs.surge_picker_price() > costs.picker_hour_cny
    assert costs.late_parcel_compensation_cny > 0
    assert _declared("-surge").costs == costs == _declared("-fallback").costs


def test_surge_pickers_are_billed_for_their_window_until_easts_backlog_clears(overload):
    """Surge cost = staff x hours of each surge window clipped to [0, horizon] x the price.

    The horizon of a warehouse is the later of the sale's end and the moment its backlog
    cleared; East clears before the surge window ends, so the window is cut short.
    """
    declared, summary = _declared("-surge"), overload["-surge"]
    cleared = summary["warehouse_backlog_cleared_at_s"]
    hours = 0.0
    for warehouse in declared.fulfilment.warehouses:
        horizon_s = max(declared.duration_s, cleared[warehouse.name])
        for window in warehouse.surge:
            assert horizon_s < window.to_s  # East needs less than the 20 hours rostered
            on_duty_s = max(0.0, min(window.to_s, horizon_s) - window.from_s)
            hours += window.staff * on_duty_s / 3600
    assert hours > 0
    price = declared.costs.surge_picker_price()
    operations = summary["profit_and_loss"]["operations"]
    assert operations["surge_pickers"] == pytest.approx(hours * price, rel=1e-9)
    assert overload[""]["profit_and_loss"]["operations"]["surge_pickers"] == 0


def test_every_late_parcel_is_compensated_at_the_price_list(overload):
    """Late-parcel compensation = (parcels - on-time parcels) x price, at full size."""
    costs = _declared("").costs
    for variant, summary in overload.items():
        parcels = summary["delivery_time_h"]["count"]
        late = parcels - round(summary["on_time_delivery_rate"] * parcels)
        assert late > 0, variant
        expected = late * costs.late_parcel_compensation_cny / summary["scale"]
        failures = summary["profit_and_loss"]["failures"]
        assert failures["late_parcel_compensation"] == pytest.approx(expected), variant


def test_the_surge_pays_for_its_picker_hours_at_the_presets_prices(overload):
    """The surge raises net profit at the presets' prices, and only through its costs.

    Same sale, same revenue: the gain is what the surge saves in late parcels and in
    East's shorter roster, less its own bill.
    """
    base, surge = overload[""], overload["-surge"]
    assert surge["profit_and_loss"]["gross_profit"] == base["profit_and_loss"]["gross_profit"]
    gain = surge["net_profit"] - base["net_profit"]
    saved = (base["operations_cost"] - surge["operations_cost"]) + (
        base["failure_cost"] - surge["failure_cost"]
    )
    assert gain == pytest.approx(saved)
    assert gain > 0
    # Break-even surge price: where the gain, linear in that price, reaches zero.
    price = _declared("").costs.surge_picker_price()
    surge_bill = surge["profit_and_loss"]["operations"]["surge_pickers"]
    break_even = price * (1 + gain / surge_bill)
    assert 1.5 * price < break_even < 3 * price


@pytest.fixture(scope="module")
def service() -> dict[str, dict[str, Any]]:
    return {
        name: simulator.simulate(SCENARIOS / f"{name}.yaml").summary
        for name in ("cs-backlog", "cs-backlog-target")
    }


def test_ten_agents_keep_customers_waiting_minutes_and_the_target_setup_meets_30_s(service):
    backlog, target = service["cs-backlog"], service["cs-backlog-target"]
    assert 6 * 60 <= backlog["cs_busiest_hour_wait_s"] <= 10 * 60  # the seeds' 8 minutes
    assert backlog["cs_abandon_rate"] > 0.1
    assert target["cs_busiest_hour_wait_s"] <= target["cs_target_wait_s"] == 30
    assert target["cs_deflected"] > 0 == backlog["cs_deflected"]
    assert target["cs_enquiries"] == backlog["cs_enquiries"]  # the same customers ask
    assert target["cs_abandon_rate"] < backlog["cs_abandon_rate"]
