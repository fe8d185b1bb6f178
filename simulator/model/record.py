"""What one finished replication hands over: the record the results are made from.

The model's components keep their measurements as they go (counts, tallies, per-interval
series; see :mod:`simulator.measure.metrics`). When a replication ends,
:func:`~simulator.model.handover.hand_over` closes their books and copies what the
outputs need into one :class:`RunRecord`: plain numbers, measurement objects and
arrays, grouped by the part of the shop that measured them. The results
(:mod:`simulator.results`) read this record and nothing else of the model, so a change
to how the shop is wired never ripples into ``summary.json`` or the report, and a new
KPI starts here: add the measurement to the record, then the figure to the summary.

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

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.measure.metrics import IntervalCounter, IntervalQuantiles, Tally
from simulator.model.components.roster import HOUR_S  # the per-hour series' width
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    import pandas as pd

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
    "Source",
    "Usage",
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
    stampede_at_s: float | None
    """When one key's rebuilds at once first filled the database pool (None: never)."""


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
    queued: IntervalCounter
    """Payments that found every slot busy, by the interval they arrived in."""
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
    """Per segment: browse, cart, order, paid, and buyers (users who came to buy)."""
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
class Source:
    """A traffic source: the traffic curve (``base``) or a channel, and what it brought."""

    name: str
    outcomes: list[int]
    """Its sessions per :class:`~simulator.measure.outcomes.Outcome` (simulated counts)."""
    orders: int
    gmv: float
    """Paid value of its orders, at the simulated size."""
    lost_gmv: float
    """Value its buyers did not get to pay, at the simulated size."""
    expected_visitors: float | None
    """Visitors its plan expects, at the declared size (None for the curve)."""
    planned_spend_cny: float
    spend_cny: float
    """Visitors drawn times their click price, at the declared size."""


@dataclass(frozen=True)
class Usage:
    """What the run used, to be billed at the price list (``scenario.costs``).

    Time-based use is at the declared size (billed from the declared scenario's instance
    counts and rosters over the run's own timeline); counts are simulated ones.
    """

    app_instance_s: float
    """Application-server instance-seconds: with autoscaling, the instances asked for
    over time (start-up included); without, the declared workers in whole instances."""
    cache_node_s: float
    """Distributed cache node-seconds over the run."""
    database_instance_s: float
    """Database instance-seconds (primaries, standbys, replicas) over the run."""
    picker_s: float
    """Picker-seconds on the rosters' base and shifts, while each warehouse had work."""
    surge_picker_s: float
    agent_s: float
    bot_enquiries: int
    parcels: list[int]
    """Per region, parcels sent."""
    late_parcels: int
    payments: list[int]
    """Per payment channel, successful payments."""
    paid_by_payment: list[float]
    """Per payment channel, the paid value of orders it took (simulated size)."""
    end_s: float
    """The instances' billing horizon."""
    put_off: int
    """Users a slow landing page put off (``experience``)."""


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
    sources: list[Source]
    """The traffic curve, then each channel in ``scenario.channels`` order."""
    usage: Usage
