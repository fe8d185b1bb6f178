"""Money on both sides: channels, the price list, the profit and loss, latency-sensitive demand."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from simulator import simulate
from simulator.experiment.estimates import welch_interval
from simulator.interface.cli import app
from simulator.measure.streams import Streams
from simulator.model.channels import ChannelArrivals
from simulator.model.components.roster import Roster
from simulator.scenario.loader import ScenarioError, load_scenario
from simulator.scenario.money import DEFAULT_RETURNS_EXPONENT, TrafficChannel, channel_clicks
from tests.conftest import SCENARIOS, exp, fixed, small

PRICES: dict[str, Any] = {
    "app_instance_hour_cny": 3.5,
    "workers_per_app_instance": 4,
    "cache_node_hour_cny": 2.0,
    "database_instance_hour_cny": 9.0,
    "payment_fees": {"a": {"rate": 0.006, "fixed_cny": 0.1}, "b": {"rate": 0.01}},
    "picker_hour_cny": 40.0,
    "surge_picker_hour_cny": 60.0,
    "agent_hour_cny": 35.0,
    "bot_enquiry_cny": 0.2,
    "parcel_cny": 8.0,
    "parcel_cny_by_region": {"west": 12.0},
    "late_parcel_compensation_cny": 10.0,
    "fixed_cny": {"development": 50_000.0, "emergency_reserve": 20_000.0},
}

CHANNELS: list[dict[str, Any]] = [
    {
        "name": "douyin",
        "budget_cny": 600.0,
        "cpc_cny": 1.2,
        "reference_spend_cny": 600.0,
        "profile": [
            {"start_s": 0, "end_s": 30, "share": 0.25},
            {"start_s": 30, "end_s": 60, "share": 0.75},
        ],
        "conversion_multiplier": 1.3,
    },
    {"name": "wechat", "cpm_cny": 20.0, "ctr": 0.025, "clicks": 400},
    {"name": "organic", "clicks": 300, "cpc_cny": 0},
]


def money_sale(**changes: Any) -> dict[str, Any]:
    """The small shop with channels, every price, returns and a surge shift."""
    scenario = small(channels=CHANNELS, costs=PRICES, **changes)
    scenario["promotions"] = {"discount": 0.1, "returns": {"discount": 0.1}}
    scenario["fulfilment"]["warehouses"][0]["surge"] = [{"from_s": 30, "to_s": 4000, "staff": 3}]
    return scenario


def _all_lines(pnl: dict[str, Any]) -> list[float]:
    """The profit and loss's lines, signed, as they make up net profit."""
    signed = [
        pnl["list_value"],
        -pnl["discounts"],
        pnl["deposits_forfeited"],
        -pnl["cost_of_goods"],
    ]
    for section in ("marketing", "infrastructure", "operations", "failures", "fixed"):
        signed += [-v for v in pnl[section].values()]
    return signed


def test_the_profit_and_loss_adds_up_to_net_profit_exactly():
    summary = simulate(money_sale()).summary
    pnl = summary["profit_and_loss"]
    assert math.fsum(_all_lines(pnl)) == pnl["net_profit"] == summary["net_profit"]
    for section in ("marketing", "infrastructure", "operations", "failures", "fixed"):
        assert math.fsum(pnl[section].values()) == pnl[f"{section}_total"]
    assert pnl["gmv"] == pytest.approx(summary["gmv"], rel=1e-12)
    # Every line is priced: a scenario with prices and channels costs something everywhere.
    assert all(v > 0 for v in pnl["infrastructure"].values())
    assert all(
        v > 0 for k, v in pnl["operations"].items() if k != "agents" and k != "bot_enquiries"
    )
    assert pnl["marketing"]["douyin"] > 0 and pnl["marketing"]["organic"] == 0
    assert pnl["failures"]["refunds"] > 0
    # The old gross margin is the new gross profit less the failures it always held.
    assert summary["gross_margin"] == pytest.approx(
        pnl["gross_profit"] - pnl["failures"]["refunds"] - pnl["failures"]["oversell_compensation"],
        rel=1e-12,
    )


@pytest.mark.parametrize("preset", ["oversell-non-atomic-stock", "tiered-reduction-vs-discount"])
def test_with_every_price_zero_net_profit_is_gross_margin(preset):
    """No prices: net profit = gross profit - refunds - compensation = the old gross margin."""
    summary = simulate(SCENARIOS / f"{preset}.yaml").summary
    pnl = summary["profit_and_loss"]
    failures = pnl["failures"]
    assert failures["refunds"] + failures["oversell_compensation"] > 0  # the test bites
    expected = pnl["gross_profit"] - failures["refunds"] - failures["oversell_compensation"]
    assert summary["net_profit"] == pytest.approx(expected, rel=1e-12, abs=1e-6)
    assert summary["net_profit"] == pytest.approx(summary["gross_margin"], rel=1e-12, abs=1e-6)


def _staff_seconds_by_grid(roster: Roster, end_s: float) -> float:
    """People on duty summed second by second (the rosters here change on whole seconds)."""
    return float(sum(roster.on_duty(t + 0.5) for t in range(math.ceil(end_s))))


def test_staff_are_billed_from_the_rosters_timeline():
    scenario = load_scenario(money_sale())
    result = simulate(scenario)
    summary = result.summary
    ops = summary["profit_and_loss"]["operations"]
    picker_s = surge_s = 0.0
    for config in scenario.fulfilment.warehouses:
        end = max(scenario.duration_s, summary["warehouse_backlog_cleared_at_s"][config.name])
        end = math.ceil(end)  # the grid counts whole seconds; bill the same horizon
        whole = Roster(config.pickers, config.shifts, config.surge, (), 0.0)
        base = Roster(config.pickers, config.shifts, (), (), 0.0)
        picker_s += _staff_seconds_by_grid(base, end)
        surge_s += _staff_seconds_by_grid(whole, end) - _staff_seconds_by_grid(base, end)
    assert surge_s > 0
    # The horizon above is rounded up to a whole second: within a second's pay per person.
    most = sum(w.pickers + sum(s.staff for s in w.surge) for w in scenario.fulfilment.warehouses)
    assert ops["pickers"] == pytest.approx(picker_s / 3600 * 40.0, abs=most * 40.0 / 3600)
    assert ops["surge_pickers"] == pytest.approx(surge_s / 3600 * 60.0, abs=most * 60.0 / 3600)


def test_autoscaled_instances_are_billed_from_start_up_to_the_end():
    """Billed = instances serving (the time series) + instances starting up (the delay).

    To 1200 s: the spike's ramp, hold and part of its decay, so instances come and go.
    """
    scenario = load_scenario(SCENARIOS / "elastic-scaling.yaml", ["duration_s=1200"])
    data = scenario.model_dump(mode="json")
    data["costs"] = {"app_instance_hour_cny": 1.0}
    result = simulate(data)
    summary, series = result.summary, result.timeseries
    scaling = scenario.gateway.autoscaling
    interval = scenario.timeseries_interval_s
    end = summary["run"]["stations_idle_at_s"]
    # Serving instance-seconds: the per-interval means, the last interval only up to the end.
    widths = np.minimum(interval, np.maximum(0.0, end - series["t_s"].to_numpy()))
    serving = float(np.sum(series["gateway_instances"].to_numpy() * widths))
    # Every instance that came up was paid for during its provisioning delay too.
    starts = np.diff(series["gateway_instances"].to_numpy().round(6))
    assert summary["peak_instances"] > scaling.min_instances  # it did scale out
    billed = summary["profit_and_loss"]["infrastructure"]["app_instances"] * 3600
    assert billed > serving
    started = int(np.sum(np.clip(starts, 0, None)))  # lower bound of instances started
    assert billed >= serving + started * scaling.provisioning_delay_s * 0.5
    most = scaling.max_instances
    assert billed <= serving + started * scaling.provisioning_delay_s + 2 * most * interval


def test_a_gateway_without_autoscaling_is_billed_in_whole_instances():
    summary = simulate(money_sale()).summary
    end = summary["run"]["stations_idle_at_s"]
    infra = summary["profit_and_loss"]["infrastructure"]
    assert infra["app_instances"] == pytest.approx(math.ceil(8 / 4) * end / 3600 * 3.5)
    assert infra["cache_nodes"] == pytest.approx(1 * end / 3600 * 2.0)
    assert infra["database_instances"] == pytest.approx(2 * end / 3600 * 9.0)


def test_marketing_spend_is_the_clicks_drawn_times_their_price():
    scenario = load_scenario(money_sale())
    summary = simulate(scenario).summary
    channels = summary["traffic_channels"]
    for config in scenario.channels:
        expected, planned = config.plan()
        figures = channels[config.name]
        price = planned / expected
        assert figures["spend"] == pytest.approx(figures["visitors"] * price, rel=1e-12)
        assert summary["profit_and_loss"]["marketing"][config.name] == figures["spend"]
    # CPM with CTR: 20 CNY a thousand impressions at 2.5% is 0.8 CNY a click (at the anchor).
    wechat = scenario.channels[1]
    assert wechat.click_price_cny() == pytest.approx(0.8)


def test_attribution_per_channel_sums_to_the_totals():
    summary = simulate(money_sale()).summary
    channels = summary["traffic_channels"]
    assert list(channels) == ["base", "douyin", "wechat", "organic"]
    assert sum(c["visitors"] for c in channels.values()) == summary["sessions"]
    assert sum(c["orders"] for c in channels.values()) == summary["orders"]
    assert math.fsum(c["gmv"] for c in channels.values()) == pytest.approx(summary["gmv"])
    assert math.fsum(c["lost_gmv"] for c in channels.values()) == pytest.approx(
        summary["lost_gmv_total"]
    )
    assert all(c["visitors"] > 0 and c["orders"] > 0 for c in channels.values())
    douyin = channels["douyin"]
    assert douyin["roi"] == pytest.approx(douyin["gmv"] / douyin["spend"])
    assert douyin["new_customers"] == pytest.approx(0.4 * douyin["orders"])
    assert douyin["cac"] == pytest.approx(douyin["spend"] / douyin["new_customers"])
    assert douyin["ltv"] == pytest.approx(800 * 1.5)
    assert douyin["ltv_to_cac"] == pytest.approx(douyin["ltv"] / douyin["cac"])
    split = summary["budget_split"]
    assert set(split) == {"douyin", "wechat"}
    assert math.fsum(s["spent_share"] for s in split.values()) == pytest.approx(1.0)


def test_a_channel_leaves_the_curves_users_alone():
    """Adding a channel (its own streams) changes none of the curve's users."""
    without = simulate(small()).summary
    with_channel = simulate(small(channels=[CHANNELS[2]])).summary
    assert with_channel["traffic_channels"]["base"]["visitors"] == without["sessions"]
    assert with_channel["sessions"] > without["sessions"]


def _visitors(budget: float, seed: int, shares: tuple[float, float]) -> int:
    channel = TrafficChannel(
        name="c",
        budget_cny=budget,
        cpc_cny=1.0,
        reference_spend_cny=1000.0,
        profile=[
            {"start_s": 0, "end_s": 10, "share": shares[0]},
            {"start_s": 10, "end_s": 60, "share": shares[1]},
        ],
    )
    return ChannelArrivals(channel, 60.0, 1.0, Streams(seed)).drawn


@given(
    low=st.floats(0, 5_000),
    more=st.floats(0, 5_000),
    seed=st.integers(0, 2**32 - 1),
    first=st.floats(0, 1),
)
def test_more_budget_never_brings_fewer_visitors(low, more, seed, first):
    shares = (first, 1 - first)
    assert _visitors(low + more, seed, shares) >= _visitors(low, seed, shares)


def test_more_budget_never_brings_fewer_visitors_in_a_run():
    runs = []
    for budget in (300.0, 600.0, 1200.0):
        channels = copy.deepcopy(CHANNELS)
        channels[0]["budget_cny"] = budget
        runs.append(simulate(small(channels=channels)).summary["traffic_channels"])
    douyin = [r["douyin"]["visitors"] for r in runs]
    assert douyin[0] < douyin[1] < douyin[2]
    for name in ("base", "wechat", "organic"):  # the other sources did not move
        assert len({r[name]["visitors"] for r in runs}) == 1


def test_cost_per_visitor_rises_with_spend():
    channel = TrafficChannel(name="c", budget_cny=1.0, cpc_cny=1.2)
    spends = np.geomspace(1e3, 1e8, 30)
    per_visitor = [s / channel_clicks(channel, s) for s in spends]
    assert all(b > a for a, b in zip(per_visitor, per_visitor[1:], strict=False))
    # The default curve: four times the reach costs 18% more per visitor [002 §07].
    reach = channel_clicks(channel, 1e6)
    assert channel.spend_for(4 * reach) / (4 * reach) / (1e6 / reach) == pytest.approx(1.18)
    assert DEFAULT_RETURNS_EXPONENT == pytest.approx(0.8933, abs=1e-4)


def _steady_pages(threshold_ms: float) -> dict[str, Any]:
    """Every landing page takes 1.5 s + 10 ms exactly; no queueing anywhere."""
    scenario = small(
        duration_s=900,
        experience={"threshold_ms": threshold_ms, "conversion_loss_per_100ms": 0.07},
        gateway={"workers": 400, "service_time_ms": fixed(1500)},
        cache=None,
    )
    scenario["database"] |= {"pool_size": 400, "read_time_ms": fixed(10), "write_time_ms": exp(5)}
    scenario["segments"][0]["patience_s"] = fixed(30)
    scenario["inventory"] = {"stock_per_item": None}  # nothing sells out
    for channel in scenario["payment"]["channels"]:
        channel["capacity"] = 400
    return scenario


def test_slower_pages_lower_conversion_by_the_configured_amount():
    fast = simulate(_steady_pages(threshold_ms=10_000)).summary  # under the threshold
    slow = simulate(_steady_pages(threshold_ms=510)).summary  # 1,000 ms over it
    assert fast["users_put_off_by_latency"] == 0 and slow["users_put_off_by_latency"] > 0
    stay = (1 - 0.07) ** 10
    # Same users (common random numbers): each buyer of the fast run stays with p = stay.
    n, kept = fast["orders"], slow["orders"]
    low, high = stats.binom.interval(0.999, n, stay)
    assert low <= kept <= high, (kept, n, stay)
    assert slow["conversion_rate"] == pytest.approx(fast["conversion_rate"] * stay, rel=0.15)
    assert slow["lost_gmv"]["slow_pages"] > 0


def test_money_agrees_between_full_size_and_a_quarter():
    """Money KPIs at scale 1 and 1/4 agree: each 99% Welch interval (5 KPIs) holds 0."""
    base = money_sale(duration_s=120, traffic={"baseline_per_s": 40})
    base["gateway"] |= {"workers": 80}
    base["database"] |= {"pool_size": 40}
    for channel in base["payment"]["channels"]:
        channel["capacity"] = 40
    for warehouse in base["fulfilment"]["warehouses"]:
        warehouse["pickers"] = 8
    kpis = ("net_profit", "marketing_spend", "infrastructure_cost", "operations_cost", "gmv")
    values: dict[float, dict[str, list[float]]] = {}
    for scale in (1.0, 0.25):
        values[scale] = {k: [] for k in kpis}
        for replication in range(10):
            summary = simulate(base | {"scale": scale}, replication=replication).summary
            for k in kpis:
                values[scale][k].append(summary[k])
    for k in kpis:
        full, quarter = values[1.0][k], values[0.25][k]
        assert np.std(full) > 0  # random, so the interval has width
        welch = stats.ttest_ind(full, quarter, equal_var=False)
        low, high = welch.confidence_interval(0.99)
        assert low <= 0 <= high, (k, np.mean(full), np.mean(quarter), low, high)
        diff, *_ = welch_interval(full, quarter)
        assert abs(diff) < 0.05 * abs(np.mean(full)), k


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"costs": {"picker_hour_cny": -5}}, r"costs\.picker_hour_cny"),
        ({"costs": {"fixed_cny": {"development": -1}}}, r"costs\.fixed_cny\.development"),
        (
            {"costs": {"payment_fees": {"nope": {"rate": 0.01}}}},
            r"costs: .*payment_fees\.nope: no payment channel",
        ),
        (
            {"channels": [{"name": "x", "cpc_cny": 1.0}]},
            r"channels\[0\]: give exactly one of budget_cny and clicks",
        ),
        (
            {
                "channels": [
                    {
                        "name": "x",
                        "budget_cny": 10,
                        "cpc_cny": 1.0,
                        "profile": [
                            {"start_s": 0, "end_s": 30, "share": 0.5},
                            {"start_s": 30, "end_s": 60, "share": 0.4},
                        ],
                    }
                ]
            },
            r"channels\[0\]: profile: shares must sum to 1, they sum to 0\.9",
        ),
        (
            {"channels": [{"name": "x", "budget_cny": 10, "cpm_cny": 5.0}]},
            r"cpm_cny and ctr go together",
        ),
        (
            {"channels": [{"name": "x", "budget_cny": 10, "cpc_cny": 1, "segments": {"vip": 1}}]},
            r"channels: .*\[0\]\.segments\.vip: no such segment",
        ),
    ],
)
def test_bad_money_is_a_clear_error(change, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(small(**change))


def test_bad_money_in_a_file_exits_2_naming_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    scenario = small(channels=[{"name": "x", "cpc_cny": 1.0}])
    path.write_text(yaml.safe_dump(scenario))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "bad.yaml" in result.output and "channels" in result.output
    assert "budget_cny" in result.output and "Traceback" not in result.output


def test_money_goes_through_comparisons_and_sweeps():
    """Paired differences of the money KPIs, and money against a swept budget."""
    from simulator.experiment import compare, run_sweep

    a = money_sale()
    b = copy.deepcopy(a)
    b["channels"][0]["budget_cny"] = 1200.0
    table = compare(a, b, replications=3, progress=False)
    for kpi in ("net_profit", "marketing_spend", "traffic_channels.douyin.spend"):
        assert kpi in table.index
    spend = table.loc["traffic_channels.douyin.spend"]
    assert spend["ci_low"] > 0  # twice the budget: more spent, on every replication
    assert table.loc["traffic_channels.wechat.visitors", "difference"] == 0  # untouched
    sweep = run_sweep(
        a, {"channels[0].budget_cny": [300.0, 1200.0]}, replications=2, progress=False
    )
    frame = sweep.table().set_index(["channels[0].budget_cny", "kpi"])["mean"]
    visitors = [frame[(budget, "traffic_channels.douyin.visitors")] for budget in (300.0, 1200.0)]
    assert visitors[1] > visitors[0]
    assert frame[(1200.0, "marketing_spend")] > frame[(300.0, "marketing_spend")]
    assert (300.0, "net_profit") in frame.index


def test_the_evening_pair_differs_only_in_when_the_clicks_are_bought():
    plan = load_scenario(SCENARIOS / "money-618-budget.yaml").model_dump()
    evening = load_scenario(SCENARIOS / "money-618-budget-evening.yaml").model_dump()
    for scenario in (plan, evening):
        for words in ("name", "description", "answers"):  # what the run means, not does
            scenario.pop(words)
        slots = [c.pop("profile") for c in scenario["channels"]]
        assert all(p == slots[0] for p in slots)  # every channel on the same profile
        scenario["slot"] = slots[0][1]
    assert plan["slot"] == {"start_s": 72000, "end_s": 79200, "share": 0.15}
    assert evening["slot"] == {"start_s": 72000, "end_s": 79200, "share": 0.35}
    plan.pop("slot"), evening.pop("slot")
    assert plan == evening
