"""Statistics of a queueing station: arrivals, waits, time in system, utilisation.

Every component that makes requests queue (gateway workers, database connections,
payment channel slots, warehouse pickers) keeps one :class:`StationStats`, so the same
figures (and the same checks: Little's law, conservation of arrivals) apply to all.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import simpy

from simulator.measure.metrics import Tally, spread

__all__ = ["StationStats", "UtilisationWindow", "first_of", "wait_for"]


def wait_for(env: simpy.Environment, request: Any, until: float) -> Generator[Any, Any, Any]:
    """Wait for a resource ``request`` that was not granted at once, no later than ``until``.

    Callers first check ``request.triggered`` (a free resource grants at once) and only
    then wait here, so the common uncontended path creates no generator and no timer.

    Returns:
        The granted request (release it with the resource's ``release``), or None when
        the time ran out first, in which case the request has been withdrawn.
    """
    yield first_of(env, request, until)
    if request.callbacks is not None:  # not granted by the time the waiter woke
        request.cancel()
        return None
    return request


def first_of(env: simpy.Environment, event: simpy.Event, until: float) -> simpy.Event:
    """An event that fires when ``event`` is processed or at ``until``, whichever is first.

    What ``event | env.timeout(until - now)`` gives, in the same place of the event
    order, without a :class:`simpy.Condition` and its value: the waiter tells which came
    first by whether ``event`` has been processed (``event.callbacks is None``).
    """
    woken = simpy.Event(env)

    def wake(_: object) -> None:
        if not woken.triggered:
            woken.succeed()

    event.callbacks.append(wake)  # type: ignore[union-attr]  # the caller's event is pending
    env.timeout(max(until - env.now, 0.0)).callbacks.append(wake)  # type: ignore[union-attr]
    return woken


def _interval_end(index: int, width: float) -> float:
    """The first time ``t`` with ``int(t / width) > index``: where interval ``index`` ends.

    Stepping one float at a time from ``(index + 1) * width`` settles the rounding, so
    that ``t < _interval_end(i, width)`` tells exactly what ``int(t / width) <= i``
    would, without dividing.
    """
    end = (index + 1) * width
    while int(end / width) > index:
        end = math.nextafter(end, -math.inf)
    while int(end / width) <= index:
        end = math.nextafter(end, math.inf)
    return end


class StationStats:
    """Counts, a wait tally and the time-weighted number inside and in service.

    The two levels (requests inside, servers busy) are integrated together: one clock
    advance per change, and a request served at once costs a single update on entry.

    Args:
        name: station name in outputs, e.g. ``database``.
        servers: number of servers (for utilisation).
        interval_s: when given, busy servers are also integrated per interval.
    """

    __slots__ = (
        "name",
        "servers",
        "arrivals",
        "served",
        "rejected",
        "timed_out",
        "abandoned",
        "carried_in",
        "time_in_system",
        "wait",
        "sojourn_total",
        "sojourn_count",
        "inside",
        "busy",
        "peak_inside",
        "_area_inside",
        "_area_busy",
        "_last",
        "_since",
        "_width",
        "busy_intervals",
        "_index",
        "_edge",
        "capacity_log",
    )

    def __init__(self, name: str, servers: int, interval_s: float | None = None) -> None:
        self.name = name
        self.servers = servers
        self.inside = 0
        self.busy = 0
        self.peak_inside = 0
        self._width = interval_s or 0.0
        self.busy_intervals: list[float] = []
        self._index = 0  # the busy interval last added to, and the first time past it
        self._edge = -math.inf
        self.wait = Tally()
        self.arrivals = self.served = self.rejected = self.timed_out = self.abandoned = 0
        self.carried_in = 0
        self.capacity_log: list[tuple[float, int]] = [(0.0, servers)]
        """Every change of the number of servers, as (time, servers)."""
        self._restart(0.0)

    def _restart(self, now: float) -> None:
        self.time_in_system = 0.0  # summed over every departure, served or not
        self.sojourn_total = 0.0  # over departures after service began
        self.sojourn_count = 0
        self._area_inside = 0.0
        self._area_busy = 0.0
        self._last = now
        self._since = now
        self.peak_inside = self.inside

    def _advance(self, now: float) -> None:
        """Integrate both levels up to ``now``."""
        last = self._last
        span = now - last
        if span > 0:
            self._area_inside += self.inside * span
            busy = self.busy
            if busy:
                area = busy * span
                self._area_busy += area
                if now < self._edge:  # the common case: still in the same interval
                    self.busy_intervals[self._index] += area
                elif self._width:
                    self._spread_busy(last, now, busy)
            self._last = now

    def _spread_busy(self, last: float, now: float, busy: int) -> None:
        """Add ``busy`` servers over [last, now) to the busy intervals; note now's interval."""
        width = self._width
        spread(self.busy_intervals, width, last, now, busy)
        self._index = index = int(now / width)
        self._edge = _interval_end(index, width)

    @property
    def clock(self) -> float:
        """Time of the last change accounted for."""
        return self._last

    def arrive(self, now: float, served: bool = False) -> None:
        """A request joins the station (queue or service).

        ``served``: its service begins at once, as :meth:`begin` would record it.
        """
        self._advance(now)
        self.arrivals += 1
        inside = self.inside = self.inside + 1
        if inside > self.peak_inside:
            self.peak_inside = inside
        if served:
            self.wait.zeros += 1
            self.busy += 1

    def begin(self, arrived: float, now: float) -> None:
        """A request that arrived at ``arrived`` starts service at ``now``."""
        if now == arrived:
            self.wait.zeros += 1  # Tally.add_zero, without the call
        else:
            self.wait.add(now - arrived)
            self._advance(now)
        self.busy += 1

    def finish(self, arrived: float, now: float) -> None:
        """A request in service leaves at ``now``."""
        self._advance(now)
        stay = now - arrived
        self.sojourn_total += stay
        self.sojourn_count += 1
        self.time_in_system += stay
        self.inside -= 1
        self.busy -= 1

    def leave_queue(self, arrived: float, now: float, by_user: bool) -> None:
        """A waiting request leaves unserved: the user gave up, or the station's timeout."""
        self._advance(now)
        if by_user:
            self.abandoned += 1
        else:
            self.timed_out += 1
        self.time_in_system += now - arrived
        self.inside -= 1

    def resize(self, now: float, servers: int) -> None:
        """The number of servers changes at ``now`` (autoscaling, a capacity fault)."""
        self._advance(now)
        self.servers = servers
        self.capacity_log.append((now, servers))

    def busy_seconds(self, now: float) -> float:
        """Busy server-seconds since the last reset, up to ``now``."""
        self._advance(now)
        return self._area_busy

    def server_seconds(self, start: float, end: float) -> float:
        """Servers integrated over [start, end): the denominator of utilisation."""
        total = 0.0
        log = self.capacity_log
        for (t, servers), (t_next, _) in zip(log, [*log[1:], (end, 0)], strict=True):
            a, b = max(t, start), min(t_next, end)
            if b > a:
                total += servers * (b - a)
        return total

    def servers_by_interval(self, intervals: int) -> list[float]:
        """Mean number of servers in each of the first ``intervals`` intervals."""
        if len(self.capacity_log) == 1:
            return [float(self.servers)] * intervals
        width, end = self._width, intervals * self._width
        area: list[float] = []
        log = self.capacity_log
        for (t, servers), (t_next, _) in zip(log, [*log[1:], (end, 0)], strict=True):
            if min(t_next, end) > t:
                spread(area, width, t, min(t_next, end), servers)
        area += [0.0] * (intervals - len(area))
        return [a / width for a in area[:intervals]]

    def reset(self, now: float) -> None:
        """Forget everything observed before ``now`` (end of warm-up); levels keep going.

        Requests inside the station at ``now`` are ``carried_in``: they leave later and
        are counted then, so the balance of arrivals still closes.
        """
        self._advance(now)
        self.carried_in = self.inside
        self.arrivals = self.served = self.rejected = self.timed_out = self.abandoned = 0
        self.wait.reset()
        self._restart(now)

    def utilisation_by_interval(self, now: float, intervals: int) -> list[float]:
        """Fraction of servers busy in each of the first ``intervals`` intervals."""
        self._advance(now)
        values = self.busy_intervals[:intervals] + [0.0] * (intervals - len(self.busy_intervals))
        servers = self.servers_by_interval(intervals)
        width = self._width
        return [v / (width * c) if c else 0.0 for v, c in zip(values, servers, strict=True)]

    def summary(self, now: float) -> dict[str, float | int | None]:
        """The station's figures at the end of a run."""
        self._advance(now)
        observed = now - self._since
        wait = self.wait
        return {
            "servers": self.servers,
            "arrivals": self.arrivals,
            "served": self.served,
            "rejected": self.rejected,
            "timed_out": self.timed_out,
            "abandoned": self.abandoned,
            "carried_in": self.carried_in,
            "in_progress": self.carried_in
            + self.arrivals
            - self.served
            - self.rejected
            - self.timed_out
            - self.abandoned,
            "wait_mean_s": wait.mean,
            "wait_p95_s": wait.quantile(0.95),
            "waited_fraction": 1 - wait.zeros / wait.count if wait.count else None,
            "sojourn_mean_s": self.sojourn_total / self.sojourn_count
            if self.sojourn_count
            else None,
            "entered": self.carried_in + self.arrivals - self.rejected,
            "time_in_system_s": self.time_in_system,
            "mean_in_system": self._area_inside / observed if observed > 0 else None,
            "peak_in_system": self.peak_inside,
            "utilisation": self._area_busy / self.server_seconds(self._since, now)
            if observed > 0
            else None,
            "observed_s": observed,
        }


class UtilisationWindow:
    """A station's utilisation over successive windows, for controllers that watch it.

    Each :meth:`measure` gives busy server-seconds over available server-seconds since
    the previous one (the number of servers may have changed meanwhile).
    """

    def __init__(self, stats: StationStats, now: float) -> None:
        self.stats = stats
        self._start = now
        self._busy = stats.busy_seconds(now)

    def measure(self, now: float) -> float:
        """Utilisation since the last measurement (0 over a window with no servers)."""
        stats = self.stats
        busy = stats.busy_seconds(now)
        servers = stats.server_seconds(self._start, now)
        utilisation = (busy - self._busy) / servers if servers > 0 else 0.0
        self._busy, self._start = busy, now
        return utilisation
