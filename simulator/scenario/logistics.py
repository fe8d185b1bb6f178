"""Schema of what happens after payment: regions, warehouses, carriers, tracking, service.

Times of day (shifts, carrier cut-offs) are read on the scenario's clock
(``clock_at_start_h``: the hour of day at t = 0); times in seconds are on the run's
clock. Staff counts, pickup capacities and queue throughputs are scaled by ``scale``.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from simulator.scenario.base import Fraction, Model, Name, shares_sum_to_one, unique_names
from simulator.scenario.distributions import Distribution, Hours, Seconds

__all__ = [
    "CustomerService",
    "Enquiries",
    "Enquiry",
    "Fulfilment",
    "Region",
    "Shift",
    "StaleTracking",
    "Surge",
    "Tracking",
    "Warehouse",
]

Hour = float


class Shift(Model):
    """Staff on duty every day between two times of day."""

    from_h: Hour = Field(ge=0, lt=24, description="Start, hour of day (8.5 is 08:30).")
    to_h: Hour = Field(
        gt=0, le=24, description="End, hour of day; at or before from_h: ends the next day."
    )
    staff: int = Field(ge=0, description="People on duty in the shift.")

    def spans(self) -> list[tuple[float, float]]:
        """The shift as one or two [start, end) spans of the day, in hours."""
        if self.to_h > self.from_h:
            return [(self.from_h, self.to_h)]
        return [(self.from_h, 24.0), (0.0, self.to_h)]


class Surge(Model):
    """Extra staff for one window of the run (temporary hires, overtime)."""

    from_s: float = Field(ge=0, description="Start, s from the run's start.")
    to_s: float = Field(gt=0, description="End, s from the run's start.")
    staff: int = Field(ge=1, description="People added on top of the shift calendar.")

    @model_validator(mode="after")
    def _ordered(self) -> Surge:
        if self.to_s <= self.from_s:
            raise ValueError(f"to_s ({self.to_s:g}) must be after from_s ({self.from_s:g})")
        return self


def _check_shifts(shifts: list[Shift]) -> list[Shift]:
    """Shifts must not overlap: each hour of the day has one staffing figure."""
    spans = sorted((a, b, i) for i, s in enumerate(shifts) for a, b in s.spans())
    for (_, end, i), (start, _, j) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise ValueError(f"shifts [{i}] and [{j}] overlap")
    return shifts


def _check_staffed(base: int, shifts: list[Shift], who: str) -> None:
    """Someone must be on duty some hour of every day (surge staff alone would leave)."""
    if max([base, *(s.staff for s in shifts)]) == 0:
        raise ValueError(f"nobody is ever on duty: the daily calendar needs {who}")


class Region(Model):
    """A destination region of parcels (users live in one)."""

    name: Name = Field(description="Region name, e.g. east.")
    share: Fraction = Field(description="Fraction of users who live there.")


class Warehouse(Model):
    """A regional warehouse: pickers packing orders first come first served, and its carrier.

    Picking capacity is ``staff * 3600 / mean pick time`` orders per hour. A picker who
    goes off duty finishes the order in hand; nobody starts an order off duty.
    """

    name: Name = Field(description="Warehouse name, e.g. east.")
    region: Name = Field(description="Region it stands in: the nearest warehouse for it.")
    pickers: int = Field(
        ge=0, description="Pickers on duty at hours no shift covers (every hour, without shifts)."
    )
    pick_time_s: Seconds = Field(description="Time one picker takes per order, s.")
    shifts: list[Shift] = Field(
        default=[], description="Daily shift calendar: pickers on duty by time of day."
    )
    surge: list[Surge] = Field(default=[], description="Surge staff for windows of the run.")
    stock_share: Fraction | None = Field(
        default=None,
        description="Share of each item's stock kept here when stock is split across "
        "warehouses; null: the share of users whose nearest warehouse this is.",
    )
    cutoffs_h: list[Hour] = Field(
        default=[],
        description="Times of day the carrier collects; a parcel packed after a cut-off "
        "leaves with the next one (the next day after the last). Empty: collected as "
        "soon as packed.",
    )
    capacity_per_pickup: int | None = Field(
        default=None,
        ge=1,
        description="Parcels one collection takes; the rest wait for the next. null: no limit.",
    )
    transit_time_h: dict[Name, Hours] = Field(
        default={},
        description="Carrier time from collection to delivery, h, per destination region; "
        "regions not listed use fulfilment.transit_time_h.",
    )

    _shifts = field_validator("shifts")(_check_shifts)

    @field_validator("cutoffs_h")
    @classmethod
    def _cutoffs(cls, cutoffs: list[float]) -> list[float]:
        if any(not 0 <= c < 24 for c in cutoffs):
            raise ValueError("cut-offs are hours of day in [0, 24)")
        if len(set(cutoffs)) != len(cutoffs):
            raise ValueError("cut-offs must differ")
        return sorted(cutoffs)

    @model_validator(mode="after")
    def _staffed(self) -> Warehouse:
        _check_staffed(self.pickers, self.shifts, "pickers")
        return self


class Tracking(Model):
    """Parcel status updates (packed, collected, delivered) pass through a message queue."""

    throughput_per_s: float = Field(
        gt=0, description="Updates the queue's consumers process per second."
    )


class Fulfilment(Model):
    """From paid order to delivered parcel: regions, warehouses, carriers, tracking."""

    regions: list[Region] = Field(min_length=1, description="Destination regions; shares sum to 1.")
    warehouses: list[Warehouse] = Field(min_length=1, description="Warehouses.")
    transit_time_h: Hours = Field(
        description="Carrier time from collection to delivery, h, for every warehouse and "
        "region pair a warehouse does not list."
    )
    promised_delivery_h: float = Field(
        gt=0, description="Delivery promise: an order is on time if delivered within this, h."
    )
    divert_over_backlog_h: float | None = Field(
        default=None,
        gt=0,
        description="Cross-region fallback: when the nearest warehouse needs more than this "
        "many hours to pack the orders already inside (its pickers on their roster), an "
        "order ships from the warehouse that needs the fewest, at that pair's transit "
        "time. null: always the nearest.",
    )
    tracking: Tracking | None = Field(
        default=None, description="The tracking-update queue; null: customers see updates at once."
    )

    @field_validator("regions")
    @classmethod
    def _regions(cls, regions: list[Region]) -> list[Region]:
        return shares_sum_to_one(regions, "region")

    @model_validator(mode="after")
    def _consistent(self) -> Fulfilment:
        unique_names(self.warehouses, "warehouse")
        regions = {r.name for r in self.regions}
        known = ", ".join(r.name for r in self.regions)
        for i, w in enumerate(self.warehouses):
            if w.region not in regions:
                raise ValueError(
                    f"warehouses[{i}].region: no region {w.region!r} (regions: {known})"
                )
            for name in w.transit_time_h:
                if name not in regions:
                    raise ValueError(
                        f"warehouses[{i}].transit_time_h: no region {name!r} (regions: {known})"
                    )
        given = [w.stock_share for w in self.warehouses if w.stock_share is not None]
        if given and len(given) != len(self.warehouses):
            raise ValueError("stock_share: give it for every warehouse or for none")
        if given and abs(sum(given) - 1) > 1e-6:
            raise ValueError(f"stock_share values must sum to 1, they sum to {sum(given):g}")
        return self


class Enquiry(Model):
    """One reason customers contact customer service."""

    probability: Fraction = Field(default=0.0, description="Chance each occasion brings one.")
    simple: bool = Field(description="Whether the bot can answer it (see bot_deflection).")


class StaleTracking(Enquiry):
    """'Where is my order?' when a status update shows up late."""

    after_h: float = Field(
        default=2.0, gt=0, description="Lag at which a customer notices and asks, h."
    )


class Enquiries(Model):
    """What brings customers to customer service, and how often."""

    late_parcel: Enquiry = Field(
        default=Enquiry(simple=False),
        description="Per order not delivered by its promise; asked at the promised time.",
    )
    stale_tracking: StaleTracking = Field(
        default=StaleTracking(simple=True),
        description="Per status update shown more than after_h late; asked then.",
    )
    payment_failed: Enquiry = Field(
        default=Enquiry(simple=False),
        description="Per visit that ended with a failed payment; asked then.",
    )
    coupon: Enquiry = Field(
        default=Enquiry(simple=True),
        description="Per paid order that used a coupon and per coupon claim that failed; "
        "asked then.",
    )
    order_status: Enquiry = Field(
        default=Enquiry(simple=True), description="Per paid order, asked when it is paid."
    )


class CustomerService(Model):
    """Enquiries, a bot that answers the simple ones, and agents who take the rest in turn."""

    enquiries: Enquiries = Field(default=Enquiries(), description="Enquiry rates by reason.")
    bot_deflection: Fraction = Field(
        default=0.0, description="Share of simple enquiries the bot answers (0.7: 70%)."
    )
    agents: int = Field(
        ge=0, description="Agents on duty at hours no shift covers (every hour, without shifts)."
    )
    shifts: list[Shift] = Field(default=[], description="Daily shift calendar of agents.")
    surge: list[Surge] = Field(default=[], description="Surge agents for windows of the run.")
    handle_time_s: Seconds = Field(description="Time an agent takes per enquiry, s.")
    patience_s: Distribution | None = Field(
        default=None,
        description="How long a customer waits for an agent before giving up, s; null: "
        "nobody gives up.",
    )
    target_wait_s: float = Field(
        default=30.0, gt=0, description="Service-level target for the wait for an agent, s."
    )

    _shifts = field_validator("shifts")(_check_shifts)

    @model_validator(mode="after")
    def _staffed(self) -> CustomerService:
        _check_staffed(self.agents, self.shifts, "agents")
        return self
