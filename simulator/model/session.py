"""A user's visit, from the landing page to a paid order, as one SimPy process.

The visit is a sequence of requests through the gateway: product pages (read through
the cache, the database on a miss), add to cart, checkout (stock deduction and an
order write) and payment. Before each request the user starts a patience clock; a
response that has not come by then loses the user. Whatever happens, the visit ends in
exactly one :class:`~simulator.measure.outcomes.Outcome`.

Users who retry (a segment's ``retry``) refresh a request that failed or was too slow,
after a delay, adding load exactly when the shop can least take it. With datacenters,
a request from a user whose site is lost fails until routing sends them elsewhere.

Performance note: stages that cannot make anyone wait (the worker's own processing, a
cache lookup, an atomic stock decrement) are folded into a single timeout, and a queue
is only raced against the user's patience when it actually makes the user wait.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Generator, Sequence
from typing import Any

import simpy

from simulator.measure.metrics import IntervalCounter, IntervalQuantiles, Tally
from simulator.measure.outcomes import Outcome
from simulator.measure.recovery import small_window_s
from simulator.model.components.cache import CacheTier, NoCache
from simulator.model.components.customer_service import CustomerService
from simulator.model.components.database import Database
from simulator.model.components.fulfilment import Fulfilment
from simulator.model.components.gateway import Gateway, NoGateway
from simulator.model.components.inventory import SOLD_OUT, Stock
from simulator.model.components.payment import Payments, Pending
from simulator.model.components.routing import Routing
from simulator.model.ledger import BUYERS, CARTS, ORDERS, SESSIONS, Ledger
from simulator.model.users import BOUNCE, BROWSE, BUY, LEAVE_CART, User
from simulator.scenario.commerce import Presale

__all__ = ["Commerce", "Refresh", "Shop"]

_ABANDONED = Outcome.ABANDONED
_ERROR = Outcome.ERROR
_SOLD_OUT = Outcome.SOLD_OUT
_PAYMENT_FAILED = Outcome.PAYMENT_FAILED
_ORDERED = Outcome.ORDERED
_ENDS_BEFORE_CART = {BOUNCE: Outcome.BOUNCED, BROWSE: Outcome.BROWSED}
# What a user may refresh: failures of the shop, not of their payment or of stock.
_REFRESHABLE = frozenset({Outcome.ABANDONED, Outcome.REJECTED, Outcome.RATE_LIMITED, Outcome.ERROR})

_FOLD = 4096
"""Page latencies kept aside before they are folded into the tally (in order, at once)."""

Call = Callable[[float], Generator[Any, Any, Outcome | None]]
"""A call an application server makes, given when its caller stops waiting."""


class Refresh(typing.NamedTuple):
    """A segment's refresh habit."""

    probability: float
    max_retries: int
    delay_s: Callable[[], float]
    uniform: Callable[[], float]


class Commerce(typing.NamedTuple):
    """What the shop sells and how: stock, coupon quotas, events, payment retries."""

    stock: Stock
    ledger: Ledger
    warehouses: int
    """Warehouses each item's stock is split over (1: not split)."""
    fallback: bool
    """Split stock: whether a unit may come from a warehouse other than the first choice."""
    event_keys: list[int]
    """Stock key of each event's slot (-1 for coupon rains)."""
    quotas: list[Stock | None]
    """Each event's coupon quota (None for events that are not coupon rains)."""
    presales: list[Presale | None]
    final_delay_s: list[Callable[[], float] | None]
    forfeit_uniform: Callable[[], float]
    payment_retry: Refresh | None


class Shop:
    """The session flow over the shop's components, and the session-level metrics.

    Args:
        env: the simulation environment.
        gateway, cache, database, payments, fulfilment: the components.
        commerce: stock, quotas, events and the books.
        service: customer service, told of what brings enquiries (None: not modelled).
        interval_s: time-series interval.
        recommend: the non-core call of a product page, if the shop has one.
        routing: the datacenters, if the shop has several.
        refresh: each segment's refresh habit (None: never refreshes).
        track_recovery: keep what recovery times are judged from (the run has faults).
        sources: traffic sources (the curve and each channel) sessions are counted under.
        stay: given a landing page's latency (s), the chance a user who would continue
            stays (``experience``); None: latency puts no one off.
        lanes: per segment, whether its users are in the priority lane (None: nobody).
    """

    def __init__(
        self,
        env: simpy.Environment,
        gateway: Gateway | NoGateway,
        cache: CacheTier | NoCache,
        database: Database,
        payments: Payments,
        fulfilment: Fulfilment,
        commerce: Commerce,
        interval_s: float,
        service: CustomerService | None = None,
        recommend: Call | None = None,
        routing: Routing | None = None,
        refresh: list[Refresh | None] | None = None,
        track_recovery: bool = False,
        sources: int = 1,
        stay: Callable[[float], float] | None = None,
        lanes: list[bool] | None = None,
    ) -> None:
        self.env = env
        self.gateway = gateway
        self.cache = cache
        self.database = database
        self.payments = payments
        self.fulfilment = fulfilment
        self.commerce = commerce
        self.service = service
        self.stock = commerce.stock
        self.ledger = commerce.ledger
        self.funnel = commerce.ledger.funnel
        self.lanes = lanes if lanes is not None else [False] * len(self.funnel)
        """Per segment: in the priority lane."""
        self.recommend = recommend
        self.routing = routing
        self.refresh: list[Refresh | None] = refresh or []
        self.refreshes = IntervalCounter(interval_s)
        """Requests repeated by users, per interval."""
        self.outcomes = [0] * len(Outcome)
        self.source_outcomes = [[0] * len(Outcome) for _ in range(sources)]
        """Sessions per outcome, for each traffic source."""
        self.stay = stay
        self.put_off = 0
        """Users a slow landing page put off."""
        self.outcome_series = [IntervalCounter(interval_s) for _ in Outcome]
        self._page_latency = Tally()
        self._page_times: list[float] = []
        """Page latencies not yet in the tally: folded in by the thousand."""
        self.checkout_latency = Tally()
        self.checkout_series = IntervalQuantiles(interval_s)
        self.window_s = small_window_s(interval_s)
        self.checkout_windows: list[Tally] | None = [] if track_recovery else None
        """Checkout latencies per small recovery window (see :mod:`simulator.measure.recovery`),
        kept only when the run has faults to recover from."""
        self.claims = 0
        self.claim_failures = 0
        self.open_sessions = 0
        self.doors_closed = False
        self.all_done = env.event()
        """Fires when the doors are closed and the last visit has ended."""

    @property
    def page_latency(self) -> Tally:
        """Latencies of the pages served so far."""
        if self._page_times:
            self._page_latency.add_many(self._page_times)
            self._page_times.clear()
        return self._page_latency

    def close_doors(self) -> None:
        """No more arrivals: the run ends when the visits in progress have ended.

        Ending there, rather than when SimPy's queue runs dry, matters: timers that lost
        their race (a patience clock of a user who was served) stay queued and would
        otherwise stretch the run to the longest patience.
        """
        self.doors_closed = True
        if self.open_sessions == 0:
            self.all_done.succeed()

    def admit(self, user: User) -> None:
        """Start the visit of a user who just arrived."""
        # Counted here, not when the process first runs: the doors may close in between.
        self.open_sessions += 1
        counts = self.funnel[user.segment]
        counts[SESSIONS] += 1
        if user.plan == BUY:
            counts[BUYERS] += 1
        # The visit's outcome is its process's value, booked by a callback: no wrapper
        # generator for every event of the visit to pass through.
        self.env.process(self._visit(user)).callbacks.append(functools.partial(self._ended, user))

    def _ended(self, user: User, process: simpy.Process) -> None:
        outcome = typing.cast(Outcome, process.value)
        now = self.env.now
        if user.plan == BUY and outcome != _ORDERED:
            self.ledger.lose(user, outcome)
            if outcome is _PAYMENT_FAILED and self.service is not None:
                self.service.payment_failed(now)
        self.outcomes[outcome] += 1
        self.source_outcomes[user.source][outcome] += 1
        self.outcome_series[outcome].add(now)
        if len(self._page_times) >= _FOLD:
            self._page_latency.add_many(self._page_times)
            self._page_times.clear()
        self.open_sessions -= 1
        if self.doors_closed and not self.open_sessions:
            self.all_done.succeed()

    def _visit(self, user: User) -> Generator[Any, Any, Outcome]:
        env = self.env
        pauses = user.pauses_s
        patience = user.patience_s
        refresh = self.refresh[user.segment] if self.refresh else None
        if user.event >= 0 and self.commerce.quotas[user.event] is not None:
            failed = yield from self._claim(user, None)
            if failed is not None and refresh is not None:
                failed = yield from self._refreshed(self._claim, user, None, failed)
            if failed is not None:
                return failed
        for i in range(len(user.pages)):
            if i:
                yield env.timeout(pauses[i - 1])
            failed = yield from self._page(user, i)
            if failed is not None and refresh is not None:
                failed = yield from self._refreshed(self._page, user, i, failed)
            if failed is not None:
                return failed
        if user.plan in _ENDS_BEFORE_CART:
            return _ENDS_BEFORE_CART[user.plan]
        if user.pages:  # a user who skipped browsing arrives with the cart filled
            yield env.timeout(pauses[-1])
            failed = yield from self._add_to_cart(user, patience)
            if failed is not None and refresh is not None:
                failed = yield from self._refreshed(self._add_to_cart, user, patience, failed)
            if failed is not None:
                return failed
        self.funnel[user.segment][CARTS] += 1
        if user.plan == LEAVE_CART:
            return Outcome.CART_ABANDONED
        outcome: Outcome | None = yield from self._checkout(user, None)
        if outcome in _REFRESHABLE and refresh is not None:
            outcome = yield from self._refreshed(self._checkout, user, None, outcome)
        return typing.cast(Outcome, outcome)

    def _refreshed(
        self,
        step: Callable[[User, Any], Generator[Any, Any, Outcome | None]],
        user: User,
        argument: Any,
        failed: Outcome,
    ) -> Generator[Any, Any, Outcome | None]:
        """Let the user refresh a failed request, as their segment's habit says."""
        refresh = self.refresh[user.segment]
        assert refresh is not None
        env = self.env
        tries = 0
        result: Outcome | None = failed
        while (
            result in _REFRESHABLE
            and tries < refresh.max_retries
            and refresh.uniform() < refresh.probability
        ):
            tries += 1
            yield env.timeout(refresh.delay_s())
            self.refreshes.add(env.now)
            result = yield from step(user, argument)
        return result

    def _stranded(self, user: User) -> bool:
        """Whether the user's request goes to a lost datacenter (and fails)."""
        routing = self.routing
        assert routing is not None
        return routing.any_lost and routing.strands(user.site, user.dns_phase, self.env.now)

    def _page(self, user: User, page: int) -> Generator[Any, Any, Outcome | None]:
        """Page ``page`` of the visit: a worker, a cache lookup, a database read on a miss."""
        env, gateway = self.env, self.gateway
        if self.routing is not None and self._stranded(user):
            return _ERROR
        asked = env.now
        deadline = asked + user.patience_s
        worker = gateway.try_enter(asked)
        if worker is None:
            failed, worker = yield from gateway.enter(
                deadline, page == 0 and user.coupon is None, self.lanes[user.segment]
            )
            if failed is not None:
                return failed
        cache, item = self.cache, user.pages[page]
        server, latency = cache.lookup(item, env.now)
        yield env.timeout(gateway.service_time() + latency)
        failed = None
        if server is not None:
            failed = yield from cache.rebuild(item, server, deadline)
        recommend = self.recommend
        if recommend is not None and failed is None:
            yield from recommend(deadline)  # non-core: the page is served either way
        gateway.leave(worker)
        now = env.now
        self._page_times.append(now - asked)
        if failed is None and now > deadline:
            return _ABANDONED
        if page == 0 and self.stay is not None and failed is None and user.plan != BOUNCE:
            if user.stay_draw >= self.stay(now - asked):
                return self._put_off(user)
        return failed

    def _put_off(self, user: User) -> Outcome:
        """A user who would have gone on leaves after a slow landing page: a bounce."""
        self.put_off += 1
        if user.plan == BUY:
            self.ledger.lose_to_slow_pages(user)
        user.plan = BOUNCE
        return Outcome.BOUNCED

    def _add_to_cart(self, user: User, patience: float) -> Generator[Any, Any, Outcome | None]:
        """A light request: a worker's own time only."""
        env, gateway = self.env, self.gateway
        if self.routing is not None and self._stranded(user):
            return _ERROR
        now = env.now
        deadline = now + patience
        worker = gateway.try_enter(now)
        if worker is None:
            failed, worker = yield from gateway.enter(deadline, False, self.lanes[user.segment])
            if failed is not None:
                return failed
        yield env.timeout(gateway.service_time())
        gateway.leave(worker)
        return _ABANDONED if env.now > deadline else None

    def _claim(self, user: User, _: Any) -> Generator[Any, Any, Outcome | None]:
        """Claim a coupon in a coupon rain: a request that takes one from the quota.

        A claim refused (quota gone, lock not had) leaves the user without the coupon
        and without its uplift; they browse on either way.
        """
        env, gateway = self.env, self.gateway
        if self.routing is not None and self._stranded(user):
            return _ERROR
        deadline = env.now + user.patience_s
        failed, worker = yield from gateway.enter(deadline, True, self.lanes[user.segment])
        if failed is not None:
            return failed
        quota = self.commerce.quotas[user.event]
        assert quota is not None
        key = yield from quota.deduct((0,), 1, deadline, gateway.service_time())
        gateway.leave(worker)
        self.claims += 1
        if key != 0:
            self.claim_failures += 1
            if self.service is not None:
                self.service.claim_failed(env.now)
            user.coupon = None
            if user.plan != BROWSE and user.cart_draw >= user.cart_rate_without_coupon:
                user.plan = BROWSE if user.pages else LEAVE_CART
        return _ABANDONED if env.now > deadline else None

    def _stock_keys(self, user: User) -> Sequence[int]:
        """The stock keys the user's units may come from, in order of preference."""
        commerce = self.commerce
        if user.event >= 0 and commerce.event_keys[user.event] >= 0:
            return (commerce.event_keys[user.event],)
        split = commerce.warehouses
        if split == 1:
            return (user.item,)
        first = user.item * split
        candidates = self.fulfilment.candidates(user.region, self.env.now)
        if not commerce.fallback:
            return (first + candidates[0],)
        return [first + w for w in candidates]

    def _checkout(self, user: User, _: Any) -> Generator[Any, Any, Outcome]:
        """Place the order (stock, order write), then pay; record the checkout latency."""
        env, gateway, stock = self.env, self.gateway, self.stock
        if self.routing is not None and self._stranded(user):
            return _ERROR
        started = env.now
        deadline = started + user.patience_s
        worker = gateway.try_enter(started)
        if worker is None:
            failed, worker = yield from gateway.enter(
                deadline, not user.pages, self.lanes[user.segment]
            )
            if failed is not None:
                return failed
        units = user.units
        key = yield from stock.deduct(
            self._stock_keys(user), units, deadline, gateway.service_time()
        )
        if key is _ERROR or key == SOLD_OUT:
            gateway.leave(worker)
            self._answered(started)
            return _ERROR if key is _ERROR else _SOLD_OUT
        key = typing.cast(int, key)
        failed = yield from self.database.write(user.item, deadline)
        gateway.leave(worker)
        if failed is None and env.now > deadline:
            failed = _ABANDONED
        if failed is None:
            self.funnel[user.segment][ORDERS] += 1
            failed = yield from self._pay(user)
        if failed is not None:
            stock.put_back(key, units)
            if failed is not _ABANDONED:
                self._answered(started)
            return failed
        self._answered(started)
        presale = self.commerce.presales[user.event] if user.event >= 0 else None
        if presale is not None:  # that was the deposit
            return (yield from self._balance(user, key, presale))
        self._book(user, key)
        return Outcome.ORDERED

    def _pay(self, user: User) -> Generator[Any, Any, Outcome | None]:
        """One payment, retried on another channel if the user is willing."""
        env, gateway, payments = self.env, self.gateway, self.payments
        channel = user.channel
        retry = self.commerce.payment_retry
        tries = 0
        while True:
            if self.routing is not None and self._stranded(user):
                return _ERROR
            now = env.now
            deadline = now + user.patience_s
            lane = self.lanes[user.segment]
            worker = gateway.try_enter(now)
            if worker is None:
                failed, worker = yield from gateway.enter(deadline, False, lane)
                if failed is not None:
                    return failed
            yield env.timeout(gateway.service_time())
            result = yield from payments.pay(channel, deadline, lane)
            gateway.leave(worker)
            if result.__class__ is Pending:  # told "processing"; the shop asks later
                pending = typing.cast(Pending, result)
                yield env.timeout(max(0.0, pending.known_at - env.now))
                result = None if pending.succeeded else _PAYMENT_FAILED
            if result is None:
                user.paid_with = channel
            if (
                result is not _PAYMENT_FAILED
                or retry is None
                or tries >= retry.max_retries
                or retry.uniform() >= retry.probability
            ):
                return typing.cast(Outcome | None, result)
            tries += 1
            yield env.timeout(retry.delay_s())
            self.refreshes.add(env.now)
            channel = (channel + 1) % len(payments.channels)

    def _balance(self, user: User, key: int, presale: Presale) -> Generator[Any, Any, Outcome]:
        """A presale depositor pays the balance in the final-payment window, or forfeits."""
        env, commerce = self.env, self.commerce
        forfeits = commerce.forfeit_uniform() < presale.forfeit_rate
        delay = commerce.final_delay_s[user.event]
        assert delay is not None
        at = presale.final_payment_at_s + (0.0 if forfeits else delay())
        yield env.timeout(max(0.0, at - env.now))
        failed = _PAYMENT_FAILED if forfeits else (yield from self._pay(user))
        if failed is None:
            self._book(user, key)
            return Outcome.ORDERED
        self.stock.put_back(key, user.units)
        self.ledger.deposits_forfeited += user.units * presale.deposit_cny
        return Outcome.DEPOSIT_FORFEITED

    def _book(self, user: User, key: int) -> None:
        """A paid order: on to its warehouse, into the books, and maybe an enquiry."""
        now = self.env.now
        split = self.commerce.warehouses
        event_slot = user.event >= 0 and self.commerce.event_keys[user.event] >= 0
        fulfilment = self.fulfilment
        if split > 1 and not event_slot:
            warehouse = key % split  # where the unit was taken
        else:
            warehouse = fulfilment.allocate(user.region, now)
        shipped, delivered = fulfilment.ship(warehouse, user.region, now)
        used_coupon = self.ledger.book(user, key, now, (warehouse, shipped, delivered))
        if self.service is not None:
            self.service.order(now, delivered, used_coupon)

    def _answered(self, started: float) -> None:
        """Record the latency of a checkout that got an answer from the shop."""
        now = self.env.now
        latency_ms = (now - started) * 1000.0
        self.checkout_latency.add(latency_ms)
        self.checkout_series.add(now, latency_ms)
        windows = self.checkout_windows
        if windows is not None:
            i = int(now / self.window_s)
            while len(windows) <= i:
                windows.append(Tally())
            windows[i].add(latency_ms)
