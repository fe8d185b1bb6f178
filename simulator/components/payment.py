"""Payment channels: third-party services with limited capacity, latency and failures.

Each channel is a counter with ``capacity`` clerks at a bank: a payment waits for a
clerk, is processed for a random time, and succeeds with the channel's success
probability. The shop stops waiting after the channel's timeout; the bank, unaware,
finishes the transaction anyway, so a timed-out payment still occupies the clerk until
it is done (this is what lets a slow channel drown in its own backlog).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from simulator.components.health import Impairable
from simulator.components.station import StationStats, wait_for
from simulator.metrics import IntervalCounter
from simulator.outcomes import Outcome
from simulator.scenario.distributions import make_sampler
from simulator.scenario.schema import PaymentChannel as ChannelConfig
from simulator.streams import Streams, buffered

__all__ = ["PaymentChannel"]

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
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: ChannelConfig,
        streams: Streams,
        interval_s: float,
    ) -> None:
        self.env = env
        self.name = config.name
        self.slots = simpy.Resource(env, capacity=config.capacity)
        self.timeout_s = config.timeout_ms / 1000
        self.success_probability = config.success_probability
        prefix = f"payment.{config.name}"
        self.latency = make_sampler(config.latency_ms, streams.generator(f"{prefix}.latency"), 1e-3)
        self.uniform = buffered(streams.generator(f"{prefix}.outcome").random)
        self.stats = StationStats(prefix, config.capacity, interval_s)
        self.attempts = IntervalCounter(interval_s)
        self.successes = IntervalCounter(interval_s)
        self.declined = 0
        self.timeouts = 0
        self.unavailable = 0
        """Payments failed at once because the channel was down or failing (faults)."""
        self.resource, self.nominal_capacity = self.slots, config.capacity

    def pay(self, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """Process one payment for a user who gives up at ``deadline``.

        Returns:
            None on success; ``PAYMENT_FAILED`` when declined or timed out;
            ``ABANDONED`` when the user's patience ran out first.
        """
        env, stats, slots = self.env, self.stats, self.slots
        now = env.now
        slowdown = 1.0
        if self.impaired:
            if self.fails():
                self.unavailable += 1
                self.attempts.add(now)
                return _FAILED
            slowdown = self.slowdown
        stats.arrive(now)
        give_up = now + self.timeout_s
        limit = min(give_up, deadline)
        by_user = limit < give_up  # whose clock runs out first: the user's or the shop's
        request = slots.request()
        if not request.triggered:
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
            return self._answer_for(by_user)
        yield env.timeout(done - start)
        self._release(request, now)
        stats.served += 1
        self.attempts.add(done)  # attempts and successes are counted when the answer comes
        if self.uniform() < self.success_probability:
            self.successes.add(done)
            return None
        self.declined += 1
        return _FAILED

    def _answer_for(self, by_user: bool) -> Outcome:
        self.attempts.add(self.env.now)
        if by_user:
            return _ABANDONED
        self.timeouts += 1
        return _FAILED

    def _release(self, request: Any, arrived: float) -> None:
        self.slots.release(request)
        self.stats.finish(arrived, self.env.now)
