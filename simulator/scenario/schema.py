"""The scenario schema: the one door through which configuration enters the model.

A scenario file describes one sale and one architecture: how users arrive, what they
do, and the components that serve them. Every field carries its unit in its name
(``_s``, ``_ms``, ``_h``, ``_per_s``, ``_cny``; rates and shares are fractions in
[0, 1]) and a description, and unknown keys are errors, so a typo never passes
silently. ``campaign-sim schema`` prints this schema as JSON Schema for editors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from simulator.scenario.base import Fraction, Name
from simulator.scenario.base import Model as _Model
from simulator.scenario.base import shares_sum_to_one as _shares_sum_to_one
from simulator.scenario.base import unique_names as _unique_names
from simulator.scenario.commerce import (
    BasketBuilding,
    FlashSale,
    Inventory,
    PaymentFailover,
    PaymentRetry,
    Presale,
    Promotions,
    Response,
)
from simulator.scenario.distributions import Deterministic, Distribution, Exponential
from simulator.scenario.logistics import CustomerService, Fulfilment, Warehouse
from simulator.scenario.protections import (
    Autoscaling,
    CacheNodeDown,
    CapacityReduced,
    DatabasePrimaryFailure,
    DatacenterLoss,
    Datacenters,
    Failover,
    Fault,
    PeakShaving,
    RateLimit,
    Replication,
    Resilience,
    UserRetry,
)

__all__ = [
    "Cache",
    "CacheLevel",
    "CacheNodeDown",
    "Catalogue",
    "CustomerService",
    "Database",
    "Fulfilment",
    "Fault",
    "Gateway",
    "HotItem",
    "Inventory",
    "Payment",
    "PaymentChannel",
    "Pulse",
    "Recommendations",
    "Scenario",
    "Segment",
    "Traffic",
    "Warehouse",
]


class Pulse(_Model):
    """A trapezoid in the arrival rate: ramp up, hold at the peak, decay back."""

    start_s: float = Field(ge=0, description="Time the ramp begins, seconds from run start.")
    ramp_s: float = Field(ge=0, description="Seconds from baseline to the peak rate.")
    hold_s: float = Field(ge=0, description="Seconds the peak rate is held.")
    decay_s: float = Field(ge=0, description="Seconds from the peak back to baseline.")
    multiplier: float = Field(
        gt=0,
        description=(
            "Peak rate as a multiple of the baseline (15 means 15x normal traffic). "
            "Overlapping pulses add their excess over the baseline."
        ),
    )

    def level(self, t: float) -> float:
        """How far up its trapezoid the pulse is at ``t``: 0 outside, 1 at the peak."""
        rise = self.start_s + self.ramp_s
        top = rise + self.hold_s
        fall = top + self.decay_s
        if t < self.start_s or t >= fall:
            return 0.0
        if t < rise:
            return (t - self.start_s) / self.ramp_s
        if t < top:
            return 1.0
        return (fall - t) / self.decay_s


class Traffic(_Model):
    """Users arriving as a non-homogeneous Poisson process over a piecewise-linear curve."""

    baseline_per_s: float = Field(
        gt=0, description="Sessions starting per second on an ordinary day."
    )
    preheat: Pulse | None = Field(
        default=None, description="Optional gentle rise before the sale (warm-up marketing)."
    )
    spike: Pulse | None = Field(default=None, description="Optional launch spike at sale start.")
    bursts: list[Pulse] = Field(
        default_factory=list, description="Extra bursts: flash-sale slots, live streams."
    )

    def pulses(self) -> list[Pulse]:
        """All pulses of the curve, in the order they are written."""
        return [p for p in (self.preheat, self.spike) if p is not None] + list(self.bursts)

    def pieces(self, until_s: float) -> list[tuple[float, float, float, float]]:
        """The curve on [0, until_s) as linear pieces ``(start_s, end_s, rate_start, rate_end)``.

        Rates are per second. A pulse with a zero ramp or decay is a step, so the rate at
        each end of a piece is its limit from inside the piece.
        """
        times = {0.0, until_s}
        for p in self.pulses():
            t = p.start_s
            for step in (0.0, p.ramp_s, p.hold_s, p.decay_s):
                t += step
                times.add(t)
        ordered = sorted(t for t in times if t <= until_s)
        pieces = []
        for a, b in zip(ordered, ordered[1:], strict=False):
            # Linear inside (a, b): two interior points give the exact end limits.
            q1, q3 = self.rate_at(a + (b - a) / 4), self.rate_at(a + 3 * (b - a) / 4)
            pieces.append((a, b, max(0.0, 1.5 * q1 - 0.5 * q3), max(0.0, 1.5 * q3 - 0.5 * q1)))
        return pieces

    def rate_at(self, t: float) -> float:
        """Arrival rate at time ``t``, sessions per second (right-continuous at steps)."""
        excess = sum((p.multiplier - 1.0) * p.level(t) for p in self.pulses())
        return self.baseline_per_s * (1.0 + excess)

    @model_validator(mode="after")
    def _rate_never_negative(self) -> Traffic:
        # A piecewise-linear curve is lowest at one of its corners.
        ends = [p.start_s + p.ramp_s + p.hold_s + p.decay_s for p in self.pulses()]
        for a, *_ in self.pieces(max(ends, default=0.0) + 1.0):
            if self.rate_at(a) < -1e-9:
                raise ValueError(f"overlapping pulses make the arrival rate negative at t={a:g} s")
        return self


class Segment(_Model):
    """A kind of user with its own funnel, basket and patience."""

    name: Name = Field(description="Segment name, e.g. new, returning, member.")
    share: Fraction = Field(description="Fraction of arriving users in this segment.")
    bounce_rate: Fraction = Field(description="Fraction who leave after the landing page.")
    skip_browsing: bool = Field(
        default=False,
        description="The user arrives with the item already in the cart and goes straight "
        "to checkout (a presale balance payment, a pre-loaded flash-sale cart): no pages, "
        "no add-to-cart request; bounce_rate and add_to_cart_rate are not used.",
    )
    pages_mean: float = Field(
        default=3.0,
        ge=1,
        description="Mean product pages viewed by a user who does not bounce (geometric, >= 1).",
    )
    think_time_s: Distribution = Field(
        default=Exponential(dist="exponential", mean=8.0),
        description="User's pause between two page views, seconds.",
    )
    add_to_cart_rate: Fraction = Field(
        description="Fraction of non-bouncing users who add the last viewed item to the cart."
    )
    checkout_rate: Fraction = Field(
        description="Fraction of users with a cart who go on to check out and pay."
    )
    basket_value_cny: Distribution = Field(description="Order value in CNY before discounts.")
    patience_s: Distribution = Field(
        description=(
            "How long the user waits for one response (a page, the checkout, the payment) "
            "before giving up, seconds."
        )
    )
    retry: UserRetry | None = Field(
        default=None,
        description="Whether users refresh a failed or slow request; null: they never do.",
    )
    units: Distribution = Field(
        default=Deterministic(dist="deterministic", value=1.0),
        description="Units of the carted item a buyer wants (rounded, at least 1); "
        "inventory.purchase_limit_per_user caps it. Stock is deducted by units.",
    )
    member: bool = Field(
        default=False, description="Members pay promotions.member_discount off list prices."
    )
    response: Response = Field(
        default_factory=Response, description="Conversion uplift by price mechanic."
    )
    basket_building: BasketBuilding | None = Field(
        default=None,
        description="Whether users short of a ladder step add items to reach it; null: never.",
    )


class HotItem(_Model):
    """A hero item of the sale, with its own share of the page views."""

    name: Name = Field(description="Item name, e.g. mate60-pro.")
    share: Fraction = Field(
        description="Fraction of all page views that go to this item (taken before the "
        "Zipf law shares out the rest)."
    )
    stock: int | None = Field(
        default=None, ge=0, description="Units in stock; null: inventory.stock_per_item."
    )
    rebuild_time_ms: Distribution | None = Field(
        default=None,
        description="Database time to rebuild this item's page on a cache miss, ms (a "
        "hero item's detail page often aggregates price, stock and promotions). null: "
        "database.read_time_ms like any item.",
    )


class Catalogue(_Model):
    """The items on sale, how popular they are, and requests for items that do not exist.

    Keys are numbered: the catalogue's items by popularity rank (0 is the most viewed),
    then the hot items, then the keys that do not exist.
    """

    items: int = Field(default=10_000, ge=1, description="Number of distinct items (cache keys).")
    zipf_exponent: float = Field(
        default=1.0,
        ge=0,
        description="Exponent s of the Zipf law: item of rank k is viewed in proportion to k^-s.",
    )
    hot_items: list[HotItem] = Field(
        default=[],
        description="Named hero items, each carrying its share of the page views; the "
        "catalogue's Zipf law shares out the views that remain.",
    )
    missing_key_share: Fraction = Field(
        default=0.0,
        lt=1,
        description="Fraction of page views for keys that do not exist (stale links, "
        "scrapers, attacks): they miss every cache level and reach the database.",
    )
    missing_keys: int = Field(
        default=1_000_000,
        ge=1,
        description="Distinct nonexistent keys those views are drawn from, uniformly. Few "
        "keys repeat often (empty-result caching helps); many rarely repeat (it does not).",
    )

    @model_validator(mode="after")
    def _views_add_up(self) -> Catalogue:
        _unique_names(self.hot_items, "hot item")
        taken = sum(h.share for h in self.hot_items) + self.missing_key_share
        if taken > 1 + 1e-9:
            raise ValueError(
                f"hot item shares plus missing_key_share add up to {taken:g}, more than 1"
            )
        return self


class Gateway(_Model):
    """The entry tier (load balancer and application servers) as c workers with a queue."""

    workers: int = Field(ge=1, description="Requests served at once (worker threads in all).")
    queue_limit: int | None = Field(
        default=None,
        ge=0,
        description="Requests allowed to wait for a worker; beyond it they are rejected. "
        "null means unbounded.",
    )
    service_time_ms: Distribution = Field(
        default=Deterministic(dist="deterministic", value=2.0),
        description="Worker time per request besides cache, database and payment calls, ms.",
    )
    serve_abandoned: bool = Field(
        default=False,
        description="false: a request whose user gave up while it queued is dropped. "
        "true: the server does not notice and still spends its worker time on it when its "
        "turn comes (wasted work, as in a plain thread pool).",
    )
    rate_limit: RateLimit | None = Field(
        default=None, description="Token-bucket rate limiting at the door; null: none."
    )
    peak_shaving: PeakShaving | None = Field(
        default=None, description="A waiting room that lets requests in at a fixed rate."
    )
    autoscaling: Autoscaling | None = Field(
        default=None, description="Add and remove application-server instances; null: fixed."
    )

    @model_validator(mode="after")
    def _whole_instances(self) -> Gateway:
        scaling = self.autoscaling
        if scaling is not None:
            instances, rest = divmod(self.workers, scaling.workers_per_instance)
            if rest or not scaling.min_instances <= instances <= scaling.max_instances:
                raise ValueError(
                    f"workers ({self.workers}) must be a whole number of instances of "
                    f"autoscaling.workers_per_instance ({scaling.workers_per_instance}), "
                    "between min_instances and max_instances"
                )
        return self


class CacheLevel(_Model):
    """One level of the cache: its nodes, their size, entry lifetime and lookup time."""

    name: Name = Field(description="Level name in outputs, e.g. local or redis.")
    kind: Literal["local", "distributed"] = Field(
        default="distributed",
        description="local: an in-process cache, one copy per application server "
        "(``nodes`` of them); a request uses the copy of the server it lands on, at "
        "random. distributed: ``nodes`` cache servers that split the keys by hash.",
    )
    nodes: int = Field(default=1, ge=1, description="Copies (local) or shards (distributed).")
    capacity: int | None = Field(
        default=None,
        ge=1,
        description="Entries each node holds; the least recently used is evicted beyond "
        "it. null means unbounded.",
    )
    ttl_s: float = Field(gt=0, description="Time to live of an entry after it is written, s.")
    ttl_jitter: Fraction = Field(
        default=0.0,
        description="TTL jitter j: each entry lives a uniform time in [ttl*(1-j), "
        "ttl*(1+j)], so keys written together do not expire together.",
    )
    latency_ms: Distribution = Field(
        default=Deterministic(dist="deterministic", value=1.0),
        description="Time of one lookup at this level, ms.",
    )
    hot_items_only: bool = Field(
        default=False,
        description="Keep only the catalogue's hot items at this level (a local hot-key "
        "cache); other keys pass straight to the next level.",
    )


class Cache(_Model):
    """Cache levels in front of the database, and the defences against their failure modes.

    A lookup tries the levels in order; a hit at a later level fills the earlier ones;
    a miss at every level rebuilds the entry from the database and writes every level.
    """

    levels: list[CacheLevel] = Field(
        min_length=1, description="Levels, nearest first (e.g. local, then distributed)."
    )
    rebuild: Literal["none", "mutex", "logical_expiry"] = Field(
        default="none",
        description="What concurrent misses on one key do. none: each goes to the "
        "database (a stampede when a hot key expires). mutex: one rebuilds under a per-key "
        "lock, the others wait for its result (request coalescing). logical_expiry: entries "
        "stay after their TTL and are served stale while one background refresh runs.",
    )
    xfetch_beta: float | None = Field(
        default=None,
        gt=0,
        description="Probabilistic early recomputation (XFetch, Vattani et al., VLDB "
        "2015): a read at time t rebuilds an entry expiring at T early when "
        "t - delta*beta*ln(U) >= T, with delta the entry's last rebuild time and U "
        "uniform. 1 is the paper's default; larger rebuilds earlier. null switches it off.",
    )
    empty_result_ttl_s: float | None = Field(
        default=None,
        gt=0,
        description="Cache 'not found' answers for this long, s, so a repeated request for "
        "a missing key stops at the cache. null: not cached.",
    )
    bloom_filter_false_positive_rate: Fraction | None = Field(
        default=None,
        gt=0,
        description="A Bloom filter of existing keys in front of the cache: a missing key "
        "passes it with this probability (fixed per key), an existing key always. null: "
        "no filter.",
    )
    warm_items: int = Field(
        default=0,
        ge=0,
        description="Entries written into every level by a pre-sale warm-up job at "
        "warm_at_s: all hot items and this many of the most popular items. Written "
        "together, they expire together unless ttl_jitter spreads them.",
    )
    warm_at_s: float = Field(
        default=0.0,
        ge=0,
        description="When the warm-up job writes its entries, s; with a level's TTL this "
        "sets when they expire (e.g. at the sale's start).",
    )

    @field_validator("levels")
    @classmethod
    def _unique_levels(cls, levels: list[CacheLevel]) -> list[CacheLevel]:
        servers = {level.nodes for level in levels if level.kind == "local"}
        if len(servers) > 1:
            raise ValueError(
                "local levels are copies on the application servers, so they must have the "
                f"same number of nodes; got {', '.join(map(str, sorted(servers)))}"
            )
        return _unique_names(levels, "cache level")


class Database(_Model):
    """The database: shards, each a primary and its read replicas, behind connection pools.

    Every instance (primary or replica) has its own pool of ``pool_size`` connections.
    Keys are split over shards by hash; reads go to a shard's replicas in turn (to its
    primary when it has none); writes go to the primary.
    """

    pool_size: int = Field(ge=1, description="Connections in each instance's pool.")
    pool_timeout_ms: float = Field(
        gt=0, description="Longest wait for a connection before the request fails, ms."
    )
    read_time_ms: Distribution = Field(description="Service time of a read query, ms.")
    write_time_ms: Distribution = Field(description="Service time of an order write, ms.")
    contention_knee: int | None = Field(
        default=None,
        ge=1,
        description="Queries running at once on an instance beyond which each one slows "
        "(locks, latches, CPU). null: no contention, service times do not depend on load.",
    )
    contention_slope: float = Field(
        default=0.0,
        ge=0,
        description="Slowdown per query beyond the knee: a query that starts with n "
        "queries running (itself included) takes its service time times "
        "1 + slope * max(0, n - knee).",
    )
    shards: int = Field(default=1, ge=1, description="Shards the keys are split over by hash.")
    read_replicas: int = Field(
        default=0, ge=0, description="Read replicas per shard; reads go to them in turn."
    )
    replication: Replication = Field(
        default_factory=Replication, description="How each primary's writes reach its standby."
    )
    failover: Failover = Field(
        default_factory=Failover, description="How a failed primary's standby takes over."
    )

    def instance_names(self) -> list[str]:
        """Station names of the instances: each shard's primary, then its replicas."""
        if self.shards == 1 and self.read_replicas == 0:
            return ["database"]
        names = []
        for shard in range(self.shards):
            prefix = "database" if self.shards == 1 else f"database.shard{shard}"
            names.append(f"{prefix}.primary")
            names += [f"{prefix}.replica{r + 1}" for r in range(self.read_replicas)]
        return names


class Recommendations(_Model):
    """A non-core service a product page calls (recommendations): worth skipping under load."""

    servers: int = Field(ge=1, description="Calls served at once.")
    service_time_ms: Distribution = Field(description="Time of one call, ms.")


class PaymentChannel(_Model):
    """A third-party payment channel."""

    name: Name = Field(description="Channel name, e.g. alipay.")
    share: Fraction = Field(description="Fraction of payments routed to this channel.")
    capacity: int = Field(ge=1, description="Transactions the channel processes at once.")
    latency_ms: Distribution = Field(description="Channel processing time of a payment, ms.")
    success_probability: Fraction = Field(description="Probability a processed payment succeeds.")
    timeout_ms: float = Field(
        gt=0, description="Longest wait for the channel's answer (queue + processing), ms."
    )


class Payment(_Model):
    """The payment step: one or more channels, chosen by share."""

    channels: list[PaymentChannel] = Field(
        min_length=1, description="Payment channels; shares must sum to 1."
    )
    failover: PaymentFailover | None = Field(
        default=None,
        description="Route around a failing channel (breaker + switch); null: a user's "
        "channel is used whatever its state.",
    )
    user_retry: PaymentRetry | None = Field(
        default=None, description="Users retry a failed payment on another channel."
    )
    async_confirmation_s: float | None = Field(
        default=None,
        ge=0,
        description="A payment the shop timed out on is not failed: the shop queries the "
        "channel this long after the channel's own answer and books its real outcome "
        "(asynchronous retry of timeouts). null: a timeout is a failed payment.",
    )

    @field_validator("channels")
    @classmethod
    def _shares(cls, channels: list[PaymentChannel]) -> list[PaymentChannel]:
        return _shares_sum_to_one(channels, "channel")


class Scenario(_Model):
    """One sale and one architecture: the whole input of a run."""

    name: Name = Field(description="Short identifier; the default output folder is runs/NAME.")
    description: str = Field(
        min_length=1,
        description="The question the scenario answers, the seed figures it uses and the "
        "parameters it had to assume.",
    )
    seed: int = Field(default=1, ge=0, description="Default seed of the run's random streams.")
    duration_s: float = Field(
        gt=0,
        description="Users arrive during [0, duration_s); the run then continues until "
        "every session has ended.",
    )
    scale: float = Field(
        default=1.0,
        gt=0,
        description="Simulate a sale this many times the size: arrival rates, capacities "
        "(workers, queue limits, pool, channel slots, pickers) and stock are multiplied by "
        "it, cache TTLs divided by it, and money totals divided by it again in the "
        "results. Write 1/10 for a ten times smaller sale. README.md, section Scale, says "
        "which KPIs stay stable (waits, tail latencies and detection times do not).",
    )
    warmup_s: float = Field(
        default=0,
        ge=0,
        description="Station statistics (waits, utilisation) are reset at this time, for "
        "steady-state studies. A sale is a terminating simulation: keep 0 for sales.",
    )
    timeseries_interval_s: float = Field(
        default=1.0, gt=0, description="Width of one row of the time series, s."
    )
    clock_at_start_h: float = Field(
        default=0.0,
        ge=0,
        lt=24,
        description="Hour of day at t = 0 (19.5 is 19:30); shift calendars, carrier "
        "cut-offs, next-day delivery and time-of-day windows read this clock.",
    )
    traffic: Traffic = Field(description="The arrival process.")
    segments: list[Segment] = Field(min_length=1, description="User segments; shares sum to 1.")
    catalogue: Catalogue = Field(default_factory=Catalogue, description="Items and popularity.")
    gateway: Gateway | None = Field(
        description="Entry tier; null switches it off (requests go straight to the services)."
    )
    cache: Cache | None = Field(
        description="Cache in front of the database; null switches it off (every page "
        "read goes to the database)."
    )
    database: Database = Field(description="Database and its connection pool.")
    inventory: Inventory = Field(default_factory=Inventory, description="Stock.")
    promotions: Promotions = Field(
        default_factory=Promotions, description="Price mechanics and promotion events."
    )
    payment: Payment = Field(description="Payment channels.")
    fulfilment: Fulfilment = Field(description="Regions, warehouses, carriers and tracking.")
    customer_service: CustomerService | None = Field(
        default=None, description="Customer service; null: enquiries are not modelled."
    )
    recommendations: Recommendations | None = Field(
        default=None,
        description="A non-core service each product page calls; null: pages call none.",
    )
    resilience: Resilience = Field(
        default_factory=Resilience,
        description="Timeouts, retries, breakers, bulkheads and degradation of calls.",
    )
    datacenters: Datacenters | None = Field(
        default=None,
        description="Sites users are routed to; null: one site (a datacenter loss is "
        "then not a fault the scenario can have).",
    )
    faults: list[Fault] = Field(
        default=[], description="Timed faults injected into the run, in any order."
    )

    @field_validator("resilience")
    @classmethod
    def _policies_have_callees(cls, resilience: Resilience, info: ValidationInfo) -> Resilience:
        if resilience.recommendations is not None and info.data.get("recommendations") is None:
            raise ValueError("recommendations: a policy for a service the scenario does not have")
        if resilience.database and resilience.database.degrade_above_utilisation is not None:
            raise ValueError(
                "database.degrade_above_utilisation: only a non-core call "
                "(recommendations) can be skipped"
            )
        return resilience

    @field_validator("promotions")
    @classmethod
    def _event_items_exist(cls, promotions: Promotions, info: ValidationInfo) -> Promotions:
        catalogue = info.data.get("catalogue")
        hot = [h.name for h in catalogue.hot_items] if catalogue else []
        events: list[tuple[str, Sequence[FlashSale | Presale]]] = [
            ("flash_sales", promotions.flash_sales),
            ("presales", promotions.presales),
        ]
        for kind, listed in events:
            for i, event in enumerate(listed):
                if event.item not in hot:
                    known = ", ".join(hot) or "none"
                    raise ValueError(
                        f"{kind}[{i}].item: no hot item named {event.item!r} "
                        f"(catalogue.hot_items: {known})"
                    )
        return promotions

    def arrival_traffic(self) -> Traffic:
        """The traffic curve with the promotion events' bursts added."""
        extra = self.event_pulses()
        if not extra:
            return self.traffic
        return self.traffic.model_copy(update={"bursts": [*self.traffic.bursts, *extra]})

    def event_pulses(self) -> list[Pulse]:
        """Each promotion event's burst on the arrival curve, in ``event_starts()`` order."""
        return [Pulse(start_s=start, **e.burst.model_dump()) for e, start in self.event_starts()]

    def event_starts(self) -> list[tuple[Any, float]]:
        """Each promotion event with the time its burst starts."""
        p = self.promotions
        return [
            *((e, e.opens_at_s) for e in p.flash_sales),
            *((e, e.at_s) for e in p.coupon_rains),
            *((e, e.deposit_at_s) for e in p.presales),
        ]

    @field_validator("faults")
    @classmethod
    def _faults_name_parts(cls, faults: list[Fault], info: ValidationInfo) -> list[Fault]:
        components = _component_names(info.data)
        for i, fault in enumerate(faults):
            problem = _fault_problem(fault, info.data, components)
            if problem:
                raise ValueError(f"[{i}].{problem}")
        _no_overlaps(faults, info.data)
        return faults

    @field_validator("segments")
    @classmethod
    def _segment_shares(cls, segments: list[Segment]) -> list[Segment]:
        return _shares_sum_to_one(segments, "segment")

    @field_validator("scale", mode="before")
    @classmethod
    def _fraction(cls, value: object) -> object:
        if isinstance(value, str) and "/" in value:
            top, _, bottom = value.partition("/")
            try:
                return float(top) / float(bottom)
            except (ValueError, ZeroDivisionError):
                raise ValueError(
                    f"expected a number or a fraction like 1/10, got {value!r}"
                ) from None
        return value

    @field_validator("timeseries_interval_s")
    @classmethod
    def _interval_fits(cls, interval: float, info: ValidationInfo) -> float:
        duration = info.data.get("duration_s")
        if duration is not None and interval > duration:
            raise ValueError(f"{interval:g} s is longer than duration_s ({duration:g} s)")
        return interval


def _component_names(data: dict) -> list[str]:
    """Names a component fault can target, given the scenario's sections so far."""
    names = []
    if data.get("gateway") is not None:
        names.append("gateway")
    if data.get("recommendations") is not None:
        names.append("recommendations")
    database = data.get("database")
    if database is not None:
        names += ["database", *(n for n in database.instance_names() if n != "database")]
    payment = data.get("payment")
    if payment is not None:
        names += [f"payment.{c.name}" for c in payment.channels]
    fulfilment = data.get("fulfilment")
    if fulfilment is not None:
        names += [f"warehouse.{w.name}" for w in fulfilment.warehouses]
    return names


def _fault_problem(fault: Fault, data: dict, components: list[str]) -> str | None:
    """What is wrong with the names a fault refers to, as ``field: message``; None if fine."""
    if isinstance(fault, CacheNodeDown):
        cache = data.get("cache")
        levels = {level.name: level for level in cache.levels} if cache else {}
        level = levels.get(fault.level)
        if level is None:
            known = ", ".join(levels) or "none, cache is null"
            return f"level: no cache level named {fault.level!r} (levels: {known})"
        if fault.node is not None and fault.node >= level.nodes:
            return (
                f"node: {fault.node} is out of range; level {level.name!r} "
                f"has {level.nodes} node(s)"
            )
    elif isinstance(fault, DatabasePrimaryFailure):
        database = data.get("database")
        if database is not None and fault.shard >= database.shards:
            return f"shard: {fault.shard} is out of range; the database has {database.shards}"
    elif isinstance(fault, DatacenterLoss):
        sites = data.get("datacenters")
        names = [site.name for site in sites.sites] if sites else []
        if fault.site not in names:
            known = ", ".join(names) or "none, datacenters is null"
            return f"site: no site named {fault.site!r} (sites: {known})"
    elif fault.component not in components:
        return f"component: no component named {fault.component!r} (known: {', '.join(components)})"
    elif fault.component.startswith("warehouse.") and not isinstance(fault, CapacityReduced):
        return f"kind: a warehouse can only lose capacity (capacity_reduced), not {fault.kind}"
    return None


def _no_overlaps(faults: list[Fault], data: dict) -> None:
    """Faults that set the same thing on the same target must not overlap in time.

    A fault's end restores the nominal value, so an overlapping one of the same kind
    would be undone early. A site can be lost once, and one site at least must survive.
    """
    spans: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    lost: dict[str, int] = {}
    for i, fault in enumerate(faults):
        if isinstance(fault, DatacenterLoss):
            if fault.site in lost:
                raise ValueError(
                    f"[{i}].site: {fault.site!r} is already lost by [{lost[fault.site]}]"
                )
            lost[fault.site] = i
            continue
        if isinstance(fault, DatabasePrimaryFailure):
            continue
        target = fault.level if isinstance(fault, CacheNodeDown) else fault.component
        end = math.inf if fault.duration_s is None else fault.at_s + fault.duration_s
        for start, stop, j in spans.get((fault.kind, target), []):
            if fault.at_s < stop and start < end:
                raise ValueError(
                    f"[{i}]: overlaps [{j}], a {fault.kind} fault on {target} too; the "
                    "first to end would end both"
                )
        spans.setdefault((fault.kind, target), []).append((fault.at_s, end, i))
    sites = data.get("datacenters")
    if sites is not None and lost and len(lost) >= len(sites.sites):
        raise ValueError("every site is lost; at least one must survive")
