"""The commerce part of the schema: stock and coupon quotas, payments' failover, promotions.

Stock and coupon quotas share one set of deduction mechanics (:class:`Deduction`):
atomic, read-then-write with a race window, a distributed lock with a lease, or an
asynchronous queue. Promotions set prices (flat discount, a full-reduction ladder,
member prices, coupons, flash-sale and presale prices) and bring their own traffic
(a flash-sale slot opening, a coupon rain, a presale's deposit and final payment).
How each segment responds to each mechanic is in :class:`Response`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simulator.scenario.base import Fraction, Model, Name, unique_names
from simulator.scenario.distributions import (
    Deterministic,
    Exponential,
    Milliseconds,
    Seconds,
)
from simulator.scenario.protections import CircuitBreaker

__all__ = [
    "AsyncDeduction",
    "BasketBuilding",
    "Burst",
    "Coupon",
    "CouponRain",
    "Deduction",
    "DistributedLock",
    "FlashSale",
    "HourWindow",
    "Inventory",
    "MECHANICS",
    "PaymentFailover",
    "PaymentRetry",
    "Presale",
    "Promotions",
    "Response",
    "Returns",
    "Step",
    "TimeOfDay",
]

MECHANICS = ("none", "discount", "ladder", "member_price", "coupon", "flash_sale", "presale")
"""Price mechanics an order can carry; an order's headline mechanic is one of them."""


# ------------------------------------------------------------- deduction mechanics


class DistributedLock(Model):
    """A per-key distributed lock (e.g. Redis SET NX PX) around read-check-write."""

    lease_ms: float = Field(
        gt=0,
        description="The lock expires this long after it is granted, held or not; a "
        "holder still inside then overlaps the next one (both read the same count).",
    )
    hold_time_ms: Milliseconds = Field(
        description="Time inside the lock: read the count, check it, write it back, ms. "
        "A long tail (GC pauses, slow writes) is what outlives the lease."
    )
    failure_probability: Fraction = Field(
        default=0.0,
        description="Chance a grant is not exclusive (the lock server failed over and "
        "lost the lock): the caller proceeds without excluding anyone.",
    )
    wait_timeout_ms: float = Field(
        default=500.0,
        gt=0,
        description="Longest wait to acquire the lock, ms; beyond it the claim or the "
        "checkout fails (an error).",
    )


class AsyncDeduction(Model):
    """Deduction by a queue consumer; the front end checks the count the consumer keeps."""

    consumer_time_ms: Milliseconds = Field(
        description="Time the single queue consumer spends on one deduction message, ms. "
        "While messages wait, the count the front end checks is too high."
    )


class Deduction(Model):
    """How a counted resource (stock, a coupon quota) is taken."""

    deduction: Literal["atomic", "read_then_write", "lock", "async"] = Field(
        default="atomic",
        description="atomic: a conditional decrement (Redis DECR, UPDATE ... WHERE n >= k), "
        "never oversells. read_then_write: read the count, check it, write count - k back "
        "after race_window_ms; concurrent takers both pass the check and one write is "
        "lost. lock: read-then-write inside a distributed lock (see lock). async: the "
        "front end checks the count and queues the deduction (see queue).",
    )
    deduct_time_ms: Milliseconds = Field(
        default=Deterministic(dist="deterministic", value=1.0),
        description="Time of one atomic decrement, or of the front end's check in async mode, ms.",
    )
    race_window_ms: Milliseconds | None = Field(
        default=None, description="read_then_write: time from reading the count to writing it."
    )
    lock: DistributedLock | None = Field(default=None, description="The lock, in lock mode.")
    queue: AsyncDeduction | None = Field(default=None, description="The queue, in async mode.")

    @model_validator(mode="after")
    def _mode_has_its_settings(self) -> Deduction:
        needs = {"read_then_write": "race_window_ms", "lock": "lock", "async": "queue"}
        field = needs.get(self.deduction)
        if field is not None and getattr(self, field) is None:
            raise ValueError(f"deduction {self.deduction!r} needs {field}")
        return self


class Inventory(Deduction):
    """Stock per item (per warehouse when split), and how it is deducted at checkout."""

    stock_per_item: int | None = Field(
        default=None,
        ge=0,
        description="Units in stock of each catalogue item; null means unlimited. Hot "
        "items may set their own (catalogue.hot_items[].stock).",
    )
    purchase_limit_per_user: int | None = Field(
        default=None, ge=1, description="Units of one item a user may buy; null: no limit."
    )
    split_across_warehouses: bool = Field(
        default=False,
        description="Split each item's stock over the warehouses (by their stock_share); "
        "a user buys from the nearest warehouse to their region.",
    )
    fallback_to_other_warehouses: bool = Field(
        default=True,
        description="When split and the nearest warehouse has none left, take the unit "
        "from the next-nearest that has it (shipped from there, at that pair's transit "
        "time); false: the user finds it sold out.",
    )
    oversell_compensation_cny: float = Field(
        default=20.0,
        ge=0,
        description="Paid to the buyer of each oversold unit when the order is cancelled "
        "and refunded (seed [002 §09]: CNY 5-20 compensation coupons).",
    )


# ------------------------------------------------------------------ payment failover


class PaymentFailover(Model):
    """Route around a failing channel: a breaker per channel detects, a switch follows."""

    circuit_breaker: CircuitBreaker = Field(
        default_factory=CircuitBreaker,
        description="Judges each channel's calls (errors and timeouts, not declines).",
    )
    switch_ms: float = Field(
        default=200.0,
        ge=0,
        description="From the breaker opening to new payments going to another channel, "
        "ms (seed [002 §11]: within 200 ms). Payments sent to the failed channel before "
        "the switch are lost with it.",
    )


class PaymentRetry(Model):
    """A user whose payment failed tries another channel."""

    probability: Fraction = Field(description="Chance a user retries a failed payment.")
    delay_s: Seconds = Field(
        default=Deterministic(dist="deterministic", value=5.0),
        description="Seconds before the retry (choosing another channel, re-entering).",
    )
    max_retries: int = Field(default=1, ge=1, description="Retries at most.")


# --------------------------------------------------------------------- promotions


class Step(Model):
    """One step of a full-reduction ladder: spend ``threshold_cny``, get ``off_cny`` off."""

    threshold_cny: float = Field(gt=0, description="Order value that earns the step, CNY.")
    off_cny: float = Field(gt=0, description="Reduction, CNY.")


class Coupon(Model):
    """A coupon: ``value_cny`` off an order of at least ``threshold_cny``."""

    value_cny: float = Field(gt=0, description="Face value, CNY.")
    threshold_cny: float = Field(default=0.0, ge=0, description="Minimum spend; 0: none.")


class Burst(Model):
    """The traffic an event brings: a trapezoid over the baseline, from the event's time."""

    ramp_s: float = Field(default=0.0, ge=0, description="Seconds to the peak.")
    hold_s: float = Field(ge=0, description="Seconds at the peak.")
    decay_s: float = Field(default=0.0, ge=0, description="Seconds back to the baseline.")
    multiplier: float = Field(
        gt=1, description="Peak rate as a multiple of the baseline (the event adds the excess)."
    )


class FlashSale(Model):
    """A time slot selling a limited stock of one item at a flash price."""

    name: Name = Field(description="Slot name.")
    item: Name = Field(description="A catalogue hot item's name.")
    opens_at_s: float = Field(ge=0, description="When the slot opens, s; its burst starts then.")
    burst: Burst = Field(description="The users the slot brings; they come for its item.")
    stock: int = Field(ge=0, description="Units the slot sells.")
    list_price_cny: float = Field(gt=0, description="The item's usual price, CNY.")
    price_cny: float = Field(gt=0, description="Flash price, CNY.")
    purchase_limit: int | None = Field(
        default=None, ge=1, description="Units per user in this slot; null: inventory's."
    )


class CouponRain(Deduction):
    """A red-envelope rain: a synchronised burst of users claiming no-threshold coupons."""

    name: Name = Field(description="Event name.")
    at_s: float = Field(ge=0, description="When the rain starts, s.")
    burst: Burst = Field(description="The users the rain brings; each claims a coupon first.")
    quota: int = Field(ge=0, description="Coupons the rain may issue.")
    coupon: Coupon = Field(description="What each coupon is worth.")


class Presale(Model):
    """Presale: a deposit at one time, the final payment in a window later."""

    name: Name = Field(description="Event name.")
    item: Name = Field(description="A catalogue hot item's name.")
    deposit_at_s: float = Field(ge=0, description="When deposits open (its burst starts), s.")
    burst: Burst = Field(description="The users who come to pay the deposit.")
    stock: int = Field(ge=0, description="Units on presale; a deposit reserves one.")
    list_price_cny: float = Field(gt=0, description="The item's price, CNY.")
    deposit_cny: float = Field(gt=0, description="Deposit, CNY.")
    deposit_inflation: float = Field(
        default=1.0,
        ge=1,
        description="The deposit counts this many times at the final payment (a CNY 100 "
        "deposit worth CNY 150 is 1.5).",
    )
    final_payment_at_s: float = Field(ge=0, description="When the final payment opens, s.")
    final_payment_delay_s: Seconds = Field(
        default=Exponential(dist="exponential", mean=600.0),
        description="How long after the opening each depositor pays the balance, s (the "
        "second burst's shape).",
    )
    forfeit_rate: Fraction = Field(
        default=0.1, description="Depositors who never pay the balance; the deposit is kept."
    )

    @model_validator(mode="after")
    def _order(self) -> Presale:
        if self.final_payment_at_s <= self.deposit_at_s:
            raise ValueError("final_payment_at_s must come after deposit_at_s")
        if self.deposit_cny * self.deposit_inflation >= self.list_price_cny:
            raise ValueError("deposit_cny * deposit_inflation must be less than list_price_cny")
        return self


class HourWindow(Model):
    """A time-of-day window with its own conversion."""

    from_h: float = Field(ge=0, lt=24, description="Start, hour of day (20.5 is 20:30).")
    to_h: float = Field(gt=0, le=24, description="End, hour of day.")
    conversion_multiplier: float = Field(
        gt=0, description="Multiplies the checkout rate of users arriving in the window."
    )


class TimeOfDay(Model):
    """Conversion by time of day (e.g. 20:00-22:00 converts 1.8x [002 §07]).

    Hours are read on the scenario's clock (``clock_at_start_h``).
    """

    windows: list[HourWindow] = Field(min_length=1, description="Windows; the rest is 1x.")


class Response(Model):
    """A segment's conversion response to each mechanic: relative uplift of checkout_rate.

    A user's checkout rate is multiplied by (1 + uplift) for every mechanic that applies
    to them (capped at 1): 0.35 means 35% more of those with a cart pay.
    """

    discount: float = Field(default=0.0, ge=-1, description="Flat discount.")
    ladder: float = Field(default=0.0, ge=-1, description="Full-reduction ladder.")
    member_price: float = Field(default=0.0, ge=-1, description="Member price.")
    coupon: float = Field(default=0.0, ge=-1, description="Holding a coupon.")
    flash_sale: float = Field(default=0.0, ge=-1, description="A flash-sale slot's user.")
    presale: float = Field(default=0.0, ge=-1, description="A presale's user.")


class BasketBuilding(Model):
    """Users a little short of a ladder step add items to reach it."""

    probability: Fraction = Field(description="Chance a user within reach adds items.")
    max_gap: Fraction = Field(
        description="Within reach: the basket is short of the next step by at most this "
        "fraction of the step's threshold."
    )


class Returns(Model):
    """Share of paid orders returned, by the order's headline mechanic."""

    none: Fraction = Field(default=0.0, description="Orders with no promotion.")
    discount: Fraction = Field(default=0.0, description="Flat discount.")
    ladder: Fraction = Field(default=0.0, description="Full-reduction ladder.")
    member_price: Fraction = Field(default=0.0, description="Member price.")
    coupon: Fraction = Field(default=0.0, description="Coupon.")
    flash_sale: Fraction = Field(default=0.0, description="Flash sale ([002 §06]: 8%).")
    presale: Fraction = Field(default=0.0, description="Presale.")


class Promotions(Model):
    """The sale's price mechanics and the events that bring their own traffic."""

    discount: Fraction | None = Field(
        default=None, lt=1, description="Flat discount off every list price; null: none."
    )
    ladder: list[Step] = Field(
        default=[],
        description="Tiered full-reduction: the highest step an order reaches applies, "
        "after member and flat discounts (e.g. 200 -> 20, 500 -> 50 [000 P03]).",
    )
    member_discount: Fraction | None = Field(
        default=None, lt=1, description="Off list prices for member segments; null: none."
    )
    coupon: Coupon | None = Field(
        default=None, description="A coupon some users arrive holding (a threshold coupon)."
    )
    coupon_holders: Fraction = Field(
        default=0.0, description="Share of arriving users who hold that coupon."
    )
    flash_sales: list[FlashSale] = Field(default=[], description="Flash-sale slots.")
    coupon_rains: list[CouponRain] = Field(default=[], description="Coupon rains.")
    presales: list[Presale] = Field(default=[], description="Presales.")
    item_cost_ratio: Fraction = Field(
        default=0.7, description="Cost of goods as a fraction of the list price (margin)."
    )
    returns: Returns = Field(default_factory=Returns, description="Return rates.")
    time_of_day: TimeOfDay | None = Field(
        default=None, description="Conversion by hour of day; null: flat."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Promotions:
        thresholds = [s.threshold_cny for s in self.ladder]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("ladder thresholds must rise strictly, step by step")
        if self.coupon_holders > 0 and self.coupon is None:
            raise ValueError("coupon_holders is set but there is no coupon")
        for sale in self.flash_sales:
            if sale.price_cny > sale.list_price_cny:
                raise ValueError(f"flash sale {sale.name!r}: price_cny is above list_price_cny")
        unique_names([*self.flash_sales, *self.coupon_rains, *self.presales], "event")
        return self

    def events(self) -> list[FlashSale | CouponRain | Presale]:
        """Every event that brings traffic, in the order written."""
        return [*self.flash_sales, *self.coupon_rains, *self.presales]
