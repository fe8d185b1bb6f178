"""The gateway: load balancer and application servers, the door every request uses.

Like the tills of a supermarket: a number of workers (threads across the application
servers) each serve one request at a time, the others queue, and when the queue is
full the door is shut and new requests are rejected. A worker stays busy for the whole
request, including the calls it makes to the cache, the database and the payment
channel, as a thread-per-request server does: a slow database therefore backs up the
gateway, which is how an overload spreads upstream.

In front of the queue, optional protections decide who gets in: a token-bucket rate
limiter (a static threshold, or one steered by measured utilisation after a detection
delay) sheds what exceeds its rate at once; a waiting room (peak shaving) lets
requests in at a fixed rate and sheds those that would wait too long. Behind it,
autoscaling adds instances after a provisioning delay.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Generator
from typing import Any

import simpy

from simulator.measure.metrics import IntervalCounter
from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams, make_sampler
from simulator.model.components.health import Impairable, resize
from simulator.model.components.servers import Servers
from simulator.model.components.station import (
    StationStats,
    UtilisationWindow,
    first_of,
    wait_for,
)
from simulator.scenario.protections import Autoscaling, PeakShaving, RateLimit
from simulator.scenario.schema import Gateway as GatewayConfig

__all__ = ["Autoscaler", "Gateway", "NoGateway", "TokenBucket", "WaitingRoom"]

_REJECTED = Outcome.REJECTED
_SHED = Outcome.RATE_LIMITED
_ABANDONED = Outcome.ABANDONED
_ERROR = Outcome.ERROR


class TokenBucket:
    """Tokens drip in at ``rate_per_s`` up to ``burst``; a request takes one or is shed."""

    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._last = 0.0

    def take(self, now: float) -> bool:
        """Whether a request arriving now may pass."""
        tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    def set_rate(self, now: float, rate_per_s: float) -> None:
        """Drip at a new rate from ``now`` on (tokens earned so far are kept)."""
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        self.rate_per_s = rate_per_s


class WaitingRoom:
    """Turns handed out at a fixed rate, first come first served (virtual scheduling)."""

    def __init__(self, config: PeakShaving) -> None:
        self.gap_s = 1 / config.rate_per_s
        self.max_wait_s = config.max_wait_ms / 1000
        self._next = 0.0

    def turn(self, now: float) -> float | None:
        """Seconds a request arriving now waits for its turn; None when it is shed."""
        turn = max(now, self._next)
        if turn - now > self.max_wait_s:
            return None
        self._next = turn + self.gap_s
        return turn - now


class Gateway(Impairable):
    """c workers with an optional queue limit, and the door's protections.

    Args:
        env: the simulation environment.
        config: the scenario's ``gateway`` section.
        streams: the run's streams; uses ``gateway.service``.
        interval_s: time-series interval, for utilisation per interval.
        spike_start_s: when the sale's spike starts, from which ``first_shed_s`` watches.
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: GatewayConfig,
        streams: Streams,
        interval_s: float,
        spike_start_s: float = 0.0,
        lanes: bool = False,
    ) -> None:
        self.env = env
        self.lanes = lanes
        """A priority lane exists: workers are a PriorityResource, lane requests first."""
        self.workers = Servers(env, config.workers, priority=lanes)
        self.queue_limit = float("inf") if config.queue_limit is None else config.queue_limit
        self._service_time = make_sampler(
            config.service_time_ms, streams.generator("gateway.service"), scale=1e-3
        )
        self.service_time = self._service_time
        self.stats = StationStats("gateway", config.workers, interval_s)
        self.serve_abandoned = config.serve_abandoned
        limit = config.rate_limit
        self.limiter = (
            None
            if limit is None
            else TokenBucket(limit.rate_per_s, limit.burst or max(1.0, limit.rate_per_s))
        )
        self.room = None if config.peak_shaving is None else WaitingRoom(config.peak_shaving)
        self.guarded = self.limiter is not None or self.room is not None
        self.fast = not self.guarded
        """No protection judges requests and no fault: :meth:`try_enter` may admit."""
        # Protections that judge every request, not only a visit's first one.
        self._limits_all = limit is not None and not limit.new_visits_only
        shaving = config.peak_shaving
        self._shapes_all = shaving is not None and not shaving.new_visits_only
        self.shed = IntervalCounter(interval_s)
        """Requests shed by the rate limiter or the waiting room, per interval."""
        self.shed_count = 0
        self.passed_limiter = 0
        """Requests the rate limiter judged and let through."""
        self.spike_start_s = spike_start_s
        self.first_shed_s: float | None = None
        """First shed at or after the spike's start."""
        scaling = config.autoscaling
        self.workers_per_instance = (
            config.workers if scaling is None else scaling.workers_per_instance
        )
        self.instances = config.workers // self.workers_per_instance
        self.peak_instances = self.instances
        self.capacity_factor = 1.0

    # --------------------------------------------------------------- capacity

    def set_instances(self, instances: int) -> None:
        """Instances serving from now on."""
        self.instances = instances
        self.peak_instances = max(self.peak_instances, instances)
        self._resize()

    def set_fault(self, name: str, value: Any) -> None:
        """As :meth:`Impairable.set_fault`; a slowdown multiplies the worker's own time."""
        super().set_fault(name, value)
        self.fast = not (self.guarded or self.impaired)
        if name == "slowdown":
            base = self._service_time
            self.service_time = base if value == 1.0 else (lambda: value * base())

    def set_capacity_factor(self, factor: float) -> None:
        """Keep this fraction of the workers (a capacity fault, a lost site)."""
        self.capacity_factor = factor
        self._resize()

    def _resize(self) -> None:
        workers = max(1, round(self.instances * self.workers_per_instance * self.capacity_factor))
        resize(self.workers, self.stats, workers, self.env.now)

    def utilisation(self) -> float:
        """Fraction of the workers busy right now."""
        workers = self.workers
        return min(1.0, workers.count / workers.capacity)

    # --------------------------------------------------------------- requests

    def try_enter(self, now: float) -> float | None:
        """A worker at once, without a generator, when nothing can stand in the way.

        Returns the worker (as :meth:`enter` would) when the gateway is healthy, has no
        protections to judge the request and a worker is free with nobody waiting;
        otherwise None, and the caller goes through :meth:`enter`, which decides.
        """
        workers = self.workers
        if self.fast and workers.count < workers.capacity and not workers.queue:
            workers.count += 1
            self.stats.arrive(now, served=True)
            return now
        return None

    def enter(
        self, deadline: float, first: bool = False, lane: bool = False
    ) -> Generator[Any, Any, tuple[Outcome | None, Any]]:
        """Wait for a worker until ``deadline`` (the user's patience).

        ``first`` marks a visit's first request, the one limiters scoped to new visits
        judge; ``lane`` a request in the priority lane, served before the others and
        never turned away by a full queue.

        Returns:
            ``(None, worker)`` once a worker is assigned, to be given back with
            :meth:`leave` (the worker is the time the request arrived); or
            ``(outcome, None)`` when shed, rejected, failed or abandoned.
        """
        env, stats, workers = self.env, self.stats, self.workers
        now = env.now
        if self.impaired and self.fails():
            return _ERROR, None
        if self.guarded:
            refused = yield from self._admit(now, deadline, first)
            if refused is not None:
                return refused, None
            now = env.now
        if (
            len(workers.queue) >= self.queue_limit
            and workers.count >= workers.capacity
            and not lane
        ):
            stats.arrivals += 1
            stats.rejected += 1
            return _REJECTED, None
        request = workers.request(0 if lane else 1)
        granted = request.triggered
        stats.arrive(now, served=granted)
        if not granted:
            if self.serve_abandoned:
                request = yield from self._wait_regardless(request, now, deadline)
            else:
                request = yield from wait_for(env, request, deadline)
            if request is None:
                if not self.serve_abandoned:
                    stats.leave_queue(now, env.now, by_user=True)
                return _ABANDONED, None
            stats.begin(now, env.now)
        return None, now

    def _admit(
        self, now: float, deadline: float, first: bool
    ) -> Generator[Any, Any, Outcome | None]:
        """The rate limiter and the waiting room: None when the request may queue."""
        limiter, room = self.limiter, self.room
        if limiter is not None and (first or self._limits_all):
            if not limiter.take(now):
                return self._shed(now)
            self.passed_limiter += 1
        if room is not None and (first or self._shapes_all):
            wait = room.turn(now)
            if wait is None:
                return self._shed(now)
            if wait > 0:
                if now + wait > deadline:
                    yield self.env.timeout(deadline - now)
                    return _ABANDONED
                yield self.env.timeout(wait)
        return None

    def _shed(self, now: float) -> Outcome:
        self.shed.add(now)
        self.shed_count += 1
        if self.first_shed_s is None and now >= self.spike_start_s:
            self.first_shed_s = now
        return _SHED

    def _wait_regardless(
        self, request: Any, arrived: float, deadline: float
    ) -> Generator[Any, Any, Any]:
        """Wait until ``deadline``; a request left behind is still served when its turn comes."""
        env = self.env
        yield first_of(env, request, deadline)
        if request.triggered:
            return request
        request.callbacks.append(lambda _: self._serve_orphan(request, arrived))
        return None

    def _serve_orphan(self, request: Any, arrived: float) -> None:
        """A worker takes up a request whose user has left, and finds out only at the end."""
        env = self.env
        self.stats.begin(arrived, env.now)
        env.timeout(self.service_time()).callbacks.append(lambda _: self.leave(arrived))

    def leave(self, worker: float) -> None:
        """Give the worker back at the end of the request (``worker``: as :meth:`enter` gave)."""
        self.workers.release()
        stats = self.stats
        stats.served += 1
        stats.finish(worker, self.env.now)


class Autoscaler:
    """Adds and removes the gateway's instances: reactively, on a schedule, or both.

    Reactive: after each window, it wants ``ceil(instances * utilisation / target)``
    instances (within 10% of the target it does nothing), then waits out its cooldown.
    Instances asked for serve after the provisioning delay; instances given up stop at
    once. Scheduled changes are asked for at their time, with the same delay.

    Args:
        env: the simulation environment.
        gateway: the gateway it scales.
        config: the scenario's ``gateway.autoscaling``.
    """

    def __init__(self, env: simpy.Environment, gateway: Gateway, config: Autoscaling) -> None:
        self.env = env
        self.gateway = gateway
        self.config = config
        self.wanted = gateway.instances
        self.initial = gateway.instances
        """Instances at the start (instances are billed from ``initial`` and ``decisions``)."""
        self.pending = 0
        """Instances asked for and not serving yet."""
        self.decisions: list[tuple[float, int]] = []
        """Every change of the wanted instance count, as (time, instances)."""
        for step in config.schedule:
            env.timeout(step.at_s).callbacks.append(
                functools.partial(self._scheduled, step.instances)
            )
        if config.target_utilisation is not None:
            env.process(self._watch())

    def _scheduled(self, instances: int, _: object) -> None:
        self._want(instances)

    def _want(self, instances: int) -> None:
        config = self.config
        instances = min(config.max_instances, max(config.min_instances, instances))
        change = instances - self.wanted
        if not change:
            return
        self.wanted = instances
        self.decisions.append((self.env.now, instances))
        if change < 0:
            cancelled = min(-change, self.pending)  # instances still starting go first
            self.pending -= cancelled
            stopped = -change - cancelled
            if stopped:
                self.gateway.set_instances(self.gateway.instances - stopped)
            return
        self.pending += change
        self.env.timeout(config.provisioning_delay_s).callbacks.append(
            functools.partial(self._started, change)
        )

    def _started(self, asked: int, _: object) -> None:
        """A batch asked for earlier is ready; any of it cancelled meanwhile is not."""
        ready = min(asked, self.pending)
        if ready:
            self.pending -= ready
            self.gateway.set_instances(self.gateway.instances + ready)

    def _watch(self) -> Generator[Any, Any, None]:
        env, config = self.env, self.config
        target = config.target_utilisation
        assert target is not None
        last_action = -math.inf
        window = UtilisationWindow(self.gateway.stats, env.now)
        while True:
            yield env.timeout(config.evaluate_every_s)
            now = env.now
            utilisation = window.measure(now)
            if now - last_action < config.cooldown_s or utilisation < 0:
                continue
            if abs(utilisation / target - 1) <= 0.1:
                continue
            online = self.gateway.instances
            wanted = math.ceil(online * min(utilisation, 1.0) / target)
            # Scale in only once what was asked for is serving; scale out on top of it.
            if wanted > self.wanted or (wanted < self.wanted and not self.pending):
                self._want(wanted)
                last_action = now


class DynamicRate:
    """Steers a token bucket's rate to a target utilisation of the gateway's workers.

    After each window it sets the rate to (requests it let through per second) x target
    / (measured utilisation), at most the configured rate; the new rate takes effect
    after the detection delay.

    Args:
        env: the simulation environment.
        gateway: the gateway whose limiter it steers.
        config: the scenario's ``gateway.rate_limit``.
    """

    def __init__(self, env: simpy.Environment, gateway: Gateway, config: RateLimit) -> None:
        assert config.dynamic is not None and gateway.limiter is not None
        self.env = env
        self.gateway = gateway
        self.ceiling = config.rate_per_s
        self.dynamic = config.dynamic
        self.changes: list[tuple[float, float]] = []
        """Every rate that took effect, as (time, requests per second)."""
        env.process(self._watch())

    def _watch(self) -> Generator[Any, Any, None]:
        env, gateway, dynamic = self.env, self.gateway, self.dynamic
        window = UtilisationWindow(gateway.stats, env.now)
        admitted, start = 0, env.now
        while True:
            yield env.timeout(dynamic.evaluate_every_s)
            now = env.now
            # At most 1: requests in service keep their worker when capacity shrinks.
            utilisation = min(1.0, window.measure(now))
            admitted_now = gateway.passed_limiter
            rate = (admitted_now - admitted) / (now - start)
            admitted, start = admitted_now, now
            if utilisation <= 0 or rate <= 0:
                continue
            new_rate = min(self.ceiling, max(1.0, rate * dynamic.target_utilisation / utilisation))
            env.timeout(dynamic.detection_delay_s).callbacks.append(
                functools.partial(self._set, new_rate)
            )

    def _set(self, rate: float, _: object) -> None:
        limiter = self.gateway.limiter
        assert limiter is not None
        limiter.set_rate(self.env.now, rate)
        self.changes.append((self.env.now, rate))


class NoGateway:
    """No entry tier: requests go straight to the services (for reduced scenarios)."""

    stats = None
    impaired = False
    shed_count = 0
    first_shed_s = None
    peak_instances = None

    @staticmethod
    def service_time() -> float:
        """No worker time."""
        return 0.0

    @staticmethod
    def utilisation() -> float:
        """Never busy."""
        return 0.0

    @staticmethod
    def try_enter(now: float) -> float:
        """Admit at once."""
        return now

    @staticmethod
    def enter(
        deadline: float, first: bool = False, lane: bool = False
    ) -> Generator[Any, Any, tuple[Outcome | None, Any]]:
        """Admit at once."""
        return None, None
        yield  # a generator, like Gateway.enter

    @staticmethod
    def leave(worker: Any) -> None:
        """Nothing to give back."""
