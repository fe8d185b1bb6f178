"""Staff on duty over time, and a first-come-first-served queue served by them.

A :class:`Roster` says how many people are on duty at any time: a daily shift
calendar (read on the scenario's clock), surge staff for windows of the run, and
capacity faults that cut the staff for a while. It is known for the whole run in
advance, which is what lets :class:`RosteredQueue` work out each customer's start and
finish the moment they arrive, with the recursion of Kiefer and Wolfowitz: the next
customer in line goes to whichever server can start first, where a server can start
when it is free *and* on duty. A server going off duty finishes the job in hand; none
starts a job off duty. That is exact for a FCFS multi-server queue and needs no
simulation events, so a backlog can be followed for days without ticking through it.

With ``patience``, a customer whose start would come later than their patience leaves
unserved at the end of it (and takes no server's time); those behind are not held up,
so the recursion stays exact.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Sequence

from simulator.model.components.station import StationStats
from simulator.scenario.logistics import Shift, Surge

__all__ = ["DAY_S", "HOUR_S", "Roster", "RosteredQueue"]

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
_LEAVES, _GIVES_UP, _STARTS = 0, 1, 2  # order of changes at equal times


class Roster:
    """People on duty over the run's time.

    Args:
        base: on duty at hours of the day no shift covers.
        shifts: the daily calendar.
        surge: extra staff for windows of the run.
        cuts: capacity faults as (start s, end s, fraction left); staff are rounded,
            at least one stays while anyone is on duty.
        clock_at_start_h: hour of day at t = 0.
    """

    def __init__(
        self,
        base: int,
        shifts: Sequence[Shift] = (),
        surge: Sequence[Surge] = (),
        cuts: Sequence[tuple[float, float, float]] = (),
        clock_at_start_h: float = 0.0,
    ) -> None:
        self.offset_s = clock_at_start_h * 3600.0
        # The day as breakpoints (seconds after midnight) and the staff from each on.
        edges = sorted({0.0, *(x * 3600.0 for s in shifts for span in s.spans() for x in span)})
        self.day_edges = [e for e in edges if e < DAY_S]
        self.day_staff = [self._shift_staff(base, shifts, e / 3600.0) for e in self.day_edges]
        self.surge = [(s.from_s, s.to_s, s.staff) for s in surge]
        self.cuts = list(cuts)
        self.extra_edges = sorted(
            {t for a, b, _ in self.surge for t in (a, b)}
            | {t for a, b, _ in self.cuts for t in (a, b) if t < math.inf}
        )
        self.constant = (
            self.day_staff[0] if len(set(self.day_staff)) == 1 and not surge and not cuts else None
        )
        """The staff when it never changes (the common case, and the fast path)."""
        self.most = max(self.day_staff) + sum(s for _, _, s in self.surge)
        """The most people ever on duty: the number of servers a queue needs."""

    @staticmethod
    def _shift_staff(base: int, shifts: Sequence[Shift], hour: float) -> int:
        for shift in shifts:
            if any(a <= hour < b for a, b in shift.spans()):
                return shift.staff
        return base

    def on_duty(self, t: float) -> int:
        """People on duty at time ``t``."""
        if self.constant is not None:
            return self.constant
        day = (t + self.offset_s) % DAY_S
        staff = self.day_staff[bisect.bisect_right(self.day_edges, day) - 1]
        for start, end, extra in self.surge:
            if start <= t < end:
                staff += extra
        for start, end, left in self.cuts:
            if start <= t < end and staff:
                staff = max(1, round(staff * left))
        return staff

    def next_change(self, t: float) -> float:
        """The first time after ``t`` at which the staff may change (inf: never)."""
        if self.constant is not None:
            return math.inf
        since_midnight = t + self.offset_s
        day, into = divmod(since_midnight, DAY_S)
        i = bisect.bisect_right(self.day_edges, into)
        daily = day * DAY_S + (self.day_edges[i] if i < len(self.day_edges) else DAY_S)
        daily -= self.offset_s
        if len(self.day_edges) == 1:
            daily = math.inf  # the same staff all day
        j = bisect.bisect_right(self.extra_edges, t)
        extra = self.extra_edges[j] if j < len(self.extra_edges) else math.inf
        # Never stand still, whatever the rounding of clock and run times.
        return max(min(daily, extra), math.nextafter(t, math.inf))

    def next_on(self, k: int, t: float) -> float:
        """The first time from ``t`` on at which server ``k`` (0-based) is on duty."""
        if self.on_duty(t) > k:
            return t
        # Past the last surge or fault edge the day repeats: one more day is enough.
        give_up = max(t, self.extra_edges[-1] if self.extra_edges else 0.0) + DAY_S
        while True:
            t = self.next_change(t)
            if t > give_up:
                return math.inf  # a surge-only server after the last surge
            if self.on_duty(t) > k:
                return t

    def changes(self, start: float, end: float) -> list[tuple[float, int]]:
        """(time, staff) at ``start`` and at every change before ``end``."""
        out = [(start, self.on_duty(start))]
        t = self.next_change(start)
        while t < end:
            staff = self.on_duty(t)
            if staff != out[-1][1]:
                out.append((t, staff))
            t = self.next_change(t)
        return out


class RosteredQueue:
    """A FCFS queue in front of rostered servers, worked out by recursion.

    Customers must arrive in time order.

    Args:
        name: the station's name in outputs.
        roster: who is on duty when.
        service: draws one service time, s.
        patience: draws how long one customer waits before leaving, s; None: forever.
    """

    def __init__(
        self,
        name: str,
        roster: Roster,
        service: Callable[[], float],
        patience: Callable[[], float] | None = None,
    ) -> None:
        self.roster = roster
        self.service = service
        self.patience = patience
        # A heap of (when server k is next free, k); off-duty servers are moved on lazily.
        self.free = [(0.0, k) for k in range(roster.most)]
        # A heap of future changes (time, kind, arrival time), applied as the clock passes.
        self.pending: list[tuple[float, int, float]] = []
        self.stats = StationStats(name, roster.most)
        self.closed_at = 0.0

    def arrive(self, now: float) -> tuple[float, float] | None:
        """A customer joins at ``now``: their (start, finish), or None if they give up."""
        stats = self._settle(now)
        stats.arrive(now)
        start, k = self._first_start(now)
        if self.patience is not None:
            patience = self.patience()
            if start - now > patience:
                heapq.heappush(self.pending, (now + patience, _GIVES_UP, now))
                return None
        finish = start + self.service()
        heapq.heapreplace(self.free, (finish, k))
        if start == now:
            stats.begin(now, now)
        else:
            heapq.heappush(self.pending, (start, _STARTS, now))
        heapq.heappush(self.pending, (finish, _LEAVES, now))
        return start, finish

    def _first_start(self, now: float) -> tuple[float, int]:
        """The earliest start, and its server (left on top of the heap)."""
        free, roster = self.free, self.roster
        while True:
            t, k = free[0]
            start = now if t < now else t
            if roster.constant is not None:
                return start, k
            on = roster.next_on(k, start)
            if on == start:
                return start, k
            heapq.heapreplace(free, (on, k))

    def waiting(self, now: float) -> int:
        """Customers inside at ``now`` (waiting or in service)."""
        return self._settle(now).inside

    def _settle(self, now: float) -> StationStats:
        """Account, in time order, for the starts, departures and give-ups up to ``now``."""
        stats, pending = self.stats, self.pending
        while pending and pending[0][0] <= now:
            when, change, arrived = heapq.heappop(pending)
            if change == _STARTS:
                stats.begin(arrived, when)
            elif change == _LEAVES:
                stats.served += 1
                stats.finish(arrived, when)
            else:
                stats.leave_queue(arrived, when, by_user=True)
        return stats

    def reset(self, now: float) -> None:
        """End of warm-up: account for everything up to ``now``, then restart statistics."""
        self._settle(now)
        self.stats.reset(now)

    def close(self) -> float:
        """Let every customer leave; return when the last one did."""
        self.closed_at = max((t for t, _, _ in self.pending), default=self.stats.clock)
        self._settle(self.closed_at)
        # Utilisation is busy time over the staff actually on duty.
        self.stats.capacity_log = self.roster.changes(0.0, self.closed_at)
        return self.closed_at
