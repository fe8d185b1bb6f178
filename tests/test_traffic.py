"""Arrivals follow the rate curve exactly (in distribution), not approximately."""

from __future__ import annotations

import numpy as np
from scipy import stats

from simulator.measure.streams import Streams
from simulator.model.traffic import arrival_times, expected_arrivals
from simulator.scenario.schema import Traffic

SPIKE = Traffic(
    baseline_per_s=10,
    spike={"start_s": 100, "ramp_s": 50, "hold_s": 100, "decay_s": 200, "multiplier": 15},
    bursts=[{"start_s": 600, "ramp_s": 0, "hold_s": 30, "decay_s": 0, "multiplier": 4}],
)


def test_curve_has_the_scenario_shape():
    """Baseline before the spike, 15x on the plateau, steps for a zero-length ramp."""
    assert SPIKE.rate_at(50) == 10
    assert SPIKE.rate_at(200) == 150
    assert SPIKE.rate_at(125) == 80  # half way up the ramp
    assert SPIKE.rate_at(600) == 40 and SPIKE.rate_at(629.9) == 40 and SPIKE.rate_at(630) == 10
    pieces = SPIKE.pieces(700)
    assert pieces[0] == (0.0, 100, 10.0, 10.0)
    assert any(p[2] == 40.0 for p in pieces)


def test_arrivals_are_sorted_and_inside_the_window():
    """Times increase and stay in [0, duration)."""
    times = np.array(list(arrival_times(SPIKE, 700, Streams(1).generator("arrivals"))))
    assert np.all(np.diff(times) >= 0)
    assert times.min() >= 0 and times.max() < 700


def test_counts_per_window_match_the_rate_curve():
    """Counts in 25 windows match the curve's areas (chi-square test, alpha = 0.001).

    Counts in disjoint windows of a Poisson process are independent Poisson with mean
    equal to the area under the rate; pooled over 20 replications the chi-square
    statistic must be unremarkable. A sampler that mis-shapes the ramps or steps fails.
    """
    edges = np.linspace(0, 700, 26)
    cumulative = np.array([expected_arrivals(SPIKE, t) for t in edges])
    expected = np.diff(cumulative)
    observed = np.zeros(25)
    reps = 20
    for r in range(reps):
        times = list(arrival_times(SPIKE, 700, Streams(11, r).generator("arrivals")))
        observed += np.histogram(times, bins=edges)[0]
    chi2 = ((observed - reps * expected) ** 2 / (reps * expected)).sum()
    assert chi2 < stats.chi2.ppf(0.999, df=25), chi2


def test_total_count_is_poisson_with_the_curve_area():
    """The total over the window has the area as mean and as variance (Poisson)."""
    area = expected_arrivals(SPIKE, 700)
    totals = [
        sum(1 for _ in arrival_times(SPIKE, 700, Streams(3, r).generator("arrivals")))
        for r in range(60)
    ]
    mean = np.mean(totals)
    # 99.9% interval for the mean of 60 Poisson(area) counts
    half = stats.norm.ppf(0.9995) * np.sqrt(area / 60)
    assert abs(mean - area) < half
    # variance ratio: (n-1) s^2 / area ~ chi2(n-1) under the Poisson hypothesis
    statistic = 59 * np.var(totals, ddof=1) / area
    assert stats.chi2.ppf(0.0005, 59) < statistic < stats.chi2.ppf(0.9995, 59)
