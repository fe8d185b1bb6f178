"""Wiring and running one replication of a scenario.

:func:`build` is the one place where the shop is assembled from a scenario: each
component gets its typed config and its named random streams, collaborators are
passed in, and the arrival process is started. :func:`simulate` runs it to the end
(the last session, then the last delivery) and returns a
:class:`~simulator.result.SimulationResult`.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simpy

from simulator.components.cache import CacheTier, NoCache
from simulator.components.database import Database
from simulator.components.fulfilment import Fulfilment
from simulator.components.gateway import Autoscaler, DynamicRate, Gateway, NoGateway
from simulator.components.inventory import Inventory
from simulator.components.payment import PaymentChannel
from simulator.components.routing import Routing
from simulator.components.service import Service
from simulator.components.station import StationStats
from simulator.faults import schedule_faults
from simulator.keys import KeySpace
from simulator.metrics import IntervalCounter
from simulator.resilience import Guard, GuardedDatabase, guarded_call
from simulator.result import SimulationResult, summarise
from simulator.scale import apply_scale
from simulator.scenario.distributions import make_sampler
from simulator.scenario.loader import load_scenario
from simulator.scenario.schema import Scenario
from simulator.session import Refresh, Shop
from simulator.streams import Streams, buffered
from simulator.traffic import arrival_times
from simulator.users import Population

__all__ = ["Campaign", "build", "simulate"]


@dataclass
class Campaign:
    """A wired, runnable replication: the environment, the components and the shop."""

    scenario: Scenario
    env: simpy.Environment
    streams: Streams
    gateway: Gateway | NoGateway
    cache: CacheTier | NoCache
    database: Database
    keys: KeySpace
    inventory: Inventory
    payment: list[PaymentChannel]
    fulfilment: Fulfilment
    shop: Shop
    arrivals: IntervalCounter
    recommendations: Service | None = None
    routing: Routing | None = None
    guards: dict[str, Guard] = field(default_factory=dict)
    autoscaler: Autoscaler | None = None
    dynamic_rate: DynamicRate | None = None
    sessions_ended_at_s: float = 0.0

    def service_stations(self) -> list[StationStats]:
        """Stations that hold requests in simulated time: gateway, database, services, channels."""
        gateway = [self.gateway.stats] if self.gateway.stats else []
        database = [instance.stats for instance in self.database.instances]
        services = [self.recommendations.stats] if self.recommendations else []
        return [*gateway, *database, *services, *(c.stats for c in self.payment)]

    def stations(self) -> list[StationStats]:
        """Every queueing station's statistics, in flow order (warehouses last)."""
        return [*self.service_stations(), *(w.stats for w in self.fulfilment.warehouses)]


def build(scenario: Scenario, seed: int, replication: int = 0) -> Campaign:
    """Assemble the shop for one replication; the arrival process is started.

    The campaign's ``scenario`` is the one actually simulated: ``scale`` applied.
    """
    scenario = apply_scale(scenario)
    env = simpy.Environment()
    streams = Streams(seed, replication)
    interval = scenario.timeseries_interval_s
    spike = scenario.traffic.spike
    gateway = (
        NoGateway()
        if scenario.gateway is None
        else Gateway(
            env, scenario.gateway, streams, interval, spike.start_s if spike is not None else 0.0
        )
    )
    keys = KeySpace(scenario.catalogue)
    database = Database(env, scenario.database, streams, interval, keys)
    guards: dict[str, Guard] = {}
    policies = scenario.resilience
    if policies.database is not None:
        guards["database"] = Guard(env, "database", policies.database, streams, interval)
    # The database as the application servers call it: through its policy, if any.
    called = (
        database if policies.database is None else GuardedDatabase(database, guards["database"])
    )
    cache = (
        NoCache(called, interval)
        if scenario.cache is None
        else CacheTier(
            env,
            scenario.cache,
            keys,
            called,
            streams,
            interval,
            rebuild_delta_s=scenario.database.read_time_ms.average() / 1000,
        )
    )
    recommendations = (
        None
        if scenario.recommendations is None
        else Service(env, "recommendations", scenario.recommendations, streams, interval)
    )
    if policies.recommendations is not None:
        guards["recommendations"] = Guard(
            env,
            "recommendations",
            policies.recommendations,
            streams,
            interval,
            load=gateway.utilisation,
        )
    inventory = Inventory(scenario.inventory, keys.existing, streams)
    payment = [PaymentChannel(env, c, streams, interval) for c in scenario.payment.channels]
    fulfilment = Fulfilment(scenario.fulfilment, streams)
    routing = None if scenario.datacenters is None else Routing(scenario.datacenters, interval)
    shop = Shop(
        env,
        gateway,
        cache,
        called,  # type: ignore[arg-type]  # the same read/write interface
        inventory,
        payment,
        fulfilment,
        interval,
        recommend=None
        if recommendations is None
        else guarded_call(recommendations.call, guards.get("recommendations")),
        routing=routing,
        refresh=[_refresh(segment, streams) for segment in scenario.segments],
        track_recovery=bool(scenario.faults),
    )
    config = scenario.gateway
    campaign = Campaign(
        scenario=scenario,
        env=env,
        streams=streams,
        gateway=gateway,
        cache=cache,
        database=database,
        keys=keys,
        inventory=inventory,
        payment=payment,
        fulfilment=fulfilment,
        shop=shop,
        arrivals=IntervalCounter(interval),
        recommendations=recommendations,
        routing=routing,
        guards=guards,
    )
    if isinstance(gateway, Gateway) and config is not None:
        if config.autoscaling is not None:
            campaign.autoscaler = Autoscaler(env, gateway, config.autoscaling)
        if config.rate_limit is not None and config.rate_limit.dynamic is not None:
            campaign.dynamic_rate = DynamicRate(env, gateway, config.rate_limit)
    population = Population(scenario, streams)
    env.process(_arrive(campaign, population))
    if scenario.warmup_s > 0:
        env.timeout(scenario.warmup_s).callbacks.append(lambda _: _end_warmup(campaign))
    schedule_faults(campaign)
    return campaign


def _refresh(segment: Any, streams: Streams) -> Refresh | None:
    """A segment's refresh habit, with its own streams; None when its users never refresh."""
    habit = segment.retry
    if habit is None:
        return None
    prefix = f"users.{segment.name}.refresh"
    return Refresh(
        probability=habit.probability,
        max_retries=habit.max_retries,
        delay_s=make_sampler(habit.delay_s, streams.generator(f"{prefix}.delay")),
        uniform=buffered(streams.generator(prefix).random),
    )


def _arrive(campaign: Campaign, population: Population) -> Generator[Any, Any, None]:
    """The arrival process: one visit per arrival time."""
    env = campaign.env
    admit, next_user = campaign.shop.admit, population.next_user
    count = campaign.arrivals.add
    times = arrival_times(
        campaign.scenario.traffic,
        campaign.scenario.duration_s,
        campaign.streams.generator("arrivals"),
    )
    for t in times:
        yield env.timeout(t - env.now)
        count(t)
        admit(next_user())
    campaign.shop.close_doors()


def _end_warmup(campaign: Campaign) -> None:
    now = campaign.env.now
    for warehouse in campaign.fulfilment.warehouses:
        warehouse.reset(now)  # settles its future-dated changes up to now first
    for station in campaign.service_stations():
        station.reset(now)


def simulate(
    scenario: Scenario | str | Path | Mapping[str, Any],
    seed: int | None = None,
    replication: int = 0,
) -> SimulationResult:
    """Run one replication of a scenario.

    Args:
        scenario: a Scenario, or anything :func:`~simulator.load_scenario` accepts.
        seed: the run's seed; defaults to the scenario's ``seed``.
        replication: replication index; streams are keyed by it.

    Returns:
        The result, with ``.summary`` (dict) and ``.timeseries`` (DataFrame).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    seed = scenario.seed if seed is None else seed
    campaign = build(scenario, seed, replication)
    env = campaign.env
    env.run(until=campaign.shop.all_done)
    campaign.sessions_ended_at_s = env.now
    # Work whose users stopped waiting may still be under way (payments, requests a
    # gateway serves after their users left, queries past a caller's timeout): let it
    # finish so every station ends empty and its books close.
    while any(station.inside for station in campaign.service_stations()):
        env.step()
    campaign.fulfilment.close()
    return summarise(campaign, scenario, seed, replication)
