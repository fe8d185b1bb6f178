"""Users: who arrives, and what each of them will do if the shop lets them.

Everything a user brings with them is drawn when they arrive, from the users' own
streams and in arrival order: their segment, the items they will look at, their
pauses, whether they would buy, how much, how patient they are, which payment
channel and the region their parcels go to. The system's behaviour (a slow
database, a full queue) can cut a visit short, but it never changes who the users
are, so two scenarios that differ in one component see the same crowd.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.measure.streams import Streams, buffered, make_sampler
from simulator.model.keys import KeySpace, zipf_cdf
from simulator.model.pricing import Pricing
from simulator.scenario.commerce import Coupon, CouponRain, FlashSale, Response
from simulator.scenario.distributions import Deterministic
from simulator.scenario.schema import Scenario

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
    region: int
    """The destination region of the user's parcels (index in ``fulfilment.regions``)."""
    site: int = 0
    """The datacenter the user is routed to (0 when the shop has one)."""
    dns_phase: float = 0.0
    """Phase of the user's DNS resolver's refreshes, as a fraction of the TTL."""
    units: int = 1
    """Units of the carted item wanted (after the purchase limit)."""
    event: int = -1
    """The promotion event that brought the user (index in ``event_starts()``); -1: none."""
    coupon: Coupon | None = None
    """A coupon the user arrived holding (or claimed in a coupon rain)."""
    cart_draw: float = 0.0
    """The uniform the add-to-cart decision (the payment decision, for users who skip
    browsing) was drawn with: a rain user whose claim fails decides again, without the
    coupon's uplift."""
    cart_rate_without_coupon: float = 0.0
    source: int = 0
    """The traffic channel that brought the user: 0 the traffic curve, i + 1 ``channels[i]``."""
    stay_draw: float = 0.0
    """The uniform a slow landing page is judged with (``experience``)."""
    paid_with: int = -1
    """The payment channel the user's last successful payment went through."""


def _times(draw: Callable[[], float], factor: float) -> float:
    return draw() * factor


def _cumulative(shares: list[float]) -> list[float]:
    cumulative = list(itertools.accumulate(shares))
    cumulative[-1] = 1.0  # guard against rounding: every draw < 1 lands somewhere
    return cumulative


def _choices(
    rng: Any, segment_cdf: list[float], channel_cdf: list[float], region_cdf: list[float]
) -> Callable[[], tuple[int, float, float, float, float, int, int]]:
    """Each user's seven uniforms of ``users.choices``, drawn in blocks, the choices made.

    Per user, in this order: the segment, the bounce, page-count, add-to-cart and
    checkout decisions' uniforms, the payment channel and the region. Drawn as a block
    of rows, they are the very numbers drawn one at a time in the same order, and
    ``searchsorted(side="right")`` is ``bisect_right``.
    """
    segments, channels, regions = (np.asarray(c) for c in (segment_cdf, channel_cdf, region_cdf))

    def blocks() -> Iterator[list[tuple[int, float, float, float, float, int, int]]]:
        while True:
            u = rng.random(_USERS_PER_BLOCK * 7).reshape(_USERS_PER_BLOCK, 7)
            yield list(
                zip(
                    np.searchsorted(segments, u[:, 0], side="right").tolist(),
                    u[:, 1].tolist(),
                    u[:, 2].tolist(),
                    u[:, 3].tolist(),
                    u[:, 4].tolist(),
                    np.searchsorted(channels, u[:, 5], side="right").tolist(),
                    np.searchsorted(regions, u[:, 6], side="right").tolist(),
                    strict=True,
                )
            )

    return functools.partial(next, itertools.chain.from_iterable(blocks()))


_USERS_PER_BLOCK = 1024


class _Named:
    """A run's streams under a prefix: a channel's users draw from streams of their own."""

    def __init__(self, streams: Streams, prefix: str) -> None:
        self.streams, self.prefix = streams, prefix

    def generator(self, name: str) -> Any:
        return self.streams.generator(self.prefix + name)


class Population:
    """Draws users in arrival order.

    Promotions shape who arrives and what they intend. A user arriving while an event's
    burst is on came for the event with the chance that the burst is of the arrival rate
    (thinning the superposed Poisson processes): a flash-sale or presale user views the
    event's item and buys it there; a coupon-rain user claims a coupon first. Every
    mechanic that applies to a user multiplies their add-to-cart rate by its uplift in
    the segment's ``response`` (capped at 1), so browse-to-pay conversion moves by that
    factor (the checkout rate, for segments that skip browsing); the time of day
    multiplies it too. A user whose basket is a little short of a ladder step may add
    items to reach it exactly (``basket_building``).

    A traffic channel's visitors (``channel``) are drawn the same way from streams of
    their own (``channels.NAME.users.*``), with the channel's segment mix and its
    conversion and basket multipliers; they did not come for a promotion event's burst.

    Args:
        scenario: the scenario.
        streams: the run's streams; uses the ``users.*`` streams.
        channel: the index of the traffic channel in ``scenario.channels``; None: the
            traffic curve's own users.
    """

    def __init__(self, scenario: Scenario, streams: Streams, channel: int | None = None) -> None:
        self.segments = scenario.segments
        shares = [s.share for s in scenario.segments]
        cart_factor = basket_factor = 1.0
        self.source = 0
        if channel is not None:
            config = scenario.channels[channel]
            streams = _Named(streams, f"channels.{config.name}.")  # type: ignore[assignment]
            if config.segments is not None:
                shares = [config.segments.get(s.name, 0.0) for s in scenario.segments]
            cart_factor, basket_factor = config.conversion_multiplier, config.basket_multiplier
            self.source = channel + 1
        self._segment_cdf = _cumulative(shares)
        self._channel_cdf = _cumulative([c.share for c in scenario.payment.channels])
        self._region_cdf = _cumulative([r.share for r in scenario.fulfilment.regions])
        self._choices = _choices(
            streams.generator("users.choices"),
            self._segment_cdf,
            self._channel_cdf,
            self._region_cdf,
        )
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
        self.pricing = Pricing(scenario)
        self._promotions = _Promotions(
            scenario, self.keys, self.pricing, streams, events=channel is None
        )
        self._stay = (
            None
            if scenario.experience is None
            else buffered(streams.generator("users.experience").random)
        )
        self._by_segment = []
        for s in scenario.segments:
            p_more = 1 - 1 / s.pages_mean  # chance of one more page: geometric >= 1
            basket = make_sampler(s.basket_value_cny, streams.generator(f"users.{s.name}.basket"))
            if basket_factor != 1.0:
                basket = functools.partial(_times, basket, basket_factor)
            cart, checkout = s.add_to_cart_rate, s.checkout_rate
            if cart_factor != 1.0:  # the decision promotions move moves with the channel
                if s.skip_browsing:
                    checkout = min(1.0, checkout * cart_factor)
                else:
                    cart = min(1.0, cart * cart_factor)
            self._by_segment.append(
                (
                    s.skip_browsing,
                    s.bounce_rate,
                    cart,
                    checkout,
                    math.log(p_more) if p_more > 0 else None,
                    make_sampler(s.think_time_s, streams.generator(f"users.{s.name}.think")),
                    basket,
                    make_sampler(s.patience_s, streams.generator(f"users.{s.name}.patience")),
                )
            )

    def _site(self) -> int:
        assert self._site_cdf is not None and self._site_uniform is not None
        return bisect.bisect_right(self._site_cdf, self._site_uniform())

    def next_user(self, now: float = 0.0) -> User:
        """The next arriving user, arriving at ``now``."""
        segment, u_bounce, u_pages, u_cart, u_checkout, channel, region = self._choices()
        skip, bounce, cart, checkout, log_more, think, basket, patience = self._by_segment[segment]
        promotions = self._promotions
        event, item_key, coupon, uplift, without_coupon = -1, -1, None, 1.0, 1.0
        # The decision the promotions move: add to cart, or pay for those who skip browsing.
        decided_by = u_checkout if skip else u_cart
        if promotions.active:
            event, item_key, coupon, uplift, without_coupon = promotions.draw(segment, now)
            rate = checkout if skip else cart
            without_coupon = min(1.0, rate * without_coupon)
            if skip:
                checkout = min(1.0, checkout * uplift)
            else:
                cart = min(1.0, cart * uplift)
        buys = u_checkout < checkout
        if skip:
            pages, plan = 0, (BUY if buys else LEAVE_CART)
        elif item_key < 0 and u_bounce < bounce:
            pages, plan = 1, BOUNCE
        else:
            pages = (
                1
                if log_more is None or item_key >= 0
                else 1 + int(math.log(1.0 - u_pages) / log_more)
            )
            plan = BROWSE if u_cart >= cart else (BUY if buys else LEAVE_CART)
        item = self._item
        in_cart: int | None
        if item_key >= 0:  # came for the event's item: its page, then the cart
            viewed, in_cart = [item_key] * pages, item_key
        else:
            existing = self.keys.existing
            # The cart holds the last item viewed that exists (a fresh draw when none did).
            if pages == 1:
                key = item()
                viewed = [key]
                in_cart = key if key < existing else None
            else:
                viewed = [item() for _ in range(pages)]
                in_cart = next((key for key in reversed(viewed) if key < existing), None)
            while in_cart is None:
                key = item()
                in_cart = key if key < existing else None
        # pauses before each later page and before the add-to-cart request
        steps = max(pages - 1, 0) + (plan >= LEAVE_CART and pages > 0)
        # Positional: the fields' order (faster than keywords, once per arrival).
        user = User(
            segment,
            viewed,
            in_cart,
            [think() for _ in range(steps)] if steps else [],
            plan,
            basket(),
            patience(),
            channel,
            region,
        )
        if self._site_cdf is not None:
            user.site = self._site()
            user.dns_phase = self._site_uniform()  # type: ignore[misc]
        if promotions.active:
            user.event, user.coupon = event, coupon
            user.cart_draw, user.cart_rate_without_coupon = decided_by, without_coupon
            promotions.finish(user)
        if self.source:
            user.source = self.source
        if self._stay is not None:
            user.stay_draw = self._stay()
        return user


class _Promotions:
    """The promotion draws of each user, from their own streams (CRN for the rest)."""

    def __init__(
        self,
        scenario: Scenario,
        keys: KeySpace,
        pricing: Pricing,
        streams: Streams,
        events: bool = True,
    ):
        promotions = scenario.promotions
        self.pricing = pricing
        starts = scenario.event_starts()
        self.traffic = scenario.arrival_traffic()
        # A channel's visitors came for the channel, not for an event's burst.
        self.pulses = scenario.event_pulses() if events else []
        self.rains = [isinstance(e, CouponRain) for e, _ in starts]
        self.flash = [isinstance(e, FlashSale) for e, _ in starts]
        self.event_coupons = [e.coupon if isinstance(e, CouponRain) else None for e, _ in starts]
        self.event_items = [
            -1 if isinstance(e, CouponRain) else keys.hot_start + keys.hot_names.index(e.item)
            for e, _ in starts
        ]
        limit = scenario.inventory.purchase_limit_per_user
        self.limits = [getattr(e, "purchase_limit", None) or limit for e, _ in starts]
        self.limit = limit
        self.coupon, self.holders = promotions.coupon, promotions.coupon_holders
        self.windows = promotions.time_of_day
        self.clock_h = scenario.clock_at_start_h
        self.basket_units = [
            make_sampler(s.units, streams.generator(f"users.{s.name}.units"))
            for s in scenario.segments
        ]
        self.building = [s.basket_building for s in scenario.segments]
        self.responses: list[Response] = [s.response for s in scenario.segments]
        # The uplift of the mechanics every user of a segment sees.
        self.base = []
        for segment, r in enumerate(self.responses):
            lift = 1.0
            if promotions.discount:
                lift *= 1 + r.discount
            if promotions.ladder:
                lift *= 1 + r.ladder
            if pricing.member[segment]:
                lift *= 1 + r.member_price
            self.base.append(lift)
        self.uniform = buffered(streams.generator("users.promotions").random)
        self.active = bool(
            starts
            or promotions.discount
            or promotions.ladder
            or promotions.member_discount
            or promotions.coupon_holders
            or promotions.time_of_day
            or any(s.units != _ONE_UNIT for s in scenario.segments)
            or limit is not None
        )

    def draw(self, segment: int, now: float) -> tuple[int, int, Coupon | None, float, float]:
        """The event, its item key, the coupon held, the uplift with and without the coupon."""
        u_event, u_coupon = self.uniform(), self.uniform()
        lift = self.base[segment] * self._time_of_day(now)
        response = self.responses[segment]
        event, item, coupon = -1, -1, None
        if self.pulses:
            event = self._event(now, u_event)
        if event >= 0:
            item = self.event_items[event]
            coupon = self.event_coupons[event]
            if self.flash[event]:
                lift *= 1 + response.flash_sale
            elif not self.rains[event]:
                lift *= 1 + response.presale
        if coupon is None and u_coupon < self.holders:
            coupon = self.coupon
        without = lift
        if coupon is not None:
            lift *= 1 + response.coupon
        return event, item, coupon, lift, without

    def _event(self, now: float, u: float) -> int:
        """Which event's burst the arrival at ``now`` belongs to (-1: the everyday traffic)."""
        rate = self.traffic.rate_at(now)
        baseline = self.traffic.baseline_per_s
        threshold = 0.0
        for i, pulse in enumerate(self.pulses):
            threshold += baseline * (pulse.multiplier - 1.0) * pulse.level(now) / rate
            if u < threshold:
                return i
        return -1

    def _time_of_day(self, now: float) -> float:
        windows = self.windows
        if windows is None:
            return 1.0
        hour = (self.clock_h + now / 3600.0) % 24.0
        for w in windows.windows:
            if w.from_h <= hour < w.to_h:
                return w.conversion_multiplier
        return 1.0

    def finish(self, user: User) -> None:
        """Units (capped by the purchase limit) and basket building, drawn last."""
        units = max(1, round(self.basket_units[user.segment]()))
        limit = self.limits[user.event] if user.event >= 0 else self.limit
        user.units = units if limit is None else min(units, limit)
        u = self.uniform()
        building = self.building[user.segment]
        if building is None or user.event >= 0 and not self.rains[user.event]:
            return
        pricing = self.pricing
        factor = pricing.factor(user.segment)
        value = user.basket_cny * factor
        step = pricing.next_step(value)
        if (
            step is not None
            and step - value <= building.max_gap * step
            and u < building.probability
        ):
            user.basket_cny = step / factor


_ONE_UNIT = Deterministic(dist="deterministic", value=1.0)
