"""The money side of a run: orders booked, discounts given, returns, and demand lost.

Everything here is booked as the run goes, one order at a time, so the figures are
sums over real orders: GMV is the sum of paid order values (list value minus
discounts), the discount cost the sum of their discounts. Demand lost is the value
the users who meant to buy would have paid, split by what stopped them. Oversold units
are refunded at the average price their key's orders paid, plus the compensation.

Definitions (all money in CNY):

- ``gmv``: paid order values, after every discount, when the payment succeeds (a
  presale order when its balance is paid).
- ``discount_cost``: list value minus paid value over paid orders.
- ``refunds``: returned orders and cancelled oversold units, at what was paid.
- ``net_sales = gmv - refunds``.
- ``gross_margin = net_sales + deposits forfeited - cost of goods kept -
  oversell compensation``; goods returned or never shipped (oversold) cost nothing.
- ``promotion_roi = gmv / discount_cost``: GMV per yuan of discount (the seeds' ROI
  is GMV per yuan spent, [002 §07]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.measure.metrics import IntervalCounter
from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams, buffered
from simulator.model.pricing import Pricing
from simulator.scenario.commerce import MECHANICS
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from simulator.model.users import User

__all__ = ["LOST_CAUSES", "Ledger", "SESSIONS", "CARTS", "ORDERS", "PAID"]

LOST_CAUSES = {
    Outcome.SOLD_OUT: "sold_out",
    Outcome.PAYMENT_FAILED: "payment_failed",
    Outcome.ABANDONED: "abandoned",
    Outcome.REJECTED: "rejected",
    Outcome.RATE_LIMITED: "rate_limited",
    Outcome.ERROR: "error",
}
"""Outcomes that lose a buyer's order, and the cause they are booked under."""

SESSIONS, CARTS, ORDERS, PAID, BUYERS = range(5)
"""Funnel stages: visits, carts filled, orders placed (stock and order write), paid."""

_ORDER_COLUMNS = (
    "t_s",
    "segment",
    "item",
    "units",
    "list_cny",
    "discount_cny",
    "paid_cny",
    "mechanic",
    "coupon_cny",
    "returned",
    "region",
    "warehouse",
    "shipped_at_s",
    "delivered_at_s",
)


class Ledger:
    """The books of one run.

    Args:
        scenario: the scenario (segments, promotions).
        pricing: the price mechanics.
        keys: number of stock keys (per-key revenue, for oversell refunds).
        streams: the run's streams; uses ``orders.returns``.
        interval_s: time-series interval.
        keep_orders: keep one row per paid order (for :attr:`orders`).
    """

    def __init__(
        self,
        scenario: Scenario,
        pricing: Pricing,
        keys: int,
        streams: Streams,
        interval_s: float,
        keep_orders: bool = False,
    ) -> None:
        self.pricing = pricing
        returns = scenario.promotions.returns
        self.return_rates = [getattr(returns, m) for m in MECHANICS]
        self.returns_uniform = (
            buffered(streams.generator("orders.returns").random) if any(self.return_rates) else None
        )
        self.gmv = 0.0
        self.gmv_series = IntervalCounter(interval_s)
        self.listed = 0.0
        self.discounts = 0.0
        self.by_mechanic = [[0, 0.0] for _ in MECHANICS]  # orders, gmv
        self.returned = 0
        self.returned_paid = 0.0
        self.returned_listed = 0.0
        self.coupons_redeemed = 0
        self.key_paid = [0.0] * keys
        self.key_units = [0] * keys
        self.key_listed = [0.0] * keys
        self.lost = dict.fromkeys(LOST_CAUSES.values(), 0.0)
        self.deposits_forfeited = 0.0
        if scenario.experience is not None:
            self.lost["slow_pages"] = 0.0
        sources = 1 + len(scenario.channels)
        self.source_orders = [0] * sources
        self.source_gmv = [0.0] * sources
        self.source_lost = [0.0] * sources
        """Per traffic source (the curve, then each channel): paid orders, GMV, lost GMV."""
        self.paid_by_payment = [0.0] * len(scenario.payment.channels)
        """Paid value by the payment channel that took the last payment."""
        self.funnel = [[0, 0, 0, 0, 0] for _ in scenario.segments]
        self.rows: list[tuple[Any, ...]] | None = [] if keep_orders else None
        self.segment_names = [s.name for s in scenario.segments]
        self.region_names = [r.name for r in scenario.fulfilment.regions]
        self.warehouse_names = [w.name for w in scenario.fulfilment.warehouses]

    def book(self, user: User, key: int, now: float, shipment: tuple[int, float, float]) -> bool:
        """Book a paid order taken from stock ``key``; return whether it used a coupon.

        ``shipment`` is (warehouse, collected at, delivered at), for the order table.
        """
        listed, paid, mechanic, used = self.pricing.quote(user, user.coupon)
        self.gmv += paid
        self.gmv_series.add(now, paid)
        self.listed += listed
        self.discounts += listed - paid
        tally = self.by_mechanic[mechanic]
        tally[0] += 1
        tally[1] += paid
        coupon = user.coupon
        if used:
            self.coupons_redeemed += 1
        self.key_paid[key] += paid
        self.key_units[key] += user.units
        self.key_listed[key] += listed
        self.funnel[user.segment][PAID] += 1
        source = user.source
        self.source_orders[source] += 1
        self.source_gmv[source] += paid
        if user.paid_with >= 0:
            self.paid_by_payment[user.paid_with] += paid
        returned = False
        draw = self.returns_uniform
        if draw is not None and draw() < self.return_rates[mechanic]:
            returned = True
            self.returned += 1
            self.returned_paid += paid
            self.returned_listed += listed
        if self.rows is not None:
            self.rows.append(
                (
                    now,
                    self.segment_names[user.segment],
                    user.item,
                    user.units,
                    listed,
                    listed - paid,
                    paid,
                    MECHANICS[mechanic],
                    coupon.value_cny if used and coupon is not None else 0.0,
                    returned,
                    self.region_names[user.region],
                    self.warehouse_names[shipment[0]],
                    shipment[1],
                    shipment[2],
                )
            )
        return used

    def lose(self, user: User, outcome: Outcome) -> None:
        """Book the order a buyer did not get to place, under its cause."""
        cause = LOST_CAUSES.get(outcome)
        if cause is not None:
            value = self.pricing.quote(user, user.coupon)[1]
            self.lost[cause] += value
            self.source_lost[user.source] += value

    def lose_to_slow_pages(self, user: User) -> None:
        """Book the order of a buyer a slow landing page put off."""
        value = self.pricing.quote(user, user.coupon)[1]
        self.lost["slow_pages"] += value
        self.source_lost[user.source] += value

    def order_table(self) -> Any:
        """Paid orders as a DataFrame (None when the run did not keep them)."""
        if self.rows is None:
            return None
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(_ORDER_COLUMNS))

    def figures(self, oversold: list[int], compensation_cny: float, money: float) -> dict[str, Any]:
        """The business KPIs; money totals times ``money`` (the scale's inverse)."""
        # Oversold units are refunded at their key's average paid price per unit, and
        # never ship, so they cost no goods (at the key's average list value per unit).
        refund_oversold = listed_oversold = 0.0
        for key, units in enumerate(oversold):
            if units and self.key_units[key]:
                refund_oversold += units * self.key_paid[key] / self.key_units[key]
                listed_oversold += units * self.key_listed[key] / self.key_units[key]
        oversold_units = sum(oversold)
        compensation = oversold_units * compensation_cny
        refunds = self.returned_paid + refund_oversold
        net_sales = self.gmv - refunds
        kept_listed = self.listed - self.returned_listed - listed_oversold
        cost_of_goods = self.pricing.cost_ratio * kept_listed
        margin = net_sales + self.deposits_forfeited - cost_of_goods - compensation
        return {
            "discount_cost": self.discounts * money,
            "net_sales": net_sales * money,
            "refunds": refunds * money,
            "returned_orders": self.returned,
            "cost_of_goods": cost_of_goods * money,
            "gross_margin": margin * money,
            "gross_margin_rate": margin / net_sales if net_sales else None,
            "promotion_roi": self.gmv / self.discounts if self.discounts else None,
            "deposits_forfeited": self.deposits_forfeited * money,
            "coupons_redeemed": self.coupons_redeemed,
            "oversold_units": oversold_units,
            "oversell_refunds": refund_oversold * money,
            "oversell_compensation": compensation * money,
            "lost_gmv": {cause: value * money for cause, value in self.lost.items()},
            "orders_by_mechanic": {
                name: {"orders": n, "gmv": gmv * money, "aov": gmv / n if n else None}
                for name, (n, gmv) in zip(MECHANICS, self.by_mechanic, strict=True)
                if n
            },
        }
