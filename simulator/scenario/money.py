"""Schema of the money a sale spends: the traffic it buys, and the price list of what serves it.

Two sections. ``channels`` are the paid and organic sources of visitors on top of the
traffic curve: what each costs, when its budget is spent, how fast its returns
diminish, and who its visitors are. ``costs`` is the price list the run's use of
capacity, staff and logistics is billed at. Every price is in CNY with its unit in the
field's name; all of them default to zero, so a scenario without prices reports the
promotion's money only, as before.

The response curve of a channel (diminishing returns) is a power law, the constant-
elasticity form of marketing-mix models::

    clicks(spend) = (reference_spend_cny / cpc) * (spend / reference_spend_cny) ** returns_exponent

so the quoted CPC is the average price of a click at ``reference_spend_cny``; above it
each extra click costs more, below it less. Cost per visitor grows as
``visitors ** (1 / returns_exponent - 1)``: the default exponent 0.893 makes four times
the reach (+300%) cost 18% more per visitor, and so per conversion at the same
conversion rate, as the seeds' lookalike audience did [002 §07].
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, model_validator

from simulator.scenario.base import Fraction, Model, Name, unique_names

__all__ = [
    "DEFAULT_RETURNS_EXPONENT",
    "Costs",
    "Lifetime",
    "PaymentFee",
    "SpendWindow",
    "TrafficChannel",
    "channel_clicks",
]

Price = Annotated[float, Field(ge=0)]

DEFAULT_RETURNS_EXPONENT = 1 / (1 + math.log(1.18) / math.log(4))
"""0.893: four times the visitors at 1.18 times the cost per visitor [002 §07]."""


class SpendWindow(Model):
    """A share of a channel's budget (or clicks) spent evenly over a window of the sale."""

    start_s: float = Field(ge=0, description="Window start, seconds from the run's start.")
    end_s: float = Field(gt=0, description="Window end, seconds from the run's start.")
    share: Fraction = Field(description="Fraction of the channel's spend in this window.")

    @model_validator(mode="after")
    def _ordered(self) -> SpendWindow:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s: {self.end_s:g} is not after start_s ({self.start_s:g})")
        return self


class Lifetime(Model):
    """What a new customer won by a channel is worth after the sale (seeds [002 §12])."""

    annual_spend_cny: float = Field(
        default=800.0, ge=0, description="A retained customer's spend a year, CNY."
    )
    retention_years: float = Field(default=1.5, ge=0, description="Years a new customer stays.")
    repurchase_multiplier: float = Field(
        default=1.0,
        ge=0,
        description="Repurchase relative to the average new customer: 1.4 for the "
        "seeds' KOL partnership (+40%), 0 for display ads (no repurchase).",
    )

    def value_cny(self) -> float:
        """Lifetime value of one new customer: annual spend x years x repurchase."""
        return self.annual_spend_cny * self.retention_years * self.repurchase_multiplier


class TrafficChannel(Model):
    """A source of visitors bought with a budget (or a click volume) on top of the curve.

    Its visitors arrive as their own Poisson process over the spend windows, from their
    own random streams, and every one of their sessions is counted under the channel.
    """

    name: Name = Field(description="Channel name, e.g. douyin, wechat, taobao-ads, kol.")
    budget_cny: float | None = Field(
        default=None, ge=0, description="Spend planned over the sale, CNY; or give clicks."
    )
    clicks: float | None = Field(
        default=None,
        ge=0,
        description="Visitors bought (or, with cpc_cny 0, organic visitors expected); "
        "or give budget_cny.",
    )
    cpc_cny: float | None = Field(
        default=None,
        ge=0,
        description="Average price of a click at reference_spend_cny (seeds [002 §07]: "
        "Douyin 1.2, WeChat 0.8, Taobao 1.5); 0 for organic traffic. Or give cpm_cny and ctr.",
    )
    cpm_cny: float | None = Field(
        default=None, ge=0, description="Price of a thousand impressions, CNY (with ctr)."
    )
    ctr: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Click-through rate of an impression, with cpm_cny (seeds: 1.2% static "
        "image to 3.5% enthusiasts).",
    )
    reference_spend_cny: float = Field(
        default=1_000_000.0,
        gt=0,
        description="Spend at which cpc_cny is the average click price (the response "
        "curve's anchor).",
    )
    returns_exponent: float = Field(
        default=DEFAULT_RETURNS_EXPONENT,
        gt=0,
        le=1,
        description="Exponent of the response curve clicks ~ spend**exponent: 1 is a fixed "
        "price per click; the default 0.893 makes +300% reach cost +18% per visitor.",
    )
    profile: list[SpendWindow] | None = Field(
        default=None,
        description="How the spend is spread over the sale; shares sum to 1. A window "
        "the sale ends in buys only the clicks up to the end (shorten a run freely). "
        "null: evenly over [0, duration_s).",
    )
    segments: dict[str, Fraction] | None = Field(
        default=None,
        description="The channel's visitors by segment name; shares sum to 1. null: "
        "the scenario's segment shares.",
    )
    conversion_multiplier: float = Field(
        default=1.0,
        gt=0,
        description="Multiplies its visitors' add-to-cart rate (checkout rate for "
        "segments that skip browsing), capped at 1.",
    )
    basket_multiplier: float = Field(
        default=1.0, gt=0, description="Multiplies its visitors' basket values."
    )
    new_customer_share: Fraction = Field(
        default=0.4,
        description="Fraction of its buyers who are new customers (seeds [002 §04]: new "
        "users 40% of visitors).",
    )
    lifetime: Lifetime = Field(
        default_factory=Lifetime, description="A new customer's value after the sale."
    )

    @model_validator(mode="after")
    def _priced_and_sized(self) -> TrafficChannel:
        if (self.budget_cny is None) == (self.clicks is None):
            raise ValueError("give exactly one of budget_cny and clicks")
        by_cpm = self.cpm_cny is not None or self.ctr is not None
        if by_cpm and (self.cpm_cny is None or self.ctr is None):
            raise ValueError("cpm_cny and ctr go together")
        if by_cpm == (self.cpc_cny is not None):
            raise ValueError("give exactly one price: cpc_cny, or cpm_cny with ctr")
        if self.budget_cny is not None and self.budget_cny > 0 and self.click_price_cny() == 0:
            raise ValueError("budget_cny: a budget needs a price above 0 (free traffic: clicks)")
        if self.profile is not None:
            if not self.profile:
                raise ValueError("profile: give at least one window, or null")
            total = sum(w.share for w in self.profile)
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"profile: shares must sum to 1, they sum to {total:g}")
        if self.segments is not None:
            total = sum(self.segments.values())
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"segments: shares must sum to 1, they sum to {total:g}")
        return self

    def click_price_cny(self) -> float:
        """The quoted price of a click at the reference spend."""
        if self.cpc_cny is not None:
            return self.cpc_cny
        assert self.cpm_cny is not None and self.ctr is not None
        return self.cpm_cny / 1000.0 / self.ctr

    def plan(self) -> tuple[float, float]:
        """(expected visitors, planned spend in CNY), at the declared size."""
        if self.budget_cny is not None:
            return channel_clicks(self, self.budget_cny), self.budget_cny
        assert self.clicks is not None
        return self.clicks, self.spend_for(self.clicks)

    def spend_for(self, clicks: float) -> float:
        """The spend that buys ``clicks`` on the response curve (its inverse)."""
        price, reference = self.click_price_cny(), self.reference_spend_cny
        if price == 0 or clicks == 0:
            return 0.0
        at_reference = reference / price
        return reference * (clicks / at_reference) ** (1 / self.returns_exponent)

    def windows(self, duration_s: float) -> list[SpendWindow]:
        """The spend windows (one over the whole sale when no profile is given)."""
        if self.profile is not None:
            return self.profile
        return [SpendWindow(start_s=0.0, end_s=duration_s, share=1.0)]


def channel_clicks(channel: TrafficChannel, spend_cny: float | None) -> float:
    """Expected visitors that ``spend_cny`` buys on the channel's response curve."""
    price, reference = channel.click_price_cny(), channel.reference_spend_cny
    if not spend_cny or price == 0:
        return 0.0
    return reference / price * (spend_cny / reference) ** channel.returns_exponent


class PaymentFee(Model):
    """What a payment channel charges for one successful payment."""

    rate: Fraction = Field(default=0.0, description="Fraction of the amount paid (0.006: 0.6%).")
    fixed_cny: float = Field(default=0.0, ge=0, description="Fixed fee per payment, CNY.")


class Costs(Model):
    """The price list: what capacity, staff, logistics and failures cost, in CNY.

    Billed from what the run used: instance-hours from the autoscaler's timeline
    (instances are paid from the moment they are asked for, start-up included),
    node- and instance-hours of the cache and database over the run, staff-hours from
    the rosters while the warehouse or service desk has work, fees per successful
    payment, a price per parcel and a compensation per late one. Oversold units are
    compensated at ``inventory.oversell_compensation_cny``.
    """

    app_instance_hour_cny: float = Field(
        default=0.0, ge=0, description="An application-server instance for an hour."
    )
    workers_per_app_instance: int = Field(
        default=8,
        ge=1,
        description="Workers one instance runs, to bill a gateway without autoscaling "
        "(autoscaled gateways use autoscaling.workers_per_instance).",
    )
    cache_node_hour_cny: float = Field(
        default=0.0,
        ge=0,
        description="A distributed cache node for an hour (local caches live in the "
        "application servers and cost nothing more).",
    )
    database_instance_hour_cny: float = Field(
        default=0.0,
        ge=0,
        description="A database instance for an hour: each shard's primary, its standby "
        "and its read replicas.",
    )
    payment_fees: dict[str, PaymentFee] = Field(
        default={}, description="Fees per payment channel name; channels not listed: none."
    )
    picker_hour_cny: float = Field(default=0.0, ge=0, description="A picker for an hour.")
    surge_picker_hour_cny: float | None = Field(
        default=None,
        ge=0,
        description="A surge picker for an hour (overtime, agency staff); null: as "
        "picker_hour_cny.",
    )
    agent_hour_cny: float = Field(
        default=0.0, ge=0, description="A customer-service agent for an hour."
    )
    bot_enquiry_cny: float = Field(default=0.0, ge=0, description="An enquiry the bot answers.")
    parcel_cny: float = Field(default=0.0, ge=0, description="Shipping one parcel.")
    parcel_cny_by_region: dict[str, Price] = Field(
        default={},
        description="Shipping one parcel to a region, by region name; regions not listed: "
        "parcel_cny.",
    )
    late_parcel_compensation_cny: float = Field(
        default=0.0, ge=0, description="Compensation for a parcel delivered after the promise."
    )
    fixed_cny: dict[str, Price] = Field(
        default={},
        description="Fixed lines by name (development, emergency_reserve...), CNY.",
    )

    def surge_picker_price(self) -> float:
        """The surge picker-hour price in force."""
        return (
            self.picker_hour_cny
            if self.surge_picker_hour_cny is None
            else (self.surge_picker_hour_cny)
        )


def check_names(channels: list[TrafficChannel]) -> list[TrafficChannel]:
    """Channel names are unique and ``base`` is kept for the traffic curve's own visitors."""
    unique_names(channels, "channel")
    for i, channel in enumerate(channels):
        if channel.name == "base":
            raise ValueError(f"[{i}].name: 'base' is the traffic curve's own visitors")
    return channels
