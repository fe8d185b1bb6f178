"""The architecture in the scenario schema: gateway, cache tier, database, services, payment.

Each class configures one component of :mod:`simulator.model.components`: its capacity,
its service times (as distributions) and the protections it was built with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from simulator.scenario.base import Fraction, Name
from simulator.scenario.base import Model as _Model
from simulator.scenario.base import shares_sum_to_one as _shares_sum_to_one
from simulator.scenario.base import unique_names as _unique_names
from simulator.scenario.commerce import (
    PaymentFailover,
    PaymentRetry,
)
from simulator.scenario.distributions import Deterministic, Milliseconds
from simulator.scenario.protections import (
    Autoscaling,
    Failover,
    PeakShaving,
    RateLimit,
    Replication,
)

__all__ = [
    "Cache",
    "CacheLevel",
    "Database",
    "Gateway",
    "Payment",
    "PaymentChannel",
    "Recommendations",
]


class Gateway(_Model):
    """The entry tier (load balancer and application servers) as c workers with a queue."""

    workers: int = Field(ge=1, description="Requests served at once (worker threads in all).")
    queue_limit: int | None = Field(
        default=None,
        ge=0,
        description="Requests allowed to wait for a worker; beyond it they are rejected. "
        "null means unbounded.",
    )
    service_time_ms: Milliseconds = Field(
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
    nodes: int = Field(
        default=1, ge=1, le=10_000, description="Copies (local) or shards (distributed)."
    )
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
    latency_ms: Milliseconds = Field(
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
    read_time_ms: Milliseconds = Field(description="Service time of a read query, ms.")
    write_time_ms: Milliseconds = Field(description="Service time of an order write, ms.")
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
    shards: int = Field(
        default=1, ge=1, le=1024, description="Shards the keys are split over by hash."
    )
    read_replicas: int = Field(
        default=0, ge=0, le=64, description="Read replicas per shard; reads go to them in turn."
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
    service_time_ms: Milliseconds = Field(description="Time of one call, ms.")


class PaymentChannel(_Model):
    """A third-party payment channel."""

    name: Name = Field(description="Channel name, e.g. alipay.")
    share: Fraction = Field(description="Fraction of payments routed to this channel.")
    capacity: int = Field(ge=1, description="Transactions the channel processes at once.")
    latency_ms: Milliseconds = Field(description="Channel processing time of a payment, ms.")
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
