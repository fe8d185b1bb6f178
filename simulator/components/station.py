"""Statistics of a queueing station: arrivals, waits, time in system, utilisation.

Every component that makes requests queue (gateway workers, database connections,
payment channel slots, warehouse pickers) keeps one :class:`StationStats`, so the same
figures (and the same checks: Little's law, conservation of arrivals) apply to all.
"""

from __future__ import annotations

from simulator.metrics import Level, Tally

__all__ = ["StationStats"]


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

    def reset(self, now: float) -> None:
        """Forget everything observed before ``now`` (end of warm-up); levels keep going.

        Requests inside the station at ``now`` are ``carried_in``: they leave later and
        are counted then, so the balance of arrivals still closes.
        """
        self.carried_in = round(self.in_system.level)
        self.arrivals = self.served = self.rejected = self.timed_out = self.abandoned = 0
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
            "mean_in_system": self.in_system.mean(now),
            "utilisation": self.busy.mean(now) / self.servers,
            "observed_s": now - self.in_system.since,
        }
