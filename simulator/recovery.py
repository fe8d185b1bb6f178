"""How long the shop takes to recover from a fault, judged from the time series.

The band. Before the fault (the ``REFERENCE_S`` seconds before it starts) the shop has
a checkout p99 and an error rate (sessions ending in error, rejection or shedding, over
sessions ending). The shop is back when, over rolling ``WINDOW_S``-second windows, the
checkout p99 is at most ``P99_FACTOR`` times its pre-fault value and the error rate at
most ``ERROR_SLACK`` above its pre-fault value, and stays so until arrivals stop.

The clock starts at the fault's end, or at its start for a failover (a primary failure,
a datacenter loss), whose recovery is the failover itself. ``recovery_time_s`` is the
end of the last window after that which is out of the band, minus the start: 0 when
the shop never left the band, None when it was still out of it when arrivals stopped
(or the fault never ends).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from simulator.outcomes import Outcome
from simulator.scenario.protections import (
    CacheNodeDown,
    DatabasePrimaryFailure,
    DatacenterLoss,
    Fault,
)

__all__ = ["ERROR_SLACK", "P99_FACTOR", "REFERENCE_S", "WINDOW_S", "fault_label", "recovery"]

REFERENCE_S = 60.0
WINDOW_S = 10.0
P99_FACTOR = 1.25
ERROR_SLACK = 0.01

_FAILED = [Outcome.ERROR, Outcome.REJECTED, Outcome.RATE_LIMITED]


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


def recovery(timeseries: pd.DataFrame, fault: Fault, arrivals_end_s: float) -> float | None:
    """Seconds from the fault's end (its start, for a failover) back into the band."""
    start = _clock_start(fault)
    if start is None:
        return None
    t = timeseries["t_s"].to_numpy()
    width = float(t[1] - t[0]) if len(t) > 1 else 1.0
    ended = timeseries[[f"outcome_{o.label}" for o in Outcome]].to_numpy().sum(axis=1)
    failed = timeseries[[f"outcome_{o.label}" for o in _FAILED]].to_numpy().sum(axis=1)
    p99 = timeseries["checkout_p99_ms"].to_numpy()

    before = (t >= fault.at_s - REFERENCE_S) & (t < fault.at_s)
    p99_limit = P99_FACTOR * _median(p99[before])
    error_limit = _ratio(failed[before].sum(), ended[before].sum()) + ERROR_SLACK

    rows = max(1, round(WINDOW_S / width))
    last_bad = None
    first = int(math.floor(start / width))
    last = int(math.ceil(arrivals_end_s / width)) - rows
    for i in range(first, last + 1):
        window = slice(i, i + rows)
        slow = _median(p99[window]) > p99_limit  # nan compares False: no checkouts, no verdict
        errors = _ratio(failed[window].sum(), ended[window].sum()) > error_limit
        if slow or errors:
            last_bad = i
    if last_bad is None:
        return 0.0
    if last_bad >= last:
        return None
    return max(0.0, (last_bad + rows) * width - start)


def _median(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.median(values)) if len(values) else math.nan


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0
