"""Simulating a big sale at a smaller size: the ``scale`` setting.

A Double-11-size sale has millions of sessions a minute; a laptop simulates tens of
thousands a second. ``scale: 1/k`` simulates the same sale k times smaller: arrival
rates, capacities (workers, queue limits, connections, channel slots, pickers and
agents on every shift, pickup capacities, the tracking feed's throughput), stock
and coupon quotas are divided by k, so every station sees the same utilisation (rate
limits and waiting rooms let in k times fewer requests; autoscaling keeps its instance counts,
each with k times fewer workers); cache TTLs are multiplied by k, so each key, now
requested k times less often, keeps its hit ratio (the hit ratio of a key with request
rate r and TTL T depends on r*T only; an LRU level's capacity is kept, since its
characteristic time scales the same way). The database's contention knee is divided
like its pool and its slope raised to match, so a query slows the same at the same
utilisation. Money totals are multiplied back by k in the results. Cache keys, warm-up,
Bloom filter, fault times and users' retry habits are not scaled.

What stays stable: ratios and rates per session (conversion, outcome shares, cache hit
ratio, payment success, on-time delivery, utilisations). What does not: anything that
depends on the number of servers rather than their load. With k times fewer servers
each queue pools less, so waits and tail latencies grow (Erlang C at the same
utilisation rises as the server count falls), and capacities are rounded to whole
servers. Use scale 1 for latency tails and failure-mode timing.
"""

from __future__ import annotations

from typing import Any

from simulator.scenario.schema import Scenario

__all__ = ["apply_scale"]


def _servers(count: int, scale: float) -> int:
    return max(1, round(count * scale))


def _scale_gateway(gateway: dict[str, Any], s: float) -> None:
    """Workers and queue limit, and the protections' rates: instance counts are kept."""
    scaling = gateway["autoscaling"]
    if scaling is None:
        gateway["workers"] = _servers(gateway["workers"], s)
    else:
        instances = gateway["workers"] // scaling["workers_per_instance"]
        scaling["workers_per_instance"] = _servers(scaling["workers_per_instance"], s)
        gateway["workers"] = instances * scaling["workers_per_instance"]
    if gateway["queue_limit"] is not None:
        gateway["queue_limit"] = max(0, round(gateway["queue_limit"] * s))
    for protection in (gateway["rate_limit"], gateway["peak_shaving"]):
        if protection is not None:
            protection["rate_per_s"] *= s
    limit = gateway["rate_limit"]
    if limit is not None and limit["burst"] is not None:
        limit["burst"] = max(1, round(limit["burst"] * s))


def apply_scale(scenario: Scenario) -> Scenario:
    """The scenario at its ``scale``, with scale reset to 1 (unchanged when it is 1)."""
    s = scenario.scale
    if s == 1:
        return scenario
    data: dict[str, Any] = scenario.model_dump(mode="json")
    data["scale"] = 1.0
    data["traffic"]["baseline_per_s"] *= s
    if data["gateway"] is not None:
        _scale_gateway(data["gateway"], s)
    if data["recommendations"] is not None:
        data["recommendations"]["servers"] = _servers(data["recommendations"]["servers"], s)
    if data["cache"] is not None:
        for level in data["cache"]["levels"]:
            level["ttl_s"] /= s
        if data["cache"]["empty_result_ttl_s"] is not None:
            data["cache"]["empty_result_ttl_s"] /= s
    database = data["database"]
    database["pool_size"] = _servers(database["pool_size"], s)
    if database["contention_knee"] is not None:
        # n - knee shrinks with the pool, so the slope grows to keep the slowdown at a
        # given utilisation (exactly so when the knee divides into whole queries).
        database["contention_knee"] = _servers(database["contention_knee"], s)
        database["contention_slope"] /= s
    if data["inventory"]["stock_per_item"] is not None:
        data["inventory"]["stock_per_item"] = round(data["inventory"]["stock_per_item"] * s)
    for hot in data["catalogue"]["hot_items"]:
        if hot["stock"] is not None:
            hot["stock"] = round(hot["stock"] * s)
    promotions = data["promotions"]
    for event in (*promotions["flash_sales"], *promotions["presales"]):
        event["stock"] = round(event["stock"] * s)
    for rain in promotions["coupon_rains"]:
        rain["quota"] = round(rain["quota"] * s)
    for channel in data["payment"]["channels"]:
        channel["capacity"] = _servers(channel["capacity"], s)
    fulfilment = data["fulfilment"]
    for staffed in (*fulfilment["warehouses"], data["customer_service"]):
        if staffed is None:
            continue
        base = "pickers" if "pickers" in staffed else "agents"
        staffed[base] = _staff(staffed[base], s)
        for shift in (*staffed["shifts"], *staffed["surge"]):
            shift["staff"] = _staff(shift["staff"], s)
    for warehouse in fulfilment["warehouses"]:
        if warehouse["capacity_per_pickup"] is not None:
            warehouse["capacity_per_pickup"] = _servers(warehouse["capacity_per_pickup"], s)
    if fulfilment["tracking"] is not None:
        fulfilment["tracking"]["throughput_per_s"] *= s
    return Scenario.model_validate(data)


def _staff(count: int, scale: float) -> int:
    """People on duty at the scale: none stays none (a closed shift), else at least one."""
    return 0 if count == 0 else _servers(count, scale)
