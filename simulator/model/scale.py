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

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from simulator.scenario.commerce import Deduction
from simulator.scenario.schema import Scenario

__all__ = ["ScaleNote", "apply_scale", "scale_notes", "scaled"]

# A rounded count is reported when it misses the scaled value by more than this share.
_ROUNDING_TOLERANCE = 0.05


@dataclass(frozen=True, slots=True)
class ScaleNote:
    """Something the scale changed that does not stay comparable with the full size."""

    field: str  # the scenario path it concerns, e.g. ``gateway.workers``
    note: str


def _fraction(scale: float) -> str:
    """1/10 rather than 0.1."""
    f = Fraction(scale).limit_denominator(10_000)
    return f"1/{f.denominator}" if f.numerator == 1 else f"{float(scale):g}"


class _Scaler:
    """Divides a scenario's sizes by k, noting every count that does not divide evenly."""

    def __init__(self, scale: float) -> None:
        self.s = scale
        self.notes: list[ScaleNote] = []

    def count(self, holder: dict[str, Any], key: str, path: str, least: int = 1) -> None:
        """``holder[key]`` times the scale, rounded, at least ``least`` (0 stays 0)."""
        declared = holder[key]
        if declared is None or declared == 0:
            return
        exact = declared * self.s
        holder[key] = max(least, round(exact))
        off = holder[key] / exact - 1
        change = f"{declared} -> {holder[key]} ({declared} x {_fraction(self.s)} = {exact:.3g})"
        if abs(off) > _ROUNDING_TOLERANCE:
            self.note(
                path,
                f"{change}: {off:+.0%} against the scaled size, so its load is not the "
                "full-size one",
            )
        elif holder[key] == 1 and least == 1 and declared > 1:
            self.note(
                path,
                f"{change}: a single server, whose queue waits longest of any pool at the "
                "same load",
            )

    def note(self, field: str, note: str) -> None:
        self.notes.append(ScaleNote(field, note))


def _scale_gateway(gateway: dict[str, Any], scaler: _Scaler) -> None:
    """Workers and queue limit, and the protections' rates: instance counts are kept."""
    s = scaler.s
    scaling = gateway["autoscaling"]
    if scaling is None:
        scaler.count(gateway, "workers", "gateway.workers")
    else:
        instances = gateway["workers"] // scaling["workers_per_instance"]
        scaler.count(scaling, "workers_per_instance", "gateway.autoscaling.workers_per_instance")
        gateway["workers"] = instances * scaling["workers_per_instance"]
    if gateway["queue_limit"] is not None:
        scaler.count(gateway, "queue_limit", "gateway.queue_limit", least=0)
    for protection in (gateway["rate_limit"], gateway["peak_shaving"]):
        if protection is not None:
            protection["rate_per_s"] *= s
    limit = gateway["rate_limit"]
    if limit is not None and limit["burst"] is not None:
        scaler.count(limit, "burst", "gateway.rate_limit.burst")


def apply_scale(scenario: Scenario) -> Scenario:
    """The scenario at its ``scale``, with scale reset to 1 (unchanged when it is 1)."""
    return scaled(scenario)[0]


def scale_notes(scenario: Scenario) -> list[ScaleNote]:
    """What the scenario's ``scale`` changes that is not comparable with full size."""
    return scaled(scenario)[1]


def scaled(scenario: Scenario) -> tuple[Scenario, list[ScaleNote]]:
    """The scenario at its ``scale`` (scale reset to 1), and the scale's notes.

    Empty notes at scale 1. Otherwise: every count that rounds more than 5% away from
    its scaled value (24 workers at 1/10 are 2, not 2.4), then the effects that no
    rounding causes: queues pool fewer servers, hot keys are read less often (smaller
    stampedes), race windows see fewer takers (less overselling and over-issue).
    """
    s = scenario.scale
    if s == 1:
        return scenario, []
    k = _fraction(s)
    scaler = _Scaler(s)
    data: dict[str, Any] = scenario.model_dump(mode="json")
    data["scale"] = 1.0
    data["traffic"]["baseline_per_s"] *= s
    if data["traffic"]["replay"] is not None:
        data["traffic"]["replay"]["multiplier"] *= s
    if data["gateway"] is not None:
        _scale_gateway(data["gateway"], scaler)
    if data["recommendations"] is not None:
        scaler.count(data["recommendations"], "servers", "recommendations.servers")
    if data["cache"] is not None:
        for level in data["cache"]["levels"]:
            level["ttl_s"] /= s
        if data["cache"]["empty_result_ttl_s"] is not None:
            data["cache"]["empty_result_ttl_s"] /= s
    database = data["database"]
    scaler.count(database, "pool_size", "database.pool_size")
    if database["contention_knee"] is not None:
        # n - knee shrinks with the pool, so the slope grows to keep the slowdown at a
        # given utilisation (exactly so when the knee divides into whole queries).
        scaler.count(database, "contention_knee", "database.contention_knee")
        database["contention_slope"] /= s
    scaler.count(data["inventory"], "stock_per_item", "inventory.stock_per_item", least=0)
    for i, hot in enumerate(data["catalogue"]["hot_items"]):
        scaler.count(hot, "stock", f"catalogue.hot_items[{i}].stock", least=0)
    promotions = data["promotions"]
    for kind in ("flash_sales", "presales"):
        for i, event in enumerate(promotions[kind]):
            scaler.count(event, "stock", f"promotions.{kind}[{i}].stock", least=0)
    for i, rain in enumerate(promotions["coupon_rains"]):
        scaler.count(rain, "quota", f"promotions.coupon_rains[{i}].quota", least=0)
    for i, channel in enumerate(data["payment"]["channels"]):
        scaler.count(channel, "capacity", f"payment.channels[{i}].capacity")
    fulfilment = data["fulfilment"]
    staffed = [(f"fulfilment.warehouses[{i}]", w) for i, w in enumerate(fulfilment["warehouses"])]
    if data["customer_service"] is not None:
        staffed.append(("customer_service", data["customer_service"]))
    for path, unit in staffed:
        base = "pickers" if "pickers" in unit else "agents"
        scaler.count(unit, base, f"{path}.{base}")
        for kind in ("shifts", "surge"):
            for i, shift in enumerate(unit[kind]):
                scaler.count(shift, "staff", f"{path}.{kind}[{i}].staff")
    for i, warehouse in enumerate(fulfilment["warehouses"]):
        path = f"fulfilment.warehouses[{i}].capacity_per_pickup"
        scaler.count(warehouse, "capacity_per_pickup", path)
    if fulfilment["tracking"] is not None:
        fulfilment["tracking"]["throughput_per_s"] *= s
    scaler.note(
        "scale",
        f"every queue has {k} of its servers: at the same utilisation fewer servers pool "
        "less, so waits and latency tails (p95, p99) are longer than at full size and are "
        "not comparable with it (Erlang C)",
    )
    _behaviour_notes(scenario, scaler, k)
    return Scenario.model_validate(data), scaler.notes


def _behaviour_notes(scenario: Scenario, scaler: _Scaler, k: str) -> None:
    """The effects of fewer users per second that no rounding explains."""
    if scenario.cache is not None:
        scaler.note(
            "cache",
            f"cache keys are not scaled: each key is read at {k} of its full-size rate (its "
            "TTL is stretched to keep the hit ratio), so the reads that find a hot key "
            "expired at once -- a stampede (max_concurrent_rebuilds) and the database "
            f"load it brings -- shrink to about {k} of the full-size ones",
        )
    promotions = scenario.promotions
    stocked = (
        scenario.inventory.stock_per_item is not None
        or any(hot.stock is not None for hot in scenario.catalogue.hot_items)
        or promotions.flash_sales
        or promotions.presales
    )
    racing: list[tuple[str, Deduction]] = [("inventory", scenario.inventory)] if stocked else []
    racing += [
        (f"promotions.coupon_rains[{i}]", rain) for i, rain in enumerate(promotions.coupon_rains)
    ]
    for path, counted in racing:
        if counted.deduction != "atomic":
            scaler.note(
                f"{path}.deduction",
                f"{counted.deduction} deduction: its race windows and queue lags keep their "
                f"length while takers per second fall to {k}, so fewer takers overlap in "
                "one window: overselling and over-issue, as a share of the stock or quota, "
                "are smaller than at full size",
            )
