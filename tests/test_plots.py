"""The plot helpers: each draws its series, shades the faults, and returns its Axes."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import simulator  # noqa: E402
from tests.conftest import SCENARIOS  # noqa: E402


@pytest.fixture(scope="module")
def failover():
    """Alipay is down for 5 minutes from 700 s (one fault), at 1/5 size.

    A fifth, not less: enough payments a minute for the failed channel's rate to be drawn.
    """
    scenario = simulator.load_scenario(SCENARIOS / "payment-channel-failover.yaml", ["scale=1/5"])
    return simulator.simulate(scenario)


@pytest.mark.parametrize(
    "name", ["plot_traffic", "plot_latency", "plot_cache", "plot_payments", "plot_logistics"]
)
def test_each_plot_draws_its_series_and_shades_the_fault(failover, name):
    ax = getattr(failover, name)()
    assert isinstance(ax, matplotlib.axes.Axes) and ax.get_title()
    assert ax.lines and all(len(line.get_xdata()) > 1 for line in ax.lines)
    fault = failover.scenario.faults[0]
    per = 3600.0 if name == "plot_logistics" else 60.0
    band = [p for p in ax.patches if p.get_label() == "fault"]
    assert len(band) == 1
    x0, x1 = band[0].get_x(), band[0].get_x() + band[0].get_width()
    assert (x0, x1) == pytest.approx((fault.at_s / per, (fault.at_s + fault.duration_s) / per))
    plt.close(ax.get_figure(root=True))


def test_payment_plot_shows_the_failed_channel_dropping(failover):
    """The failed channel's rate falls as the outage begins, then leaves a gap.

    Over 20 s windows it falls from over 90% to under 60%; once payments are rerouted
    (within about 15 s) it has too few attempts to draw: a gap, not a 0.
    """
    ax = failover.plot_payments(smooth_s=20)
    lines = {line.get_label(): line for line in ax.lines}
    failed = failover.scenario.faults[0].component.split(".")[-1]
    x, y = lines[failed].get_xdata(), lines[failed].get_ydata()
    fault = failover.scenario.faults[0]
    during = (x > fault.at_s / 60) & (x < (fault.at_s + fault.duration_s) / 60)
    before = x < fault.at_s / 60
    assert np.nanmin(y[during]) < 0.6 and np.nanmean(y[before]) > 0.9
    assert np.isnan(y[during]).any()  # rerouted: too few attempts left to draw a rate
    plt.close(ax.get_figure(root=True))


def test_plots_draw_into_a_given_axes(failover):
    fig, axes = plt.subplots(2, 1)
    assert failover.plot_latency(ax=axes[0]) is axes[0]
    assert failover.plot_traffic(ax=axes[1]) is axes[1]
    labels = [line.get_label() for line in axes[0].lines]
    assert [label[:3] for label in labels] == ["p50", "p95", "p99"]
    assert labels[0] == "p50 (>= 4 checkouts)"
    plt.close(fig)


def test_a_ratio_with_few_attempts_is_left_out_not_drawn_as_zero():
    """No attempts is not a 0% success rate; 9 attempts are too few to draw."""
    import pandas as pd

    from simulator.results.plots import MIN_ATTEMPTS, _rolling_ratio

    attempts = pd.Series([5, 5, 0, 0, 0, 30])
    successes = pd.Series([5, 4, 0, 0, 0, 30])
    ratio = _rolling_ratio(successes, attempts, 2)
    assert MIN_ATTEMPTS == 10
    assert math.isnan(ratio[0])  # 5 attempts
    assert ratio[1] == pytest.approx(9 / 10)
    assert math.isnan(ratio[3])  # none in the window: a gap, not 0
    assert ratio[5] == 1.0
