"""Wiring and running one replication of a scenario.

:func:`build` is the one place where the shop is assembled from a scenario: each
component gets its typed config and its named random streams, collaborators are
passed in, and the arrival process is started. :func:`run` runs it to the end (the
last session, then the last delivery) and hands over a
:class:`~simulator.model.record.RunRecord`, from which the results are made.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import simpy

from simulator.measure.metrics import IntervalCounter
from simulator.measure.streams import Streams, buffered, make_sampler
from simulator.model.channels import ChannelArrivals
from simulator.model.components.cache import CacheTier, NoCache
from simulator.model.components.customer_service import CustomerService
from simulator.model.components.database import Database
from simulator.model.components.fulfilment import Fulfilment
from simulator.model.components.gateway import Autoscaler, DynamicRate, Gateway, NoGateway
from simulator.model.components.inventory import Stock
from simulator.model.components.payment import PaymentChannel, Payments
from simulator.model.components.routing import Routing
from simulator.model.components.service import Service
from simulator.model.components.station import StationStats
from simulator.model.faults import schedule_faults
from simulator.model.handover import hand_over
from simulator.model.keys import KeySpace
from simulator.model.ledger import Ledger
from simulator.model.pricing import Pricing
from simulator.model.record import RunRecord
from simulator.model.resilience import Guard, GuardedDatabase, guarded_call
from simulator.model.scale import apply_scale
from simulator.model.session import Commerce, Refresh, Shop
from simulator.model.traffic import arrival_times
from simulator.model.users import Population
from simulator.scenario.commerce import CouponRain, Presale
from simulator.scenario.protections import CapacityReduced
from simulator.scenario.schema import Scenario

__all__ = ["Campaign", "build", "run"]


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
    stock: Stock
    payments: Payments
    fulfilment: Fulfilment
    shop: Shop
    arrivals: IntervalCounter
    service: CustomerService | None = None
    recommendations: Service | None = None
    routing: Routing | None = None
    guards: dict[str, Guard] = field(default_factory=dict)
    autoscaler: Autoscaler | None = None
    dynamic_rate: DynamicRate | None = None
    channels: list[ChannelArrivals] = field(default_factory=list)
    scale: float = 1.0
    """The declared scale (``scenario`` has it applied)."""
    sessions_ended_at_s: float = 0.0
    clock_events: int = 0  # scheduled by the progress clock, not by the shop
    arriving: int = 0
    """Arrival processes still running; the doors close when none is."""

    def service_stations(self) -> list[StationStats]:
        """Stations that hold requests in simulated time: gateway, database, services, channels."""
        gateway = [self.gateway.stats] if self.gateway.stats else []
        database = [instance.stats for instance in self.database.instances]
        services = [self.recommendations.stats] if self.recommendations else []
        return [*gateway, *database, *services, *(c.stats for c in self.payment)]

    @property
    def payment(self) -> list[PaymentChannel]:
        """The payment channels."""
        return self.payments.channels

    def stations(self) -> list[StationStats]:
        """Every queueing station's statistics, in flow order (warehouses, then service)."""
        after = [w.stats for w in self.fulfilment.warehouses]
        if self.service is not None:
            after.append(self.service.queue.stats)
        return [*self.service_stations(), *after]


def build(
    scenario: Scenario, seed: int, replication: int = 0, keep_orders: bool = False
) -> Campaign:
    """Assemble the shop for one replication; the arrival process is started.

    The campaign's ``scenario`` is the one actually simulated: ``scale`` applied.
    ``keep_orders`` keeps a row per paid order (``SimulationResult.orders``).
    """
    declared_scale = scenario.scale
    scenario = apply_scale(scenario)
    env = simpy.Environment()
    streams = Streams(seed, replication)
    interval = scenario.timeseries_interval_s
    spike = scenario.traffic.spike
    lanes = any(segment.priority_lane for segment in scenario.segments)
    gateway = (
        NoGateway()
        if scenario.gateway is None
        else Gateway(
            env,
            scenario.gateway,
            streams,
            interval,
            spike.start_s if spike is not None else 0.0,
            lanes,
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
            stampede_size=scenario.database.pool_size,
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
    confirm = scenario.payment.async_confirmation_s
    payments = Payments(
        env,
        scenario.payment,
        [
            PaymentChannel(env, c, streams, interval, confirm, lanes)
            for c in scenario.payment.channels
        ],
        interval,
    )
    fulfilment = Fulfilment(
        scenario.fulfilment, streams, scenario.clock_at_start_h, _warehouse_cuts(scenario)
    )
    commerce = _commerce(
        env, scenario, keys, streams, keep_orders, fulfilment.stock_shares(scenario.fulfilment)
    )
    service = (
        None
        if scenario.customer_service is None
        else CustomerService(
            scenario.customer_service, streams, scenario.clock_at_start_h, fulfilment.promise_s
        )
    )
    routing = None if scenario.datacenters is None else Routing(scenario.datacenters, interval)
    shop = Shop(
        env,
        gateway,
        cache,
        called,  # type: ignore[arg-type]  # the same read/write interface
        payments,
        fulfilment,
        commerce,
        interval,
        service=service,
        recommend=None
        if recommendations is None
        else guarded_call(recommendations.call, guards.get("recommendations")),
        routing=routing,
        refresh=[_refresh(segment, streams) for segment in scenario.segments],
        track_recovery=bool(scenario.faults),
        sources=1 + len(scenario.channels),
        stay=None if scenario.experience is None else scenario.experience.stay,
        lanes=[segment.priority_lane for segment in scenario.segments],
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
        stock=commerce.stock,
        payments=payments,
        fulfilment=fulfilment,
        shop=shop,
        arrivals=IntervalCounter(interval),
        service=service,
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
    campaign.scale = declared_scale
    campaign.arriving = 1 + len(scenario.channels)
    env.process(_arrive(campaign, population, _curve_times(campaign)))
    for i, channel in enumerate(scenario.channels):
        arrivals = ChannelArrivals(channel, scenario.duration_s, declared_scale, streams)
        campaign.channels.append(arrivals)
        env.process(_arrive(campaign, Population(scenario, streams, i), arrivals.times()))
    if scenario.warmup_s > 0:
        env.timeout(scenario.warmup_s).callbacks.append(lambda _: _end_warmup(campaign))
    schedule_faults(campaign)
    return campaign


def _warehouse_cuts(scenario: Scenario) -> dict[str, list[tuple[float, float, float]]]:
    """Capacity faults on warehouses, as (start, end, fraction left) per warehouse name.

    They go into the warehouses' rosters at the start, not on the clock: a warehouse
    works out each order's packing time when the order arrives.
    """
    cuts: dict[str, list[tuple[float, float, float]]] = {}
    for fault in scenario.faults:
        if isinstance(fault, CapacityReduced) and fault.component.startswith("warehouse."):
            end = math.inf if fault.duration_s is None else fault.at_s + fault.duration_s
            name = fault.component.removeprefix("warehouse.")
            cuts.setdefault(name, []).append((fault.at_s, end, fault.remaining))
    return cuts


def _initial_stock(
    scenario: Scenario, keys: KeySpace, stock_shares: list[float]
) -> tuple[list[int | None], int]:
    """Units per stock key, and the warehouses each item is split over.

    Keys: each existing item (times each warehouse when split), then one per event.
    """
    inventory = scenario.inventory
    per_item: list[int | None] = [inventory.stock_per_item] * keys.items
    per_item += [
        h.stock if h.stock is not None else inventory.stock_per_item for h in keys.hot_items
    ]
    warehouses = scenario.fulfilment.warehouses
    split = len(warehouses) if inventory.split_across_warehouses else 1
    initial: list[int | None] = []
    for units in per_item:
        if split == 1 or units is None:
            initial += [units] * split
            continue
        # largest remainder: the shares of whole units add up to the item's stock
        exact = [units * share for share in stock_shares]
        parts = [int(x) for x in exact]
        by_remainder = sorted(range(split), key=lambda i: parts[i] - exact[i])
        for i in by_remainder[: units - sum(parts)]:
            parts[i] += 1
        initial += parts
    for event, _ in scenario.event_starts():
        initial.append(None if isinstance(event, CouponRain) else event.stock)
    return initial, split


def _commerce(
    env: simpy.Environment,
    scenario: Scenario,
    keys: KeySpace,
    streams: Streams,
    keep_orders: bool,
    stock_shares: list[float],
) -> Commerce:
    """Stock, coupon quotas, presale timing and the books."""
    initial, split = _initial_stock(scenario, keys, stock_shares)
    stock = Stock(env, scenario.inventory, initial, streams, "inventory")
    events = [event for event, _ in scenario.event_starts()]
    first_event_key = len(initial) - len(events)
    retry = scenario.payment.user_retry
    return Commerce(
        stock=stock,
        ledger=Ledger(
            scenario,
            Pricing(scenario),
            len(initial),
            streams,
            scenario.timeseries_interval_s,
            keep_orders,
        ),
        warehouses=split,
        fallback=scenario.inventory.fallback_to_other_warehouses,
        event_keys=[
            -1 if isinstance(e, CouponRain) else first_event_key + i for i, e in enumerate(events)
        ],
        quotas=[
            Stock(env, e, [e.quota], streams, f"coupons.{e.name}")
            if isinstance(e, CouponRain)
            else None
            for e in events
        ],
        presales=[e if isinstance(e, Presale) else None for e in events],
        final_delay_s=[
            make_sampler(e.final_payment_delay_s, streams.generator(f"presale.{e.name}.final"))
            if isinstance(e, Presale)
            else None
            for e in events
        ],
        forfeit_uniform=buffered(streams.generator("presale.forfeit").random),
        payment_retry=None
        if retry is None
        else Refresh(
            probability=retry.probability,
            max_retries=retry.max_retries,
            delay_s=make_sampler(retry.delay_s, streams.generator("users.payment_retry.delay")),
            uniform=buffered(streams.generator("users.payment_retry").random),
        ),
    )


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


def _curve_times(campaign: Campaign) -> Iterator[float]:
    """The traffic curve's arrival times (the promotion events' bursts included)."""
    return arrival_times(
        campaign.scenario.arrival_traffic(),
        campaign.scenario.duration_s,
        campaign.streams.generator("arrivals"),
    )


def _arrive(
    campaign: Campaign, population: Population, times: Iterator[float]
) -> Generator[Any, Any, None]:
    """An arrival process (the curve's, or a channel's): one visit per arrival time."""
    env = campaign.env
    admit, next_user = campaign.shop.admit, population.next_user
    count = campaign.arrivals.add
    for t in times:
        yield env.timeout(t - env.now)
        count(t)
        admit(next_user(t))
    campaign.arriving -= 1
    if not campaign.arriving:
        campaign.shop.close_doors()


def _clock(campaign: Campaign, report: Callable[[float], None]) -> Generator[Any, Any, None]:
    """Report the clock at each of :data:`PROGRESS_TICKS` even steps up to ``duration_s``.

    A process beside the shop rather than a hook on every event: a run gains a few
    hundred events that read and change nothing of the shop, so its results are the
    same with the clock or without it, and the cost per session does not change. The
    events it schedules are counted in ``clock_events``, which the record's count of
    events leaves out.
    """
    env = campaign.env
    step = campaign.scenario.duration_s / PROGRESS_TICKS
    for tick in range(1, PROGRESS_TICKS + 1):
        campaign.clock_events += 1
        yield env.timeout(max(0.0, tick * step - env.now))  # from t = 0: no drift
        report(env.now)
    campaign.clock_events += 1  # SimPy schedules a process's end as an event too


def _end_warmup(campaign: Campaign) -> None:
    now = campaign.env.now
    for warehouse in campaign.fulfilment.warehouses:
        warehouse.queue.reset(now)  # settles its future-dated changes up to now first
    for station in campaign.service_stations():
        station.reset(now)


PROGRESS_TICKS = 200
"""How many times over ``duration_s`` a run reports its clock to a progress callback."""


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a run, as it was after.

    A run allocates events, requests and generators by the million and frees them by
    reference counting: they form no cycles (``tests/test_simulation.py`` checks
    that a run leaves next to no cyclic garbage). The collector would still walk every
    live object again and again, and a run keeps many alive (a retry storm queues tens
    of thousands of requests, each with its timer): it cost up to half of a run's time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run(
    scenario: Scenario,
    seed: int,
    replication: int = 0,
    keep_orders: bool = False,
    progress: Callable[[float], None] | None = None,
) -> RunRecord:
    """Run one replication of a scenario to its end and hand over its record.

    Args:
        scenario: the scenario as declared (``scale`` is applied here).
        seed: the run's seed.
        replication: replication index; streams are keyed by it.
        keep_orders: keep one row per paid order in the record.
        progress: called with the simulated clock (s) :data:`PROGRESS_TICKS` times over
            ``duration_s``, for a progress bar; None: no clock process at all.
    """
    with collector_paused():
        campaign = build(scenario, seed, replication, keep_orders)
        _run(campaign, progress)
        return hand_over(campaign, scenario, seed, replication)


def _run(campaign: Campaign, progress: Callable[[float], None] | None) -> None:
    """Run the events to the end of the sale and of the work it left, then close the books."""
    env = campaign.env
    if progress is not None:
        campaign.clock_events = 1  # the clock process's start is an event of its own
        env.process(_clock(campaign, progress))
    env.run(until=campaign.shop.all_done)
    campaign.sessions_ended_at_s = env.now
    # Work whose users stopped waiting may still be under way (payments, requests a
    # gateway serves after their users left, queries past a caller's timeout): let it
    # finish so every station ends empty and its books close.
    while any(station.inside for station in campaign.service_stations()):
        env.step()
    campaign.fulfilment.close()
    if campaign.service is not None:
        campaign.service.close(campaign.fulfilment.tracking, campaign.scenario.warmup_s)
    campaign.stock.finish()
    for quota in campaign.shop.commerce.quotas:
        if quota is not None:
            quota.finish()
