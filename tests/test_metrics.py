"""Streaming metrics: quantiles within their stated accuracy, exact time averages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.measure.metrics import IntervalCounter, IntervalQuantiles, Level, Tally

values = st.lists(
    st.floats(min_value=1e-6, max_value=1e6, allow_nan=False), min_size=1, max_size=400
)


@given(values, st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0]))
@settings(max_examples=200, deadline=None)
def test_tally_quantile_is_within_half_a_percent(xs, q):
    """The sketch returns the order statistic at rank floor(q(n-1)) within 0.5%."""
    tally = Tally()
    for x in xs:
        tally.add(x)
    exact = sorted(xs)[math.floor(q * (len(xs) - 1))]
    assert abs(tally.quantile(q) - exact) <= 0.005 * exact * (1 + 1e-9)


@given(values)
@settings(max_examples=100, deadline=None)
def test_tally_moments_match_numpy(xs):
    """Count, mean, std, min and max are exact (up to rounding)."""
    tally = Tally()
    for x in xs:
        tally.add(x)
    assert tally.count == len(xs)
    assert math.isclose(tally.mean, np.mean(xs), rel_tol=1e-9)
    assert tally.minimum == min(xs) and tally.maximum == max(xs)
    if len(xs) > 1:
        assert math.isclose(tally.std, np.std(xs, ddof=1), rel_tol=1e-6, abs_tol=1e-6)


def test_zero_observations_are_counted_as_zero_quantiles():
    """Zero waits (served at once) are quantile 0, and counted apart."""
    tally = Tally()
    for x in (0.0, 0.0, 0.0, 5.0):
        tally.add(x)
    assert tally.zeros == 3
    assert tally.quantile(0.5) == 0.0
    assert math.isclose(tally.quantile(1.0), 5.0)


def test_level_time_average_and_interval_split():
    """Level 2 on [0.5, 2.5) and 0 after: mean over [0, 4) is 1; per second 1, 2, 1, 0."""
    level = Level(interval_s=1.0)
    level.add(0.5, 2)
    level.add(2.5, -2)
    assert math.isclose(level.mean(4.0), 1.0)
    assert np.allclose(level.intervals[:3], [1.0, 2.0, 1.0])
    assert level.peak == 2


def test_level_reset_restarts_the_average():
    """After a reset only the time since counts (warm-up deletion)."""
    level = Level()
    level.add(0.0, 10)
    level.reset(5.0)
    level.add(6.0, -10)
    assert math.isclose(level.mean(10.0), 10 * 1 / 5)


def test_interval_counter_and_quantiles():
    """Counts and quantiles land in the interval containing the time."""
    counter = IntervalCounter(0.5)
    for t in (0.1, 0.2, 0.7, 2.2):
        counter.add(t)
    assert list(counter.padded(6)) == [2, 1, 0, 0, 1, 0]
    quantiles = IntervalQuantiles(1.0, (0.5,))
    for t, x in ((0.1, 1.0), (0.2, 3.0), (2.5, 10.0)):
        quantiles.add(t, x)
    table = quantiles.table(3)
    assert table[0, 0] == 2.0 and math.isnan(table[1, 0]) and table[2, 0] == 10.0


@given(
    st.lists(st.tuples(st.floats(0, 29.999), st.floats(1, 1000)), min_size=1, max_size=300),
    st.integers(1, 8),
)
@settings(max_examples=150, deadline=None)
def test_trailing_window_quantiles_match_a_brute_force(observations, window):
    """Each row's quantile is over the shortest trailing window holding enough values."""
    from simulator.measure.metrics import enough

    observations.sort()
    series = IntervalQuantiles(1.0, (0.5, 0.9))
    for t, x in observations:
        series.add(t, x)
    table = series.window_table(30, window)
    for i in range(30):
        for k, q in enumerate((0.5, 0.9)):
            expected = math.nan
            for j in range(i, max(-1, i - window), -1):  # widen back one interval at a time
                inside = [x for t, x in observations if j <= int(t) <= i]
                if len(inside) >= enough(q):
                    expected = float(np.quantile(inside, q))
                    break
            got = table[i, k]
            assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_enough_observations_for_a_quantile():
    from simulator.measure.metrics import enough

    assert [enough(q) for q in (0.5, 0.95, 0.99)] == [4, 40, 200]


def test_add_many_is_add_in_order_to_the_bit():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.lognormal(0, 2, 20_000), np.zeros(100)])
    rng.shuffle(values)
    one, many = Tally(), Tally()
    for x in values.tolist():
        one.add(x)
    many.add_many(values[:777].tolist())
    many.add_many(values[777:].tolist())
    assert many.summary(0.5, 0.95, 0.99) == one.summary(0.5, 0.95, 0.99)
    assert (many.std, many.minimum, many.maximum) == (one.std, one.minimum, one.maximum)


@pytest.mark.parametrize("width", [1.0, 0.1, 0.3, 7.3, 60.0])
def test_interval_counter_bins_as_int_of_now_over_width(width):
    rng = np.random.default_rng(5)
    times = np.sort(rng.uniform(0, 500, 5_000)).tolist()
    times += [k * width for k in range(50)]  # on the edges, out of order
    times += rng.uniform(0, 500, 200).tolist()  # and back in time
    counter, expected = IntervalCounter(width), {}
    for t in times:
        counter.add(t)
        i = int(t * (1 / width))
        expected[i] = expected.get(i, 0) + 1
    assert {i: v for i, v in enumerate(counter.values) if v} == expected
