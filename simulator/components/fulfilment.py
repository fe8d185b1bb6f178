"""Fulfilment: warehouses pick and pack paid orders, a carrier delivers them.

A warehouse is a queue of parcels in front of ``pickers`` packing stations, served
first come, first served. Because orders reach it in time order and nobody leaves the
queue, the time each order is finished can be computed the moment it arrives, with
the recursion of Kiefer and Wolfowitz: an order starts when it arrives or when the
earliest station frees up, whichever is later. That is exact for a FCFS multi-server
queue and needs no simulation events at all, so a sale's orders can be followed for
days after the sale without ticking through them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from simulator.components.station import StationStats
from simulator.metrics import Tally
from simulator.scenario.distributions import make_sampler
from simulator.scenario.schema import Fulfilment as FulfilmentConfig
from simulator.scenario.schema import Warehouse as WarehouseConfig
from simulator.streams import Streams

__all__ = ["Fulfilment", "Warehouse"]

_LEAVES, _STARTS = 0, 1  # heap order at equal times: departures before starts


class Warehouse:
    """A FCFS picking queue with ``pickers`` stations.

    Args:
        config: the warehouse's section in ``fulfilment.warehouses``.
        streams: the run's streams; uses ``warehouse.NAME.pick``.
    """

    def __init__(self, config: WarehouseConfig, streams: Streams) -> None:
        self.name = config.name
        self.pick_time: Callable[[], float] = make_sampler(
            config.pick_time_s, streams.generator(f"warehouse.{config.name}.pick")
        )
        self.free_at = [0.0] * config.pickers  # a heap: when each station is next free
        # A heap of future changes, (time, kind, arrival time of the order), applied in
        # time order as the clock passes them; at equal times departures come first.
        self.pending: list[tuple[float, int, float]] = []
        self.stats = StationStats(f"warehouse.{config.name}", config.pickers)
        self.closed_at = 0.0

    def dispatch(self, now: float) -> float:
        """Accept an order at ``now``; return when it leaves the warehouse, packed."""
        stats = self._settle(now)
        stats.arrive(now)
        start = max(now, self.free_at[0])
        finish = start + self.pick_time()
        heapq.heapreplace(self.free_at, finish)
        if start == now:
            stats.begin(now, now)
        else:
            heapq.heappush(self.pending, (start, _STARTS, now))
        heapq.heappush(self.pending, (finish, _LEAVES, now))
        return finish

    def _settle(self, now: float) -> StationStats:
        """Account, in time order, for the picking starts and departures up to ``now``."""
        stats, pending = self.stats, self.pending
        while pending and pending[0][0] <= now:
            when, change, arrived = heapq.heappop(pending)
            if change == _STARTS:
                stats.begin(arrived, when)
            else:
                stats.served += 1
                stats.finish(arrived, when)
        return stats

    def reset(self, now: float) -> None:
        """End of warm-up: account for departures up to ``now``, then restart statistics."""
        self._settle(now)
        self.stats.reset(now)

    def close(self) -> float:
        """Let every order leave; return when the last one did."""
        self.closed_at = max((t for t, _, _ in self.pending), default=self.stats.clock)
        self._settle(self.closed_at)
        return self.closed_at


class Fulfilment:
    """Warehouses plus the carrier's transit time; tracks delivery times and promises.

    Args:
        config: the scenario's ``fulfilment`` section.
        streams: the run's streams; uses ``carrier.transit`` and the warehouses' streams.
    """

    def __init__(self, config: FulfilmentConfig, streams: Streams) -> None:
        self.warehouses = [Warehouse(w, streams) for w in config.warehouses]
        self.transit_s: Callable[[], float] = make_sampler(
            config.transit_time_h, streams.generator("carrier.transit"), scale=3600.0
        )
        self.promise_s = config.promised_delivery_h * 3600.0
        self.delivery_h = Tally()
        self.on_time = 0
        self.last_delivery_s = 0.0

    def ship(self, warehouse: int, paid_at: float) -> None:
        """Send an order paid at ``paid_at`` through ``warehouse`` and the carrier."""
        delivered = self.warehouses[warehouse].dispatch(paid_at) + self.transit_s()
        lead = delivered - paid_at
        self.delivery_h.add(lead / 3600.0)
        if lead <= self.promise_s:
            self.on_time += 1
        if delivered > self.last_delivery_s:
            self.last_delivery_s = delivered

    def close(self) -> None:
        """Finish every warehouse's accounting (call once, after the run)."""
        for warehouse in self.warehouses:
            warehouse.close()
