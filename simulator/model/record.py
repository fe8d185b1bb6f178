"""What one finished replication hands over: the record the results are made from.

The model's components keep their measurements as they go (counts, tallies, per-interval
series; see :mod:`simulator.measure.metrics`). When a replication ends,
:func:`hand_over` closes their books and copies what the outputs need into one
:class:`RunRecord`: plain numbers, measurement objects and arrays, grouped by the part
of the shop that measured them. The results (:mod:`simulator.results`) read this record
and nothing else of the model, so a change to how the shop is wired never ripples into
``summary.json`` or the report, and a new KPI starts here: add the measurement to the
record, then the figure to the summary.

Two conventions hold throughout:

- Per-interval arrays have the length :attr:`RunRecord.intervals` (the sale's duration,
  or longer if stations were still busy after it), each interval
  ``scenario.timeseries_interval_s`` wide; per-hour ones (:class:`Logistics`) have
  :attr:`Logistics.hours`.
- Money the model books itself (:attr:`Sales.figures`) is already at the declared size
  (the scale's inverse applied); counts are the simulated ones. :attr:`RunRecord.money`
  is the factor, for the per-interval GMV.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.measure.metrics import IntervalCounter, IntervalQuantiles, Tally, ratio
from simulator.model.components.gateway import NoGateway
from simulator.model.components.roster import HOUR_S
from simulator.model.components.tracking import BIN_S
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from simulator.model.campaign import Campaign

__all__ = [
    "HOUR_S",
    "Breaker",
    "Cache",
    "Call",
    "Channel",
    "Database",
    "Delivery",
    "Gateway",
    "Logistics",
    "Payments",
    "RunRecord",
    "Sales",
    "Sessions",
    "hand_over",
]


@dataclass(frozen=True)
class Sessions:
    """The shop's sessions: outcomes, latencies, refreshes and coupon claims."""

    outcomes: list[int]
    """Sessions per :class:`~simulator.measure.outcomes.Outcome`, indexed by it."""
    outcome_series: list[IntervalCounter]
    """Per outcome, sessions ending in each interval."""
    arrivals: IntervalCounter
    checkout_latency: Tally
    """From placing an order to its end, ms."""
    page_latency: Tally
    """Product page latency, s."""
    checkout_series: IntervalQuantiles
    """Checkout latency quantiles per interval, ms."""
    refreshes: IntervalCounter
    """Users' refreshes after a failed or slow request."""
    checkout_windows: list[Tally]
    """Checkout latency per small window (for recovery times); empty without faults."""
    window_s: float
    """The small windows' width."""
    claims: int
    claim_failures: int


@dataclass(frozen=True)
class Level:
    """One cache level's hits and misses per interval."""

    name: str
    hits: IntervalCounter
    misses: IntervalCounter


@dataclass(frozen=True)
class Cache:
    """The cache tier: hits, rebuilds and the defences' counts (zeros with no cache)."""

    hits: IntervalCounter
    misses: IntervalCounter
    rebuilds: IntervalCounter
    levels: list[Level]
    hit_count: int
    miss_count: int
    stale_hits: int
    early_recomputes: int
    coalesced_waits: int
    blocked_by_bloom_filter: int
    missing_key_lookups: int
    missing_key_db_reads: int
    max_concurrent_rebuilds: int
    max_rebuilds_key: str | None
    """The stampeded key's name in outputs (``item 12``, a hot item's name)."""
    max_rebuilds_at_s: float | None


@dataclass(frozen=True)
class Database:
    """Queries, pool waits and failovers, over all shards and instances."""

    queries: IntervalCounter
    started: IntervalCounter
    """Queries that got a connection, per interval."""
    pool_wait_s: IntervalCounter
    """Seconds waited for a connection, per interval."""
    pool_timeouts: IntervalCounter
    reads: int
    writes: int
    lost_writes: int
    failures: list[tuple[float, float]]
    """(primary died at, standby serving at) per failover."""
    utilisation: list[np.ndarray]
    """Per instance, the fraction of connections busy in each interval."""


@dataclass(frozen=True)
class Gateway:
    """The application servers: shedding, autoscaling and utilisation."""

    shed: IntervalCounter | None
    """Requests shed per interval (None with no gateway)."""
    shed_count: int
    first_shed_s: float | None
    peak_instances: int | None
    """The most instances running (None without autoscaling)."""
    utilisation: np.ndarray | None
    workers: np.ndarray | None
    """Mean workers per interval."""
    workers_per_instance: int


@dataclass(frozen=True)
class Breaker:
    """A circuit breaker's time open."""

    open_s: float
    times_opened: int
    open_by_interval: list[float]
    """Seconds open in each interval (as long as the breaker saw intervals)."""


@dataclass(frozen=True)
class Call:
    """A guarded call (database, recommendations): its policy's counts."""

    name: str
    retries: IntervalCounter
    retry_count: int
    failed_fast: int
    timeouts: int
    degraded: int
    breaker: Breaker | None


@dataclass(frozen=True)
class Channel:
    """A payment channel's attempts and failures."""

    name: str
    attempts: IntervalCounter
    successes: IntervalCounter
    timeouts: int
    declined: int
    unavailable: int
    lost_to_outage: int
    confirmed_late: int


@dataclass(frozen=True)
class Payments:
    """The payment channels, and the failover between them."""

    channels: list[Channel]
    rerouted: int
    switches: list[tuple[str, float, float]]
    """(channel switched to, breaker opened at, switched at) per failover."""


@dataclass(frozen=True)
class Deduction:
    """How a counted resource's takes went (stock, or a coupon quota)."""

    mode: str
    refused: int
    leases_expired: int
    grants_not_exclusive: int
    lock_timeouts: int
    queue_peak: int
    shortfalls_found: int

    def figures(self) -> dict[str, Any]:
        """As in ``summary.json``."""
        return asdict(self)


@dataclass(frozen=True)
class Quota:
    """A coupon rain's quota."""

    event: str
    issued: int
    quota: int
    over_issued: int
    deduction: Deduction


@dataclass(frozen=True)
class Sales:
    """The books: GMV, the business figures, stock and coupons."""

    gmv: float
    """At the simulated size."""
    gmv_series: IntervalCounter
    figures: dict[str, Any]
    """The ledger's business KPIs (discounts, margin, refunds, lost GMV...), declared size."""
    funnel: list[list[int]]
    """Per segment: browse, cart, order, paid."""
    orders: pd.DataFrame | None
    """One row per paid order, when kept."""
    sold_out_at_s: dict[str, float | None]
    """Event slots and hot items: when the last unit went."""
    items_sold_out: int
    stock_units_sold: int | None
    deduction: Deduction
    quotas: list[Quota]


@dataclass(frozen=True)
class Warehouse:
    """One warehouse's figures and hourly series."""

    name: str
    peak_backlog: int
    orders: int
    capacity_per_h: float | None
    backlog_cleared_at_s: float
    received: np.ndarray
    packed: np.ndarray
    shipped: np.ndarray
    pickers: list[int]


@dataclass(frozen=True)
class Delivery:
    """Promises kept, delivery and shipping times."""

    on_time: int
    next_day: int
    shipped_in_72h: int
    delivery_h: Tally
    ship_h: Tally
    shipped_from_other_region: int


@dataclass(frozen=True)
class Logistics:
    """What follows payment, per hour from t = 0 to the last delivery or enquiry."""

    hours: int
    warehouses: list[Warehouse]
    delivery: Delivery
    delivered: np.ndarray
    tracking_lag_h: dict[str, float] | None
    """p50, p95, mean and max of the tracking lag (None without tracking)."""
    tracking_bins: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    """Counts, lag (s) and backlog per tracking bin, over the hours (None without)."""
    service: dict[str, Any] | None
    """Customer service's KPIs (None without customer service)."""
    service_hourly: dict[str, np.ndarray]
    service_wait_s: np.ndarray | None
    """Per hour, the total wait of the enquiries answered."""
    agents: list[int] | None


@dataclass(frozen=True)
class RunRecord:
    """Everything the results of one replication are made from.

    Attributes:
        scenario: the scenario as simulated (``scale`` applied).
        declared: the scenario as given.
        seed: the run's seed.
        replication: the replication index.
        money: factor from simulated to declared money (the scale's inverse).
        intervals: the per-interval arrays' length.
        end_s: when the last station went idle.
        sessions_ended_at_s: when the last session ended.
        last_delivery_s: when the last parcel arrived.
        events: events SimPy scheduled (None if its counter is not there).
        stations: each queueing station's figures by name (waits, utilisation...).
        recovery_faults: whether checkout windows were kept for recovery times.
    """

    scenario: Scenario
    declared: Scenario
    seed: int
    replication: int
    money: float
    intervals: int
    end_s: float
    sessions_ended_at_s: float
    last_delivery_s: float
    events: int | None
    stations: dict[str, dict[str, Any]]
    sessions: Sessions
    cache: Cache
    database: Database
    gateway: Gateway
    calls: list[Call]
    payments: Payments
    sales: Sales
    logistics: Logistics
    stranded: IntervalCounter | None
    """Requests sent to a lost datacenter, per interval (None without datacenters)."""
    stranded_count: int
    stranded_until_s: dict[str, float]
    """Per site, the last request stranded there."""


def hand_over(campaign: Campaign, declared: Scenario, seed: int, replication: int) -> RunRecord:
    """Close a finished campaign's books and copy its measurements into a record."""
    scenario, shop, env = campaign.scenario, campaign.shop, campaign.env
    end_s = env.now
    interval = scenario.timeseries_interval_s
    n = max(math.ceil(end_s / interval), math.ceil(scenario.duration_s / interval))
    stations = {s.name: s.summary(end_s) for s in campaign.service_stations()}
    queues = [w.queue for w in campaign.fulfilment.warehouses]
    if campaign.service is not None:
        queues.append(campaign.service.queue)
    for queue in queues:
        stations[queue.stats.name] = queue.stats.summary(queue.closed_at)
    calls = []
    for guard in campaign.guards.values():
        breaker = guard.breaker
        if breaker is not None:
            breaker.close_books(end_s)
        calls.append(
            Call(
                guard.name,
                guard.retries,
                guard.retry_count,
                guard.failed_fast,
                guard.timeouts,
                guard.skipped,
                None
                if breaker is None
                else Breaker(breaker.open_s, breaker.times_opened, breaker.open_by_interval),
            )
        )
    routing = campaign.routing
    return RunRecord(
        scenario=scenario,
        declared=declared,
        seed=seed,
        replication=replication,
        money=1 / declared.scale,
        intervals=n,
        end_s=end_s,
        sessions_ended_at_s=campaign.sessions_ended_at_s,
        last_delivery_s=campaign.fulfilment.last_delivery_s,
        events=_events_scheduled(env),
        stations=stations,
        sessions=Sessions(
            outcomes=list(shop.outcomes),
            outcome_series=shop.outcome_series,
            arrivals=campaign.arrivals,
            checkout_latency=shop.checkout_latency,
            page_latency=shop.page_latency,
            checkout_series=shop.checkout_series,
            refreshes=shop.refreshes,
            checkout_windows=shop.checkout_windows or [],
            window_s=shop.window_s,
            claims=shop.claims,
            claim_failures=shop.claim_failures,
        ),
        cache=_cache(campaign),
        database=_database(campaign, end_s, n),
        gateway=_gateway(campaign, end_s, n),
        calls=calls,
        payments=Payments(
            channels=[
                Channel(
                    c.name,
                    c.attempts,
                    c.successes,
                    c.timeouts,
                    c.declined,
                    c.unavailable,
                    len(c.lost_to_outage),
                    c.confirmed_late,
                )
                for c in campaign.payment
            ],
            rerouted=campaign.payments.rerouted,
            switches=list(campaign.payments.switches),
        ),
        sales=_sales(campaign, 1 / declared.scale),
        logistics=_logistics(campaign),
        stranded=None if routing is None else routing.stranded,
        stranded_count=0 if routing is None else routing.stranded_count,
        stranded_until_s={}
        if routing is None
        else {
            name: t
            for name, t in zip(routing.names, routing.last_stranded_s, strict=True)
            if not math.isnan(t)
        },
    )


def _events_scheduled(env: Any) -> int | None:
    """Events SimPy scheduled in the run (its private event-id counter; None if absent)."""
    counter = getattr(env, "_eid", None)
    return next(counter) if counter is not None else None


def _cache(campaign: Campaign) -> Cache:
    cache, keys = campaign.cache, campaign.keys
    stampeded = cache.max_rebuilds_key
    return Cache(
        hits=cache.hits,
        misses=cache.misses,
        rebuilds=cache.rebuilds,
        levels=[Level(level.name, level.hits, level.misses) for level in cache.levels],
        hit_count=cache.hit_count,
        miss_count=cache.miss_count,
        stale_hits=cache.stale_hits,
        early_recomputes=cache.early_recomputes,
        coalesced_waits=cache.coalesced,
        blocked_by_bloom_filter=cache.blocked,
        missing_key_lookups=cache.missing_lookups,
        missing_key_db_reads=cache.missing_rebuilds,
        max_concurrent_rebuilds=cache.max_concurrent_rebuilds,
        max_rebuilds_key=None if stampeded is None else keys.label(stampeded),
        max_rebuilds_at_s=cache.max_rebuilds_at_s,
    )


def _database(campaign: Campaign, end_s: float, n: int) -> Database:
    database = campaign.database
    return Database(
        queries=database.queries,
        started=database.started,
        pool_wait_s=database.pool_wait_s,
        pool_timeouts=database.pool_timeouts,
        reads=database.reads,
        writes=database.writes,
        lost_writes=database.lost_writes,
        failures=list(database.failures),
        utilisation=[
            np.array(i.stats.utilisation_by_interval(end_s, n)) for i in database.instances
        ],
    )


def _gateway(campaign: Campaign, end_s: float, n: int) -> Gateway:
    gateway = campaign.gateway
    if isinstance(gateway, NoGateway):
        return Gateway(None, 0, None, None, None, None, 1)
    stats = gateway.stats
    return Gateway(
        shed=gateway.shed,
        shed_count=gateway.shed_count,
        first_shed_s=gateway.first_shed_s,
        peak_instances=None if campaign.autoscaler is None else gateway.peak_instances,
        utilisation=np.array(stats.utilisation_by_interval(end_s, n)),
        workers=np.array(stats.servers_by_interval(n)),
        workers_per_instance=gateway.workers_per_instance,
    )


def _deduction(stock: Any) -> Deduction:
    return Deduction(
        mode=stock.mode,
        refused=stock.refused,
        leases_expired=stock.leases_expired,
        grants_not_exclusive=stock.grants_not_exclusive,
        lock_timeouts=stock.lock_timeouts,
        queue_peak=stock.queue_peak,
        shortfalls_found=stock.shortfalls,
    )


def _sales(campaign: Campaign, money: float) -> Sales:
    scenario, shop, stock = campaign.scenario, campaign.shop, campaign.stock
    ledger, commerce = shop.ledger, shop.commerce
    events = scenario.event_starts()
    sold_out_at = {
        event.name: stock.sold_out_at.get(key)
        for (event, _), key in zip(events, commerce.event_keys, strict=True)
        if key >= 0
    }
    split = commerce.warehouses
    for h, hot in enumerate(campaign.keys.hot_names):
        first = (campaign.keys.hot_start + h) * split
        keys = range(first, first + split)
        if stock.initial[first] is not None:  # counted in every warehouse or in none
            times = [stock.sold_out_at.get(k) for k in keys]
            sold_out_at[hot] = None if None in times else max(t for t in times if t is not None)
    counted = [t for n, t in zip(stock.initial, stock.taken, strict=True) if n is not None]
    return Sales(
        gmv=ledger.gmv,
        gmv_series=ledger.gmv_series,
        figures=ledger.figures(
            stock.oversold(), scenario.inventory.oversell_compensation_cny, money
        ),
        funnel=ledger.funnel,
        orders=ledger.order_table(),
        sold_out_at_s=sold_out_at,
        items_sold_out=stock.sold_out_keys(),
        stock_units_sold=sum(counted) if counted else None,
        deduction=_deduction(stock),
        quotas=[
            Quota(
                event.name,
                sum(quota.taken),
                sum(units or 0 for units in quota.initial),
                sum(quota.oversold()),
                _deduction(quota),
            )
            for (event, _), quota in zip(events, commerce.quotas, strict=True)
            if quota is not None
        ],
    )


def _logistics(campaign: Campaign) -> Logistics:
    fulfilment, service = campaign.fulfilment, campaign.service
    end = max(fulfilment.last_delivery_s, campaign.env.now)
    if service is not None:
        end = max(end, service.queue.closed_at)
    n = max(1, math.ceil(end / HOUR_S))
    t = np.arange(n) * HOUR_S
    tracking = fulfilment.tracking
    bins = None
    lag = None
    if tracking is not None:
        lag = {
            "p50": tracking.lag_quantile(0.5) / HOUR_S,
            "p95": tracking.lag_quantile(0.95) / HOUR_S,
            "mean": tracking.lag_mean() / HOUR_S,
            "max": float(tracking.lag_s.max(initial=0.0)) / HOUR_S,
        }
        size = n * int(HOUR_S / BIN_S)
        counts, lags, backlog = np.zeros(size), np.zeros(size), np.zeros(size)
        k = min(size, len(tracking.counts))
        counts[:k], lags[:k], backlog[:k] = (
            tracking.counts[:k],
            tracking.lag_s[:k],
            tracking.backlog[:k],
        )
        bins = (counts, lags, backlog)
    return Logistics(
        hours=n,
        warehouses=[
            Warehouse(
                name=w.name,
                peak_backlog=w.stats.peak_inside,
                orders=w.stats.arrivals,
                capacity_per_h=ratio(w.roster.most, w.hours_per_order),
                backlog_cleared_at_s=w.queue.closed_at,
                received=w.received.padded(n),
                packed=w.packed.padded(n),
                shipped=w.shipped.padded(n),
                pickers=[w.roster.on_duty(x) for x in t],
            )
            for w in fulfilment.warehouses
        ],
        delivery=Delivery(
            on_time=fulfilment.on_time,
            next_day=fulfilment.next_day,
            shipped_in_72h=fulfilment.shipped_in_72h,
            delivery_h=fulfilment.delivery_h,
            ship_h=fulfilment.ship_h,
            shipped_from_other_region=fulfilment.away,
        ),
        delivered=fulfilment.delivered.padded(n),
        tracking_lag_h=lag,
        tracking_bins=bins,
        service=None if service is None else service.figures(),
        service_hourly={}
        if service is None
        else {name: counter.padded(n) for name, counter in service.hourly.items()},
        service_wait_s=None if service is None else service.hourly_wait.padded(n),
        agents=None if service is None else [service.queue.roster.on_duty(x) for x in t],
    )
