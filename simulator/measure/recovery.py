"""How long the shop takes to recover from a fault, judged from what users saw.

Two figures judge the shop, each over windows long enough to be measured: the
checkout p99, over windows expected to hold about ``MIN_CHECKOUTS`` checkouts (fewer
make the p99 one of the few slowest values, pure noise), and the failure rate -- the
share of the sessions ending in a window that the shop failed (abandoned slow,
rejected, shed, error) -- over windows in which about ``MIN_SESSIONS`` sessions arrive.

A window is the fewest whole small windows -- ``WINDOW_S`` seconds, or the smallest
multiple of the time-series interval that is at least that long -- in which that many
sessions arrive: ``MIN_SESSIONS``, or, for the p99, ``MIN_CHECKOUTS`` divided by the
checkouts per arriving session before the fault. So a window lasts longer when
traffic is low and shorter at a peak, and follows the demand, not the shop: a shop
that stops answering checkouts shows it as windows with few or none, not as one long
window. The reference is grouped back from the fault's start: the windows reaching
into the ``REFERENCE_S`` seconds before it, at least two (if the time before it holds
two small windows). When fewer than twice that many sessions arrived before the
fault, every window is sized to half of what did (the earliest reference window may
then hold less). The judged windows are grouped on from the small window holding
the clock start (below); the sessions arriving after the last whole one, too few for
a window of their own, join it, so the last window ends when arrivals stop. A figure
needs two judged windows to find anything.

A window is out of the band when its checkout p99 is above ``P99_FACTOR`` times the
reference's (the median of its windows' p99s), or it has no checkout at all, or its
failure rate is more than ``FAILURE_SLACK`` above the reference's (its sessions'
failures over its sessions). A single window out of the band can be noise, so the shop
counts as out of it only over two windows in a row. A figure is not judged when its
reference holds nothing to judge by: the p99 when no checkout came before the fault,
the failure rate when no session ended before it.

The clock starts at the fault's end, or at its start for a failover (a primary
failure, a datacenter loss), whose recovery is the failover itself.
``recovery_time_s`` is the end of the last such pair of windows after that, minus the
start: 0 when the shop never left the band, None when it was still out of it when
arrivals stopped (the pair ends with the last window: it never recovered), or the
fault never ends, or it came or ended after arrivals stopped (a run cut short with
``--set duration_s=...``) or so shortly before that fewer than two failure-rate
windows fit, or neither figure had a reference (a fault before any session ended).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from simulator.measure.metrics import Tally
from simulator.measure.outcomes import Outcome
from simulator.scenario.protections import (
    CacheNodeDown,
    DatabasePrimaryFailure,
    DatacenterLoss,
    Fault,
)

if TYPE_CHECKING:
    import pandas as pd

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
        timeseries: the run's time series (arrivals and outcome counts per interval).
        checkouts: checkout latencies per small window, in ms.
        fault: the fault.
        arrivals_end_s: when arrivals stopped (the scenario's duration).
        small_s: the small window, :func:`small_window_s` of the time-series interval.
    """
    start = _clock_start(fault)
    if start is None or start >= arrivals_end_s:
        return None
    n = int(arrivals_end_s // small_s)  # whole small windows before arrivals stop
    # Each interval lies in one small window: small_s is a multiple of the interval.
    small = np.floor(timeseries["t_s"].to_numpy() / small_s + 1e-9).astype(int)

    def per_window(column: list[str]) -> np.ndarray:
        counts = timeseries[column].to_numpy().sum(axis=1)
        return np.bincount(small, counts, minlength=n)[:n].astype(float)

    arrived = _running(per_window(["arrivals"]))
    ended = _running(per_window([f"outcome_{o.label}" for o in Outcome]))
    failed = _running(per_window([f"outcome_{o.label}" for o in _FAILED]))
    tallies = checkouts[:n]
    checked_out = _running(np.array([t.count for t in tallies] + [0] * (n - len(tallies))))
    before = min(int(fault.at_s // small_s), n)  # small windows wholly before the fault
    first = int(start // small_s)  # the small window holding the clock start
    reference_from = (fault.at_s - REFERENCE_S) / small_s

    def windows(needed: float) -> tuple[np.ndarray, np.ndarray]:
        return _windows(arrived, before, first, reference_from, needed)

    bad = []

    # Failure rate over windows in which about MIN_SESSIONS sessions arrive.
    reference, judged = windows(MIN_SESSIONS)
    if len(judged) < 2:
        return None  # too little time after the clock start to see two windows
    if _total(ended, reference) > 0:
        limit = _ratio(_total(failed, reference), _total(ended, reference)) + FAILURE_SLACK
        ended_w, failed_w = _each(ended, judged), _each(failed, judged)
        rates = np.divide(failed_w, ended_w, out=np.zeros(len(judged)), where=ended_w > 0)
        bad.append(_last_sustained(rates > limit, judged, small_s))

    # Checkout p99 over windows expected to hold about MIN_CHECKOUTS checkouts.
    per_arrival = _ratio(checked_out[before], arrived[before])
    if per_arrival > 0:
        reference, judged = windows(MIN_CHECKOUTS / per_arrival)
        p99_limit = P99_FACTOR * _median(_p99s(tallies, reference))
        if not math.isnan(p99_limit):
            p99 = _p99s(tallies, judged)
            slow = np.isnan(p99) | (p99 > p99_limit)  # no checkout at all is out of the band too
            bad.append(_last_sustained(slow, judged, small_s))

    if not bad:
        return None  # nothing before the fault to judge against
    found = [b for b in bad if b is not None]
    if not found:
        return 0.0
    if any(at_end for _, at_end in found):
        return None
    return max(0.0, max(end for end, _ in found) - start)


def _windows(
    arrived: np.ndarray, before: int, first: int, reference_from: float, needed: float
) -> tuple[np.ndarray, np.ndarray]:
    """The reference windows and the judged ones, as rows of [begin, end) small windows.

    Args:
        arrived: the sessions arrived before each small window, and before arrivals stopped.
        before: the small windows wholly before the fault.
        first: the small window holding the clock start.
        reference_from: where the ``REFERENCE_S`` before the fault begin, in small windows.
        needed: the sessions arriving in a window.
    """
    if 0 < arrived[before] < 2 * needed:
        needed = arrived[before] / 2
    reference: list[tuple[int, int]] = []
    end = before
    while end > 0:  # back from the fault, each the fewest small windows holding `needed`
        begin = max(0, int(np.searchsorted(arrived, arrived[end] - needed, "right")) - 1)
        reference.append((begin, end))
        if begin == 0 or (len(reference) >= 2 and begin <= reference_from):
            break
        end = begin
    n = len(arrived) - 1
    judged: list[tuple[int, int]] = []
    begin = min(first, n)
    while begin < n:  # on from the clock start
        end = int(np.searchsorted(arrived, arrived[begin] + needed, "left"))
        if end > n:  # too few arrive before arrivals stop: they join the last window
            judged[-1:] = [(judged[-1][0] if judged else begin, n)]
            break
        judged.append((begin, end))
        begin = end
    return _rows(reference[::-1]), _rows(judged)


def _rows(windows: list[tuple[int, int]]) -> np.ndarray:
    return np.array(windows, dtype=int).reshape(-1, 2)


def _running(values: np.ndarray) -> np.ndarray:
    """The running total before each small window, and at the end: ``len(values) + 1``."""
    return np.concatenate([[0.0], np.cumsum(values, dtype=float)])


def _each(running: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Each window's total, from a running total."""
    return running[windows[:, 1]] - running[windows[:, 0]]


def _total(running: np.ndarray, windows: np.ndarray) -> float:
    return float(_each(running, windows).sum())


def _p99s(tallies: list[Tally], windows: np.ndarray) -> np.ndarray:
    """Each window's checkout p99 (nan when it has no checkout)."""
    out = np.empty(len(windows))
    for i, (begin, end) in enumerate(windows):
        merged = Tally()
        for tally in tallies[begin:end]:
            merged.merge(tally)
        out[i] = merged.quantile(0.99)
    return out


def _last_sustained(
    out: np.ndarray, windows: np.ndarray, small_s: float
) -> tuple[float, bool] | None:
    """The last two judged windows in a row out of the band.

    Returns:
        None when there are none; else the end of the pair, in seconds, and whether
        it is the last window (the shop was still out of the band).
    """
    pairs = np.flatnonzero(out[:-1] & out[1:])
    if not len(pairs):
        return None
    last = int(pairs[-1]) + 1
    return float(windows[last, 1] * small_s), last == len(out) - 1


def _median(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.median(values)) if len(values) else math.nan


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0
