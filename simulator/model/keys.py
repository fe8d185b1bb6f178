"""Cache keys: which items exist, which are the sale's hot items, and who reads which.

Keys are integers laid out in three consecutive ranges:

- ``0 .. items-1``: the catalogue's items by popularity rank (0 is the most viewed);
- ``items .. items+hot-1``: the named hot items, in the order the scenario lists them;
- ``existing .. existing+missing_keys-1``: keys that do not exist (a stale link, a
  scraper walking ids, an attack); a read for one finds nothing in the database.

A page view picks a hot item with that item's share, a missing key with
``missing_key_share`` (uniformly among ``missing_keys``), and otherwise a catalogue
item from the Zipf law.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.scenario.schema import Catalogue

__all__ = ["KeySpace", "bloom_passes", "bucket", "zipf_cdf"]

_GOLDEN = 0x9E3779B1  # Knuth's multiplicative hash constant, 2^32 / golden ratio


def zipf_cdf(items: int, exponent: float) -> np.ndarray:
    """Cumulative popularity of items ranked 1..items under a Zipf law."""
    weights = np.arange(1, items + 1, dtype=float) ** -exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _hash(key: int, salt: int) -> int:
    """Fibonacci hashing: a 32-bit hash whose high bits spread consecutive keys evenly."""
    return ((key ^ salt) * _GOLDEN) & 0xFFFFFFFF


def bucket(key: int, buckets: int, salt: int = 0) -> int:
    """Which of ``buckets`` (shards, cache nodes) a key belongs to, from the hash's high bits."""
    return (_hash(key, salt) * buckets) >> 32


def bloom_passes(key: int, false_positive_rate: float, salt: int) -> bool:
    """Whether a missing ``key`` gets through a Bloom filter with that false-positive rate.

    A real filter's false positives are a fixed property of each key (its bits happen
    to be set), not a coin tossed per request: the same key always passes or always
    fails, and about ``false_positive_rate`` of all missing keys pass.
    """
    return _hash(key, salt) < false_positive_rate * (1 << 32)


class KeySpace:
    """The key layout of a catalogue and a vectorised sampler of page views.

    Args:
        catalogue: the scenario's ``catalogue`` section.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.items = catalogue.items
        self.hot_items = catalogue.hot_items
        self.hot_names = [h.name for h in catalogue.hot_items]
        self.hot_start = catalogue.items
        self.existing = catalogue.items + len(catalogue.hot_items)
        self.missing_keys = catalogue.missing_keys
        self._hot_cdf = np.cumsum([h.share for h in catalogue.hot_items])
        self._hot_share = float(self._hot_cdf[-1]) if len(self._hot_cdf) else 0.0
        self.missing_share = catalogue.missing_key_share
        self._zipf = zipf_cdf(catalogue.items, catalogue.zipf_exponent)

    def is_hot(self, key: int) -> bool:
        """Whether ``key`` is one of the named hot items."""
        return self.hot_start <= key < self.existing

    def exists(self, key: int) -> bool:
        """Whether ``key`` is an item that exists."""
        return key < self.existing

    def label(self, key: int) -> str:
        """A key's name in outputs: a hot item's name, ``item 12`` or ``missing 7``."""
        if key < self.items:
            return f"item {key}"
        if key < self.existing:
            return self.hot_names[key - self.hot_start]
        return f"missing {key - self.existing}"

    def sampler(self, rng: np.random.Generator) -> Callable[[int], np.ndarray]:
        """A function drawing ``n`` page-view keys at once from ``rng``.

        With no hot items and no missing keys it draws exactly what the Zipf law alone
        would, from the same numbers.
        """
        zipf, last = self._zipf, self.items - 1
        hot_share, missing_share = self._hot_share, self.missing_share
        if not hot_share and not missing_share:
            return lambda n: np.minimum(np.searchsorted(zipf, rng.random(n), side="right"), last)
        hot_cdf, hot_start = self._hot_cdf, self.hot_start
        existing, missing_keys = self.existing, self.missing_keys
        rest = 1.0 - hot_share - missing_share

        def draw(n: int) -> np.ndarray:
            u = rng.random(n)
            keys = np.zeros(n, dtype=np.int64)
            hot = u < hot_share
            missing = ~hot & (u < hot_share + missing_share)
            plain = ~hot & ~missing
            # Each branch reuses its own part of u, rescaled to [0, 1): one draw per view.
            keys[hot] = hot_start + np.minimum(
                np.searchsorted(hot_cdf, u[hot], side="right"), len(hot_cdf) - 1
            )
            scaled = (u[missing] - hot_share) / missing_share if missing_share else u[missing]
            keys[missing] = existing + np.minimum(
                (scaled * missing_keys).astype(np.int64), missing_keys - 1
            )
            if rest > 0:
                scaled = (u[plain] - hot_share - missing_share) / rest
                keys[plain] = np.minimum(np.searchsorted(zipf, scaled, side="right"), last)
            return keys

        return draw
