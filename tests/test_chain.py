"""The whole Double 11 in one run: the chain's links happen, each measured, in order.

double11-chain schedules no failure: the spike, the hero key's expiry, the database,
the application servers, Alipay, East's warehouse and customer service must each be
seen giving way in the run's own measurements, one after the other. The counterfactual
(the same sale with the mutex alone) shows the stampede causes the payment queue, not
only the spike; double11-chain-defended breaks the links it buys defences for.
"""

from __future__ import annotations

import pytest

from simulator import load_scenario, simulate
from simulator.present.report import render_report
from simulator.results.chain import SATURATED, chain_of_causes
from tests.conftest import SCENARIOS, small

SPIKE_S = 600  # the spike's start in hot-key-cache-breakdown, which the chain extends


@pytest.fixture(scope="module")
def chain():
    return simulate(load_scenario(SCENARIOS / "double11-chain.yaml"))


@pytest.fixture(scope="module")
def defended():
    return simulate(load_scenario(SCENARIOS / "double11-chain-defended.yaml"))


@pytest.fixture(scope="module")
def links(chain):
    found = chain_of_causes(chain.summary, chain.timeseries, chain.logistics)
    return {link.component: link for link in found}


def test_the_links_happen_in_causal_order(links):
    order = [
        "traffic",
        "cache",
        "database",
        "application servers",
        "payment: alipay",
        "warehouses",
        "customer service",
    ]
    assert list(links) == order
    times = [links[c].at_s for c in order]
    assert times == sorted(times)
    # the hero key expires 5 s into the spike, and the database fills within a second
    assert SPIKE_S <= links["cache"].at_s <= SPIKE_S + 10
    assert links["database"].at_s - links["cache"].at_s <= 2


def test_the_stampede_fills_the_pool_and_the_servers_turn_users_away(chain, defended):
    """The servers wait on the database, fill up and reject; users refresh.

    The defended sale (the mutex among its defences) meets the same spike with its
    servers never saturated, so the saturation is the stampede's, not the spike's.
    """
    s, ts = chain.summary, chain.timeseries
    assert s["max_concurrent_rebuilds"] >= s["stations"]["database"]["servers"]
    window = ts[(ts.t_s >= SPIKE_S) & (ts.t_s < SPIKE_S + 300)]
    assert (window["gateway_utilisation"] >= SATURATED).sum() >= 10
    assert (defended.timeseries["gateway_utilisation"] >= SATURATED).sum() == 0
    assert window["retries"].sum() > 100  # users refresh the failed and slow pages
    assert s["outcomes"]["rejected"] + s["outcomes"]["error"] > 100


def test_the_stampede_not_only_the_spike_queues_payments(chain):
    """With the mutex alone the same sale queues fewer payments at Alipay."""
    mutex = simulate(load_scenario(SCENARIOS / "double11-chain.yaml", ["cache.rebuild=mutex"]))
    queued = chain.timeseries["payment_queued_alipay"].sum()
    assert mutex.summary["cache_stampede_at_s"] is None
    assert queued > 1.1 * mutex.timeseries["payment_queued_alipay"].sum()
    assert mutex.summary["orders"] > chain.summary["orders"]


def test_east_carries_the_backlog_and_misses_next_day(chain):
    s = chain.summary
    hours = {
        name: s["warehouse_peak_backlog"][name] / per_h
        for name, per_h in s["warehouse_capacity_per_h"].items()
    }
    assert hours["east"] > 1.5 * max(hours["south"], hours["southwest"])
    assert s["next_day_delivery_rate"] < 0.92  # the seeds' floor [002 §02]
    assert s["cs_busiest_hour_wait_s"] > s["cs_target_wait_s"]


def test_the_defences_break_the_links_they_buy(defended, chain):
    s = defended.summary
    links = chain_of_causes(s, defended.timeseries, defended.logistics)
    components = {link.component for link in links}
    assert not components & {"cache", "database", "payment: alipay", "customer service"}
    assert s["cache_stampede_at_s"] is None
    assert s["next_day_delivery_rate"] >= 0.92
    assert s["orders"] > chain.summary["orders"]


def test_the_report_tells_the_chain(chain):
    report = render_report(chain)
    assert 'id="chain"' in report and "Cache gave way first" in report
    table = report.split('id="chain-links"')[1].split("</table>")[0]
    assert table.index("database") < table.index("alipay") < table.index("warehouses")


def test_payments_queue_only_when_every_slot_is_busy():
    """payment_queued_<channel> counts payments that waited for a slot: none with room."""
    narrow = small(duration_s=120)
    for channel in narrow["payment"]["channels"]:
        channel["capacity"] = 1
    roomy = small(duration_s=120)
    for channel in roomy["payment"]["channels"]:
        channel["capacity"] = 1000
    queued = simulate(narrow).timeseries["payment_queued_a"].sum()
    assert queued > 0
    assert simulate(roomy).timeseries["payment_queued_a"].sum() == 0
    assert queued <= simulate(narrow).summary["payment_attempts"]
