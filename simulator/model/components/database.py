"""The database: shards of a primary and read replicas, each behind a connection pool.

A pool is a fixed set of telephone lines to one database instance: a query needs a
free line for as long as it runs; callers who cannot get one within the pool timeout
hang up with an error. Keys are split over shards by hash; a shard's reads go to its
replicas in turn (to the primary when it has none), its writes to the primary.

Contention. A database slows down as more queries run at once (locks, latches, a
saturated CPU). The model is deliberately simple: a query that starts while n queries
run on its instance (itself included) takes its sampled service time times
``1 + contention_slope * max(0, n - contention_knee)``. Below the knee, service times
do not depend on load; beyond it, each extra concurrent query adds ``slope`` of a
service time to every query that starts. So a stampede of cache misses lengthens every
query it joins. That keeps connections busy longer, which makes the stampede worse.

Failover. When a shard's primary dies, its calls fail at once (and queries running on
it fail when they end) until the standby has taken over: detection after
``missed_heartbeats`` heartbeat intervals, then ``promotion_s``. The standby then
serves as the primary, with the same pool. With asynchronous replication the writes
committed in the last ``lag_ms`` before the failure never reached the standby: they
are lost (counted in ``lost_writes``). Synchronous replication loses none and makes
every write ``sync_commit_ms`` slower.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Generator
from typing import Any

import simpy

from simulator.measure.metrics import IntervalCounter
from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams, make_sampler
from simulator.model.components.health import Impairable
from simulator.model.components.servers import Servers
from simulator.model.components.station import StationStats, wait_for
from simulator.model.keys import KeySpace, bucket
from simulator.scenario.schema import Database as DatabaseConfig

__all__ = ["Database", "Instance"]

_ERROR = Outcome.ERROR
_ABANDONED = Outcome.ABANDONED


class Instance(Impairable):
    """One database instance (a primary or a replica) and its connection pool.

    Args:
        env: the simulation environment.
        name: station name in outputs.
        config: the scenario's ``database`` section.
        cluster: the database whose per-interval counters this instance adds to.
    """

    def __init__(
        self, env: simpy.Environment, name: str, config: DatabaseConfig, cluster: Database
    ) -> None:
        self.env = env
        self.pool = Servers(env, config.pool_size)
        self.pool_timeout_s = config.pool_timeout_ms / 1000
        self.knee = config.contention_knee
        self.slope = config.contention_slope
        self.stats = StationStats(name, config.pool_size, cluster.interval_s)
        self.cluster = cluster
        self.name = name
        self.resource, self.nominal_capacity = self.pool, config.pool_size
        self.epoch = 0
        """Incremented when the instance dies: queries begun before it fail when they end."""
        self.commits: collections.deque[float] | None = None
        """Commit times of recent writes, kept only when a failure could lose them."""
        self.commit_window_s = 0.0

    def query(
        self, service_s: float, deadline: float, write: bool = False
    ) -> Generator[Any, Any, Outcome | None]:
        """Get a connection, hold it for the (contended) service time, give it back.

        Args:
            service_s: the query's service time when run alone.
            deadline: when the waiting user gives up.
            write: whether the query commits a write (for the replication log).

        Returns:
            None when the query ran; ``ERROR`` when no connection came within the pool
            timeout, or the instance is down or failed the query; ``ABANDONED`` when
            the user's deadline came first.
        """
        env, stats, pool, cluster = self.env, self.stats, self.pool, self.cluster
        if self.impaired:
            if self.fails():
                return _ERROR
            service_s *= self.slowdown
        epoch = self.epoch
        now = env.now
        give_up = now + self.pool_timeout_s
        request = pool.request()
        granted = request.triggered
        stats.arrive(now, served=granted)
        start = now
        if not granted:
            request = yield from wait_for(env, request, min(give_up, deadline))
            if request is None:
                by_user = deadline < give_up
                stats.leave_queue(now, env.now, by_user)
                if by_user:
                    return _ABANDONED
                cluster.pool_timeouts.add(env.now)
                return _ERROR
            start = env.now
            stats.begin(now, start)
        cluster.started.add(start)
        if start != now:
            cluster.pool_wait_s.add(start, start - now)
        knee = self.knee
        if knee is not None and pool.count > knee:
            service_s *= 1.0 + self.slope * (pool.count - knee)
        yield env.timeout(service_s)
        end = env.now
        pool.release()
        stats.served += 1
        stats.finish(now, end)
        cluster.queries.add(end)
        if epoch != self.epoch:
            return _ERROR  # the instance died under the query: nothing was committed
        commits = self.commits
        if write and commits is not None:
            commits.append(end)
            while commits[0] < end - self.commit_window_s:
                commits.popleft()
        return None

    def fail(self, lag_s: float | None) -> int:
        """The instance dies now; returns the writes lost (those inside ``lag_s``, if async)."""
        now = self.env.now
        self.epoch += 1
        self.set_fault("down", True)
        commits, lost = self.commits, 0
        if commits is not None and lag_s is not None:
            lost = sum(1 for t in commits if t > now - lag_s)
            commits.clear()
        return lost


class Database:
    """Shards, replicas and pools, and the database's per-interval figures.

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
        keys: KeySpace | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.read_time = make_sampler(config.read_time_ms, streams.generator("database.read"), 1e-3)
        # Hot items whose page takes its own time to rebuild, by key.
        self._rebuild_time: dict[int, Callable[[], float]] = {}
        if keys is not None:
            for i, item in enumerate(keys.hot_items):
                if item.rebuild_time_ms is not None:
                    stream = streams.generator(f"database.rebuild.{item.name}")
                    self._rebuild_time[keys.hot_start + i] = make_sampler(
                        item.rebuild_time_ms, stream, 1e-3
                    )
        self.write_time = make_sampler(
            config.write_time_ms, streams.generator("database.write"), 1e-3
        )
        replication = config.replication
        self.sync_commit_s = replication.sync_commit_ms / 1000 if replication.mode == "sync" else 0
        self.lag_s = replication.lag_ms / 1000 if replication.mode == "async" else None
        failover = config.failover
        self.failover_s = (
            failover.heartbeat_interval_s * failover.missed_heartbeats + failover.promotion_s
        )
        self.lost_writes = 0
        self.failures: list[tuple[float, float]] = []
        """Each primary failure, as (time it died, time its standby took over)."""
        self.queries = IntervalCounter(interval_s)
        """Queries completed, per interval."""
        self.started = IntervalCounter(interval_s)
        """Queries that got a connection, per interval (the pool wait's denominator)."""
        self.pool_wait_s = IntervalCounter(interval_s)
        """Seconds waited for a connection, summed per interval of the grant."""
        self.pool_timeouts = IntervalCounter(interval_s)
        self.reads = 0
        self.writes = 0
        names = iter(config.instance_names())
        self.primaries: list[Instance] = []
        self.replicas: list[list[Instance]] = []
        for _ in range(config.shards):
            self.primaries.append(Instance(env, next(names), config, self))
            self.replicas.append(
                [Instance(env, next(names), config, self) for _ in range(config.read_replicas)]
            )
        self.env = env
        self._turn = [0] * config.shards
        self.shards = config.shards

    @property
    def instances(self) -> list[Instance]:
        """Every instance: each shard's primary, then its replicas."""
        out = []
        for primary, replicas in zip(self.primaries, self.replicas, strict=True):
            out += [primary, *replicas]
        return out

    def _shard(self, key: int) -> int:
        return bucket(key, self.shards, salt=0x27D4EB2F) if self.shards > 1 else 0

    def read(self, key: int, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """Run one read of ``key``: its shard's next replica, or its primary."""
        self.reads += 1
        shard = self._shard(key)
        replicas = self.replicas[shard]
        if replicas:
            turn = self._turn[shard]
            self._turn[shard] = (turn + 1) % len(replicas)
            instance = replicas[turn]
        else:
            instance = self.primaries[shard]
        special = self._rebuild_time.get(key) if self._rebuild_time else None
        return instance.query(self.read_time() if special is None else special(), deadline)

    def write(self, key: int, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """Run one write (an order for item ``key``) on its shard's primary."""
        self.writes += 1
        primary = self.primaries[self._shard(key)]
        return primary.query(self.write_time() + self.sync_commit_s, deadline, write=True)

    def keep_commits(self, shard: int) -> None:
        """Remember the recent commits of ``shard``'s primary (a failure is scheduled)."""
        if self.lag_s is not None:
            primary = self.primaries[shard]
            primary.commits = collections.deque()
            primary.commit_window_s = self.lag_s

    def fail_primary(self, shard: int) -> None:
        """``shard``'s primary dies now; its standby serves after detection and promotion."""
        primary, now = self.primaries[shard], self.env.now
        self.lost_writes += primary.fail(self.lag_s)
        self.failures.append((now, now + self.failover_s))
        self.env.timeout(self.failover_s).callbacks.append(
            lambda _: primary.set_fault("down", False)
        )
