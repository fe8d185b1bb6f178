"""Traffic channels: the visitors a budget buys, arriving on top of the traffic curve.

Each channel's spend windows hold a share of its expected visitors (the response curve
of :mod:`simulator.scenario.money` turns the budget into that expectation). In each
window the visitors arrive as a homogeneous Poisson process: their number is drawn by
inverting the Poisson distribution function at one uniform of the channel's
``channels.NAME.counts`` stream, so under common random numbers a bigger budget never
brings fewer visitors, and their times are uniform over the window, from a stream of
the window's own. A window the sale ends in buys only its clicks up to the end. Nothing
here touches another channel's or the curve's streams.

The channel's spend is the visitors drawn times the average price of a click on its
curve at the planned spend (pay per click): what a click costs is known when it is
bought, so the realised spend varies around the budget with the clicks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from simulator.measure.streams import Streams
from simulator.scenario.money import TrafficChannel

__all__ = ["ChannelArrivals"]


@dataclass
class ChannelArrivals:
    """A channel's arrival times for one replication, and what its clicks cost.

    Args:
        channel: the channel's configuration.
        duration_s: the sale's length (the default window).
        scale: the run's scale: visitors are simulated ``scale`` times as many, spend is
            reported at the declared size.
        streams: the run's streams.
    """

    channel: TrafficChannel
    duration_s: float
    scale: float
    streams: Streams

    def __post_init__(self) -> None:
        visitors, spend = self.channel.plan()
        self.expected = visitors
        """Expected visitors at the declared size."""
        self.price_cny = spend / visitors if visitors else 0.0
        """Average price of a click at the planned spend, CNY."""
        self.drawn = 0
        """Visitors drawn (simulated count)."""
        name = self.channel.name
        windows = self.channel.windows(self.duration_s)
        counts = self.streams.generator(f"channels.{name}.counts").random(len(windows))
        self._windows = []
        for i, (w, u) in enumerate(zip(windows, counts, strict=True)):
            # A window cut short by the sale's end buys only the clicks inside the sale.
            end = min(w.end_s, self.duration_s)
            inside = max(0.0, end - w.start_s) / (w.end_s - w.start_s)
            mean = w.share * inside * visitors * self.scale
            self._windows.append((w.start_s, end, self._count(mean, u), f"{name}.{i}"))
        self.drawn = sum(n for _, _, n, _ in self._windows)

    @staticmethod
    def _count(mean: float, u: float) -> int:
        """The Poisson(mean) count at quantile ``u``: monotone in ``mean`` for a fixed ``u``."""
        if mean <= 0:
            return 0
        from scipy.stats import poisson

        return max(0, int(poisson.ppf(u, mean)))

    def spend_cny(self, money: float) -> float:
        """What the visitors drawn cost, at the declared size (``money``: 1 / scale)."""
        return self.drawn * self.price_cny * money

    def times(self) -> Iterator[float]:
        """Arrival times, increasing, over the windows in time order."""
        merged: list[np.ndarray] = []
        for start, end, n, stream in self._windows:
            if n:
                rng = self.streams.generator(f"channels.{stream}.times")
                merged.append(start + rng.random(n) * (end - start))
        if not merged:
            return iter(())
        times = np.sort(np.concatenate(merged))
        return iter(times.tolist())
