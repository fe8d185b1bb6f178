"""The database behind a connection pool.

A pool is a fixed set of telephone lines to the database: a query needs a free line
for as long as it runs; callers who cannot get one within the pool timeout hang up
with an error. Reads (cache misses) and writes (new orders) share the pool and differ
in service time.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from simulator.components.station import StationStats, wait_for
from simulator.metrics import IntervalCounter
from simulator.outcomes import Outcome
from simulator.scenario.distributions import make_sampler
from simulator.scenario.schema import Database as DatabaseConfig
from simulator.streams import Streams

__all__ = ["Database"]

_ERROR = Outcome.ERROR
_ABANDONED = Outcome.ABANDONED


class Database:
    """A connection pool of ``pool_size`` connections and a query service time.

    Args:
        env: the simulation environment.
        config: the scenario's ``database`` section.
        streams: the run's streams; uses ``database.read`` and ``database.write``.
        interval_s: time-series interval.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: DatabaseConfig,
        streams: Streams,
        interval_s: float,
    ) -> None:
        self.env = env
        self.pool = simpy.Resource(env, capacity=config.pool_size)
        self.pool_timeout_s = config.pool_timeout_ms / 1000
        self.read_time = make_sampler(config.read_time_ms, streams.generator("database.read"), 1e-3)
        self.write_time = make_sampler(
            config.write_time_ms, streams.generator("database.write"), 1e-3
        )
        self.stats = StationStats("database", config.pool_size, interval_s)
        self.queries = IntervalCounter(interval_s)
        self.pool_timeouts = IntervalCounter(interval_s)
        self.reads = 0
        self.writes = 0

    def read(self, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """Run one read query; see :meth:`query`."""
        self.reads += 1
        return self.query(self.read_time(), deadline)

    def write(self, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """Run one write (order creation); see :meth:`query`."""
        self.writes += 1
        return self.query(self.write_time(), deadline)

    def query(self, service_s: float, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """Get a connection, hold it for ``service_s``, give it back.

        Args:
            service_s: the query's service time.
            deadline: when the waiting user gives up.

        Returns:
            None when the query ran; ``ERROR`` when no connection came within the pool
            timeout; ``ABANDONED`` when the user's deadline came first.
        """
        env, stats, pool = self.env, self.stats, self.pool
        now = env.now
        stats.arrive(now)
        give_up = now + self.pool_timeout_s
        request = pool.request()
        if not request.triggered:
            request = yield from wait_for(env, request, min(give_up, deadline))
        if request is None:
            by_user = deadline < give_up
            stats.leave_queue(now, env.now, by_user)
            if by_user:
                return _ABANDONED
            self.pool_timeouts.add(env.now)
            return _ERROR
        stats.begin(now, env.now)
        yield env.timeout(service_s)
        end = env.now
        pool.release(request)
        stats.served += 1
        stats.finish(now, end)
        self.queries.add(end)
        return None
