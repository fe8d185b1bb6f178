"""Counted resources: stock per item and warehouse, coupon quotas, and how they are taken.

A :class:`Stock` holds a count per key and takes units from it by one of four
mechanics, the ones flash sales are built and broken with:

- ``atomic``: a conditional decrement (Redis ``DECRBY`` guarded by a Lua check, or
  ``UPDATE ... SET n = n - k WHERE n >= k``). A unit is either taken or refused, so the
  count of units taken never exceeds the stock.
- ``read_then_write``: read the count, check it, write ``count - k`` back a race window
  later. Two takers whose windows overlap both pass the check and the later write
  overwrites the earlier: a lost update, and one unit sold twice.
- ``lock``: the same read-then-write inside a distributed lock. The lock serialises
  takers, unless its lease runs out while the holder is still inside (the next taker
  then reads the same count) or the grant was not exclusive (a lock server failover).
- ``async``: the front end checks the count the queue consumer keeps and queues the
  deduction. Messages still in the queue are not in the count, so while the queue is
  backed up the front end accepts more than there is; the consumer finds the shortfall
  and the orders are cancelled at reconciliation.

Whatever the mechanic, the truth is kept apart from the counter: ``taken`` counts the
units really handed out (minus those put back by orders that failed), so
``oversold = max(0, taken - stock)`` is measured, never assumed.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Generator, Sequence
from typing import Any

import simpy

from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams, buffered, make_sampler
from simulator.model.components.servers import Servers
from simulator.model.components.station import wait_for
from simulator.scenario.commerce import Deduction

__all__ = ["SOLD_OUT", "Stock"]

SOLD_OUT = -1
"""What :meth:`Stock.take` returns when no candidate key had the units."""

_ERROR = Outcome.ERROR


class Stock:
    """Counts per key, taken by the configured mechanic.

    Args:
        env: the simulation environment.
        config: the deduction mechanics (an inventory or a coupon rain section).
        initial: units per key; None for a key that is never counted (unlimited).
        streams: the run's streams; uses ``NAME.deduct``, ``NAME.race``,
            ``NAME.lock`` and ``NAME.queue``.
        name: the stream prefix, e.g. ``inventory`` or ``coupons.NAME``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: Deduction,
        initial: Sequence[int | None],
        streams: Streams,
        name: str,
    ) -> None:
        self.env = env
        self.mode = config.deduction
        self.atomic = self.mode == "atomic"
        self.initial = list(initial)
        self.count: list[int] = [n or 0 for n in initial]
        """The counter as stored (too high after lost updates)."""
        self.taken = [0] * len(self.initial)
        """Units really handed out and not put back."""
        self.deduct_time: Callable[[], float] = make_sampler(
            config.deduct_time_ms, streams.generator(f"{name}.deduct"), scale=1e-3
        )
        self.sold_out_at: dict[int, float] = {}
        """When each key's last unit was first handed out."""
        self.refused = 0
        """Takes refused for want of units."""
        self.lock_timeouts = 0
        self.race: Callable[[], float] | None = None
        if config.race_window_ms is not None:
            self.race = make_sampler(
                config.race_window_ms, streams.generator(f"{name}.race"), scale=1e-3
            )
        self._locks: dict[int, Servers] = {}
        lock = config.lock
        if lock is not None:
            self.lease_s = lock.lease_ms / 1000
            self.lock_wait_s = lock.wait_timeout_ms / 1000
            self.lock_failure = lock.failure_probability
            self.hold_time = make_sampler(
                lock.hold_time_ms, streams.generator(f"{name}.lock.hold"), scale=1e-3
            )
            self.lock_uniform = buffered(streams.generator(f"{name}.lock").random)
        self.leases_expired = 0
        self.grants_not_exclusive = 0
        # async: (time the consumer is done with it, key, units) in consumer order
        self._queue: collections.deque[tuple[float, int, int]] = collections.deque()
        self._consumer_free = 0.0
        if config.queue is not None:
            self.consumer_time = make_sampler(
                config.queue.consumer_time_ms, streams.generator(f"{name}.queue"), scale=1e-3
            )
        self.queue_peak = 0
        self.shortfalls = 0
        """async: deductions the consumer found no units for (reconciliation cancels)."""

    # ------------------------------------------------------------------ atomic

    def take(self, keys: Sequence[int], units: int) -> int:
        """Atomically take ``units`` from the first of ``keys`` that has them.

        Returns:
            The key taken from, or :data:`SOLD_OUT`.
        """
        initial, count = self.initial, self.count
        for key in keys:
            if initial[key] is None:
                return key
            if count[key] >= units:
                count[key] -= units
                self._handed_out(key, units)
                return key
        self.refused += 1
        return SOLD_OUT

    def deduct(
        self, keys: Sequence[int], units: int, deadline: float, own_work_s: float
    ) -> Generator[Any, Any, int | Outcome]:
        """Take ``units`` by the configured mechanic after the caller's own work.

        An atomic take and the caller's work share one timeout; the other mechanics
        run after it. Returns what :meth:`take_slowly` returns.
        """
        if self.atomic:
            key = self.take(keys, units)
            yield self.env.timeout(own_work_s + self.deduct_time())
            return key
        yield self.env.timeout(own_work_s)
        return (yield from self.take_slowly(keys, units, deadline))

    # --------------------------------------------------------- non-atomic modes

    def take_slowly(
        self, keys: Sequence[int], units: int, deadline: float
    ) -> Generator[Any, Any, int | Outcome]:
        """Take ``units`` by the configured non-atomic mechanic (a SimPy process step).

        Returns:
            The key taken from, :data:`SOLD_OUT`, or ``ERROR`` when the lock could not
            be had in time.
        """
        for key in keys:
            if self.initial[key] is None:
                return key
            got: bool | Outcome
            if self.mode == "read_then_write":
                got = yield from self._read_then_write(key, units)
            elif self.mode == "lock":
                got = yield from self._locked(key, units, deadline)
            else:
                got = yield from self._queued(key, units)
            if got is not True:
                if got is _ERROR:
                    return _ERROR
                continue
            return key
        self.refused += 1
        return SOLD_OUT

    def _read_then_write(self, key: int, units: int) -> Generator[Any, Any, bool]:
        assert self.race is not None
        seen = self.count[key]
        window = self.race()
        if seen < units:
            yield self.env.timeout(window)
            return False
        yield self.env.timeout(window)
        self._write(key, seen, units)
        return True

    def _write(self, key: int, seen: int, units: int) -> None:
        """Write back what was read minus ``units`` (a blind write: a lost update if stale)."""
        self.count[key] = seen - units
        self._handed_out(key, units)

    def _handed_out(self, key: int, units: int) -> None:
        taken = self.taken[key] = self.taken[key] + units
        if taken >= self.initial[key] and key not in self.sold_out_at:  # type: ignore[operator]
            self.sold_out_at[key] = self.env.now

    def _locked(self, key: int, units: int, deadline: float) -> Generator[Any, Any, bool | Outcome]:
        env = self.env
        hold = self.hold_time()
        request = lock = None
        released = [False]
        if self.lock_uniform() < self.lock_failure:
            self.grants_not_exclusive += 1  # told it holds the lock; excludes no one
        else:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = Servers(env, 1)
            request = lock.request()
            if not request.triggered:
                request = yield from wait_for(
                    env, request, min(deadline, env.now + self.lock_wait_s)
                )
                if request is None:
                    self.lock_timeouts += 1
                    return _ERROR
            if hold > self.lease_s:
                # The lease runs out while the holder is still inside: the next in line
                # gets the lock now and reads the count this holder has not written yet.
                self.leases_expired += 1
                env.timeout(self.lease_s).callbacks.append(
                    lambda _: self._release(lock, request, released)
                )
        seen = self.count[key]
        yield env.timeout(hold)
        ok = seen >= units
        if ok:
            self._write(key, seen, units)
        if lock is not None:
            self._release(lock, request, released)
        return ok

    @staticmethod
    def _release(lock: Servers, request: Any, released: list[bool]) -> None:
        if not released[0]:
            released[0] = True
            lock.release(request)

    def _queued(self, key: int, units: int) -> Generator[Any, Any, bool]:
        env = self.env
        self._consume(env.now)
        yield env.timeout(self.deduct_time())
        self._consume(env.now)
        if self.count[key] < units:
            return False
        self._handed_out(key, units)
        self._enqueue(key, units)
        return True

    def _enqueue(self, key: int, units: int) -> None:
        start = max(self.env.now, self._consumer_free)
        self._consumer_free = start + self.consumer_time()
        self._queue.append((self._consumer_free, key, units))
        if len(self._queue) > self.queue_peak:
            self.queue_peak = len(self._queue)

    def _consume(self, now: float) -> None:
        """Apply the deductions the consumer has finished by ``now``, in queue order."""
        queue, count = self._queue, self.count
        while queue and queue[0][0] <= now:
            _, key, units = queue.popleft()
            if units > 0 and count[key] < units:
                self.shortfalls += units - max(count[key], 0)
                count[key] = 0
                continue
            count[key] -= units

    # ---------------------------------------------------------------- put back

    def put_back(self, key: int, units: int) -> None:
        """Return units taken by an order that did not complete."""
        if self.initial[key] is None:
            return
        self.taken[key] -= units
        if self.mode == "async":
            self._enqueue(key, -units)  # an increment message, applied in turn
            return
        self.count[key] += units

    # ----------------------------------------------------------------- figures

    def oversold(self) -> list[int]:
        """Units handed out beyond the stock, per key."""
        return [
            0 if n is None else max(0, t - n) for n, t in zip(self.initial, self.taken, strict=True)
        ]

    def sold_out_keys(self) -> int:
        """Keys with every unit handed out at the end."""
        return sum(
            1 for n, t in zip(self.initial, self.taken, strict=True) if n is not None and t >= n
        )

    def finish(self) -> None:
        """Let the queue consumer finish its backlog (the books close on it)."""
        self._consume(float("inf"))
