"""Schema of the protections and of the faults they protect against.

Resilience policies wrap the calls the application servers make (``resilience``); the
gateway's protections decide who gets in (``gateway.rate_limit``, ``peak_shaving``,
``autoscaling``); replication and failover say what a database failure costs; sites
and routing say what losing a datacenter costs. ``faults`` is the timeline that puts
them to the test.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from simulator.scenario.base import Fraction, Model, Name, shares_sum_to_one
from simulator.scenario.distributions import Deterministic, Seconds

__all__ = [
    "Autoscaling",
    "Backoff",
    "CacheNodeDown",
    "CapacityReduced",
    "CircuitBreaker",
    "ComponentDown",
    "DatabasePrimaryFailure",
    "DatacenterLoss",
    "Datacenters",
    "DynamicLimit",
    "ErrorRate",
    "Failover",
    "Fault",
    "LatencyMultiplied",
    "PeakShaving",
    "Policy",
    "RateLimit",
    "Replication",
    "Resilience",
    "Retry",
    "ScheduledCapacity",
    "Site",
    "UserRetry",
]


# ------------------------------------------------------------- resilience policies


class Backoff(Model):
    """How long a caller waits before retrying."""

    kind: Literal["none", "exponential"] = Field(
        default="exponential",
        description="none: every retry waits base_ms. exponential: retry k waits "
        "min(cap_ms, base_ms * 2^(k-1)) before jitter.",
    )
    base_ms: float = Field(default=100.0, gt=0, description="First retry's wait, ms.")
    cap_ms: float = Field(default=10_000.0, gt=0, description="Longest wait, ms.")
    jitter: Literal["none", "full", "equal", "decorrelated"] = Field(
        default="full",
        description="none: the wait as computed (callers that failed together retry "
        "together). full: uniform in [0, wait]. equal: wait/2 plus uniform in [0, "
        "wait/2]. decorrelated: uniform in [base, 3 * previous wait], capped (AWS "
        "Architecture Blog, 'Exponential Backoff and Jitter', 2015).",
    )


class Retry(Model):
    """Retry a failed call (an error or a timeout), never one the user abandoned."""

    max_retries: int = Field(ge=0, description="Retries after the first attempt.")
    backoff: Backoff = Field(default_factory=Backoff, description="Wait before each retry.")


class CircuitBreaker(Model):
    """Stop calling a failing dependency for a while, then try a few calls (Nygard)."""

    window_calls: int = Field(
        default=20, ge=1, description="Sliding window: the last this many calls are judged."
    )
    minimum_calls: int = Field(
        default=10, ge=1, description="Calls the window must hold before the breaker can open."
    )
    failure_rate_threshold: Fraction = Field(
        default=0.5,
        gt=0,
        description="Open when this fraction of the window's calls failed (error or timeout).",
    )
    slow_call_ms: float | None = Field(
        default=None,
        gt=0,
        description="A call slower than this counts as slow; null: speed is not judged.",
    )
    slow_call_rate_threshold: Fraction = Field(
        default=0.8, gt=0, description="Open when this fraction of the window's calls was slow."
    )
    open_wait_s: float = Field(
        default=5.0,
        gt=0,
        description="Seconds the breaker stays open (calls fail at once) before half-opening.",
    )
    half_open_calls: int = Field(
        default=3,
        ge=1,
        description="Trial calls let through when half-open: all succeed and it closes; "
        "any fails and it opens again.",
    )

    @model_validator(mode="after")
    def _window_holds_minimum(self) -> CircuitBreaker:
        if self.minimum_calls > self.window_calls:
            raise ValueError(
                f"minimum_calls ({self.minimum_calls}) is larger than window_calls "
                f"({self.window_calls}), so the breaker could never open"
            )
        return self


class Policy(Model):
    """The resilience policy of one kind of call: each piece is optional."""

    timeout_ms: float | None = Field(
        default=None,
        gt=0,
        description="The caller stops waiting after this, ms, and counts a failure; the "
        "callee, unaware, finishes the work. null: wait as long as the user does.",
    )
    retry: Retry | None = Field(default=None, description="Retries of failed calls.")
    circuit_breaker: CircuitBreaker | None = Field(
        default=None, description="A breaker in front of the dependency."
    )
    bulkhead: int | None = Field(
        default=None,
        ge=1,
        description="At most this many calls in flight at once; more fail at once, so a "
        "slow dependency cannot take every worker.",
    )
    degrade_above_utilisation: Fraction | None = Field(
        default=None,
        description="For a non-core call only (recommendations): skip it while the "
        "gateway's workers are busier than this fraction. null: never skipped.",
    )


class Resilience(Model):
    """Policies of the calls the application servers make, by dependency."""

    database: Policy | None = Field(
        default=None, description="Reads on a cache miss and order writes."
    )
    recommendations: Policy | None = Field(
        default=None,
        description="The non-core recommendations call of a product page: when it "
        "fails, the page is served without it.",
    )


class UserRetry(Model):
    """What a user does when a request fails or is too slow: refresh, after a while."""

    probability: Fraction = Field(
        description="Chance that a user whose request failed (error, rejection, shed, or "
        "gave up waiting) tries the same request again."
    )
    delay_s: Seconds = Field(
        default=Deterministic(dist="deterministic", value=1.0),
        description="Seconds before the refresh.",
    )
    max_retries: int = Field(default=3, ge=1, description="Refreshes of one request at most.")


# ------------------------------------------------------------ gateway protections


class DynamicLimit(Model):
    """A limiter that sets its own rate from the gateway's measured utilisation."""

    target_utilisation: Fraction = Field(
        default=0.8, gt=0, description="Utilisation of the workers the limit steers to."
    )
    evaluate_every_s: float = Field(
        default=5.0, ge=0.01, description="Length of each measurement window, s."
    )
    detection_delay_s: float = Field(
        default=5.0,
        ge=0,
        description="From the end of a window to its new limit taking effect, s (metrics "
        "pipeline, alerting, pushing the rule).",
    )


class RateLimit(Model):
    """A token bucket at the door: requests beyond the rate are shed at once."""

    rate_per_s: float = Field(
        gt=0,
        description="Requests admitted per second (the threshold). With dynamic, the "
        "starting and highest rate.",
    )
    burst: int | None = Field(
        default=None, ge=1, description="Bucket size, requests; null: one second's worth."
    )
    dynamic: DynamicLimit | None = Field(
        default=None, description="Adjust the rate from measured utilisation; null: static."
    )
    new_visits_only: bool = Field(
        default=False,
        description="Judge only the first request of each visit (the rate is then in "
        "visits per second): users who got in are never shed mid-way, at checkout say.",
    )


class PeakShaving(Model):
    """A waiting room: requests are let in at a fixed rate; the rest wait, up to a bound."""

    rate_per_s: float = Field(gt=0, description="Requests let in per second.")
    max_wait_ms: float = Field(
        ge=0, description="Longest wait for a turn, ms; a request that would wait longer is shed."
    )
    new_visits_only: bool = Field(
        default=False,
        description="Queue only the first request of each visit (a waiting room at the "
        "entrance, rate in visits per second); later requests go straight in.",
    )


class ScheduledCapacity(Model):
    """A planned capacity change, requested at a given time."""

    at_s: float = Field(ge=0, description="When the instances are requested, s.")
    instances: int = Field(ge=1, description="Instances wanted from then on.")


class Autoscaling(Model):
    """The application servers as instances that can be added and removed.

    The gateway's ``workers`` are the starting capacity; ``workers / workers_per_instance``
    instances run at the start.
    """

    workers_per_instance: int = Field(ge=1, description="Worker threads per instance.")
    min_instances: int = Field(default=1, ge=1, description="Never fewer instances than this.")
    max_instances: int = Field(ge=1, description="Never more instances than this.")
    target_utilisation: Fraction | None = Field(
        default=0.7,
        gt=0,
        description="Reactive scaling: after each window, want ceil(instances * "
        "utilisation / target) instances (the Kubernetes HPA rule). null: no reactive "
        "scaling.",
    )
    evaluate_every_s: float = Field(
        default=15.0, ge=0.01, description="Length of each measurement window, s."
    )
    provisioning_delay_s: float = Field(
        default=60.0, ge=0, description="From asking for an instance to it serving, s."
    )
    cooldown_s: float = Field(
        default=60.0, ge=0, description="No reactive decision for this long after one, s."
    )
    schedule: list[ScheduledCapacity] = Field(
        default=[],
        description="Scheduled (predictive) changes: capacity asked for ahead of a known "
        "peak; each still takes provisioning_delay_s.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) is above max_instances "
                f"({self.max_instances})"
            )
        for i, step in enumerate(self.schedule):
            if not self.min_instances <= step.instances <= self.max_instances:
                raise ValueError(
                    f"schedule[{i}].instances: {step.instances} is outside min_instances.."
                    f"max_instances ({self.min_instances}..{self.max_instances})"
                )
        return self


# ------------------------------------------------------- replication, failover, sites


class Replication(Model):
    """How a primary's writes reach its standby."""

    mode: Literal["async", "sync"] = Field(
        default="async",
        description="async: a write is acknowledged before the standby has it, so a "
        "primary failure loses the writes of the last lag_ms (RPO > 0). sync: the standby "
        "confirms every write first (RPO = 0), which adds sync_commit_ms to each write.",
    )
    lag_ms: float = Field(default=500.0, ge=0, description="Replication lag in async mode, ms.")
    sync_commit_ms: float = Field(
        default=2.0, ge=0, description="Extra time of each write in sync mode, ms."
    )


class Failover(Model):
    """How a failed primary is replaced: detect by missed heartbeats, then promote."""

    heartbeat_interval_s: float = Field(default=2.0, gt=0, description="Seconds between checks.")
    missed_heartbeats: int = Field(
        default=3, ge=1, description="Missed checks before the primary is declared dead."
    )
    promotion_s: float = Field(
        default=10.0, ge=0, description="Promoting the standby and repointing clients, s."
    )


class Site(Model):
    """A datacenter serving a share of the users."""

    name: Name = Field(description="Site name, e.g. hangzhou.")
    share: Fraction = Field(description="Fraction of users routed to this site.")


class Datacenters(Model):
    """Sites users are routed to, and how routing reacts when one is lost."""

    sites: list[Site] = Field(min_length=2, description="Sites; shares must sum to 1.")
    routing: Literal["dns", "anycast"] = Field(
        default="dns",
        description="dns: once the loss is detected the record is changed, but each "
        "client keeps its cached answer until its TTL runs out (a client re-resolves "
        "every dns_ttl_s from its arrival). anycast: the network withdraws the lost "
        "site's route anycast_switch_s after detection, for everyone at once.",
    )
    heartbeat_interval_s: float = Field(default=5.0, gt=0, description="Health-check interval, s.")
    missed_heartbeats: int = Field(
        default=3, ge=1, description="Missed checks before the site is declared lost."
    )
    dns_ttl_s: float = Field(default=300.0, ge=0, description="TTL of the DNS answer, s.")
    anycast_switch_s: float = Field(
        default=5.0, ge=0, description="Route withdrawal and convergence with anycast, s."
    )

    @field_validator("sites")
    @classmethod
    def _shares(cls, sites: list[Site]) -> list[Site]:
        return shares_sum_to_one(sites, "site")


# ------------------------------------------------------------------------ faults


class _Timed(Model):
    at_s: float = Field(ge=0, description="When the fault starts, s.")
    duration_s: float | None = Field(
        default=None, gt=0, description="How long it lasts, s; null: for the rest of the run."
    )


class _OnComponent(_Timed):
    component: str = Field(
        min_length=1,
        description="gateway, recommendations, database (every instance), a database "
        "instance by station name (database.shard0.primary), payment.NAME, or "
        "warehouse.NAME (capacity_reduced only: pickers on duty are cut).",
    )


class ComponentDown(_OnComponent):
    """A component stops answering: every call to it fails at once."""

    kind: Literal["component_down"] = Field(description="The fault's kind.")


class CapacityReduced(_OnComponent):
    """A component loses part of its servers (workers, connections, channel slots)."""

    kind: Literal["capacity_reduced"] = Field(description="The fault's kind.")
    remaining: Fraction = Field(
        gt=0, lt=1, description="Fraction of the capacity left (at least one server)."
    )


class LatencyMultiplied(_OnComponent):
    """A component slows down: its service times are multiplied."""

    kind: Literal["latency_multiplied"] = Field(description="The fault's kind.")
    factor: float = Field(gt=0, le=1000, description="Multiplier of its service times.")


class ErrorRate(_OnComponent):
    """A component fails a share of the calls it serves."""

    kind: Literal["error_rate"] = Field(description="The fault's kind.")
    probability: Fraction = Field(gt=0, description="Chance each call fails.")


class CacheNodeDown(_Timed):
    """A cache node (or a whole level) is lost: its entries vanish, requests fall through."""

    kind: Literal["cache_node_down"] = Field(description="The fault's kind.")
    level: Name = Field(description="Name of the cache level.")
    node: int | None = Field(
        default=None, ge=0, description="Node index within the level; null: every node."
    )


class DatabasePrimaryFailure(Model):
    """A shard's primary dies; the standby takes over after detection and promotion."""

    kind: Literal["database_primary_failure"] = Field(description="The fault's kind.")
    at_s: float = Field(ge=0, description="When the primary dies, s.")
    shard: int = Field(default=0, ge=0, description="Index of the shard whose primary dies.")


class DatacenterLoss(Model):
    """A whole site is lost for the rest of the run: its servers and the users routed to it."""

    kind: Literal["datacenter_loss"] = Field(description="The fault's kind.")
    at_s: float = Field(ge=0, description="When the site is lost, s.")
    site: Name = Field(description="Name of the lost site (datacenters.sites).")


Fault = Annotated[
    ComponentDown
    | CapacityReduced
    | LatencyMultiplied
    | ErrorRate
    | CacheNodeDown
    | DatabasePrimaryFailure
    | DatacenterLoss,
    Field(discriminator="kind"),
]
