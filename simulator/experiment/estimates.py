"""Statistics across replications: confidence intervals, paired differences, warm-up.

A sale is a *terminating* simulation: it starts empty at a known time and ends when the
last user leaves, so each replication is one independent observation of every KPI and a
KPI's confidence interval comes from the spread of its replication values:

* Student t for most KPIs (means, counts, rates, medians): exact when the replication
  values are normal and close to it otherwise, by the central limit theorem;
* the bias-corrected and accelerated (BCa) bootstrap for tail quantiles (p95, p99, max),
  whose replication values are skewed, so a symmetric t interval would mislead;
* either cut to the KPI's range (:func:`bounded_interval`): counts, durations and money
  never below 0, ratios within [0, 1].

A paired difference (B - A on the same replication streams, common random numbers) is a
KPI of its own: one difference per replication, the same intervals.

Steady-state studies (the validation scenarios) must delete the start-up transient
before averaging: give ``warmup_s`` by hand when the relaxation time is known, or let
:func:`mser5` find it from a pilot run's time series (White's MSER rule on batch means
of 5 observations).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from simulator.measure.streams import Streams
from simulator.results.registry import kpi as kpi_info

__all__ = [
    "LEVEL",
    "Estimate",
    "aggregate",
    "bootstrap_interval",
    "bounded_interval",
    "confidence_interval",
    "difference",
    "estimates",
    "flatten",
    "format_estimate",
    "interval",
    "is_kpi",
    "method",
    "mser5",
    "welch_interval",
]

LEVEL = 0.95
"""Confidence level of every interval the experiments report."""

_RESAMPLES = 4000
BOOTSTRAP_MIN_N = 20
"""Fewest replications for which tail quantiles get a bootstrap interval (see method)."""
_TAIL = re.compile(r"p9\d*|max")
_RUN_KEYS = ("seed", "replication", "provenance")  # per-replication, not KPIs


class Estimate(float):
    """A KPI's mean over replications, carrying its confidence interval.

    It behaves as the mean in arithmetic, comparisons and formatting, so code written
    for a single run's summary reads a replicated one unchanged.
    """

    ci_low: float | None
    ci_high: float | None
    n: int

    def __new__(cls, mean: float, ci_low: float | None, ci_high: float | None, n: int):
        """A mean with its interval bounds (None with fewer than 2 replications)."""
        self = super().__new__(cls, mean)
        self.ci_low, self.ci_high, self.n = ci_low, ci_high, n
        return self

    def __reduce__(self) -> tuple[type, tuple[float, float | None, float | None, int]]:
        """Pickles (and copies) with its interval."""
        return Estimate, (float(self), self.ci_low, self.ci_high, self.n)


def table_estimate(row: Mapping[Any, Any]) -> Estimate:
    """A table row's ``mean``, ``ci_low``, ``ci_high`` and ``n`` as an Estimate.

    A missing or NaN bound (a KPI with fewer than 2 values) becomes no interval.
    """
    low, high = (row[k] if _present(row[k]) else None for k in ("ci_low", "ci_high"))
    return Estimate(row["mean"], low, high, int(row["n"]))


def confidence_interval(
    values: Sequence[float] | np.ndarray, level: float = LEVEL
) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of independent replication values."""
    from scipy import stats  # here, not at the top: a worker or the CLI need not load it

    n = len(values)
    mean = float(np.mean(values))
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half


def bootstrap_interval(
    values: Sequence[float], level: float = LEVEL, rng: np.random.Generator | None = None
) -> tuple[float, float, float]:
    """Mean and BCa bootstrap confidence interval of the mean of replication values."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if np.ptp(data) == 0:
        return mean, mean, mean
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=level,
        n_resamples=_RESAMPLES,
        method="BCa",
        rng=rng if rng is not None else np.random.default_rng(0),
    )
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):  # too few distinct values for BCa
        return confidence_interval(data, level)
    return mean, float(low), float(high)


def is_tail(kpi: str) -> bool:
    """True for tail quantiles (``...p95``, ``...p99``, ``...max``), bootstrapped."""
    return bool(_TAIL.fullmatch(kpi.rsplit(".", 1)[-1]))


def method(kpi: str, n: int) -> str:
    """The interval a KPI gets from ``n`` replications: "bootstrap" or "t".

    Tail quantiles are bootstrapped from :data:`BOOTSTRAP_MIN_N` replications on; with
    fewer, BCa under-covers badly (about 85% for a nominal 95% at n = 5, 86% at n = 10
    on skewed values), worse than Student t, so they get t too.
    """
    return "bootstrap" if is_tail(kpi) and n >= BOOTSTRAP_MIN_N else "t"


def interval(kpi: str, values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """Mean and confidence interval of a KPI's replication values, by :func:`method`.

    Args:
        kpi: the KPI's dotted path.
        values: one value per replication (at least 2).
        seed: the experiment's seed; the bootstrap draws from the stream named after the
            KPI, so the interval is reproducible.
    """
    if method(kpi, len(values)) == "bootstrap":
        rng = Streams(seed).generator(f"bootstrap.{kpi}")
        return bootstrap_interval(values, LEVEL, rng)
    return confidence_interval(values, LEVEL)


def bounded_interval(
    kpi: str, values: Sequence[float], seed: int = 0
) -> tuple[float, float, float]:
    """:func:`interval`, cut to the KPI's range (see :mod:`simulator.results.registry`).

    A count, duration or amount of money is never below 0 and a ratio lies within
    [0, 1], so neither can its mean: a Student t interval of skewed values may still
    reach past the range ("110 [-195, 415] s"). The interval is intersected with the
    range; the true mean lies in the range, so the intersection covers it exactly when
    the whole interval does: the coverage is unchanged and nothing impossible is shown.
    """
    mean, low, high = interval(kpi, values, seed)
    low, high = kpi_info(kpi).clip(low, high)
    return mean, low, high


def _difference_range(kpi: str) -> tuple[float, float]:
    """The range of B - A of a KPI: +-(its width) when both ends are finite."""
    info = kpi_info(kpi)
    width = info.high - info.low
    return (-width, width) if math.isfinite(width) else (-math.inf, math.inf)


def welch_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Difference of means b - a with the unpaired (Welch) t interval."""
    from scipy import stats

    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    diff = float(np.mean(b) - np.mean(a))
    if va + vb == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf((1 + LEVEL) / 2, dof) * math.sqrt(va + vb))
    return diff, diff - half, diff + half


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _present(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _leaf(kpi: str, values: list[Any], seed: int) -> Any:
    """One summary leaf across replications."""
    if all(v is None or _is_number(v) for v in values) and any(_present(v) for v in values):
        present = [float(v) for v in values if _present(v)]
        low = high = None
        mean = float(np.mean(present))
        if len(present) >= 2:
            mean, low, high = bounded_interval(kpi, present, seed)
        return {"mean": mean, "ci_low": low, "ci_high": high, "n": len(present), "values": values}
    if all(v == values[0] for v in values):
        return values[0]
    return {"values": values}


def _keys(dicts: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for d in dicts for k in d))


def _merge(path: str, values: list[Any], seed: int) -> Any:
    if any(isinstance(v, Mapping) for v in values) and all(
        v is None or isinstance(v, Mapping) for v in values
    ):
        maps = [v or {} for v in values]
        prefix = f"{path}." if path else ""
        return {k: _merge(prefix + k, [m.get(k) for m in maps], seed) for k in _keys(maps)}
    if _same_shape_lists(values):  # e.g. the faults, one entry per fault of the scenario
        items = zip(*values, strict=True)
        return [_merge(f"{path}.{i}", list(item), seed) for i, item in enumerate(items)]
    return _leaf(path, values, seed)


def _same_shape_lists(values: list[Any]) -> bool:
    """Lists of mappings, equally long in every replication."""
    return (
        all(isinstance(v, list) for v in values)
        and len({len(v) for v in values}) == 1
        and all(isinstance(x, Mapping) for v in values for x in v)
    )


def aggregate(summaries: Sequence[Mapping[str, Any]], seed: int) -> dict[str, Any]:
    """A replicated ``summary.json``: every numeric KPI becomes mean, CI, n and values.

    Args:
        summaries: the replications' summaries, in replication order.
        seed: the experiment's seed (for the bootstrap's stream).

    Returns:
        The summary's structure with each numeric leaf replaced by ``{"mean", "ci_low",
        "ci_high", "n", "values"}``; leaves equal in every replication (names, modes)
        stay as they are, and other leaves become ``{"values": [...]}``.
    """
    first = summaries[0]
    kpis = {k: [s.get(k) for s in summaries] for k in _keys(summaries) if k not in _RUN_KEYS}
    out: dict[str, Any] = {}
    for key, values in kpis.items():
        out[key] = _merge(key, values, seed)
        if key == "scenario":
            out |= {"seed": first["seed"], "replications": len(summaries)}
    provenance = dict(first["provenance"])
    provenance.pop("replication", None)
    out["provenance"] = provenance | {"replications": [s["replication"] for s in summaries]}
    return out


def is_kpi(leaf: Mapping[str, Any]) -> bool:
    """True for a replicated summary's KPI leaf (mean, CI, n, values)."""
    return {"mean", "ci_low", "ci_high", "n", "values"} <= leaf.keys()


def format_estimate(value: Any, form: Callable[[Any], str]) -> str:
    """``form(value)``, followed by `` [low, high]`` for an :class:`Estimate` with a CI."""
    text = form(value)
    if isinstance(value, Estimate) and value.ci_low is not None:
        text += f" [{form(value.ci_low)}, {form(value.ci_high)}]"
    return text


def estimates(aggregated: Any) -> Any:
    """The aggregated summary with each KPI as an :class:`Estimate` (reads like one run)."""
    if isinstance(aggregated, Mapping):
        if is_kpi(aggregated):
            a = aggregated
            return Estimate(a["mean"], a["ci_low"], a["ci_high"], a["n"])
        return {k: estimates(v) for k, v in aggregated.items()}
    if isinstance(aggregated, list):
        return [estimates(v) for v in aggregated]
    return aggregated


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """A single run's numeric KPIs by dotted path, e.g. ``checkout_latency_ms.p99``.

    Run bookkeeping (seed, replication, provenance) is left out; None becomes NaN.
    """
    out: dict[str, float] = {}
    for key, value in summary.items():
        if not prefix and key in _RUN_KEYS:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flatten(value, f"{path}.")
        elif _is_number(value):
            out[path] = float(value)
        elif value is None:
            out[path] = math.nan
    return out


def difference(kpi: str, a: Sequence[float], b: Sequence[float], seed: int) -> dict[str, Any]:
    """B - A of one KPI over paired replications, with paired and unpaired intervals.

    Pairs where either run has no value (NaN) are dropped, from the means too. The
    paired interval is the
    KPI's interval on the per-replication differences; the unpaired (Welch) one ignores
    the pairing and shows what common random numbers saved.
    """
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    row: dict[str, Any] = {
        "kpi": kpi,
        "a_mean": _mean([x for x, _ in pairs]),
        "b_mean": _mean([y for _, y in pairs]),
        "difference": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "unpaired_ci_low": math.nan,
        "unpaired_ci_high": math.nan,
        "n": len(pairs),
        "significant": False,
    }
    if len(pairs) < 2:
        if pairs:
            row["difference"] = pairs[0][1] - pairs[0][0]
        return row
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    diff, low, high = interval(kpi, [y - x for x, y in pairs], seed)
    _, unpaired_low, unpaired_high = welch_interval(xs, ys)
    least, most = _difference_range(kpi)
    low, high = max(low, least), min(high, most)
    unpaired_low, unpaired_high = max(unpaired_low, least), min(unpaired_high, most)
    row |= {
        "difference": diff,
        "ci_low": low,
        "ci_high": high,
        "unpaired_ci_low": unpaired_low,
        "unpaired_ci_high": unpaired_high,
        "significant": bool(low > 0 or high < 0),
    }
    return row


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def mser5(series: Sequence[float]) -> int:
    """MSER-5 truncation point: how many leading observations to delete.

    The series is cut into batches of 5 observations; the rule deletes the ``d`` leading
    batches that minimise the squared standard error of the remaining batch means,
    ``sum((Y_i - mean)^2) / (k - d)^2``, searching ``d`` over the first half only (a
    minimum beyond that means the run is too short to tell). NaN observations (intervals
    with nothing to measure) are ignored within their batch.

    Returns:
        The number of observations to delete (a multiple of 5).
    """
    data = np.asarray(series, dtype=float)
    k = len(data) // 5
    if k < 2:
        return 0
    blocks = data[: k * 5].reshape(k, 5)
    finite = np.isfinite(blocks)
    counts = finite.sum(axis=1)
    sums = np.where(finite, blocks, 0.0).sum(axis=1)
    measured = counts > 0
    means = np.divide(sums, counts, out=np.zeros(k), where=measured)
    if not measured.any():
        return 0
    means[measured] -= means[measured].mean()  # centred: no cancellation on a large offset
    # suffix sums: the batches kept when the first d are deleted, for every d at once
    kept = np.cumsum(measured[::-1])[::-1]
    total = np.cumsum(means[::-1])[::-1]
    squares = np.cumsum((means**2)[::-1])[::-1]
    half = k // 2 + 1
    kept, total, squares = kept[:half], total[:half], squares[:half]
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (squares - total**2 / kept) / kept**2
    score[kept < 2] = np.inf
    return int(np.argmin(score)) * 5
