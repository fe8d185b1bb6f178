"""The cache in front of the database: entries written on a miss, living for a TTL.

A shop window: what is on display (cached) is seen at once; anything else must be
fetched from the stockroom (the database), and is then displayed for ``ttl_s``. How
often a page is found in the window is not a setting: it follows from how popular
each item is (Zipf) and how long entries live. For an item requested as a Poisson
stream of rate r, the hit ratio is r*T / (1 + r*T) for a TTL of T, which the tests
check. Concurrent misses on the same key all go to the database: nothing here stops
a stampede.
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.metrics import IntervalCounter
from simulator.scenario.distributions import make_sampler
from simulator.scenario.schema import Cache as CacheConfig
from simulator.streams import Streams

__all__ = ["Cache", "NoCache"]


class Cache:
    """One cache level with a per-key expiry time.

    Args:
        config: the scenario's ``cache`` section.
        streams: the run's streams; uses ``cache.latency``.
        interval_s: time-series interval.
    """

    def __init__(self, config: CacheConfig, streams: Streams, interval_s: float) -> None:
        self.ttl_s = config.ttl_s
        self.latency: Callable[[], float] = make_sampler(
            config.latency_ms, streams.generator("cache.latency"), scale=1e-3
        )
        self.expires_at: dict[int, float] = {}
        self.hits = IntervalCounter(interval_s)
        self.misses = IntervalCounter(interval_s)

    def get(self, key: int, now: float) -> bool:
        """Look ``key`` up at ``now``: True on a hit."""
        expires = self.expires_at.get(key)
        if expires is not None and expires > now:
            self.hits.add(now)
            return True
        self.misses.add(now)
        return False

    def put(self, key: int, now: float) -> None:
        """Write ``key`` after rebuilding it from the database."""
        self.expires_at[key] = now + self.ttl_s

    @property
    def hit_count(self) -> int:
        """Hits so far."""
        return int(sum(self.hits.values))

    @property
    def miss_count(self) -> int:
        """Misses so far."""
        return int(sum(self.misses.values))


class NoCache(Cache):
    """No cache: every read goes to the database; no hits or misses are counted."""

    def __init__(self, interval_s: float) -> None:
        self.ttl_s = 0.0
        self.latency = lambda: 0.0
        self.expires_at = {}
        self.hits = IntervalCounter(interval_s)
        self.misses = IntervalCounter(interval_s)

    def get(self, key: int, now: float) -> bool:
        """Always a miss (not counted: there is no cache to miss)."""
        return False

    def put(self, key: int, now: float) -> None:
        """Nothing to write."""
