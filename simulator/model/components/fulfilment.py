"""Fulfilment: regional warehouses pack paid orders, carriers collect and deliver them.

Each paid order goes to a warehouse: the nearest to the buyer's region, or (with
``divert_over_backlog_h``) the one with the fewest hours of picking ahead when the
nearest has too many. The warehouse's pickers pack orders first come first served, on duty by
a shift calendar (:class:`~simulator.model.components.roster.RosteredQueue`). The carrier
collects at the warehouse's cut-off times, taking at most ``capacity_per_pickup``
parcels each time, in the order they were packed; a parcel delivers after a transit
time drawn for its (warehouse, destination region) pair.

All of it is worked out the moment the order is paid, without simulation events, so a
backlog that takes days to clear costs nothing while the clock is not there. Each
status update (packed, collected, delivered) is published to the tracking feed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from simulator.measure.metrics import IntervalCounter, Tally
from simulator.measure.streams import Streams, make_sampler
from simulator.model.components.roster import DAY_S, HOUR_S, Roster, RosteredQueue
from simulator.model.components.tracking import TrackingFeed
from simulator.scenario.logistics import Fulfilment as FulfilmentConfig
from simulator.scenario.logistics import Warehouse as WarehouseConfig

__all__ = ["Fulfilment", "Warehouse"]


class Warehouse:
    """Pickers on a roster, then the carrier's collections.

    Args:
        config: the warehouse's section in ``fulfilment.warehouses``.
        streams: the run's streams; uses ``warehouse.NAME.pick``.
        clock_at_start_h: hour of day at t = 0.
        cuts: capacity faults on this warehouse as (start, end, fraction left).
    """

    def __init__(
        self,
        config: WarehouseConfig,
        streams: Streams,
        clock_at_start_h: float,
        cuts: Sequence[tuple[float, float, float]] = (),
    ) -> None:
        self.name = config.name
        self.roster = Roster(config.pickers, config.shifts, config.surge, cuts, clock_at_start_h)
        pick: Callable[[], float] = make_sampler(
            config.pick_time_s, streams.generator(f"warehouse.{config.name}.pick")
        )
        self.queue = RosteredQueue(f"warehouse.{config.name}", self.roster, pick)
        self.stats = self.queue.stats
        self.hours_per_order = config.pick_time_s.average() / HOUR_S
        self.offset_s = clock_at_start_h * HOUR_S
        self.cutoffs_s = [c * HOUR_S for c in config.cutoffs_h]
        self.capacity = config.capacity_per_pickup
        self.loaded: dict[int, int] = {}
        self._full: dict[int, int] = {}  # a full collection -> a later one to try
        self.received = IntervalCounter(HOUR_S)
        self.packed = IntervalCounter(HOUR_S)
        self.shipped = IntervalCounter(HOUR_S)

    def backlog_h(self, now: float) -> float:
        """Hours until the pickers, on their roster, have packed the orders inside now."""
        work = self.queue.waiting(now) * self.hours_per_order * HOUR_S  # picker-seconds
        roster, t = self.roster, now
        while work > 0:
            staff, change = roster.on_duty(t), roster.next_change(t)
            if staff and staff * (change - t) >= work:
                return (t + work / staff - now) / HOUR_S
            if change == math.inf:
                return math.inf
            work -= staff * (change - t)
            t = change
        return 0.0

    def dispatch(self, now: float) -> tuple[float, float]:
        """Accept an order paid at ``now``: when it is packed, and when it is collected."""
        served = self.queue.arrive(now)
        assert served is not None  # orders never give up on a warehouse
        packed = served[1]
        shipped = self._collection(packed)
        self.received.add(now)
        self.packed.add(packed)
        self.shipped.add(shipped)
        return packed, shipped

    def _collection(self, ready: float) -> float:
        """When a parcel packed at ``ready`` leaves: the first collection with room."""
        cutoffs = self.cutoffs_s
        if not cutoffs:
            return ready
        per_day = len(cutoffs)
        day, into = divmod(ready + self.offset_s, DAY_S)
        n = int(day) * per_day + bisect.bisect_left(cutoffs, into)
        if self.capacity is not None:
            n = self._with_room(n)
            loaded = self.loaded[n] = self.loaded.get(n, 0) + 1
            if loaded >= self.capacity:
                self._full[n] = n + 1
        return (n // per_day) * DAY_S + cutoffs[n % per_day] - self.offset_s

    def _with_room(self, n: int) -> int:
        """The first collection from ``n`` on that is not full (path-compressed)."""
        full = self._full
        path = []
        while n in full:
            path.append(n)
            n = full[n]
        for m in path:
            full[m] = n
        return n


class Fulfilment:
    """Warehouses, carriers and tracking; delivery times and promises.

    Args:
        config: the scenario's ``fulfilment`` section.
        streams: the run's streams; uses ``carrier.WAREHOUSE.REGION`` and the warehouses'.
        clock_at_start_h: hour of day at t = 0.
        cuts: capacity faults per warehouse name, as (start, end, fraction left).
    """

    def __init__(
        self,
        config: FulfilmentConfig,
        streams: Streams,
        clock_at_start_h: float = 0.0,
        cuts: dict[str, list[tuple[float, float, float]]] | None = None,
    ) -> None:
        cuts = cuts or {}
        self.region_names = [r.name for r in config.regions]
        self.warehouses = [
            Warehouse(w, streams, clock_at_start_h, cuts.get(w.name, ())) for w in config.warehouses
        ]
        self.transit_s: list[list[Callable[[], float]]] = []
        self.preference: list[list[int]] = []
        """Warehouses by nearness to each region: its own first, then by mean transit."""
        mean_h = []
        for w in config.warehouses:
            pairs = [w.transit_time_h.get(r, config.transit_time_h) for r in self.region_names]
            mean_h.append([d.average() for d in pairs])
            self.transit_s.append(
                [
                    make_sampler(d, streams.generator(f"carrier.{w.name}.{r}"), scale=HOUR_S)
                    for d, r in zip(pairs, self.region_names, strict=True)
                ]
            )
        for r, region in enumerate(self.region_names):
            order = sorted(
                range(len(self.warehouses)),
                key=lambda w: (config.warehouses[w].region != region, mean_h[w][r], w),
            )
            self.preference.append(order)
        self.divert_h = config.divert_over_backlog_h
        self.promise_s = config.promised_delivery_h * HOUR_S
        self.offset_s = clock_at_start_h * HOUR_S
        self.tracking = None if config.tracking is None else TrackingFeed(config.tracking)
        self.delivery_h = Tally()
        self.ship_h = Tally()
        self.on_time = self.next_day = self.shipped_in_72h = 0
        self.parcels = [0] * len(config.regions)
        """Parcels sent to each region."""
        self.away = 0
        """Orders shipped from a warehouse other than the nearest one to the buyer."""
        self.last_delivery_s = 0.0
        self.delivered = IntervalCounter(HOUR_S)

    def stock_shares(self, config: FulfilmentConfig) -> list[float]:
        """Each warehouse's share of split stock: as configured, or the demand it is nearest to."""
        if config.warehouses[0].stock_share is not None:
            return [w.stock_share or 0.0 for w in config.warehouses]
        shares = [0.0] * len(self.warehouses)
        for region, order in zip(config.regions, self.preference, strict=True):
            shares[order[0]] += region.share
        return shares

    def candidates(self, region: int, now: float) -> list[int]:
        """Warehouses to ship from, best first.

        By nearness; but when the nearest has more than ``divert_over_backlog_h`` hours
        of picking ahead, by hours ahead (nearness breaking ties): the order goes where
        it will be packed soonest, at that pair's longer transit.
        """
        order = self.preference[region]
        limit = self.divert_h
        if limit is None:
            return order
        warehouses = self.warehouses
        if warehouses[order[0]].backlog_h(now) <= limit:
            return order
        return sorted(order, key=lambda w: warehouses[w].backlog_h(now))

    def allocate(self, region: int, now: float) -> int:
        """The warehouse an order from ``region`` paid at ``now`` ships from."""
        return self.candidates(region, now)[0]

    def ship(self, warehouse: int, region: int, paid_at: float) -> tuple[float, float]:
        """Send an order through ``warehouse`` and its carrier: when collected, delivered."""
        packed, shipped = self.warehouses[warehouse].dispatch(paid_at)
        delivered = shipped + self.transit_s[warehouse][region]()
        lead = delivered - paid_at
        self.parcels[region] += 1
        self.delivery_h.add(lead / HOUR_S)
        self.ship_h.add((shipped - paid_at) / HOUR_S)
        if lead <= self.promise_s:
            self.on_time += 1
        offset = self.offset_s
        if (delivered + offset) // DAY_S <= (paid_at + offset) // DAY_S + 1:
            self.next_day += 1
        if shipped - paid_at <= 72 * HOUR_S:
            self.shipped_in_72h += 1
        if warehouse != self.preference[region][0]:
            self.away += 1
        if delivered > self.last_delivery_s:
            self.last_delivery_s = delivered
        self.delivered.add(delivered)
        tracking = self.tracking
        if tracking is not None:
            tracking.publish(packed)
            tracking.publish(shipped)
            tracking.publish(delivered)
        return shipped, delivered

    def close(self) -> None:
        """Finish every warehouse's accounting and the tracking feed (once, after the run)."""
        for warehouse in self.warehouses:
            warehouse.queue.close()
        if self.tracking is not None:
            self.tracking.close()
