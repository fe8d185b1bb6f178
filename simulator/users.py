"""Users: who arrives, and what each of them will do if the shop lets them.

Everything a user brings with them is drawn when they arrive, from the users' own
streams and in arrival order: their segment, the items they will look at, their
pauses, whether they would buy, how much, how patient they are, which payment
channel and which region's warehouse they use. The system's behaviour (a slow
database, a full queue) can cut a visit short, but it never changes who the users
are, so two scenarios that differ in one component see the same crowd.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from simulator.keys import KeySpace, zipf_cdf
from simulator.scenario.distributions import make_sampler
from simulator.scenario.schema import Scenario
from simulator.streams import Streams, buffered

__all__ = ["BOUNCE", "BROWSE", "BUY", "LEAVE_CART", "Population", "User", "zipf_cdf"]

# What the user intends to do, if nothing goes wrong.
BOUNCE, BROWSE, LEAVE_CART, BUY = range(4)


@dataclass(slots=True)
class User:
    """One visitor's intentions, fixed at arrival."""

    segment: int
    pages: list[int]
    """Items whose pages are viewed, in order (empty when the user skips browsing)."""
    item: int
    """The item put in the cart: the last existing one viewed."""
    pauses_s: list[float]
    """Think time before each page after the landing page, and before add-to-cart."""
    plan: int
    basket_cny: float
    patience_s: float
    channel: int
    warehouse: int
    site: int = 0
    """The datacenter the user is routed to (0 when the shop has one)."""
    dns_phase: float = 0.0
    """Phase of the user's DNS resolver's refreshes, as a fraction of the TTL."""


def _cumulative(shares: list[float]) -> list[float]:
    cumulative = list(itertools.accumulate(shares))
    cumulative[-1] = 1.0  # guard against rounding: every draw < 1 lands somewhere
    return cumulative


class Population:
    """Draws users in arrival order.

    Args:
        scenario: the scenario.
        streams: the run's streams; uses the ``users.*`` streams.
    """

    def __init__(self, scenario: Scenario, streams: Streams) -> None:
        self.segments = scenario.segments
        self._segment_cdf = _cumulative([s.share for s in scenario.segments])
        self._channel_cdf = _cumulative([c.share for c in scenario.payment.channels])
        self._warehouse_cdf = _cumulative([w.share for w in scenario.fulfilment.warehouses])
        self._uniform = buffered(streams.generator("users.choices").random)
        sites = scenario.datacenters
        self._site_cdf = None if sites is None else _cumulative([s.share for s in sites.sites])
        # Its own stream, so adding datacenters leaves every other draw of the users alone.
        self._site_uniform = (
            None if sites is None else buffered(streams.generator("users.site").random)
        )
        self.keys = KeySpace(scenario.catalogue)
        self._item: Callable[[], int] = buffered(
            self.keys.sampler(streams.generator("users.items"))
        )
        self._by_segment = []
        for s in scenario.segments:
            p_more = 1 - 1 / s.pages_mean  # chance of one more page: geometric >= 1
            self._by_segment.append(
                (
                    s.skip_browsing,
                    s.bounce_rate,
                    s.add_to_cart_rate,
                    s.checkout_rate,
                    math.log(p_more) if p_more > 0 else None,
                    make_sampler(s.think_time_s, streams.generator(f"users.{s.name}.think")),
                    make_sampler(s.basket_value_cny, streams.generator(f"users.{s.name}.basket")),
                    make_sampler(s.patience_s, streams.generator(f"users.{s.name}.patience")),
                )
            )

    def _site(self) -> int:
        assert self._site_cdf is not None and self._site_uniform is not None
        return bisect.bisect_right(self._site_cdf, self._site_uniform())

    def next_user(self) -> User:
        """The next arriving user."""
        u = self._uniform
        segment = bisect.bisect_right(self._segment_cdf, u())
        skip, bounce, cart, checkout, log_more, think, basket, patience = self._by_segment[segment]
        # A fixed number of uniform draws per user, whatever the branch, keeps the users
        # aligned across scenarios that change one probability.
        u_bounce, u_pages, u_cart, u_checkout = u(), u(), u(), u()
        buys = u_checkout < checkout
        if skip:
            pages, plan = 0, (BUY if buys else LEAVE_CART)
        elif u_bounce < bounce:
            pages, plan = 1, BOUNCE
        else:
            pages = 1 if log_more is None else 1 + int(math.log(1.0 - u_pages) / log_more)
            plan = BROWSE if u_cart >= cart else (BUY if buys else LEAVE_CART)
        item = self._item
        viewed = [item() for _ in range(pages)]
        existing = self.keys.existing
        # The cart holds the last item viewed that exists (a fresh draw when none did).
        in_cart = next((key for key in reversed(viewed) if key < existing), None)
        while in_cart is None:
            key = item()
            in_cart = key if key < existing else None
        # pauses before each later page and before the add-to-cart request
        steps = max(pages - 1, 0) + (plan >= LEAVE_CART and pages > 0)
        return User(
            segment=segment,
            pages=viewed,
            item=in_cart,
            pauses_s=[think() for _ in range(steps)],
            plan=plan,
            basket_cny=basket(),
            patience_s=patience(),
            channel=bisect.bisect_right(self._channel_cdf, u()),
            warehouse=bisect.bisect_right(self._warehouse_cdf, u()),
            site=0 if self._site_cdf is None else self._site(),
            dns_phase=0.0 if self._site_uniform is None else self._site_uniform(),
        )
