"""What an order costs the buyer: the promotion's price mechanics, applied in order.

For an ordinary cart of list value L: member price, then the flat discount, then the
highest full-reduction step the value reaches (thresholds are judged after the member
and flat discounts, as platforms do), then a coupon whose threshold the value meets.
A flash-sale order is its units at the flash price; a presale order is its units at
the list price less the deposit's inflation bonus; coupons stack on both. The order's
*headline mechanic* (for return rates and the figures by mechanic) is the event's for
event orders, else the first of ladder, discount, member price and coupon that
changed the price.

A promotion's demand response is documented where it is drawn (:mod:`simulator.model.users`):
uplifts multiply the add-to-cart rate, so browse-to-pay conversion moves by the same
factor; users a little short of a ladder step add items to reach it.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from simulator.scenario.commerce import MECHANICS, Coupon, FlashSale, Presale
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from simulator.model.users import User

__all__ = ["NONE", "Pricing", "mechanic_index"]


def mechanic_index(name: str) -> int:
    """Position of a mechanic in :data:`~simulator.scenario.commerce.MECHANICS`."""
    return MECHANICS.index(name)


NONE, DISCOUNT, LADDER, MEMBER, COUPON, FLASH, PRESALE = range(len(MECHANICS))


class Pricing:
    """Quotes orders under the scenario's promotions.

    Args:
        scenario: the scenario; its ``promotions`` and segments' ``member`` flags.
    """

    def __init__(self, scenario: Scenario) -> None:
        promotions = scenario.promotions
        self.discount = promotions.discount or 0.0
        member = promotions.member_discount or 0.0
        self.member = [member if s.member else 0.0 for s in scenario.segments]
        self.thresholds = [s.threshold_cny for s in promotions.ladder]
        self.offs = [s.off_cny for s in promotions.ladder]
        self.events = [event for event, _ in scenario.event_starts()]
        self.cost_ratio = promotions.item_cost_ratio

    def factor(self, segment: int) -> float:
        """What a segment pays per CNY of list value before the ladder and coupons."""
        return (1.0 - self.member[segment]) * (1.0 - self.discount)

    def next_step(self, value: float) -> float | None:
        """The lowest ladder threshold above ``value`` (None past the top step)."""
        i = bisect.bisect_right(self.thresholds, value)
        return self.thresholds[i] if i < len(self.thresholds) else None

    def list_value(self, user: User) -> float:
        """The order's value at list prices."""
        if user.event >= 0:
            event = self.events[user.event]
            if isinstance(event, FlashSale | Presale):
                return user.units * event.list_price_cny
        return user.basket_cny

    def quote(self, user: User, coupon: Coupon | None) -> tuple[float, float, int, bool]:
        """The order's list value, the price paid, its headline mechanic, coupon used.

        Args:
            user: the buyer (segment, basket, units, event).
            coupon: the coupon the buyer holds, if any.
        """
        mechanic = NONE
        event = self.events[user.event] if user.event >= 0 else None
        if isinstance(event, FlashSale):
            listed = user.units * event.list_price_cny
            value = user.units * event.price_cny
            mechanic = FLASH
        elif isinstance(event, Presale):
            listed = user.units * event.list_price_cny
            bonus = event.deposit_cny * (event.deposit_inflation - 1.0)
            value = user.units * (event.list_price_cny - bonus)
            mechanic = PRESALE
        else:
            listed = user.basket_cny
            member = self.member[user.segment]
            value = listed * (1.0 - member) * (1.0 - self.discount)
            i = bisect.bisect_right(self.thresholds, value)
            if i:
                value -= self.offs[i - 1]
                mechanic = LADDER
            elif self.discount:
                mechanic = DISCOUNT
            elif member:
                mechanic = MEMBER
        used = coupon is not None and value >= coupon.threshold_cny
        if used:
            value = max(0.0, value - coupon.value_cny)  # type: ignore[union-attr]
            if mechanic == NONE:
                mechanic = COUPON
        return listed, value, mechanic, used
