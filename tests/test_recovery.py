"""Recovery times judged on synthetic runs whose answer is known.

Each run is one second per interval (10 s small windows). Sessions arrive at a known
rate and end in the same second; a known share of them fails; 8% of the others check
out, with lognormal latencies (sigma 0.3) around a known median. Traffic is 300
sessions/s to the fault's end and then falls 15-fold, as after a sale's peak.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from simulator.measure.metrics import Tally
from simulator.measure.outcomes import Outcome
from simulator.measure.recovery import MIN_CHECKOUTS, MIN_SESSIONS, recovery
from simulator.scenario.protections import ComponentDown, DatacenterLoss, Fault

END_S = 3000  # arrivals stop
FAULT_AT_S, FAULT_END_S = 700.0, 1000.0
PEAK, LOW = 300.0, 20.0  # sessions per second, before and after the fall
CHECKOUT_SHARE = 0.08  # of the sessions not failed
FAILED = 0.10  # the share failed outside the fault
MEDIAN_MS = 500.0
OUTAGE = ComponentDown(kind="component_down", component="payment.a", at_s=700, duration_s=300)

Curve = Callable[[np.ndarray], np.ndarray]


def _step(before: float, during: float, after: float, until_s: float = FAULT_END_S) -> Curve:
    """``before`` until the fault, ``during`` from it to ``until_s``, ``after`` then."""
    return lambda t: np.select([t < FAULT_AT_S, t < until_s], [before, during], after)


def _decaying(t: np.ndarray) -> np.ndarray:
    """300/s to the fault's end, then 15-fold less every 1,200 s, 20/s at the least."""
    return np.maximum(LOW, PEAK * (LOW / PEAK) ** (np.maximum(t - FAULT_END_S, 0) / 1200))


def _constant(value: float) -> Curve:
    return lambda t: np.full(len(t), value)


FAILING_IN_THE_FAULT = _step(FAILED, 0.6, FAILED)
SLOW_IN_THE_FAULT = _step(MEDIAN_MS, 5 * MEDIAN_MS, MEDIAN_MS)
CHECKING_OUT = _constant(CHECKOUT_SHARE)


def _run(
    rate: Curve,
    failed: Curve = FAILING_IN_THE_FAULT,
    median_ms: Curve = SLOW_IN_THE_FAULT,
    checking_out: Curve = CHECKING_OUT,
    fault: Fault = OUTAGE,
    seed: int = 1,
) -> float | None:
    rng = np.random.default_rng(seed)
    t = np.arange(END_S, dtype=float)
    arrivals = rng.poisson(rate(t))
    failures = rng.binomial(arrivals, failed(t))
    bought = rng.binomial(arrivals - failures, checking_out(t))
    outcomes = {f"outcome_{o.label}": np.zeros(END_S, dtype=int) for o in Outcome}
    outcomes |= {
        "outcome_error": failures,
        "outcome_ordered": bought,
        "outcome_browsed": arrivals - failures - bought,
    }
    timeseries = pd.DataFrame({"t_s": t, "arrivals": arrivals, **outcomes})
    tallies = [Tally() for _ in range(END_S // 10)]
    when = np.repeat(t, bought)
    latencies = rng.lognormal(np.log(np.repeat(median_ms(t), bought)), 0.3)
    for at, ms in zip(when, latencies, strict=True):
        tallies[int(at // 10)].add(float(ms))
    return recovery(timeseries, tallies, fault, END_S, 10.0)


def _width_s(needed: float, rate_per_s: float) -> float:
    """A window's length where ``needed`` sessions arrive at ``rate_per_s``: whole 10 s."""
    return 10.0 * math.ceil(needed / rate_per_s / 10)


# Arriving sessions a checkout p99 window needs: MIN_CHECKOUTS at the rate before the fault.
P99_SESSIONS = MIN_CHECKOUTS / ((1 - FAILED) * CHECKOUT_SHARE)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fall_in_traffic_after_the_fault_is_no_late_false_alarm(seed):
    """The shop is back at once, and traffic falls 15-fold at the fault's end.

    Windows sized at the peak would hold a fifteenth of their sessions afterwards (200
    instead of 3,000), and their failure rate's noise would push two in a row out of
    the band long after the fault. Sized to the traffic, a failure rate window lasts
    50 s at 20 sessions/s and a p99 window 350 s: at most the first one after the fault
    can be out, and the shop is never out over two windows in a row.
    """
    assert _run(_step(PEAK, PEAK, LOW), seed=seed) == 0.0


@pytest.mark.parametrize("slow_s", [150, 400])
def test_a_checkout_p99_that_stays_high_after_the_fault_is_seen_for_as_long(slow_s):
    """Checkouts stay 5 times slower for ``slow_s`` after the fault while traffic falls."""
    back = FAULT_END_S + slow_s
    found = _run(_decaying, median_ms=_step(MEDIAN_MS, 5 * MEDIAN_MS, MEDIAN_MS, back))
    # The last slow pair ends with the window holding the last slow second: within one
    # p99 window (at the traffic of that second) of slow_s.
    width = _width_s(P99_SESSIONS, float(_decaying(np.array([back]))[0]))
    assert found is not None and abs(found - slow_s) <= width, (found, width)


@pytest.mark.parametrize("failing_s", [150, 400])
def test_a_failure_rate_that_stays_high_after_the_fault_is_seen_for_as_long(failing_s):
    """Half the sessions keep failing for ``failing_s`` after the fault while traffic falls."""
    back = FAULT_END_S + failing_s
    found = _run(_decaying, failed=_step(FAILED, 0.6, FAILED, back))
    width = _width_s(MIN_SESSIONS, float(_decaying(np.array([back]))[0]))
    assert found is not None and abs(found - failing_s) <= width, (found, width)


def test_checkouts_that_stop_while_sessions_keep_arriving_are_out_of_the_band():
    """No checkout for 300 s after the fault, and no session fails: only the p99 sees it.

    The windows follow the sessions arriving, not the checkouts, so the silence is
    windows with no checkout at all, out of the band -- not one long window that
    gathers its checkouts after it.
    """
    found = _run(
        _decaying,
        failed=_constant(FAILED),
        median_ms=_constant(MEDIAN_MS),
        checking_out=_step(CHECKOUT_SHARE, 0.0, CHECKOUT_SHARE, FAULT_END_S + 300),
    )
    width = _width_s(P99_SESSIONS, float(_decaying(np.array([FAULT_END_S + 300]))[0]))
    assert found is not None and abs(found - 300) <= width, (found, width)


def test_a_shop_still_failing_when_arrivals_stop_never_recovered():
    """The last windows, the sessions after the last whole one included, are out."""
    assert _run(_step(PEAK, PEAK, LOW), failed=_step(FAILED, 0.6, 0.6)) is None


def test_a_failover_is_judged_from_the_fault_and_a_fault_ending_after_arrivals_is_not():
    failover = DatacenterLoss(kind="datacenter_loss", at_s=700, site="east")
    stranded = _run(_step(PEAK, PEAK, LOW), failed=FAILING_IN_THE_FAULT, fault=failover)
    # The sessions fail from 700 s to 1000 s: the failure windows last 10 s then.
    assert stranded is not None and abs(stranded - 300) <= _width_s(MIN_SESSIONS, PEAK)
    late = ComponentDown(kind="component_down", component="payment.a", at_s=2900, duration_s=200)
    assert _run(_step(PEAK, PEAK, LOW), fault=late) is None


@pytest.mark.parametrize("end_s", [2995.0, 2950.0])
def test_a_fault_ending_too_close_to_the_end_of_arrivals_cannot_be_judged(end_s):
    """Fewer than two windows fit after it: no figure, not 0 ("never left the band")."""
    at_s = end_s - 300
    fault = ComponentDown(kind="component_down", component="payment.a", at_s=at_s, duration_s=300)
    still_failing = _step(FAILED, 0.6, 0.6)  # from 700 s on
    assert _run(_step(PEAK, PEAK, LOW), failed=still_failing, fault=fault) is None


@pytest.mark.parametrize("at_s", [0.0, 5.0])
@pytest.mark.parametrize("share", [0.01, FAILED])
def test_a_fault_before_any_session_ended_has_no_reference_to_judge_by(at_s, share):
    """No session ended before it: no band, so no figure, neither 0 nor "never recovered"."""
    fault = ComponentDown(kind="component_down", component="payment.a", at_s=at_s, duration_s=60)
    assert _run(_constant(PEAK), _constant(share), _constant(MEDIAN_MS), fault=fault) is None


def test_a_fault_after_a_short_reference_is_judged_against_it():
    """A fault at 15 s: one small window of reference; back in the band at once."""
    fault = ComponentDown(kind="component_down", component="payment.a", at_s=15, duration_s=60)
    assert _run(_constant(PEAK), *STEADY, fault=fault) == 0.0


STEADY = (_constant(FAILED), _constant(MEDIAN_MS))
"""A shop that fails and answers the same all along (failure share, checkout median)."""
