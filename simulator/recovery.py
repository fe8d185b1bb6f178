"""How long the shop takes to recover from a fault, judged from what users saw.

Two figures judge the shop, each over windows long enough to be measured: the
checkout p99, over windows holding about ``MIN_CHECKOUTS`` checkouts (fewer make the
p99 one of the few slowest values, pure noise), and the failure rate -- the share of
the sessions ending in a window that the shop failed (abandoned slow, rejected,
shed, error) -- over windows holding about ``MIN_SESSIONS`` sessions. Windows are
whole multiples of a small window -- ``WINDOW_S`` seconds, or the smallest multiple of
the time-series interval that is at least that long -- sized from the reference period: the
``REFERENCE_S`` seconds before the fault (longer if that holds fewer than two
windows).

A window is out of the band when its checkout p99 is above ``P99_FACTOR`` times the
reference's (the median of its windows' p99s), or it has no checkout at all, or its
failure rate is more than ``FAILURE_SLACK`` above the reference's. A single window out
of the band can be noise, so the shop counts as out of it only over two windows in a
row.

The clock starts at the fault's end, or at its start for a failover (a primary
failure, a datacenter loss), whose recovery is the failover itself.
``recovery_time_s`` is the end of the last such pair of windows after that, minus the
start: 0 when the shop never left the band, None when it was still out of it when
arrivals stopped (it never recovered), or the fault never ends, or it came after
arrivals stopped (a run cut short with ``--set duration_s=...``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from simulator.metrics import Tally
from simulator.outcomes import Outcome
from simulator.scenario.protections import (
    CacheNodeDown,
    DatabasePrimaryFailure,
    DatacenterLoss,
    Fault,
)

__all__ = [
    "FAILURE_SLACK",
    "MIN_CHECKOUTS",
    "MIN_SESSIONS",
    "P99_FACTOR",
    "REFERENCE_S",
    "WINDOW_S",
    "fault_label",
    "recovery",
    "small_window_s",
]

REFERENCE_S = 120.0
WINDOW_S = 10.0
MIN_CHECKOUTS = 500
MIN_SESSIONS = 1000
P99_FACTOR = 1.5
FAILURE_SLACK = 0.02

_FAILED = [Outcome.ABANDONED, Outcome.REJECTED, Outcome.RATE_LIMITED, Outcome.ERROR]


def small_window_s(interval_s: float) -> float:
    """The smallest whole number of time-series intervals lasting at least ``WINDOW_S``."""
    return math.ceil(WINDOW_S / interval_s - 1e-9) * interval_s


def fault_label(fault: Fault) -> str:
    """A short unique-enough name, e.g. ``component_down:payment.alipay@300s``."""
    if isinstance(fault, CacheNodeDown):
        target = fault.level if fault.node is None else f"{fault.level}[{fault.node}]"
    elif isinstance(fault, DatabasePrimaryFailure):
        target = f"shard{fault.shard}"
    elif isinstance(fault, DatacenterLoss):
        target = fault.site
    else:
        target = fault.component
    return f"{fault.kind}:{target}@{fault.at_s:g}s"


def _clock_start(fault: Fault) -> float | None:
    if isinstance(fault, DatabasePrimaryFailure | DatacenterLoss):
        return fault.at_s
    return None if fault.duration_s is None else fault.at_s + fault.duration_s


def recovery(
    timeseries: pd.DataFrame,
    checkouts: list[Tally],
    fault: Fault,
    arrivals_end_s: float,
    small_s: float = WINDOW_S,
) -> float | None:
    """Seconds from the fault's end (its start, for a failover) back into the band.

    Args:
        timeseries: the run's time series (outcome counts per interval).
        checkouts: checkout latencies per small window, in ms.
        fault: the fault.
        arrivals_end_s: when arrivals stopped (the scenario's duration).
        small_s: the small window, :func:`small_window_s` of the time-series interval.
    """
    start = _clock_start(fault)
    if start is None or fault.at_s >= arrivals_end_s:
        return None
    n = int(arrivals_end_s // small_s)  # whole small windows before arrivals stop
    # Each interval lies in one small window: small_s is a multiple of the interval.
    small = np.floor(timeseries["t_s"].to_numpy() / small_s + 1e-9).astype(int)

    def per_window(column: list[str]) -> np.ndarray:
        counts = timeseries[column].to_numpy().sum(axis=1)
        return np.bincount(small, counts, minlength=n)[:n]

    ended = per_window([f"outcome_{o.label}" for o in Outcome])
    failed = per_window([f"outcome_{o.label}" for o in _FAILED])
    tallies = checkouts[:n] + [Tally() for _ in range(n - len(checkouts[:n]))]
    counts = np.array([t.count for t in tallies], dtype=float)

    # Failure rate over windows of about MIN_SESSIONS sessions.
    k = _widen(ended, fault.at_s, MIN_SESSIONS, small_s)
    ended_k, failed_k = _sum_windows(ended, k), _sum_windows(failed, k)
    reference = _reference(fault.at_s, k * small_s)
    limit = _ratio(failed_k[reference].sum(), ended_k[reference].sum()) + FAILURE_SLACK
    rates = np.divide(failed_k, ended_k, out=np.zeros(len(ended_k)), where=ended_k > 0)
    bad = [_last_sustained(rates > limit, start, k * small_s)]

    # Checkout p99 over windows of about MIN_CHECKOUTS checkouts.
    k = _widen(counts, fault.at_s, MIN_CHECKOUTS, small_s)
    p99 = np.array([_merged(tallies[i : i + k]).quantile(0.99) for i in range(0, n - k + 1, k)])
    p99_limit = P99_FACTOR * _median(p99[_reference(fault.at_s, k * small_s)])
    if not math.isnan(p99_limit):
        slow = np.isnan(p99) | (p99 > p99_limit)  # no checkout at all is out of the band too
        bad.append(_last_sustained(slow, start, k * small_s))

    found = [b for b in bad if b is not None]
    if not found:
        return 0.0
    if any(at_end for _, at_end in found):
        return None
    return max(0.0, max(end for end, _ in found) - start)


def _widen(counts: np.ndarray, fault_at_s: float, needed: int, small_s: float) -> int:
    """Small windows per window, so that the reference period holds ``needed`` per window."""
    first = max(0, int((fault_at_s - REFERENCE_S) // small_s))
    last = max(first + 1, int(fault_at_s // small_s))
    mean = counts[first:last].mean() if last <= len(counts) else 0.0
    k = max(1, math.ceil(needed / mean)) if mean > 0 else 1
    return min(k, max(1, int(fault_at_s // small_s) // 2))


def _reference(fault_at_s: float, width_s: float) -> slice:
    """The windows of ``width_s`` before the fault: ``REFERENCE_S`` of them, at least two."""
    last = max(1, int(fault_at_s // width_s))
    first = max(0, min(last - 2, int((fault_at_s - REFERENCE_S) // width_s)))
    return slice(first, last)


def _sum_windows(values: np.ndarray, k: int) -> np.ndarray:
    whole = len(values) // k * k
    return values[:whole].reshape(-1, k).sum(axis=1)


def _merged(tallies: list[Tally]) -> Tally:
    merged = Tally()
    for tally in tallies:
        merged.merge(tally)
    return merged


def _last_sustained(out: np.ndarray, start_s: float, width: float) -> tuple[float, bool] | None:
    """The last two windows in a row out of the band, from ``start_s`` on.

    Returns:
        None when there are none; else the end of the pair, in seconds, and whether
        it is the last window (the shop was still out of the band).
    """
    out = out.copy()
    out[: int(start_s // width)] = False
    pairs = np.flatnonzero(out[:-1] & out[1:])
    if not len(pairs):
        return None
    last = int(pairs[-1]) + 1
    return (last + 1) * width, last == len(out) - 1


def _median(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.median(values)) if len(values) else math.nan


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0
