"""Payment channels: third-party services with limited capacity, latency and failures.

Each channel is a counter with ``capacity`` clerks at a bank: a payment waits for a
clerk, is processed for a random time, and succeeds with the channel's success
probability. The shop stops waiting after the channel's timeout; the bank, unaware,
finishes the transaction anyway, so a timed-out payment still occupies the clerk until
it is done (this is what lets a slow channel drown in its own backlog). A channel that
goes down fails the payments it is processing as well as new ones.

With ``async_confirmation_s`` a payment the shop timed out on is not failed: the shop
queries the channel that long after the channel's own answer and books the real
outcome (:class:`Pending`). :class:`Payments` routes each payment to the user's
channel, and with ``failover`` around a channel whose breaker has opened, once the
switch time has passed; the payments a failed channel takes before that are lost.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Generator
from typing import Any

import simpy

from simulator.measure.metrics import IntervalCounter
from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams, buffered, make_sampler
from simulator.model.components.health import Impairable
from simulator.model.components.servers import Servers
from simulator.model.components.station import StationStats, wait_for
from simulator.model.resilience import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from simulator.scenario.schema import Payment as PaymentConfig
from simulator.scenario.schema import PaymentChannel as ChannelConfig

__all__ = ["DECLINED", "Payments", "PaymentChannel", "Pending"]


class _Declined:
    """The buyer's payment was declined: a failed payment, but not the channel's fault."""

    __slots__ = ()


DECLINED = _Declined()


class Pending(typing.NamedTuple):
    """A timed-out payment whose outcome the shop learns by querying the channel later."""

    known_at: float
    succeeded: bool


_FAILED = Outcome.PAYMENT_FAILED
_ABANDONED = Outcome.ABANDONED


class PaymentChannel(Impairable):
    """One payment channel.

    Args:
        env: the simulation environment.
        config: the channel's section in ``payment.channels``.
        streams: the run's streams; uses ``payment.NAME.latency`` and
            ``payment.NAME.outcome``.
        interval_s: time-series interval.
        confirm_after_s: query a timed-out payment's outcome this long after the
            channel's answer (None: a timeout is a failure).
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: ChannelConfig,
        streams: Streams,
        interval_s: float,
        confirm_after_s: float | None = None,
        lanes: bool = False,
    ) -> None:
        self.env = env
        self.name = config.name
        self.lanes = lanes
        """A priority lane exists: slots are a PriorityResource, lane payments first."""
        self.slots = Servers(env, config.capacity, priority=lanes)
        self.timeout_s = config.timeout_ms / 1000
        self.success_probability = config.success_probability
        prefix = f"payment.{config.name}"
        self.latency = make_sampler(config.latency_ms, streams.generator(f"{prefix}.latency"), 1e-3)
        self.uniform = buffered(streams.generator(f"{prefix}.outcome").random)
        self.stats = StationStats(prefix, config.capacity, interval_s)
        self.attempts = IntervalCounter(interval_s)
        self.successes = IntervalCounter(interval_s)
        self.queued = IntervalCounter(interval_s)
        """Payments that found every slot busy and queued, by the interval they arrived."""
        self.declined = 0
        self.timeouts = 0
        self.unavailable = 0
        """Payments failed at once because the channel was down or failing (faults)."""
        self.resource, self.nominal_capacity = self.slots, config.capacity
        self.confirm_after_s = confirm_after_s
        self.confirmed_late = 0
        """Timed-out payments whose real outcome was booked later (async confirmation)."""
        self.lost_to_outage: list[float] = []
        """When each payment failed because the channel was down, failing or slowed."""

    def pay(
        self, deadline: float, lane: bool = False
    ) -> Generator[Any, Any, Outcome | Pending | _Declined | None]:
        """Process one payment for a user who gives up at ``deadline``.

        ``lane``: the payment is in the priority lane, ahead of the others' in the queue.

        Returns:
            None on success; :data:`DECLINED` when declined; ``PAYMENT_FAILED`` when
            the channel failed it (down, failing, timed out);
            ``ABANDONED`` when the user's patience ran out first; a :class:`Pending`
            for a timeout under async confirmation.
        """
        env, stats, slots = self.env, self.stats, self.slots
        now = env.now
        slowdown = 1.0
        if self.impaired:
            if self.fails():
                self.unavailable += 1
                self.attempts.add(now)
                self.lost_to_outage.append(now)
                return _FAILED
            slowdown = self.slowdown
        stats.arrive(now)
        give_up = now + self.timeout_s
        limit = min(give_up, deadline)
        by_user = limit < give_up  # whose clock runs out first: the user's or the shop's
        request = slots.request(0 if lane else 1)
        if not request.triggered:
            self.queued.add(now)
            request = yield from wait_for(env, request, limit)
        if request is None:
            stats.leave_queue(now, env.now, by_user)
            return self._answer_for(by_user)
        start = env.now
        stats.begin(now, start)
        done = start + self.latency() * slowdown
        if done > limit:
            # The shop stops waiting at its limit; the channel finishes the work later.
            yield env.timeout(max(limit - start, 0.0))
            finish = env.timeout(done - env.now)
            finish.callbacks.append(lambda _: self._release(request, now))
            if by_user:
                stats.abandoned += 1
            else:
                stats.timed_out += 1
                if self.confirm_after_s is not None:
                    return self._pending(done)
            return self._answer_for(by_user)
        yield env.timeout(done - start)
        self._release(request, now)
        stats.served += 1
        self.attempts.add(done)  # attempts and successes are counted when the answer comes
        if self.down:  # went down while processing: the answer is lost
            self.unavailable += 1
            self.lost_to_outage.append(done)
            return _FAILED
        if self.uniform() < self.success_probability:
            self.successes.add(done)
            return None
        self.declined += 1
        return DECLINED

    def _pending(self, done: float) -> Pending:
        """A timed-out payment the shop will query: the channel's own outcome, known later."""
        self.confirmed_late += 1
        self.attempts.add(done)
        ok = self.uniform() < self.success_probability
        if ok:
            self.successes.add(done)
        else:
            self.declined += 1
        return Pending(done + typing.cast(float, self.confirm_after_s), ok)

    def _answer_for(self, by_user: bool) -> Outcome:
        self.attempts.add(self.env.now)
        if by_user:
            return _ABANDONED
        self.timeouts += 1
        if self.impaired:
            self.lost_to_outage.append(self.env.now)
        return _FAILED

    def _release(self, request: Any, arrived: float) -> None:
        self.slots.release(request)
        self.stats.finish(arrived, self.env.now)


class Payments:
    """Routes payments to channels, around a failing one when failover is configured.

    Each channel gets a circuit breaker that judges its errors and timeouts (declines
    are the buyer's, not the channel's). When a channel's breaker opens, new payments
    still reach it for ``switch_ms`` (detection to routing change), and are lost with
    it; after that they go to the next channel whose breaker is closed. Half-open
    trials go to the failed channel, and when they pass, traffic returns to it.

    Args:
        env: the simulation environment.
        config: the scenario's ``payment`` section.
        channels: the channels, in the section's order.
        interval_s: time-series interval.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: PaymentConfig,
        channels: list[PaymentChannel],
        interval_s: float,
    ) -> None:
        self.env = env
        self.channels = channels
        failover = config.failover
        self.breakers: list[CircuitBreaker] | None = None
        self.switch_s = 0.0
        if failover is not None:
            self.breakers = [CircuitBreaker(failover.circuit_breaker, interval_s) for _ in channels]
            self.switch_s = failover.switch_ms / 1000
        self.switched_at = [math.inf] * len(channels)
        """When new payments stopped going to each channel (inf: they still go)."""
        self.switches: list[tuple[str, float, float]] = []
        """Every failover: (channel, breaker opened at, traffic switched at)."""
        self.rerouted = 0
        """Payments sent to another channel than the user's."""
        self.no_channel = 0
        """Payments failed at once because every channel's breaker was open."""

    def pay(
        self, channel: int, deadline: float, lane: bool = False
    ) -> Generator[Any, Any, Outcome | Pending | None]:
        """Pay on ``channel``, or where failover sends it; the user gives up at ``deadline``.

        ``lane``: a payment in the priority lane.
        """
        breakers = self.breakers
        if breakers is None:
            result = yield from self.channels[channel].pay(deadline, lane)
            return _FAILED if result is DECLINED else result  # type: ignore[return-value]
        now = self.env.now
        target, trial = self._route(channel, now)
        if target < 0:
            self.no_channel += 1
            return _FAILED
        breaker = breakers[target]
        result = yield from self.channels[target].pay(deadline, lane)
        if result is _ABANDONED:
            if trial:
                breaker.give_back()
            return result
        # Declines are the buyer's; only the channel's errors and timeouts count. The
        # switch is this call's to book only if its result moves the breaker: other
        # calls in flight meanwhile may have moved it already.
        was = breaker.state
        breaker.record(
            self.env.now,
            result is _FAILED or isinstance(result, Pending),
            self.env.now - now,
            trial,
        )
        if breaker.state == OPEN and was == CLOSED:  # a failed trial keeps traffic away
            opened = breaker.transitions[-1][0]
            self.switched_at[target] = opened + self.switch_s
            self.switches.append((self.channels[target].name, opened, opened + self.switch_s))
        elif breaker.state == CLOSED and was == HALF_OPEN:
            self.switched_at[target] = math.inf
        return _FAILED if result is DECLINED else result  # type: ignore[return-value]

    def _route(self, channel: int, now: float) -> tuple[int, bool]:
        """The channel a payment goes to, and whether it is a half-open trial (-1: none)."""
        assert self.breakers is not None
        breaker = self.breakers[channel]
        if breaker.state == CLOSED or now < self.switched_at[channel]:
            return channel, False
        if breaker.allow(now):
            return channel, breaker.state == HALF_OPEN
        n = len(self.channels)
        for step in range(1, n):
            other = (channel + step) % n
            if self.breakers[other].state == CLOSED:
                self.rerouted += 1
                return other, False
        return -1, False
