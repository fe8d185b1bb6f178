"""The cache tier: levels of key -> expiry stores in front of the database.

A shop window in front of a stockroom: what is on display (cached) is seen at once;
anything else is fetched from the stockroom (the database) and then displayed until
its time to live runs out. Nothing here sets a hit ratio. It follows from how often
each key is read (Zipf, hot items), how long entries live, how many fit, and which
nodes are up. For a key read as a Poisson stream of rate r, one level with TTL T hits
with probability r*T / (1 + r*T), which the tests check.

Lookup. The levels are tried nearest first. A local level is one copy per application
server, and a request uses the copy of the server it landed on. A distributed level
splits the keys over its nodes by hash. A hit at a later level fills the earlier ones.
A miss at every level is a *rebuild*: the request reads the database and writes the
entry into every level. Each level's TTL is spread by its jitter.

The failure modes follow from that mechanism:

- *breakdown*: a hot key expires under load. Every request that misses before the
  first rebuild returns goes to the database too. The largest number of concurrent
  rebuilds of one key is ``max_concurrent_rebuilds``.
- *avalanche*: keys written together (``warm_items``) with one TTL expire together, or
  a node is lost (``faults``) and comes back empty.
- *penetration*: keys that do not exist are never found, so every read of one reaches
  the database.

The defences are scenario switches. ``rebuild: mutex`` coalesces concurrent misses
behind one rebuild. ``rebuild: logical_expiry`` serves the stale entry while one
background refresh runs. ``xfetch_beta`` recomputes early, at random. ``ttl_jitter``
spreads expiry. ``hot_items_only`` gives a local hot-key level.
``empty_result_ttl_s`` caches "not found" answers. A Bloom filter stops most missing
keys before the cache.

Performance: :meth:`CacheTier.lookup` does no SimPy work. Its latency is folded into
the caller's single timeout, and only a rebuild creates events.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Generator
from typing import Any

import simpy

from simulator.measure.metrics import IntervalCounter
from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams, buffered, make_sampler
from simulator.model.keys import KeySpace, bloom_passes, bucket
from simulator.scenario.schema import Cache as CacheConfig
from simulator.scenario.schema import CacheLevel as LevelConfig

__all__ = ["CacheLevel", "CacheTier", "NoCache", "xfetch_due"]

_ABANDONED = Outcome.ABANDONED
_NEVER = math.inf


def xfetch_due(now: float, expires: float, delta: float, beta: float, u: float) -> bool:
    """The XFetch rule: recompute now, before ``expires``, if now - delta*beta*ln(u) >= expires.

    ``u`` is uniform on (0, 1]. For a read at time ``now`` the probability is
    exp(-(expires - now) / (delta*beta)):
    nil long before expiry, rising to 1 at it, and earlier for entries that take long
    (``delta``) to rebuild.
    """
    return now - delta * beta * math.log(u) >= expires


class CacheLevel:
    """One level: its nodes' stores, lookup latency, TTL and counters.

    A store maps key -> expiry time. With a capacity it is an LRU (an OrderedDict kept
    in recency order); a node that is down has no store (None).
    """

    def __init__(
        self,
        config: LevelConfig,
        index: int,
        streams: Streams,
        interval_s: float,
        hot_keys: range = range(0),
    ) -> None:
        self.name = config.name
        self.index = index
        self.local = config.kind == "local"
        self.capacity = config.capacity
        self.ttl_s = config.ttl_s
        self.jitter = config.ttl_jitter
        self.hot_only = config.hot_items_only
        self.hot_keys = hot_keys
        self.latency: Callable[[], float] = make_sampler(
            config.latency_ms, streams.generator(f"cache.{config.name}.latency"), scale=1e-3
        )
        rng = streams.generator(f"cache.{config.name}.ttl")
        self._uniform = buffered(rng.random)
        self.stores: list[dict[int, float] | None] = [
            self._new_store() for _ in range(config.nodes)
        ]
        self.hits = IntervalCounter(interval_s)
        self.misses = IntervalCounter(interval_s)
        self.evictions = 0

    def keeps(self, key: int) -> bool:
        """Whether this level holds ``key`` at all (a hot-items-only level holds few)."""
        return not self.hot_only or key in self.hot_keys

    def _new_store(self) -> dict[int, float]:
        return OrderedDict() if self.capacity else {}

    def store_for(self, key: int, server: int) -> dict[int, float] | None:
        """The store a request for ``key`` from ``server`` uses (None: the node is down).

        A local level's node is the application server's own copy; a distributed
        level's node is chosen by the key's hash.
        """
        stores = self.stores
        if len(stores) == 1:
            return stores[0]
        if self.local:
            return stores[server % len(stores)]
        return stores[bucket(key, len(stores), salt=0x5BD1E995)]

    def ttl(self) -> float:
        """A fresh entry's time to live, jittered."""
        jitter = self.jitter
        if not jitter:
            return self.ttl_s
        return self.ttl_s * (1.0 + jitter * (2.0 * self._uniform() - 1.0))

    def write(self, store: dict[int, float], key: int, expires: float) -> None:
        """Write an entry into one node's store, evicting the least recently used."""
        capacity = self.capacity
        if capacity:
            od: Any = store
            if key in od:
                od.move_to_end(key)
            elif len(od) >= capacity:
                od.popitem(last=False)
                self.evictions += 1
        store[key] = expires

    def write_all(self, key: int, expires: float) -> None:
        """Write an entry into every live node (a warm-up job, a copy to every server)."""
        for store in self.stores:
            if store is not None:
                self.write(store, key, expires)

    def down(self, node: int | None) -> None:
        """Lose one node (or all): its entries vanish."""
        for i in range(len(self.stores)) if node is None else [node]:
            self.stores[i] = None

    def up(self, node: int | None) -> None:
        """Bring a lost node back, empty."""
        for i in range(len(self.stores)) if node is None else [node]:
            if self.stores[i] is None:
                self.stores[i] = self._new_store()

    def entries(self) -> int:
        """Entries held now, expired or not, over live nodes."""
        return sum(len(s) for s in self.stores if s is not None)


class CacheTier:
    """The cache levels, the rebuild policy and the penetration guards.

    Args:
        env: the simulation environment.
        config: the scenario's ``cache`` section.
        keys: the catalogue's key layout.
        database: the database rebuilds read from (its ``read(key, deadline)``).
        streams: the run's streams; uses ``cache.*``.
        interval_s: time-series interval.
        rebuild_delta_s: rebuild time assumed for warmed entries (XFetch's delta).
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: CacheConfig,
        keys: KeySpace,
        database: Any,
        streams: Streams,
        interval_s: float,
        rebuild_delta_s: float,
        stampede_size: int = 10,
    ) -> None:
        self.env = env
        self.stampede_size = stampede_size
        """Rebuilds of one key at once that make a stampede: the database pool's size."""
        self.keys = keys
        self.database = database
        hot_keys = range(keys.hot_start, keys.existing)
        self.levels = [
            CacheLevel(level, i, streams, interval_s, hot_keys)
            for i, level in enumerate(config.levels)
        ]
        self.last = self.levels[-1]
        self.mutex = config.rebuild == "mutex"
        self.logical_expiry = config.rebuild == "logical_expiry"
        self.xfetch_beta = config.xfetch_beta
        self._xfetch_u = buffered(streams.generator("cache.xfetch").random)
        self.empty_ttl_s = config.empty_result_ttl_s
        self.bloom_fpp = config.bloom_filter_false_positive_rate
        self._bloom_salt = int(streams.generator("cache.bloom").integers(1 << 30))
        self.existing = keys.existing
        # Requests land on one of ``servers`` application servers, at random; it matters
        # only to local levels, which keep one copy per server.
        self.servers = max((len(lv.stores) for lv in self.levels if lv.local), default=1)
        self._server_u = buffered(streams.generator("cache.server").random)
        # XFetch's delta per key: how long its last rebuild took.
        self.delta: dict[int, float] = {}
        self.default_delta_s = rebuild_delta_s
        for i, item in enumerate(keys.hot_items):  # a hero item's page has its own cost
            if item.rebuild_time_ms is not None:
                self.delta[keys.hot_start + i] = item.rebuild_time_ms.average() / 1000
        # One level that sees every lookup keeps the overall counts itself.
        self._own_totals = len(self.levels) > 1 or self.last.hot_only
        if self._own_totals:
            self.hits, self.misses = IntervalCounter(interval_s), IntervalCounter(interval_s)
        else:
            self.hits, self.misses = self.last.hits, self.last.misses
        self.rebuilds = IntervalCounter(interval_s)
        self._rebuilding: dict[int, int] = {}
        self.max_concurrent_rebuilds = 0
        self.max_rebuilds_key: int | None = None
        self.max_rebuilds_at_s: float | None = None
        self.stampede_at_s: float | None = None
        """When one key first had ``stampede_size`` rebuilds running at once."""
        self._inflight: dict[int, simpy.Event] = {}
        self._refreshing: set[int] = set()
        self.stale_hits = 0
        self.early_recomputes = 0
        self.coalesced = 0
        self.blocked = 0
        self.missing_lookups = 0
        """Lookups of keys that do not exist."""
        self.missing_rebuilds = 0
        """Database reads for keys that do not exist: penetration that got through."""
        if config.warm_at_s > 0:
            timer = env.timeout(config.warm_at_s)
            timer.callbacks.append(lambda _: self._warm(config.warm_items, env.now))
        else:
            self._warm(config.warm_items, 0.0)
        level = self.last
        if (
            len(self.levels) == 1
            and len(level.stores) == 1
            and not (level.capacity or level.hot_only or self.logical_expiry)
            and self.xfetch_beta is None
            and self.bloom_fpp is None
            and not keys.missing_share
        ):
            # The common plain case, on every page view: one store, nothing to decide.
            self.lookup = self._lookup_plain  # type: ignore[method-assign]

    # ----------------------------------------------------------------- lookup

    def lookup(self, key: int, now: float) -> tuple[int | None, float]:
        """Look ``key`` up at ``now``.

        Returns:
            (server, latency_s): ``server`` is None when a level (or the Bloom filter)
            answered; otherwise the caller must rebuild the entry from the database with
            :meth:`rebuild`, passing ``server``, the application server the request
            landed on, whose local copies the rebuild fills. ``latency_s`` is the time
            spent at the levels tried.
        """
        if key >= self.existing:
            self.missing_lookups += 1
            if self.bloom_fpp is not None and not bloom_passes(
                key, self.bloom_fpp, self._bloom_salt
            ):
                self.blocked += 1
                return None, 0.0  # "no such item", answered by the filter
        server = int(self._server_u() * self.servers) if self.servers > 1 else 0
        latency = 0.0
        levels = self.levels
        last = self.last
        own_totals = self._own_totals
        for level in levels:
            if not level.keeps(key):
                continue
            store = level.store_for(key, server)
            if store is None:  # the node is down: fall through
                level.misses.add(now)
                continue
            latency += level.latency()
            expires = store.get(key)
            if expires is None:
                level.misses.add(now)
                continue
            if expires > now:
                if level.capacity:
                    store.move_to_end(key)  # type: ignore[attr-defined]
                if (
                    level is last
                    and self.xfetch_beta is not None
                    and xfetch_due(
                        now, expires, self._delta(key), self.xfetch_beta, 1.0 - self._xfetch_u()
                    )
                ):
                    self.early_recomputes += 1
                    level.misses.add(now)
                    break  # this reader recomputes, ahead of expiry
                level.hits.add(now)
                if level is not levels[0]:  # fill the levels above
                    self._write(levels[: level.index], key, server, now)
                if own_totals:
                    self.hits.add(now)
                return None, latency
            if level is last and self.logical_expiry:
                # Past its logical expiry: serve the stale value, refresh in the background.
                self.stale_hits += 1
                level.hits.add(now)
                if level.capacity:
                    store.move_to_end(key)  # type: ignore[attr-defined]
                if own_totals:
                    self.hits.add(now)
                if key not in self._refreshing:
                    self._refreshing.add(key)
                    self.env.process(self._refresh(key, server))
                return None, latency
            level.misses.add(now)
        if own_totals:
            self.misses.add(now)
        return server, latency

    def _lookup_plain(self, key: int, now: float) -> tuple[int | None, float]:
        """:meth:`lookup` for one level of one node with no options."""
        level = self.last
        store = level.stores[0]
        if store is None:  # lost to a fault: fall through to the database
            level.misses.add(now)
            return 0, 0.0
        expires = store.get(key)
        if expires is not None and expires > now:
            level.hits.add(now)
            return None, level.latency()
        level.misses.add(now)
        return 0, level.latency()

    def _delta(self, key: int) -> float:
        return self.delta.get(key, self.default_delta_s)

    # ----------------------------------------------------------------- rebuild

    def rebuild(
        self, key: int, server: int, deadline: float
    ) -> Generator[Any, Any, Outcome | None]:
        """Read ``key`` from the database and write it into every level.

        With the mutex, a request that finds a rebuild of ``key`` in progress waits for
        it instead (coalescing). If that rebuild ends in an error the waiter gets the
        error; if its user gave up first, the waiter takes over the rebuild.

        Returns:
            None on success; the database's failure (``ERROR``, ``ABANDONED``) otherwise.
        """
        if self.mutex:
            return self._rebuild_once(key, server, deadline)
        return self._read_and_write(key, server, deadline)

    def _rebuild_once(
        self, key: int, server: int, deadline: float
    ) -> Generator[Any, Any, Outcome | None]:
        """The mutex: one rebuild of ``key`` at a time; the others wait for its result."""
        env = self.env
        inflight = self._inflight
        if key in inflight:
            self.coalesced += 1  # once per request, however many rebuilds it waits for
        while key in inflight:
            pending = inflight[key]
            got = yield pending | env.timeout(max(deadline - env.now, 0.0))
            if pending not in got:
                return _ABANDONED
            if pending.value is not _ABANDONED:
                return pending.value  # its result is ours: the entry, or its error
        inflight[key] = event = env.event()
        failed = yield from self._read_and_write(key, server, deadline)
        del inflight[key]
        event.succeed(failed)
        return failed

    def _read_and_write(
        self, key: int, server: int, deadline: float
    ) -> Generator[Any, Any, Outcome | None]:
        env = self.env
        started = env.now
        rebuilding = self._rebuilding
        running = rebuilding[key] = rebuilding.get(key, 0) + 1  # incl. background refreshes
        if running > self.max_concurrent_rebuilds:
            self.max_concurrent_rebuilds = running
            self.max_rebuilds_key = key
            self.max_rebuilds_at_s = started
            if running == self.stampede_size:
                self.stampede_at_s = started
        self.rebuilds.add(started)
        if key >= self.existing:
            self.missing_rebuilds += 1
        failed = yield from self.database.read(key, deadline)
        left = rebuilding[key] = rebuilding[key] - 1
        if not left:
            del rebuilding[key]
        if failed is None:
            now = env.now
            self.delta[key] = now - started
            self.put(key, server, now)
        return failed

    def _refresh(self, key: int, server: int) -> Generator[Any, Any, None]:
        """Logical expiry's background refresh: nobody waits for it."""
        yield from self._read_and_write(key, server, _NEVER)
        self._refreshing.discard(key)

    def put(self, key: int, server: int, now: float) -> None:
        """Write a freshly rebuilt entry into every level that takes it."""
        if key < self.existing:
            self._write(self.levels, key, server, now)
        elif self.empty_ttl_s is not None:  # a "not found" answer, cached if asked
            self._write(self.levels, key, server, now, self.empty_ttl_s)

    def _write(
        self,
        levels: list[CacheLevel],
        key: int,
        server: int,
        now: float,
        ttl_s: float | None = None,
    ) -> None:
        """Write ``key`` into these levels' stores for ``server``, for their TTL by default."""
        for level in levels:
            store = level.store_for(key, server) if level.keeps(key) else None
            if store is not None:
                level.write(store, key, now + (level.ttl() if ttl_s is None else ttl_s))

    def _warm(self, count: int, now: float) -> None:
        """The pre-sale warm-up job: hot items and the ``count`` most popular, at ``now``."""
        keys = [*range(self.keys.hot_start, self.existing), *range(min(count, self.keys.items))]
        for level in self.levels:
            for key in keys:
                if level.keeps(key):
                    level.write_all(key, now + level.ttl())

    # ----------------------------------------------------------------- faults

    def level(self, name: str) -> CacheLevel:
        """The level called ``name``."""
        return next(level for level in self.levels if level.name == name)

    # ----------------------------------------------------------------- figures

    @property
    def hit_count(self) -> int:
        """Lookups answered by some level."""
        return int(sum(self.hits.values))

    @property
    def miss_count(self) -> int:
        """Lookups that missed every level (rebuilds and early recomputes)."""
        return int(sum(self.misses.values))

    def hit_ratio_by_level(self) -> dict[str, float | None]:
        """Each level's hits over the lookups that reached it."""
        out: dict[str, float | None] = {}
        for level in self.levels:
            hits, misses = sum(level.hits.values), sum(level.misses.values)
            out[level.name] = hits / (hits + misses) if hits + misses else None
        return out


class NoCache:
    """No cache: every page read goes to the database; nothing is counted as a miss."""

    levels: list[CacheLevel] = []
    max_concurrent_rebuilds = 0
    max_rebuilds_key = None
    max_rebuilds_at_s = None
    stampede_at_s = None
    stale_hits = early_recomputes = coalesced = blocked = 0
    missing_lookups = missing_rebuilds = 0

    def __init__(self, database: Any, interval_s: float) -> None:
        self.database = database
        self.hits = IntervalCounter(interval_s)
        self.misses = IntervalCounter(interval_s)
        self.rebuilds = IntervalCounter(interval_s)

    def lookup(self, key: int, now: float) -> tuple[int | None, float]:
        """Never answered: the page reads the database."""
        return 0, 0.0

    def rebuild(
        self, key: int, server: int, deadline: float
    ) -> Generator[Any, Any, Outcome | None]:
        """The database read itself."""
        return self.database.read(key, deadline)

    hit_count = 0
    miss_count = 0

    def hit_ratio_by_level(self) -> dict[str, float | None]:
        """No levels."""
        return {}
