"""Arrivals: users reaching the shop as a non-homogeneous Poisson process.

Picture the crowd outside a store on launch morning: on an ordinary day a trickle,
then at opening a surge fifteen times as dense that fades over the next hour. The
scenario draws that density as a piecewise-linear rate curve
(:meth:`~simulator.scenario.schema.Traffic.pieces`). This module samples arrival
times from it *exactly*, by inversion: on each linear piece the number of arrivals
is Poisson with the piece's area, and given that number the arrival times are
independent with density proportional to the rate, which the inverse of the
piece's quadratic cumulative rate turns uniform draws into. No time-stepping, no
thinning rejections, and the cost is proportional to the number of arrivals.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from simulator.scenario.schema import Traffic

__all__ = ["arrival_times", "expected_arrivals"]

# Largest expected count sampled in one block: bounds memory for huge sales.
_BLOCK_ARRIVALS = 50_000.0


def expected_arrivals(traffic: Traffic, duration_s: float) -> float:
    """Expected number of arrivals in [0, duration_s): the area under the rate curve."""
    return sum((ra + rb) / 2 * (b - a) for a, b, ra, rb in traffic.pieces(duration_s))


def _blocks(traffic: Traffic, duration_s: float) -> Iterator[tuple[float, float, float, float]]:
    """The curve's linear pieces, cut so that no block expects too many arrivals."""
    for a, b, ra, rb in traffic.pieces(duration_s):
        area = (ra + rb) / 2 * (b - a)
        cuts = max(1, math.ceil(area / _BLOCK_ARRIVALS))
        width, slope = (b - a) / cuts, (rb - ra) / (b - a)
        for i in range(cuts):
            start = a + i * width
            yield start, start + width, ra + slope * i * width, ra + slope * (i + 1) * width


def arrival_times(traffic: Traffic, duration_s: float, rng: np.random.Generator) -> Iterator[float]:
    """Yield arrival times in [0, duration_s) in increasing order.

    Args:
        traffic: the rate curve.
        duration_s: end of the arrival window.
        rng: the ``arrivals`` stream.
    """
    for a, b, ra, rb in _blocks(traffic, duration_s):
        length = b - a
        area = (ra + rb) / 2 * length
        n = int(rng.poisson(area)) if area > 0 else 0
        if n == 0:
            continue
        # Cumulative rate from a: L(x) = ra*x + k*x^2/2 with k the slope. Solve L(x) = c
        # in the cancellation-free form x = 2c / (ra + sqrt(ra^2 + 2kc)).
        c = np.sort(rng.random(n)) * area
        k = (rb - ra) / length
        denominator = ra + np.sqrt(np.maximum(ra * ra + 2 * k * c, 0.0))
        x = np.divide(2 * c, denominator, out=np.zeros(n), where=denominator > 0)
        times = a + np.minimum(x, length)
        yield from times[times < duration_s].tolist()
