"""A plain internal service: c servers and a service time, e.g. recommendations.

A product page calls it for something the user can live without (recommendations).
The call is non-core: when it fails or is skipped the page is served without it, but
its time still adds to the page's, and a slow service keeps the calling worker busy,
which is how a non-core dependency can take the core down with it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams, make_sampler
from simulator.model.components.health import Impairable
from simulator.model.components.servers import Servers
from simulator.model.components.station import StationStats, wait_for
from simulator.scenario.schema import Recommendations as ServiceConfig

__all__ = ["Service"]

_ERROR = Outcome.ERROR
_ABANDONED = Outcome.ABANDONED


class Service(Impairable):
    """c servers, first come first served, no queue limit.

    Args:
        env: the simulation environment.
        name: station name, e.g. ``recommendations``; names the stream ``NAME.service``.
        config: the service's section.
        streams: the run's streams.
        interval_s: time-series interval.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: ServiceConfig,
        streams: Streams,
        interval_s: float,
    ) -> None:
        self.env = env
        self.name = name
        self.servers = Servers(env, config.servers)
        self.resource, self.nominal_capacity = self.servers, config.servers
        self.service_time = make_sampler(
            config.service_time_ms, streams.generator(f"{name}.service"), 1e-3
        )
        self.stats = StationStats(name, config.servers, interval_s)

    def call(self, deadline: float) -> Generator[Any, Any, Outcome | None]:
        """One call, whose caller stops waiting at ``deadline``.

        Returns:
            None when served; ``ERROR`` when the service is down or failed the call;
            ``ABANDONED`` when the deadline came while the call waited for a server.
            A call in service is finished even if the deadline passes meanwhile.
        """
        env, stats, servers = self.env, self.stats, self.servers
        service_s = self.service_time()
        if self.impaired:
            if self.fails():
                return _ERROR
            service_s *= self.slowdown
        now = env.now
        stats.arrive(now)
        request = servers.request()
        if not request.triggered:
            request = yield from wait_for(env, request, deadline)
        if request is None:
            stats.leave_queue(now, env.now, by_user=True)
            return _ABANDONED
        stats.begin(now, env.now)
        yield env.timeout(service_s)
        servers.release()
        stats.served += 1
        stats.finish(now, env.now)
        return None
