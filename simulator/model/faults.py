"""The fault timeline: each fault of the scenario, put on the simulation clock.

A fault changes a component at its start and, when it has a duration, changes it back
at its end. Faults of different kinds on one component combine (a slow and smaller
database); two faults of the same kind on one component should not overlap (the later
end restores the nominal value). Capacity faults multiply, so they compose.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from simulator.measure.recovery import fault_label
from simulator.measure.streams import buffered
from simulator.model.components.cache import CacheTier
from simulator.scenario.protections import (
    CacheNodeDown,
    CapacityReduced,
    ComponentDown,
    DatabasePrimaryFailure,
    DatacenterLoss,
    ErrorRate,
    LatencyMultiplied,
)

if TYPE_CHECKING:
    from simulator.model.campaign import Campaign

__all__ = ["schedule_faults"]


def schedule_faults(campaign: Campaign) -> None:
    """Put the scenario's fault timeline on the clock."""
    env = campaign.env
    start: Callable[[], None]
    end: Callable[[], None]
    seen: dict[str, int] = {}
    for fault in campaign.scenario.faults:
        label = fault_label(fault)
        seen[label] = seen.get(label, 0) + 1
        if isinstance(fault, CacheNodeDown):
            cache = campaign.cache
            assert isinstance(cache, CacheTier)  # the schema checked the level exists
            level = cache.level(fault.level)
            start, end = (
                functools.partial(level.down, fault.node),
                functools.partial(level.up, fault.node),
            )
        elif isinstance(fault, DatabasePrimaryFailure):
            campaign.database.keep_commits(fault.shard)
            _at(env, fault.at_s, functools.partial(campaign.database.fail_primary, fault.shard))
            continue
        elif isinstance(fault, DatacenterLoss):
            _at(env, fault.at_s, functools.partial(_lose_site, campaign, fault.site))
            continue
        elif fault.component.startswith("warehouse."):
            continue  # in the warehouse's roster from the start (see campaign.build)
        else:
            # The error stream is named by the fault, not its place in the list.
            start, end = _component_fault(campaign, fault, f"{label}#{seen[label]}")
        _at(env, fault.at_s, start)
        if fault.duration_s is not None:
            _at(env, fault.at_s + fault.duration_s, end)


def _component_fault(
    campaign: Campaign,
    fault: ComponentDown | CapacityReduced | LatencyMultiplied | ErrorRate,
    name: str,
) -> tuple[Callable[[], None], Callable[[], None]]:
    """What the fault does to each component it names at its start, and at its end."""
    targets = _components(campaign, fault.component)
    if isinstance(fault, CapacityReduced):
        # Capacity faults multiply, so they compose with others and with a lost site.
        def scale(factor: float) -> None:
            for t in targets:
                t.set_capacity_factor(t.capacity_factor * factor)

        return functools.partial(scale, fault.remaining), functools.partial(
            scale, 1 / fault.remaining
        )
    attribute: str
    value: Any
    if isinstance(fault, ErrorRate):
        draw = buffered(campaign.streams.generator(f"faults.{name}.errors").random)
        for t in targets:
            t.error_draw = draw
        attribute, value, nominal = "error_probability", fault.probability, 0.0
    elif isinstance(fault, LatencyMultiplied):
        attribute, value, nominal = "slowdown", fault.factor, 1.0
    else:
        attribute, value, nominal = "down", True, False

    def set_all(v: Any) -> None:
        for t in targets:
            t.set_fault(attribute, v)

    return functools.partial(set_all, value), functools.partial(set_all, nominal)


def _components(campaign: Campaign, name: str) -> list[Any]:
    """The components a fault's ``component`` names (the schema checked it exists)."""
    if name == "gateway":
        return [campaign.gateway]
    if name == "recommendations":
        return [campaign.recommendations]
    if name == "database":
        return campaign.database.instances
    if name.startswith("payment."):
        return [c for c in campaign.payment if f"payment.{c.name}" == name]
    return [i for i in campaign.database.instances if i.name == name]


def _lose_site(campaign: Campaign, site: str) -> None:
    routing = campaign.routing
    assert routing is not None  # the schema checked the site exists, and is lost once
    index = routing.names.index(site)
    before = routing.surviving_share()
    routing.lose(index, campaign.env.now)
    gateway = campaign.gateway
    if gateway.stats is not None:  # the surviving sites' share of the servers is left
        gateway.set_capacity_factor(gateway.capacity_factor * routing.surviving_share() / before)


def _at(env: simpy.Environment, t: float, action: Callable[[], None]) -> None:
    """Run ``action`` at simulated time ``t``."""
    env.timeout(t - env.now).callbacks.append(lambda _: action())
