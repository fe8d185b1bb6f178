"""Metrics that aggregate as they arrive, so memory stays flat for millions of sessions.

Three kinds, as in salabim: a *count* is a plain integer; a :class:`Tally` summarises
per-observation values (latencies) with a mean and a streaming quantile sketch; a
:class:`Level` integrates a quantity over time (connections in use), like a water meter
that counts litres rather than the number of times the tap was opened. Per-interval
figures for the time series come from :class:`IntervalCounter`,
:class:`IntervalQuantiles` and the optional interval areas of a :class:`Level`.

Every ``add`` is a handful of arithmetic operations: these objects sit on the
simulation's hot path.
"""

from __future__ import annotations

import math
from math import ceil, log

import numpy as np

__all__ = [
    "IntervalCounter",
    "IntervalQuantiles",
    "Level",
    "Tally",
    "ratio",
    "sorted_quantile",
    "spread",
]

# Relative accuracy of the quantile sketch: a reported quantile is within 0.5% of a
# value that lies at that rank (DDSketch, Masson et al., VLDB 2019).
_ALPHA = 0.005
_GAMMA = (1 + _ALPHA) / (1 - _ALPHA)
_INV_LOG_GAMMA = 1 / math.log(_GAMMA)
_TINY = 1e-9  # values at or below this (e.g. a zero wait) share one bucket, reported as 0


def ratio(numerator: float, denominator: float) -> float | None:
    """Numerator / denominator, or None when the denominator is 0 (nothing to divide)."""
    return numerator / denominator if denominator else None


class Tally:
    """Per-observation statistics: count, mean, standard deviation, min, max, quantiles.

    Zeros (a request served at once waits 0 s) are common and are counted apart, which
    keeps :meth:`add_zero` to one increment on the hot path.
    """

    __slots__ = ("zeros", "_n", "_mean", "_m2", "_minimum", "maximum", "_buckets")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every observation (used at the end of a warm-up period)."""
        self.zeros = 0
        self._n = 0  # positive observations; Welford's mean and squared deviations of them
        self._mean = 0.0
        self._m2 = 0.0
        self._minimum = math.inf
        self.maximum = -math.inf
        self._buckets: dict[int, int] = {}

    def add_zero(self) -> None:
        """Record an observation of 0."""
        self.zeros += 1

    def add(self, x: float) -> None:
        """Record one observation (non-negative)."""
        if x <= _TINY:
            self.zeros += 1
            return
        n = self._n = self._n + 1
        mean = self._mean
        delta = x - mean
        self._mean = mean = mean + delta / n
        self._m2 += delta * (x - mean)
        if x < self._minimum:
            self._minimum = x
        if x > self.maximum:
            self.maximum = x
        key = ceil(log(x) * _INV_LOG_GAMMA)
        buckets = self._buckets
        buckets[key] = buckets.get(key, 0) + 1

    def add_many(self, values: list[float]) -> None:
        """Record observations in order: exactly as many :meth:`add` calls, at less cost."""
        zeros, n, mean, m2 = self.zeros, self._n, self._mean, self._m2
        minimum, maximum = self._minimum, self.maximum
        buckets = self._buckets
        get = buckets.get
        for x in values:
            if x <= _TINY:
                zeros += 1
                continue
            n += 1
            delta = x - mean
            mean = mean + delta / n
            m2 += delta * (x - mean)
            if x < minimum:
                minimum = x
            if x > maximum:
                maximum = x
            key = ceil(log(x) * _INV_LOG_GAMMA)
            buckets[key] = get(key, 0) + 1
        self.zeros, self._n, self._mean, self._m2 = zeros, n, mean, m2
        self._minimum, self.maximum = minimum, maximum

    def merge(self, other: Tally) -> None:
        """Add another tally's observations to this one (Chan et al.'s combination)."""
        self.zeros += other.zeros
        n_a, n_b = self._n, other._n
        if n_b:
            n = n_a + n_b
            delta = other._mean - self._mean
            self._mean += delta * n_b / n
            self._m2 += other._m2 + delta * delta * n_a * n_b / n
            self._n = n
            self._minimum = min(self._minimum, other._minimum)
            self.maximum = max(self.maximum, other.maximum)
            buckets = self._buckets
            for key, count in other._buckets.items():
                buckets[key] = buckets.get(key, 0) + count

    def summary(self, *qs: float) -> dict[str, float]:
        """The quantiles ``qs`` as ``p50``-style keys, with the mean and the count."""
        out = {f"p{round(q * 100)}": self.quantile(q) for q in qs}
        out["mean"] = self.mean
        out["count"] = self.count
        return out

    @property
    def count(self) -> int:
        """Number of observations."""
        return self._n + self.zeros

    @property
    def total(self) -> float:
        """Sum of the observations."""
        return self._mean * self._n

    @property
    def minimum(self) -> float:
        """Smallest observation (inf when there are none)."""
        return 0.0 if self.zeros else self._minimum

    @property
    def mean(self) -> float:
        """Mean of the observations (nan when there are none)."""
        count = self.count
        return self._mean * self._n / count if count else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (nan with fewer than two observations)."""
        count = self.count
        if count < 2:
            return math.nan
        if not self.zeros:
            return math.sqrt(self._m2 / (count - 1))
        # Chan et al.'s parallel combination of the positive group with the zeros.
        m2 = self._m2 + self._mean**2 * self._n * self.zeros / count
        return math.sqrt(m2 / (count - 1))

    def quantile(self, q: float) -> float:
        """The q-quantile (0 <= q <= 1), within 0.5% relative error; nan when empty.

        It is the value at rank floor(q * (count - 1)) of the sorted observations, to
        within the sketch's accuracy; the maximum is exact.
        """
        count = self.count
        if not count:
            return math.nan
        rank = q * (count - 1)
        if rank >= count - 1:
            return max(self.maximum, 0.0)
        seen = self.zeros
        if rank < seen:
            return 0.0
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if rank < seen:
                value = 2 * _GAMMA**key / (_GAMMA + 1)
                return min(max(value, self._minimum), self.maximum)
        return self.maximum


def spread(
    intervals: list[float], width: float, start: float, end: float, amount_per_s: float
) -> None:
    """Add ``amount_per_s * time`` over [start, end) to per-interval totals of ``width``."""
    first, last = int(start / width), int(end / width)
    if last >= len(intervals):
        intervals.extend([0.0] * (last + 1 - len(intervals)))
    if first == last:
        intervals[first] += amount_per_s * (end - start)
        return
    intervals[first] += amount_per_s * ((first + 1) * width - start)
    for i in range(first + 1, last):
        intervals[i] += amount_per_s * width
    intervals[last] += amount_per_s * (end - last * width)


class Level:
    """A time-weighted quantity, e.g. connections in use or requests in a station.

    Args:
        interval_s: when given, the area under the level is also split by interval of
            this width, for the time series (utilisation per second).
    """

    __slots__ = ("level", "area", "last", "since", "peak", "_inv", "_width", "intervals")

    def __init__(self, interval_s: float | None = None) -> None:
        self.level = 0.0
        self._inv = 1 / interval_s if interval_s else 0.0
        self._width = interval_s or 0.0
        self.intervals: list[float] = []
        self.reset(0.0)

    def reset(self, now: float) -> None:
        """Restart the time average at ``now`` (the level itself is kept)."""
        self.area = 0.0
        self.last = now
        self.since = now
        self.peak = self.level

    def add(self, now: float, delta: float) -> None:
        """Change the level by ``delta`` at time ``now``."""
        level = self.level
        if level:
            span = now - self.last
            self.area += level * span
            if self._inv:
                spread(self.intervals, self._width, self.last, now, level)
        self.last = now
        level += delta
        self.level = level
        if level > self.peak:
            self.peak = level

    def mean(self, now: float) -> float:
        """Time-average level from the last reset to ``now``."""
        self.add(now, 0.0)
        span = now - self.since
        return self.area / span if span > 0 else math.nan


class IntervalCounter:
    """Counts per time interval (arrivals per second, queries per second).

    An observation in the same interval as the previous one (the common case) is one
    comparison and one addition: the interval's bounds are kept, exact to the float,
    so the test agrees with ``int(now / interval_s)``.
    """

    __slots__ = ("_inv", "values", "_index", "_start", "_end")

    def __init__(self, interval_s: float) -> None:
        self._inv = 1 / interval_s
        self.values: list[float] = []
        self._index = 0
        self._start = self._end = 0.0  # the bounds of interval _index: empty until an add

    def add(self, now: float, amount: float = 1) -> None:
        """Add ``amount`` to the interval that contains ``now``."""
        if self._start <= now < self._end:
            self.values[self._index] += amount
            return
        inv = self._inv
        i = int(now * inv)
        values = self.values
        if i >= len(values):
            values.extend([0] * (i + 1 - len(values)))
        values[i] += amount
        self._index = i
        self._start = _first_time_of(i, inv)
        self._end = _first_time_of(i + 1, inv)

    def padded(self, length: int) -> np.ndarray:
        """The counts as an array of ``length`` intervals (zeros where nothing happened)."""
        out = np.zeros(length)
        n = min(length, len(self.values))
        out[:n] = self.values[:n]
        return out


class IntervalQuantiles:
    """Quantiles of the observations in each interval (checkout latency per second).

    Observations must arrive in time order, which a simulation guarantees. Besides each
    interval's own quantiles (few observations at low traffic: a p99 of three checkouts
    is their maximum), :meth:`window_table` gives each quantile over the shortest
    trailing window that holds enough observations for it (:func:`enough`), up to
    ``window_s``; it keeps one float per observation until the table is made.
    Quantiles are numpy's default (linear) ones, computed by :func:`sorted_quantile`
    on the few values of an interval, where a numpy call would cost more than the sort.
    """

    __slots__ = ("_inv", "_index", "_values", "_kept", "quantiles", "rows")

    def __init__(self, interval_s: float, quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)):
        self._inv = 1 / interval_s
        self._index = -1
        self._values: list[float] = []
        self._kept: dict[int, np.ndarray] = {}
        """Each interval's observations, sorted (an array: 8 bytes a value)."""
        self.quantiles = quantiles
        self.rows: dict[int, list[float]] = {}

    def add(self, now: float, x: float) -> None:
        """Record ``x`` observed at ``now``."""
        i = int(now * self._inv)
        if i != self._index:
            self._flush()
            self._index = i
        self._values.append(x)

    def _flush(self) -> None:
        values = self._values
        if values:
            values.sort()
            self.rows[self._index] = [sorted_quantile(values, q) for q in self.quantiles]
            self._kept[self._index] = np.array(values)
            self._values = []

    def table(self, length: int) -> np.ndarray:
        """A ``length x len(quantiles)`` array; nan where an interval saw nothing."""
        self._flush()
        out = np.full((length, len(self.quantiles)), np.nan)
        for i, row in self.rows.items():
            if i < length:
                out[i] = row
        return out

    def window_table(self, length: int, window_rows: int) -> np.ndarray:
        """Each quantile over the shortest trailing window holding enough observations.

        Row i's quantile q is taken over intervals j..i, with j the latest start that
        gives at least :func:`enough` (q) observations; nan when ``window_rows``
        intervals hold fewer (the figure would be noise, not a quantile).
        """
        self._flush()
        out = np.full((length, len(self.quantiles)), np.nan)
        counts = np.zeros(length, dtype=np.int64)
        for i, values in self._kept.items():
            if i < length:
                counts[i] = len(values)
        ends = np.cumsum(counts)  # observations in intervals 0..i
        flat = np.concatenate(
            [self._kept[i] for i in sorted(self._kept) if i < length] or [np.empty(0)]
        )
        needs = [enough(q) for q in self.quantiles]
        for i in range(length):
            first = max(0, i - window_rows + 1)
            before = ends[first - 1] if first else 0
            if ends[i] == before:
                continue
            for k, (q, need) in enumerate(zip(self.quantiles, needs, strict=True)):
                if ends[i] - before < need:
                    continue
                # the latest start j with ends[i] - ends[j - 1] >= need
                start = int(np.searchsorted(ends, ends[i] - need, side="right"))
                low = ends[start - 1] if start else 0
                out[i, k] = sorted_quantile(np.sort(flat[low : ends[i]]).tolist(), q)
        return out


def sorted_quantile(values: list[float], q: float) -> float:
    """The q-quantile of sorted ``values``, exactly as ``numpy.quantile`` (linear) gives it.

    The same floating-point steps as numpy's: the virtual index ``(n - 1) q``, its floor
    and the weight, then the interpolation from the nearer end.
    """
    n = len(values)
    index = (n - 1) * q
    if index >= n - 1:
        return values[-1]
    if index < 0:
        return values[0]
    below = math.floor(index)
    a, b = values[below], values[below + 1]
    t = index - below
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _first_time_of(index: int, inv: float) -> float:
    """The smallest float ``t`` with ``int(t * inv) >= index``."""
    t = index / inv
    while t > 0 and int(math.nextafter(t, -math.inf) * inv) >= index:
        t = math.nextafter(t, -math.inf)
    while int(t * inv) < index:
        t = math.nextafter(t, math.inf)
    return t


def enough(q: float) -> int:
    """Observations a q-quantile needs to be more than the sample's extreme: 2 / (1 - q).

    With n observations the sample q-quantile sits about n(1 - q) from the top; twice
    1 / (1 - q) keeps two observations above it (4 for the median, 40 for p95, 200 for
    p99).
    """
    return max(2, math.ceil(2 / (1 - q) - 1e-9))
