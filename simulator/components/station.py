"""Statistics of a queueing station: arrivals, waits, time in system, utilisation.

Every component that makes requests queue (gateway workers, database connections,
payment channel slots, warehouse pickers) keeps one :class:`StationStats`, so the same
figures (and the same checks: Little's law, conservation of arrivals) apply to all.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from simulator.metrics import Level, Tally

__all__ = ["StationStats", "acquire"]


def acquire(
    env: simpy.Environment, resource: simpy.Resource, until: float
) -> Generator[Any, Any, Any]:
    """Request one unit of ``resource``, waiting no later than ``until``.

    Returns:
        The granted request (release it with ``resource.release``), or None when the
        time ran out first, in which case the request has been withdrawn.
    """
    request = resource.request()
    if not request.triggered:  # only a request that must queue is raced against a clock
        granted = yield request | env.timeout(max(until - env.now, 0.0))
        if request not in granted:
            request.cancel()
            return None
    return request


class StationStats:
    """Counts, a wait tally and time-weighted levels of one station.

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
        "sojourn",
        "in_system",
        "busy",
    )

    def __init__(self, name: str, servers: int, interval_s: float | None = None) -> None:
        self.name = name
        self.servers = servers
        self.in_system = Level()
        self.busy = Level(interval_s)
        self.wait = Tally()
        self.sojourn = Tally()
        self.arrivals = self.served = self.rejected = self.timed_out = self.abandoned = 0
        self.carried_in = 0
        self.time_in_system = 0.0  # summed over every departure, served or not

    def arrive(self, now: float) -> None:
        """A request joins the station (queue or service)."""
        self.arrivals += 1
        self.in_system.add(now, 1)

    def begin(self, arrived: float, now: float) -> None:
        """A request that arrived at ``arrived`` starts service at ``now``."""
        self.wait.add(now - arrived)
        self.busy.add(now, 1)

    def finish(self, arrived: float, now: float) -> None:
        """A request in service leaves at ``now``."""
        stay = now - arrived
        self.sojourn.add(stay)
        self.time_in_system += stay
        self.in_system.add(now, -1)
        self.busy.add(now, -1)

    def leave_queue(self, arrived: float, now: float, by_user: bool) -> None:
        """A waiting request leaves unserved: the user gave up, or the station's timeout."""
        if by_user:
            self.abandoned += 1
        else:
            self.timed_out += 1
        self.time_in_system += now - arrived
        self.in_system.add(now, -1)

    def reset(self, now: float) -> None:
        """Forget everything observed before ``now`` (end of warm-up); levels keep going.

        Requests inside the station at ``now`` are ``carried_in``: they leave later and
        are counted then, so the balance of arrivals still closes.
        """
        self.carried_in = round(self.in_system.level)
        self.arrivals = self.served = self.rejected = self.timed_out = self.abandoned = 0
        self.time_in_system = 0.0
        self.wait.reset()
        self.sojourn.reset()
        self.in_system.reset(now)
        self.busy.reset(now)

    def summary(self, now: float) -> dict[str, float | int]:
        """The station's figures at the end of a run."""
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
            "wait_mean_s": self.wait.mean,
            "wait_p95_s": self.wait.quantile(0.95),
            "waited_fraction": 1 - self.wait.zeros / self.wait.count if self.wait.count else None,
            "sojourn_mean_s": self.sojourn.mean,
            "entered": self.carried_in + self.arrivals - self.rejected,
            "time_in_system_s": self.time_in_system,
            "mean_in_system": self.in_system.mean(now),
            "utilisation": self.busy.mean(now) / self.servers,
            "observed_s": now - self.in_system.since,
        }
