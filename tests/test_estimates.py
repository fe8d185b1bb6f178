"""Statistics across replications: intervals against known cases, aggregation, MSER-5.

Coverage tests draw many samples from a distribution with a known mean (seeded, so the
test is deterministic) and count how often the interval covers it. The tolerance is
the binomial spread of that count at the nominal level (3.29 standard deviations,
a 99.9% band), so a correct interval passes and a wrong one (a z interval at n = 5, or
a bootstrap of the wrong statistic) falls outside.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from simulator.experiment.estimates import (
    BOOTSTRAP_MIN_N,
    LEVEL,
    Estimate,
    aggregate,
    bootstrap_interval,
    confidence_interval,
    difference,
    estimates,
    flatten,
    interval,
    is_tail,
    method,
    mser5,
    welch_interval,
)


def _band(trials: int, level: float = LEVEL) -> float:
    return 3.29 * math.sqrt(level * (1 - level) / trials)


def test_student_t_interval_covers_a_known_mean_at_its_level():
    rng = np.random.default_rng(11)
    trials, n, mean = 4000, 5, 7.0
    samples = rng.normal(mean, 3.0, size=(trials, n))
    covered = 0
    for sample in samples:
        _, low, high = confidence_interval(sample)
        covered += low <= mean <= high
    assert abs(covered / trials - LEVEL) < _band(trials)
    # the interval is the textbook one: mean +- t(0.975, n-1) s / sqrt(n)
    m, low, high = confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert m == 3.0 and high - m == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5))


def test_bootstrap_interval_covers_a_known_mean():
    """BCa at n = 20 under-covers by about 1 point (Efron & Tibshirani); allow for it."""
    rng = np.random.default_rng(12)
    trials, n, mean = 400, 20, 50.0
    covered = 0
    for sample in rng.normal(mean, 10.0, size=(trials, n)):
        _, low, high = bootstrap_interval(sample, LEVEL, rng)
        covered += low <= mean <= high
    assert LEVEL - 0.02 - _band(trials) < covered / trials < LEVEL + _band(trials)


def test_tail_quantiles_are_bootstrapped_from_enough_replications():
    assert is_tail("checkout_latency_ms.p99") and is_tail("tracking_lag_h.max")
    assert not is_tail("checkout_latency_ms.p50") and not is_tail("orders")
    few = [100.0, 105.0, 98.0, 102.0, 400.0, 101.0]
    assert method("x.p99", len(few)) == "t"  # BCa under-covers at small n: t instead
    assert interval("x.p99", few) == confidence_interval(few)
    rng = np.random.default_rng(4)
    many = list(100 + rng.lognormal(0, 1, BOOTSTRAP_MIN_N))
    assert method("x.p99", len(many)) == "bootstrap" and method("x.p50", len(many)) == "t"
    a, b = interval("x.p99", many, seed=3), interval("x.p99", many, seed=3)
    assert a == b  # the bootstrap draws from a named stream of the seed
    t = confidence_interval(many)
    assert a[0] == t[0] and a[1:] != t[1:]
    assert a[2] - a[0] > a[0] - a[1]  # skewed values: the interval reaches further up
    assert bootstrap_interval([5.0, 5.0, 5.0]) == (5.0, 5.0, 5.0)


def test_paired_interval_uses_the_differences_and_welch_ignores_the_pairing():
    a = [10.0, 20.0, 30.0, 40.0]
    b = [11.0, 21.5, 30.5, 41.0]  # a large spread shared by both, a small difference
    row = difference("orders", a, b, seed=1)
    d, low, high = confidence_interval([y - x for x, y in zip(a, b, strict=True)])
    assert (row["difference"], row["ci_low"], row["ci_high"]) == (d, low, high)
    assert row["significant"] and low > 0
    diff, ulow, uhigh = welch_interval(a, b)
    assert (row["unpaired_ci_low"], row["unpaired_ci_high"]) == (ulow, uhigh)
    assert diff == pytest.approx(d) and ulow < 0 < uhigh  # unpaired: lost in the spread
    missing = difference("x", [1.0, math.nan, 3.0], [2.0, 5.0, 4.0], seed=1)
    assert missing["n"] == 2 and missing["difference"] == 1.0


def _summary(replication: int, orders: int, p99: float, mode: str = "atomic") -> dict:
    return {
        "scenario": "s",
        "seed": 9,
        "replication": replication,
        "sessions": 100,
        "orders": orders,
        "checkout_latency_ms": {"p50": 10.0 + replication, "p99": p99},
        "time_to_limit_s": None if replication == 0 else 30.0 + replication,
        "deduction": {"mode": mode},
        "faults": [{"label": "f", "recovery_time_s": 5.0 * (replication + 1)}],
        "provenance": {"scenario": {"name": "s"}, "seed": 9, "replication": replication},
    }


def test_aggregate_gives_each_kpi_its_mean_interval_and_values():
    summaries = [_summary(r, 10 + r, 100.0 + 10 * r) for r in range(4)]
    out = aggregate(summaries, seed=9)
    assert out["scenario"] == "s" and out["seed"] == 9 and out["replications"] == 4
    orders = out["orders"]
    assert orders["values"] == [10, 11, 12, 13] and orders["n"] == 4
    assert (orders["mean"], orders["ci_low"], orders["ci_high"]) == confidence_interval(
        [10, 11, 12, 13]
    )
    p99 = out["checkout_latency_ms"]["p99"]
    assert p99["ci_low"] <= p99["mean"] <= p99["ci_high"]
    assert out["sessions"] == {
        "mean": 100.0,
        "ci_low": 100.0,
        "ci_high": 100.0,
        "n": 4,
        "values": [100] * 4,
    }
    limit = out["time_to_limit_s"]  # missing in one replication: n counts the others
    assert limit["n"] == 3 and limit["mean"] == 32.0 and limit["values"][0] is None
    assert out["deduction"]["mode"] == "atomic"  # the same text everywhere stays text
    fault = out["faults"][0]  # lists of same-shape entries merge entry by entry
    assert fault["label"] == "f" and fault["recovery_time_s"]["values"] == [5.0, 10.0, 15.0, 20.0]
    assert out["provenance"]["replications"] == [0, 1, 2, 3]
    assert "replication" not in out["provenance"]
    mixed = aggregate([_summary(0, 1, 1.0, "atomic"), _summary(1, 2, 2.0, "lock")], 9)
    assert mixed["deduction"]["mode"] == {"values": ["atomic", "lock"]}
    gap = [_summary(r, 10, 100.0) for r in range(3)]
    gap[1]["checkout_latency_ms"] = None  # a whole group missing in one replication
    p50 = aggregate(gap, 9)["checkout_latency_ms"]["p50"]
    assert p50["n"] == 2 and p50["values"] == [10.0, None, 12.0]


def test_estimates_read_like_a_single_run():
    out = estimates(aggregate([_summary(r, 10 + r, 100.0) for r in range(3)], seed=9))
    orders = out["orders"]
    assert isinstance(orders, Estimate) and orders == 11.0 and orders > 10
    assert orders.ci_low < 11.0 < orders.ci_high and orders.n == 3
    again = pickle.loads(pickle.dumps(orders))  # e.g. to a worker process and back
    assert again == orders and (again.ci_low, again.ci_high, again.n) == (
        orders.ci_low,
        orders.ci_high,
        3,
    )
    assert out["deduction"]["mode"] == "atomic"


def test_flatten_names_kpis_by_dotted_path():
    flat = flatten(_summary(0, 10, 99.0))
    assert flat["checkout_latency_ms.p99"] == 99.0 and flat["orders"] == 10.0
    assert math.isnan(flat["time_to_limit_s"])
    assert "seed" not in flat and "replication" not in flat
    assert not any(k.startswith("provenance") for k in flat)


def test_mser5_deletes_the_transient_and_little_of_a_stationary_series():
    rng = np.random.default_rng(5)
    transient = np.linspace(20.0, 0.0, 300)  # relaxes over the first 300 observations
    series = np.concatenate([transient, np.zeros(2700)]) + rng.normal(0, 1, 3000)
    cut = mser5(series)
    # the transient's last stretch is within the noise (below 1 sd from 285 on), so the
    # rule may keep it, and may delete a few batches beyond it at a small cost in variance
    assert cut % 5 == 0 and 240 <= cut <= 400
    stationary = rng.normal(0, 1, 3000)
    assert mser5(stationary) < 300
    gappy = series.copy()
    gappy[1000:1500] = np.nan  # intervals with nothing measured
    assert 240 <= mser5(gappy) <= 400
    assert mser5([1.0, 2.0, 3.0]) == 0
    offset = 1e6 + np.concatenate([np.linspace(0.02, 0.0, 50), np.zeros(950)])
    offset += rng.normal(0, 1e-3, 1000)  # a large level, tiny noise: no cancellation
    assert 40 <= mser5(offset) <= 60
