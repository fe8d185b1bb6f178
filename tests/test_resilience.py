"""Resilience pieces: backoff, circuit breaker, the guard that composes them, bulkhead."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import simpy
from scipy import stats

from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams
from simulator.model.resilience import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, Guard, backoff_delay
from simulator.scenario.protections import Backoff, Policy
from simulator.scenario.protections import CircuitBreaker as BreakerConfig

# ------------------------------------------------------------------------ backoff


@pytest.mark.parametrize("u", [0.0, 0.3, 0.999])
def test_backoff_formulas(u):
    """Exponential doubling up to the cap; each jitter stays in its documented range."""
    plain = Backoff(kind="exponential", base_ms=100, cap_ms=1000, jitter="none")
    assert [backoff_delay(plain, k, 0.1, u) for k in (1, 2, 3, 4, 5)] == [
        0.1,
        0.2,
        0.4,
        0.8,
        1.0,
    ]
    full = plain.model_copy(update={"jitter": "full"})
    assert backoff_delay(full, 3, 0.1, u) == pytest.approx(u * 0.4)
    equal = plain.model_copy(update={"jitter": "equal"})
    assert 0.2 <= backoff_delay(equal, 3, 0.1, u) <= 0.4
    decorrelated = plain.model_copy(update={"jitter": "decorrelated"})
    assert 0.1 <= backoff_delay(decorrelated, 2, 0.3, u) <= 0.9
    constant = plain.model_copy(update={"kind": "none"})
    assert backoff_delay(constant, 4, 0.1, u) == 0.1


# ------------------------------------------------------------------------ breaker


def _breaker(**changes) -> CircuitBreaker:
    config = dict(
        window_calls=10,
        minimum_calls=5,
        failure_rate_threshold=0.5,
        open_wait_s=2.0,
        half_open_calls=2,
    )
    config.update(changes)
    return CircuitBreaker(BreakerConfig(**config), interval_s=1.0)


def test_breaker_opens_after_the_configured_failures_and_half_opens_after_its_wait():
    breaker = _breaker()
    for i in range(4):
        assert breaker.allow(i * 0.1)
        breaker.record(i * 0.1, failed=True, duration_s=0.01)
        assert breaker.state == CLOSED  # fewer than minimum_calls judged so far
    assert breaker.allow(0.4)
    breaker.record(0.4, failed=True, duration_s=0.01)
    assert breaker.state == OPEN  # the fifth failure: 5 of 5 >= 50%

    assert not breaker.allow(0.5) and not breaker.allow(2.39)  # open for 2 s
    assert breaker.rejected == 2
    assert breaker.allow(2.4)  # the wait is over: a first trial call
    assert breaker.state == HALF_OPEN
    assert breaker.allow(2.41)  # the second trial
    assert not breaker.allow(2.42)  # no more than half_open_calls at once
    breaker.record(2.45, failed=True, duration_s=0.01)  # a call from before: not a trial
    assert breaker.state == HALF_OPEN
    breaker.record(2.5, failed=False, duration_s=0.01, trial=True)
    assert breaker.state == HALF_OPEN
    breaker.record(2.6, failed=False, duration_s=0.01, trial=True)
    assert breaker.state == CLOSED  # both trials succeeded
    assert breaker.open_s == pytest.approx(2.0)  # open from 0.4 s to 2.4 s
    assert [state for _, state in breaker.transitions] == [OPEN, HALF_OPEN, CLOSED]


def test_a_failed_trial_opens_the_breaker_again():
    breaker = _breaker(minimum_calls=1, window_calls=1)
    breaker.allow(0.0)
    breaker.record(0.0, failed=True, duration_s=0.0)
    assert breaker.state == OPEN
    assert breaker.allow(2.0) and breaker.state == HALF_OPEN
    breaker.record(2.1, failed=True, duration_s=0.0, trial=True)
    assert breaker.state == OPEN
    assert not breaker.allow(3.0)  # a fresh 2 s wait from 2.1 s
    assert breaker.times_opened == 2


def test_a_trial_whose_user_left_is_given_back():
    """A half-open breaker whose trial was never judged still lets the next one through."""
    env = simpy.Environment()
    policy = Policy(
        circuit_breaker={
            "window_calls": 1,
            "minimum_calls": 1,
            "open_wait_s": 1,
            "half_open_calls": 1,
        }
    )
    guard = Guard(env, "dependency", policy, Streams(1), interval_s=1.0)
    env.process(guard.call(_failing_calls(env, []), deadline=0.5))  # opens the breaker
    env.run(until=2.0)

    # A trial at 2 s whose user leaves while it waits for the dependency...
    def queued_until_the_user_leaves(deadline: float):
        yield env.timeout(deadline - env.now)
        return Outcome.ABANDONED

    env.process(guard.call(queued_until_the_user_leaves, deadline=2.1))
    env.run(until=3.0)
    # ...leaves the trial slot free: a healthy call is let through and closes the breaker.
    call = env.process(guard.call(_slow_dependency(env, 0.1, []), deadline=10.0))
    env.run(until=4.0)
    assert call.value is None
    assert guard.breaker is not None and guard.breaker.state == CLOSED


def test_breaker_judges_a_sliding_window_and_slow_calls():
    breaker = _breaker(window_calls=4, minimum_calls=4, failure_rate_threshold=0.75)
    for failed in (True, False, True, False, True, False):  # never 3 failures in 4
        breaker.allow(0.0)
        breaker.record(0.0, failed=failed, duration_s=0.0)
    assert breaker.state == CLOSED
    slow = _breaker(minimum_calls=3, slow_call_ms=100, slow_call_rate_threshold=1.0)
    for _ in range(3):
        slow.allow(0.0)
        slow.record(0.0, failed=False, duration_s=0.2)  # successes, but slow ones
    assert slow.state == OPEN


def test_breaker_time_open_is_split_over_intervals():
    breaker = _breaker(minimum_calls=1, window_calls=1, open_wait_s=10.0)
    breaker.allow(0.5)
    breaker.record(0.5, failed=True, duration_s=0.0)
    breaker.close_books(3.0)  # still open at the end of the run
    assert breaker.open_s == pytest.approx(2.5)
    assert breaker.open_by_interval[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert sum(breaker.open_by_interval) == pytest.approx(2.5)


# -------------------------------------------------------------------------- guard


def _failing_calls(env: simpy.Environment, log: list[float]):
    """A dependency that fails every call at once, logging when each call arrives."""

    def make(deadline: float):
        log.append(env.now)
        return Outcome.ERROR
        yield  # a generator, like a component call

    return make


def _retry_times(jitter: str, callers: int = 300) -> list[list[float]]:
    """Arrival times of each round of attempts when ``callers`` fail together at t=0."""
    env = simpy.Environment()
    policy = Policy(
        retry={
            "max_retries": 3,
            "backoff": {"kind": "exponential", "base_ms": 100, "cap_ms": 10_000, "jitter": jitter},
        }
    )
    guard = Guard(env, "dependency", policy, Streams(7), interval_s=1.0)
    rounds: dict[int, list[float]] = collections.defaultdict(list)
    for _ in range(callers):
        log: list[float] = []
        make = _failing_calls(env, log)
        process = env.process(guard.call(make, deadline=60.0))
        process.callbacks.append(
            lambda _, log=log: [rounds[i].append(t) for i, t in enumerate(log)]
        )
    env.run()
    assert guard.retry_count == 3 * callers
    return [rounds[i] for i in range(4)]


def test_without_jitter_callers_that_failed_together_retry_together():
    rounds = _retry_times("none")
    for k, times in enumerate(rounds):
        assert len(set(times)) == 1  # every caller at the same instant
        assert times[0] == pytest.approx(0.1 * (2**k - 1))  # 0, 0.1, 0.3, 0.7 s


def test_full_jitter_spreads_the_retries():
    rounds = _retry_times("full")
    first_retry = np.array(rounds[1])
    # Not synchronised: no two callers retry at the same instant...
    assert len(set(first_retry.tolist())) == len(first_retry)
    # ...and the first retries are uniform over [0, base), as full jitter promises.
    assert stats.kstest(first_retry, stats.uniform(0, 0.1).cdf).pvalue > 0.001
    # The busiest 10 ms holds a small share of them, where no jitter puts all in one.
    busiest = np.bincount((first_retry / 0.01).astype(int)).max()
    assert busiest < 0.25 * len(first_retry)


def test_guard_stops_retrying_when_the_user_would_be_gone():
    env = simpy.Environment()
    policy = Policy(retry={"max_retries": 5, "backoff": {"base_ms": 1000, "jitter": "none"}})
    guard = Guard(env, "dependency", policy, Streams(1), interval_s=1.0)
    log: list[float] = []
    process = env.process(guard.call(_failing_calls(env, log), deadline=2.5))
    env.run()
    assert process.value is Outcome.ERROR
    assert log == [0.0, 1.0]  # the next retry, at 3 s, would come after the deadline


def _slow_dependency(env: simpy.Environment, service_s: float, finished: list[float]):
    def make(deadline: float):
        yield env.timeout(service_s)
        finished.append(env.now)
        return None

    return make


def test_timeout_frees_the_caller_but_not_the_callee():
    env = simpy.Environment()
    guard = Guard(env, "dependency", Policy(timeout_ms=200), Streams(1), interval_s=1.0)
    finished: list[float] = []
    process = env.process(guard.call(_slow_dependency(env, 1.0, finished), deadline=10.0))
    env.run(until=0.5)
    assert process.triggered and process.value is Outcome.ERROR  # given up at 0.2 s
    assert guard.timeouts == 1
    env.run()
    assert finished == [1.0]  # the dependency finished the work anyway


def test_a_user_deadline_before_the_timeout_is_the_users_abandonment():
    env = simpy.Environment()
    guard = Guard(env, "dependency", Policy(timeout_ms=5000), Streams(1), interval_s=1.0)
    process = env.process(guard.call(_slow_dependency(env, 1.0, []), deadline=0.3))
    env.run()
    assert process.value is Outcome.ABANDONED
    assert guard.timeouts == 0


def test_bulkhead_fails_calls_beyond_its_cap_at_once():
    env = simpy.Environment()
    guard = Guard(env, "dependency", Policy(bulkhead=2), Streams(1), interval_s=1.0)
    finished: list[float] = []
    calls = [
        env.process(guard.call(_slow_dependency(env, 1.0, finished), deadline=10.0))
        for _ in range(5)
    ]
    env.run()
    assert [c.value for c in calls].count(None) == 2
    assert [c.value for c in calls].count(Outcome.ERROR) == 3
    assert guard.failed_fast == 3 and len(finished) == 2


def test_an_open_breaker_fails_calls_without_calling():
    env = simpy.Environment()
    policy = Policy(circuit_breaker={"window_calls": 3, "minimum_calls": 3, "open_wait_s": 100})
    guard = Guard(env, "dependency", policy, Streams(1), interval_s=1.0)
    log: list[float] = []
    make = _failing_calls(env, log)
    for _ in range(10):
        env.process(guard.call(make, deadline=10.0))
    env.run()
    assert len(log) == 3  # the breaker opened after three failures; seven never called
    assert guard.failed_fast == 7
    assert guard.breaker is not None and guard.breaker.state == OPEN
