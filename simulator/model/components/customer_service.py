"""Customer service: enquiries, the bot that answers simple ones, agents for the rest.

Enquiries arise from what happened to each customer: a parcel not delivered by its
promise (asked at the promised time), a status update shown late by the tracking feed,
a failed payment, a coupon (one used in an order, or a claim that failed), and
general order-status questions. Each occasion brings an enquiry with its configured
probability, drawn from the reason's own stream as the run goes; only the enquiry
times are kept.

After the run the enquiries are taken in time order: the bot answers a share of the
simple ones, the rest queue for agents on their roster, who take them first come first
served (:class:`~simulator.model.components.roster.RosteredQueue`); customers who wait longer
than their patience give up. Nothing here feeds back into the sale, which is why the
queue can be worked out afterwards, exactly.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np

from simulator.measure.metrics import IntervalCounter, Tally, ratio
from simulator.measure.streams import Streams, buffered, make_sampler
from simulator.model.components.roster import HOUR_S, Roster, RosteredQueue
from simulator.model.components.tracking import BIN_S, TrackingFeed
from simulator.scenario.logistics import CustomerService as ServiceConfig

__all__ = ["REASONS", "CustomerService"]

REASONS = ("late_parcel", "stale_tracking", "payment_failed", "coupon", "order_status")
_LATE, _STALE, _PAYMENT, _COUPON, _STATUS = range(len(REASONS))


class CustomerService:
    """Enquiries collected during the run and served by :meth:`close`.

    Args:
        config: the scenario's ``customer_service`` section.
        streams: the run's streams; uses ``cs.REASON``, ``cs.bot``, ``cs.handle`` and
            ``cs.patience``.
        clock_at_start_h: hour of day at t = 0 (for the agents' shifts).
        promise_s: the delivery promise, s.
    """

    def __init__(
        self, config: ServiceConfig, streams: Streams, clock_at_start_h: float, promise_s: float
    ) -> None:
        self.config = config
        rates = config.enquiries
        reasons = [getattr(rates, r) for r in REASONS]
        self.probability = [e.probability for e in reasons]
        self.simple = [e.simple for e in reasons]
        self.stale_after_s = rates.stale_tracking.after_h * HOUR_S
        self.uniform: list[Callable[[], float]] = [
            buffered(streams.generator(f"cs.{r}").random) for r in REASONS
        ]
        self.stale_rng = streams.generator("cs.stale_tracking.times")
        self.asked = [array("d") for _ in REASONS]
        """When each enquiry was asked, by reason (in the order they arose)."""
        self.promise_s = promise_s
        roster = Roster(config.agents, config.shifts, config.surge, (), clock_at_start_h)
        self.queue = RosteredQueue(
            "customer_service",
            roster,
            make_sampler(config.handle_time_s, streams.generator("cs.handle")),
            None
            if config.patience_s is None
            else make_sampler(config.patience_s, streams.generator("cs.patience")),
        )
        self.bot = buffered(streams.generator("cs.bot").random)
        self.enquiries = [0] * len(REASONS)
        self.deflected = 0
        self.answered = self.abandoned = self.within_target = 0
        self.wait_s = Tally()
        """Waits of the enquiries an agent answered."""
        self.hourly = {
            name: IntervalCounter(HOUR_S)
            for name in ("cs_enquiries", "cs_to_agents", "cs_answered", "cs_abandoned")
        }
        self.hourly_wait = IntervalCounter(HOUR_S)

    def _maybe(self, reason: int, at: float) -> None:
        p = self.probability[reason]
        if p and self.uniform[reason]() < p:
            self.asked[reason].append(at)

    def order(self, paid_at: float, delivered_at: float, coupon: bool) -> None:
        """A paid order: order-status and coupon questions now, a late parcel later."""
        self._maybe(_STATUS, paid_at)
        if coupon:
            self._maybe(_COUPON, paid_at)
        promised = paid_at + self.promise_s
        if delivered_at > promised:
            self._maybe(_LATE, promised)

    def payment_failed(self, now: float) -> None:
        """A visit ended with a failed payment."""
        self._maybe(_PAYMENT, now)

    def claim_failed(self, now: float) -> None:
        """A coupon claim failed."""
        self._maybe(_COUPON, now)

    def _stale(self, feed: TrackingFeed) -> None:
        """Customers who notice a late status update, ``after_h`` after it happened."""
        p = self.probability[_STALE]
        late = np.flatnonzero(feed.lag_s > self.stale_after_s)
        if not p or not len(late):
            return
        rng = self.stale_rng
        asked = rng.binomial(feed.counts[late].astype(np.int64), p)
        starts = np.repeat(late * BIN_S, asked)
        times = starts + rng.random(len(starts)) * BIN_S + self.stale_after_s
        self.asked[_STALE].extend(times.tolist())

    def close(self, feed: TrackingFeed | None, warmup_s: float = 0.0) -> None:
        """Serve every enquiry, in time order. Figures count those asked after warm-up."""
        if feed is not None:
            self._stale(feed)
        times = np.concatenate([np.frombuffer(a, dtype=float) for a in self.asked])
        reasons = np.concatenate(
            [np.full(len(a), r, dtype=np.int64) for r, a in enumerate(self.asked)]
        )
        order = np.lexsort((reasons, times))
        queue, target = self.queue, self.config.target_wait_s
        deflection, simple = self.config.bot_deflection, self.simple
        hourly = self.hourly
        warm = warmup_s <= 0
        for t, r in zip(times[order].tolist(), reasons[order].tolist(), strict=True):
            if not warm and t >= warmup_s:
                queue.reset(warmup_s)
                warm = True
            counted = warm
            if counted:
                self.enquiries[r] += 1
                hourly["cs_enquiries"].add(t)
            if simple[r] and deflection and self.bot() < deflection:
                self.deflected += counted
                continue
            served = queue.arrive(t)
            if not counted:
                continue
            hourly["cs_to_agents"].add(t)
            if served is None:
                self.abandoned += 1
                hourly["cs_abandoned"].add(t)
                continue
            wait = served[0] - t
            self.answered += 1
            self.within_target += wait <= target
            self.wait_s.add(wait)
            hourly["cs_answered"].add(t)
            self.hourly_wait.add(t, wait)
        queue.close()

    def busiest_hour_wait_s(self) -> float | None:
        """The "average wait at peak" of the seeds, s.

        The mean wait of the answered enquiries asked in the hour that brought the most
        enquiries to agents.
        """
        reached = self.hourly["cs_to_agents"].values
        if not reached:
            return None
        peak = int(np.argmax(reached))
        answered = self.hourly["cs_answered"].padded(peak + 1)[peak]
        return self.hourly_wait.padded(peak + 1)[peak] / answered if answered else None

    def figures(self) -> dict[str, object]:
        """The KPIs of ``summary.json``."""
        reached = self.answered + self.abandoned
        wait = self.wait_s
        return {
            "cs_enquiries": sum(self.enquiries),
            "cs_enquiries_by_reason": dict(zip(REASONS, self.enquiries, strict=True)),
            "cs_deflected": self.deflected,
            "cs_to_agents": reached,
            "cs_answered": self.answered,
            "cs_abandoned": self.abandoned,
            "cs_abandon_rate": ratio(self.abandoned, reached),
            "cs_wait_s": wait.summary(0.5, 0.95),
            "cs_busiest_hour_wait_s": self.busiest_hour_wait_s(),
            "cs_answered_within_target_rate": ratio(self.within_target, self.answered),
            "cs_target_wait_s": self.config.target_wait_s,
        }
