"""Servers that are counted, not simulated, while nobody has to wait for one.

A :class:`simpy.Resource` schedules two events for every use: the request is granted
by an event, and the release by another, whose processing hands the freed server to
the first in the queue. When a server is free and nobody waits, both events do
nothing but pass through the event queue, yet they are about half the events of a
visit. :class:`Servers` keeps a count instead and grants at once, with no event; it
schedules events only where SimPy's would change what happens next: a queued request
is a real event, granted when its turn comes, and a release while requests wait
schedules the hand-over exactly as SimPy's release does, so that who gets the server,
and in which order same-time events run, is what ``simpy.Resource`` (or
``simpy.PriorityResource`` with ``priority=True``) gives.

One difference in event order remains, and only for events at the very same instant:
SimPy's release event is scheduled even when nobody waits, and if at that instant a
request then queues and another server is released, the first release's event hands
the server over a little earlier in the instant's event order. No result of the model
depends on that order, and the preset outputs are unchanged (``benchmarks/identical.py``).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
from collections import deque
from collections.abc import Callable
from typing import Any

import simpy

__all__ = ["GRANTED", "Servers"]


class _Granted:
    """What :meth:`Servers.request` returns when a server is free: granted, no event."""

    __slots__ = ()
    triggered = True

    def cancel(self) -> None:
        """Nothing to withdraw."""


GRANTED: Any = _Granted()
"""A request granted at once (it has ``triggered``, like a granted SimPy request)."""


class _Request(simpy.Event):
    """A request that had to queue: an event that succeeds when a server is assigned."""

    __slots__ = ("servers", "key")

    def __init__(self, servers: Servers, key: tuple[int, int] = (0, 0)) -> None:
        super().__init__(servers.env)
        self.servers = servers
        self.key = key

    def cancel(self) -> None:
        """Withdraw the request if no server has been assigned yet (a user gave up)."""
        if not self.triggered:
            self.servers.queue.remove(self)


_KEY = operator.attrgetter("key")


class Servers:
    """``capacity`` identical servers and their queue (first come first served).

    A drop-in for the part of ``simpy.Resource`` the model uses: :meth:`request` (its
    result has ``triggered`` when the server is assigned at once, and is otherwise an
    event to wait for, with ``cancel``), :meth:`release`, ``count``, ``capacity`` and
    ``queue``.

    Args:
        env: the simulation environment.
        capacity: the number of servers.
        priority: requests carry a priority (lower first, then first come first
            served), as in ``simpy.PriorityResource``.
    """

    __slots__ = ("env", "capacity", "count", "queue", "_schedule", "_order", "_next")

    def __init__(self, env: simpy.Environment, capacity: int, priority: bool = False) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be > 0")
        self.env = env
        self.capacity = capacity
        self.count = 0
        """Servers assigned now."""
        self.queue: deque[_Request] | list[_Request]
        """Requests waiting for a server, in the order they will get one."""
        # First come first served takes from the head of a deque; a retry storm queues
        # tens of thousands, and a list's pop(0) would move them all each time.
        # Priority inserts in the middle, which a list does by bisection.
        self._next: Callable[[], _Request]
        if priority:
            self.queue = []
            self._next = functools.partial(self.queue.pop, 0)
        else:
            self.queue = deque()
            self._next = self.queue.popleft
        self._schedule = env.schedule
        self._order = itertools.count() if priority else None

    def request(self, priority: int = 0) -> Any:
        """Ask for a server: :data:`GRANTED`, or an event that succeeds with the server."""
        queue = self.queue
        if not queue and self.count < self.capacity:
            self.count += 1
            return GRANTED
        if self._order is None:
            request = _Request(self)
            queue.append(request)
        else:
            request = _Request(self, (priority, next(self._order)))
            queue.insert(bisect.bisect_right(queue, request.key, key=_KEY), request)  # type: ignore[arg-type]  # a list when by priority
        # As SimPy: a new request lets the head of the queue take a free server.
        if self.count < self.capacity:
            head = self._next()
            self.count += 1
            if head is request:
                return GRANTED
            head.succeed()
        return request

    def release(self, request: Any = None) -> None:
        """Give a server back; the head of the queue takes it when the release is processed."""
        self.count -= 1
        if self.queue:
            released = simpy.Event(self.env)
            released._ok = True
            released._value = None
            released.callbacks.append(self._hand_over)
            self._schedule(released)

    def _hand_over(self, _: object) -> None:
        queue = self.queue
        if queue and self.count < self.capacity:
            self.count += 1
            self._next().succeed()

    def resize(self, capacity: int) -> None:
        """Serve with ``capacity`` servers from now on; waiting requests take new ones at once.

        Requests in service keep their server when capacity shrinks.
        """
        self.capacity = capacity
        queue = self.queue
        while queue and self.count < capacity:
            self.count += 1
            self._next().succeed()
