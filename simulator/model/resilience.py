"""Resilience policies: timeout, retry with backoff, circuit breaker, bulkhead, degradation.

Small pieces a caller puts around the calls it makes to a dependency, as Resilience4j
or Polly do. :class:`Guard` composes them in the usual order: the breaker and the
bulkhead decide whether a call is made at all (an open breaker or a full bulkhead fails
it at once); a made call is cut off at the timeout (the callee keeps working on it: a
timeout saves the caller's time, not the callee's, and the bulkhead counts the calls
the caller waits for, so with a timeout the callee may hold more); a failed call (an error or a
timeout, never one whose user left) is retried after a backoff while the user still
waits. The breaker's state and every retry are counted.

None of this is on the path of a call without a policy: components are called directly
then.
"""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from simulator.measure.metrics import IntervalCounter, spread
from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams, buffered
from simulator.scenario.protections import Backoff, Policy
from simulator.scenario.protections import CircuitBreaker as BreakerConfig

if TYPE_CHECKING:
    from simulator.model.components.database import Database

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "CircuitBreaker",
    "Guard",
    "GuardedDatabase",
    "backoff_delay",
    "guarded_call",
]

_ERROR = Outcome.ERROR
_ABANDONED = Outcome.ABANDONED

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def backoff_delay(backoff: Backoff, retry: int, previous_s: float, u: float) -> float:
    """Wait before retry number ``retry`` (1 for the first), in seconds.

    Args:
        backoff: the policy.
        retry: which retry this is, from 1.
        previous_s: the wait before the previous retry (the base wait for the first);
            only decorrelated jitter uses it.
        u: a uniform draw in [0, 1).
    """
    base, cap = backoff.base_ms / 1000, backoff.cap_ms / 1000
    if backoff.jitter == "decorrelated":
        return min(cap, base + u * (3 * previous_s - base))
    wait = base if backoff.kind == "none" else min(cap, base * 2.0 ** (retry - 1))
    if backoff.jitter == "full":
        return u * wait
    if backoff.jitter == "equal":
        return wait / 2 + u * wait / 2
    return wait


class CircuitBreaker:
    """A count-based sliding-window breaker: closed, open, half-open.

    Closed, it judges the last ``window_calls`` calls and opens when the share that
    failed (or was slow) reaches its threshold, once the window holds ``minimum_calls``.
    Open, it fails every call at once for ``open_wait_s``. Then it half-opens: it lets
    ``half_open_calls`` trial calls through and closes when they all succeed, or opens
    again at the first that fails.

    Args:
        config: the breaker's settings.
        interval_s: time-series interval, for the time spent open per interval.
    """

    def __init__(self, config: BreakerConfig, interval_s: float) -> None:
        self.config = config
        self.state = CLOSED
        self._window: collections.deque[int] = collections.deque()
        self._failed = 0
        self._slow = 0
        self._slow_s = None if config.slow_call_ms is None else config.slow_call_ms / 1000
        self._opened_at = 0.0
        self._trials = 0
        self._passed = 0
        self._width = interval_s
        self.open_by_interval: list[float] = []
        """Seconds spent open in each interval."""
        self.open_s = 0.0
        """Seconds spent open, up to the last state change."""
        self.rejected = 0
        """Calls failed at once while open (or half-open with its trials taken)."""
        self.transitions: list[tuple[float, str]] = []
        """Every state change, as (time, new state)."""

    def allow(self, now: float) -> bool:
        """Whether a call may be made now (a half-open breaker counts it as a trial)."""
        state = self.state
        if state == CLOSED:
            return True
        if state == OPEN:
            if now < self._opened_at + self.config.open_wait_s:
                self.rejected += 1
                return False
            self._enter(HALF_OPEN, now)
            self._trials = self._passed = 0
        if self._trials < self.config.half_open_calls:
            self._trials += 1
            return True
        self.rejected += 1
        return False

    def give_back(self) -> None:
        """A trial call that was let through but never judged (its user left first)."""
        if self.state == HALF_OPEN and self._trials > 0:
            self._trials -= 1

    def record(self, now: float, failed: bool, duration_s: float, trial: bool = False) -> None:
        """The result of a call that :meth:`allow` let through.

        ``trial`` says whether the call was let through as a half-open trial; only
        trials judge a half-open breaker, and a trial's result is ignored once the
        breaker has moved on.
        """
        slow = self._slow_s is not None and duration_s > self._slow_s
        state = self.state
        if trial != (state == HALF_OPEN):
            return  # a call from another state than the one the breaker is in now
        if state == HALF_OPEN:
            if failed or slow:
                self._open(now)
            else:
                self._passed += 1
                if self._passed >= self.config.half_open_calls:
                    self._enter(CLOSED, now)
            return
        if state == OPEN:
            return  # a call let through before the breaker opened
        config, window = self.config, self._window
        outcome = failed | (slow << 1)
        window.append(outcome)
        self._failed += failed
        self._slow += slow
        if len(window) > config.window_calls:
            oldest = window.popleft()
            self._failed -= oldest & 1
            self._slow -= oldest >> 1
        calls = len(window)
        if calls >= config.minimum_calls and (
            self._failed >= config.failure_rate_threshold * calls
            or self._slow >= config.slow_call_rate_threshold * calls
        ):
            self._open(now)

    def _open(self, now: float) -> None:
        self._enter(OPEN, now)
        self._opened_at = now

    def _enter(self, state: str, now: float) -> None:
        if self.state == OPEN:
            self._account_open(now)
        if state == CLOSED:
            self._window.clear()
            self._failed = self._slow = 0
        self.state = state
        self.transitions.append((now, state))

    def _account_open(self, now: float) -> None:
        self.open_s += now - self._opened_at
        if now > self._opened_at:
            spread(self.open_by_interval, self._width, self._opened_at, now, 1.0)

    def close_books(self, now: float) -> None:
        """Account an open state that lasts to the end of the run."""
        if self.state == OPEN:
            self._account_open(now)
            self._opened_at = now

    @property
    def times_opened(self) -> int:
        """How often the breaker opened."""
        return sum(1 for _, state in self.transitions if state == OPEN)


class Guard:
    """One dependency's policy, applied to every call the application makes to it.

    Args:
        env: the simulation environment.
        name: the dependency, e.g. ``database``; names the stream ``resilience.NAME``.
        policy: the policy.
        streams: the run's streams (backoff jitter).
        interval_s: time-series interval.
        load: for degradation, a function giving the gateway's current utilisation.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        policy: Policy,
        streams: Streams,
        interval_s: float,
        load: Callable[[], float] | None = None,
    ) -> None:
        self.env = env
        self.name = name
        self.timeout_s = None if policy.timeout_ms is None else policy.timeout_ms / 1000
        retry = policy.retry
        self.max_retries = 0 if retry is None else retry.max_retries
        self.backoff = Backoff() if retry is None else retry.backoff
        self._uniform = buffered(streams.generator(f"resilience.{name}").random)
        self.breaker = (
            None
            if policy.circuit_breaker is None
            else CircuitBreaker(policy.circuit_breaker, interval_s)
        )
        self.bulkhead = math.inf if policy.bulkhead is None else policy.bulkhead
        self.in_flight = 0
        self._degrade_above = policy.degrade_above_utilisation
        self._load = load
        self.retries = IntervalCounter(interval_s)
        """Retries, per interval."""
        self.retry_count = 0
        self.timeouts = 0
        """Calls cut off by the timeout."""
        self.failed_fast = 0
        """Calls failed at once by the breaker or the bulkhead."""
        self.skipped = 0
        """Non-core calls skipped (degraded) because the gateway was overloaded."""

    def degraded(self) -> bool:
        """Whether a non-core call should be skipped now, the gateway being overloaded."""
        limit, load = self._degrade_above, self._load
        if limit is not None and load is not None and load() > limit:
            self.skipped += 1
            return True
        return False

    def call(
        self, make: Callable[[float], Generator[Any, Any, Outcome | None]], deadline: float
    ) -> Generator[Any, Any, Outcome | None]:
        """Make a call under the policy.

        Args:
            make: starts one attempt given the time its caller stops waiting, e.g.
                ``functools.partial(database.read, key)``.
            deadline: when the user gives up.

        Returns:
            None when an attempt succeeded; ``ABANDONED`` when the user's deadline came;
            else the last attempt's failure (``ERROR`` for a timeout or a fast failure).
        """
        env, breaker = self.env, self.breaker
        retry, previous = 0, self.backoff.base_ms / 1000
        while True:
            start = env.now
            if breaker is not None and not breaker.allow(start):
                self.failed_fast += 1
                result: Outcome | None = _ERROR
            elif self.in_flight >= self.bulkhead:
                self.failed_fast += 1
                result = _ERROR
                if breaker is not None:
                    breaker.give_back()
            else:
                trial = breaker is not None and breaker.state == HALF_OPEN
                self.in_flight += 1
                result = yield from self._attempt(make, deadline)
                self.in_flight -= 1
                if breaker is not None:
                    if result is _ABANDONED:
                        if trial:
                            breaker.give_back()
                    else:
                        breaker.record(env.now, result is not None, env.now - start, trial)
            if result is None or result is _ABANDONED or retry >= self.max_retries:
                return result
            retry += 1
            previous = backoff_delay(self.backoff, retry, previous, self._uniform())
            if env.now + previous >= deadline:
                return result  # the user would be gone before the retry
            self.retry_count += 1
            self.retries.add(env.now)
            yield env.timeout(previous)

    def _attempt(
        self, make: Callable[[float], Generator[Any, Any, Outcome | None]], deadline: float
    ) -> Generator[Any, Any, Outcome | None]:
        env, timeout = self.env, self.timeout_s
        if timeout is None:
            return (yield from make(deadline))
        now = env.now
        limit = min(deadline, now + timeout)
        ours = limit < deadline  # whose clock runs out first: the policy's or the user's
        attempt = env.process(make(limit))
        yield attempt | env.timeout(limit - now)
        if attempt.triggered:
            result = attempt.value
            if result is not _ABANDONED or not ours:
                return result
        if not ours:
            return _ABANDONED
        self.timeouts += 1
        return _ERROR


class GuardedDatabase:
    """The database as the application servers call it: every read and write under a policy.

    Args:
        database: the database.
        guard: the policy of calls to it.
    """

    def __init__(self, database: Database, guard: Guard) -> None:
        self.database = database
        self.guard = guard

    def read(self, key: int, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """A read of ``key`` under the policy."""
        return self.guard.call(functools.partial(self.database.read, key), deadline)

    def write(self, key: int, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """A write (an order for item ``key``) under the policy."""
        return self.guard.call(functools.partial(self.database.write, key), deadline)


def guarded_call(
    call: Callable[[float], Generator[Any, Any, Outcome | None]], guard: Guard | None
) -> Callable[[float], Generator[Any, Any, Outcome | None]]:
    """A non-core call under its policy: skipped while degraded, else guarded."""
    if guard is None:
        return call

    def guarded(deadline: float) -> Generator[Any, Any, Outcome | None]:
        if guard.degraded():
            return None
        return (yield from guard.call(call, deadline))

    return guarded
