"""The gateway: load balancer and application servers, the door every request uses.

Like the tills of a supermarket: a fixed number of workers (threads across the
application servers) each serve one request at a time, the others queue, and when
the queue is full the door is shut and new requests are rejected. A worker stays busy
for the whole request, including the calls it makes to the cache, the database and
the payment channel, as a thread-per-request server does: a slow database therefore
backs up the gateway, which is how an overload spreads upstream.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from simulator.components.station import StationStats, wait_for
from simulator.outcomes import Outcome
from simulator.scenario.distributions import make_sampler
from simulator.scenario.schema import Gateway as GatewayConfig
from simulator.streams import Streams

__all__ = ["Gateway", "NoGateway"]

_REJECTED = Outcome.REJECTED
_ABANDONED = Outcome.ABANDONED


class Gateway:
    """c workers with an optional queue limit.

    Args:
        env: the simulation environment.
        config: the scenario's ``gateway`` section.
        streams: the run's streams; uses ``gateway.service``.
        interval_s: time-series interval, for utilisation per interval.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: GatewayConfig,
        streams: Streams,
        interval_s: float,
    ) -> None:
        self.env = env
        self.workers = simpy.Resource(env, capacity=config.workers)
        self.queue_limit = float("inf") if config.queue_limit is None else config.queue_limit
        self.service_time = make_sampler(
            config.service_time_ms, streams.generator("gateway.service"), scale=1e-3
        )
        self.stats = StationStats("gateway", config.workers, interval_s)

    def enter(self, deadline: float) -> Generator[Any, Any, tuple[Outcome | None, Any]]:
        """Wait for a worker until ``deadline`` (the user's patience).

        Returns:
            ``(None, request)`` once a worker is assigned, to be given back with
            :meth:`leave`; or ``(outcome, None)`` when rejected or abandoned.
        """
        env, stats, workers = self.env, self.stats, self.workers
        now = env.now
        if workers.count >= workers.capacity and len(workers.queue) >= self.queue_limit:
            stats.arrivals += 1
            stats.rejected += 1
            return _REJECTED, None
        stats.arrive(now)
        request = workers.request()
        if not request.triggered:
            request = yield from wait_for(env, request, deadline)
        if request is None:
            stats.leave_queue(now, env.now, by_user=True)
            return _ABANDONED, None
        request.arrived_at = now  # type: ignore[attr-defined]  # SimPy events take attributes
        stats.begin(now, env.now)
        return None, request

    def leave(self, request: Any) -> None:
        """Give the worker back at the end of the request."""
        self.workers.release(request)
        self.stats.served += 1
        self.stats.finish(request.arrived_at, self.env.now)


class NoGateway:
    """No entry tier: requests go straight to the services (for reduced scenarios)."""

    stats = None

    @staticmethod
    def service_time() -> float:
        """No worker time."""
        return 0.0

    @staticmethod
    def enter(deadline: float) -> Generator[Any, Any, tuple[Outcome | None, Any]]:
        """Admit at once."""
        return None, None
        yield  # a generator, like Gateway.enter

    @staticmethod
    def leave(request: Any) -> None:
        """Nothing to give back."""
