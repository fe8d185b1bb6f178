"""The tracking feed: parcel status updates through a message queue to the customer.

Every update (packed, collected, delivered) is a message; the queue's consumers
process ``throughput_per_s`` of them in order. When updates come faster, the queue
backs up and customers see each status late by the time its message waits: the
tracking lag, which drives "where is my order?" enquiries.

The queue is worked out after the run, as a fluid queue over one-minute bins: the
messages of each bin arrive evenly through it and the consumers drain at their
throughput. A message's lag is the backlog it finds over the throughput, to within a
bin; that is far below the hours of lag that matter here, and needs memory for the
bins only, whatever the number of parcels.
"""

from __future__ import annotations

import numpy as np

from simulator.measure.metrics import IntervalCounter
from simulator.scenario.logistics import Tracking

__all__ = ["BIN_S", "TrackingFeed"]

BIN_S = 60.0


class TrackingFeed:
    """Status updates counted per bin; their lag worked out by :meth:`close`.

    Args:
        config: the ``fulfilment.tracking`` section.
    """

    def __init__(self, config: Tracking) -> None:
        self.throughput = config.throughput_per_s
        self.published = IntervalCounter(BIN_S)
        self.counts = np.zeros(0)
        self.lag_s = np.zeros(0)
        """Lag of the messages published in each bin, s (after :meth:`close`)."""
        self.backlog = np.zeros(0)
        """Messages in the queue at the end of each bin (after :meth:`close`)."""

    def publish(self, t: float) -> None:
        """One status update happens at ``t``."""
        self.published.add(t)

    def close(self) -> None:
        """Run the queue over the bins."""
        counts = np.asarray(self.published.values, dtype=float)
        drained = self.throughput * BIN_S
        lag = np.zeros(len(counts))
        backlog = np.zeros(len(counts))
        q = 0.0
        for k, n in enumerate(counts):
            end = max(0.0, q + n - drained)
            lag[k] = (q + end) / 2 / self.throughput
            backlog[k] = q = end
        self.counts, self.lag_s, self.backlog = counts, lag, backlog

    def lag_quantile(self, q: float) -> float:
        """The ``q`` quantile of the lag over messages, s."""
        weights = self.counts
        if not weights.sum():
            return float("nan")
        order = np.argsort(self.lag_s, kind="stable")
        cumulative = np.cumsum(weights[order])
        i = int(np.searchsorted(cumulative, q * cumulative[-1]))
        return float(self.lag_s[order][min(i, len(order) - 1)])

    def lag_mean(self) -> float:
        """Mean lag over messages, s."""
        total = self.counts.sum()
        return float((self.counts * self.lag_s).sum() / total) if total else float("nan")
