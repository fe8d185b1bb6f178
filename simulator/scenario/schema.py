"""The scenario schema: the one door through which configuration enters the model.

A scenario file describes one sale and one architecture: how users arrive, what they
do, and the components that serve them. Every field carries its unit in its name
(``_s``, ``_ms``, ``_h``, ``_per_s``, ``_cny``; rates and shares are fractions in
[0, 1]) and a description, and unknown keys are errors, so a typo never passes
silently. ``campaign-sim schema`` prints this schema as JSON Schema for editors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from simulator.scenario.architecture import (
    Cache,
    CacheLevel,
    Database,
    Gateway,
    Payment,
    PaymentChannel,
    Recommendations,
)
from simulator.scenario.base import Model as _Model
from simulator.scenario.base import Name
from simulator.scenario.base import shares_sum_to_one as _shares_sum_to_one
from simulator.scenario.commerce import (
    FlashSale,
    Inventory,
    Presale,
    Promotions,
)
from simulator.scenario.demand import (
    Catalogue,
    Experience,
    HotItem,
    Pulse,
    Replay,
    Segment,
    Traffic,
)
from simulator.scenario.distributions import WEEK_S, typical
from simulator.scenario.expressions import ExpressionError, parse_constraint
from simulator.scenario.logistics import CustomerService, Fulfilment, Warehouse
from simulator.scenario.money import Costs, TrafficChannel, check_names
from simulator.scenario.protections import (
    CacheNodeDown,
    CapacityReduced,
    DatabasePrimaryFailure,
    DatacenterLoss,
    Datacenters,
    Fault,
    Resilience,
)

__all__ = [
    "Cache",
    "CacheLevel",
    "CacheNodeDown",
    "Catalogue",
    "CustomerService",
    "Costs",
    "Database",
    "Experience",
    "Fulfilment",
    "Fault",
    "Gateway",
    "HotItem",
    "Inventory",
    "Payment",
    "PaymentChannel",
    "Pulse",
    "Recommendations",
    "Replay",
    "Scenario",
    "Segment",
    "Traffic",
    "TrafficChannel",
    "Warehouse",
]

MAX_SESSIONS = 100_000_000
"""Most sessions a run may expect: at the tens of thousands a second a laptop simulates,
over an hour of computing. A bigger sale is simulated with ``scale``."""
MAX_ROWS = 1_000_000
"""Most rows the time series may have over ``duration_s`` (a row is kept per interval)."""
MAX_STAFF = 1_000_000
"""Most people (pickers, agents) on duty in one place at the run's scale: each is tracked."""


_KPI_PATH = re.compile(r"[A-Za-z_][^\s.+*/()]*(\.[^\s.+*/()]+)*")
"""A summary path: dotted names; a name may hold ``-``, ``:``, ``@`` or ``[]`` (faults)."""


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
        ge=1e-6,
        le=1e6,
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
    experience: Experience | None = Field(
        default=None,
        description="Demand that feels latency (a slow landing page puts users off); "
        "null: only a request that outlasts a user's patience loses them.",
    )
    channels: list[TrafficChannel] = Field(
        default=[],
        description="Paid and organic traffic channels whose visitors arrive on top of "
        "the traffic curve, each with its budget and price; the curve's own visitors "
        "are reported as channel 'base'.",
    )
    costs: Costs = Field(
        default_factory=Costs,
        description="The price list the run's capacity, staff, parcels and failures are "
        "billed at; every price defaults to 0.",
    )
    answers: list[str] = Field(
        default=[],
        description="The KPIs that answer the scenario's question (dotted paths, as in "
        "kpis.csv, e.g. payments_lost_to_outage or "
        "recovery_time_s.component_down:payment.alipay@700s): tables and reports show them first, "
        "and a comparison states its verdict on each. Empty: net profit, orders, lost "
        "GMV and checkout p99.",
    )
    slo: list[str] = Field(
        default=[],
        description="Service-level thresholds, each 'KPI <= LIMIT' or 'KPI >= LIMIT' over "
        "KPI expressions (e.g. 'checkout_latency_ms.p99 <= 1000', 'lost_gmv_total <= "
        "0.01 * gmv'). run and compare print a line per threshold, met or not, and exit "
        "with status 1 when one is not met (replications: judged on the mean).",
    )

    @field_validator("answers")
    @classmethod
    def _answers_are_paths(cls, answers: list[str]) -> list[str]:
        for i, path in enumerate(answers):
            if not _KPI_PATH.fullmatch(path):
                raise ValueError(
                    f"[{i}]: {path!r} is not a KPI path (dotted names, as in kpis.csv, "
                    f"e.g. checkout_latency_ms.p99)"
                )
        return answers

    @field_validator("slo")
    @classmethod
    def _slo_are_comparisons(cls, slo: list[str]) -> list[str]:
        for i, text in enumerate(slo):
            try:
                parse_constraint(text, f"[{i}] {text!r}")
            except ExpressionError as exc:
                raise ValueError(str(exc).replace("--subject-to", "")) from None
        return slo

    @field_validator("channels")
    @classmethod
    def _channels_fit(cls, channels: list[TrafficChannel], info: ValidationInfo) -> list:
        check_names(channels)
        names = {s.name for s in info.data.get("segments") or []}
        for i, channel in enumerate(channels):
            for name in channel.segments or {}:
                if names and name not in names:
                    raise ValueError(
                        f"[{i}].segments.{name}: no such segment (segments: "
                        f"{', '.join(sorted(names))})"
                    )
        scale = info.data.get("scale")
        visitors = sum(c.plan()[0] for c in channels)
        if scale is not None and not visitors * scale <= MAX_SESSIONS:
            raise ValueError(
                f"the channels bring about {visitors * scale:.3g} visitors at scale "
                f"{scale:g}; at most {MAX_SESSIONS:.0e} can be simulated: lower the "
                "budgets or the scale"
            )
        return channels

    @field_validator("costs")
    @classmethod
    def _costs_name_parts(cls, costs: Costs, info: ValidationInfo) -> Costs:
        payment, fulfilment = info.data.get("payment"), info.data.get("fulfilment")
        known = [c.name for c in payment.channels] if payment else []
        for name in costs.payment_fees:
            if payment and name not in known:
                raise ValueError(
                    f"payment_fees.{name}: no payment channel named {name!r} "
                    f"(payment.channels: {', '.join(known)})"
                )
        regions = [r.name for r in fulfilment.regions] if fulfilment else []
        for name in costs.parcel_cny_by_region:
            if fulfilment and name not in regions:
                raise ValueError(
                    f"parcel_cny_by_region.{name}: no region named {name!r} "
                    f"(fulfilment.regions: {', '.join(regions)})"
                )
        return costs

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
        return _starts(self.promotions)

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
        if duration is not None and duration / interval > MAX_ROWS:
            raise ValueError(_too_many_rows(duration, interval))
        return interval

    @model_validator(mode="after")
    def _default_interval_fits(self) -> Scenario:
        if "timeseries_interval_s" not in self.model_fields_set:  # else checked above
            if self.duration_s / self.timeseries_interval_s > MAX_ROWS:
                message = _too_many_rows(self.duration_s, self.timeseries_interval_s)
                raise ValueError(f"duration_s: {message}")
        return self

    # ``scale`` multiplies or divides these sections' rates, TTLs and staff, and the run
    # validates the scaled scenario again: they are checked as the run will see them.
    @field_validator("gateway", "cache", "database", "fulfilment", "customer_service")
    @classmethod
    def _fits_at_scale(cls, section: Any, info: ValidationInfo) -> Any:
        scale = info.data.get("scale")
        if section is not None and scale is not None:
            for where, value, kind in _scaled_values(section):
                problem = _at_scale(value, scale, kind, section)
                if problem:
                    raise ValueError(f"{where}: {problem}")
        return section

    @field_validator("traffic")
    @classmethod
    def _traffic_fits(cls, traffic: Traffic, info: ValidationInfo) -> Traffic:
        _check_sessions(traffic, info.data, "")
        return traffic

    @field_validator("promotions")
    @classmethod
    def _events_fit(cls, promotions: Promotions, info: ValidationInfo) -> Promotions:
        traffic = info.data.get("traffic")
        if traffic is not None and promotions.events():
            bursts = [
                Pulse(start_s=start, **e.burst.model_dump()) for e, start in _starts(promotions)
            ]
            with_events = traffic.model_copy(update={"bursts": [*traffic.bursts, *bursts]})
            _check_sessions(with_events, info.data, "with the events' bursts, ")
        return promotions


def _scaled_values(section: Any) -> list[tuple[str, float, str]]:
    """``(path inside the section, value, how scale changes it)`` of what scale changes."""
    out: list[tuple[str, float, str]] = []
    if isinstance(section, Gateway):
        for name in ("rate_limit", "peak_shaving"):
            protection = getattr(section, name)
            if protection is not None:
                out.append((f"{name}.rate_per_s", protection.rate_per_s, "times"))
    elif isinstance(section, Cache):
        out += [
            (f"levels[{i}].ttl_s", level.ttl_s, "divided") for i, level in enumerate(section.levels)
        ]
        if section.empty_result_ttl_s is not None:
            out.append(("empty_result_ttl_s", section.empty_result_ttl_s, "divided"))
    elif isinstance(section, Database):
        if section.contention_knee is not None and section.contention_slope > 0:
            out.append(("contention_slope", section.contention_slope, "divided"))
            out.append(("contention_slope", section.contention_slope, "contention"))
    elif isinstance(section, Fulfilment):
        for i, w in enumerate(section.warehouses):
            out += _staff_values(f"warehouses[{i}].", "pickers", w.pickers, w.shifts, w.surge)
        if section.tracking is not None:
            out.append(("tracking.throughput_per_s", section.tracking.throughput_per_s, "times"))
    elif isinstance(section, CustomerService):
        out += _staff_values("", "agents", section.agents, section.shifts, section.surge)
    return out


def _staff_values(prefix: str, base: str, count: int, shifts: list, surge: list) -> list:
    return [
        (f"{prefix}{base}", count, "staff"),
        *((f"{prefix}shifts[{i}].staff", s.staff, "staff") for i, s in enumerate(shifts)),
        *((f"{prefix}surge[{i}].staff", s.staff, "staff") for i, s in enumerate(surge)),
    ]


def _at_scale(value: float, scale: float, kind: str, section: Any = None) -> str | None:
    """What is wrong with ``value`` once ``scale`` has changed it; None if nothing."""
    if kind == "contention":
        return _contention(section, scale)
    try:
        scaled = value / scale if kind == "divided" else value * scale
    except OverflowError:  # an integer too large for a float
        scaled = math.inf
    if kind == "staff":
        if value and scaled >= MAX_STAFF + 0.5:  # the run rounds to whole people
            return (
                f"{value:,} at scale {scale:g} is {scaled:.3g} people on duty, more than "
                f"{MAX_STAFF:,} can be simulated"
            )
        return None
    if math.isfinite(scaled) and scaled > 0:
        return None
    how = "divided by" if kind == "divided" else "multiplied by"
    return f"{value:g} {how} scale ({scale:g}), as the run does, is {scaled:g}: out of range"


def _contention(database: Database, scale: float) -> str | None:
    """Whether a query at a full pool, slowed by contention, still takes at most a week.

    The run slows a query started with n queries running by 1 + slope * (n - knee); at
    the run's scale the pool and the knee are divided and the slope multiplied.
    """
    assert database.contention_knee is not None
    pool = max(1, round(database.pool_size * scale))
    knee = max(1, round(database.contention_knee * scale))
    factor = 1 + database.contention_slope / scale * max(0, pool - knee)
    slowest = max(typical(database.read_time_ms)[1], typical(database.write_time_ms)[1])
    if slowest * factor <= WEEK_S * 1000:
        return None
    return (
        f"{database.contention_slope:g} makes a query at a full pool {factor:.3g} times "
        f"slower (pool_size {pool}, knee {knee} at scale {scale:g}): a query time of "
        f"{slowest:g} ms would become {slowest * factor:.3g} ms, longer than a week"
    )


def _too_many_rows(duration: float, interval: float) -> str:
    return (
        f"{duration:g} s in rows of timeseries_interval_s ({interval:g} s) makes "
        f"{duration / interval:.3g} rows, more than {MAX_ROWS:,}: shorten the run or widen "
        "the interval"
    )


def _starts(p: Promotions) -> list[tuple[Any, float]]:
    return [
        *((e, e.opens_at_s) for e in p.flash_sales),
        *((e, e.at_s) for e in p.coupon_rains),
        *((e, e.deposit_at_s) for e in p.presales),
    ]


def _check_sessions(traffic: Traffic, data: dict, what: str) -> None:
    """Raise when the curve brings more sessions than a run can simulate."""
    duration, scale = data.get("duration_s"), data.get("scale")
    if duration is None or scale is None:
        return
    area = sum((ra + rb) / 2 * (b - a) for a, b, ra, rb in traffic.pieces(duration))
    sessions = area * scale
    if not sessions <= MAX_SESSIONS:  # not <=: NaN too
        count = f"about {sessions:.3g}" if math.isfinite(sessions) else "countless"
        raise ValueError(
            f"{what}{count} sessions would arrive in duration_s ({duration:g} s) "
            f"at scale {scale:g}; at most {MAX_SESSIONS:.0e} can be simulated: lower the "
            "rates or the scale (scale: 1/100 simulates a sale a hundred times smaller)"
        )


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
