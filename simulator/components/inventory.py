"""Inventory: units in stock per item, taken at checkout and put back on failure.

Deduction here is atomic (a Redis DECR or a conditional SQL update): a unit is either
taken or reported sold out, so the shop can never sell more than it has.
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.scenario.distributions import make_sampler
from simulator.scenario.schema import Inventory as InventoryConfig
from simulator.streams import Streams

__all__ = ["Inventory"]


class Inventory:
    """Stock of every item of the catalogue.

    Args:
        config: the scenario's ``inventory`` section.
        items: number of items in the catalogue.
        streams: the run's streams; uses ``inventory.deduct``.
    """

    def __init__(self, config: InventoryConfig, items: int, streams: Streams) -> None:
        per_item = config.stock_per_item
        self.unlimited = per_item is None
        self.stock: list[int] = [] if per_item is None else [per_item] * items
        self.initial_units = 0 if per_item is None else per_item * items
        self.deduct_time: Callable[[], float] = make_sampler(
            config.deduct_time_ms, streams.generator("inventory.deduct"), scale=1e-3
        )
        self.items_sold_out = 0

    def take(self, item: int) -> bool:
        """Take one unit of ``item``; False when none is left."""
        if self.unlimited:
            return True
        stock = self.stock
        if stock[item] > 0:
            stock[item] -= 1
            if stock[item] == 0:
                self.items_sold_out += 1
            return True
        return False

    def put_back(self, item: int) -> None:
        """Return a unit taken by an order that did not complete."""
        if not self.unlimited:
            stock = self.stock
            if stock[item] == 0:
                self.items_sold_out -= 1
            stock[item] += 1

    @property
    def units_sold(self) -> int | None:
        """Units taken and not put back (None when stock is unlimited)."""
        return None if self.unlimited else self.initial_units - sum(self.stock)
