"""Counted servers (components/servers.py) do what simpy.Resource does, with fewer events."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from simulator.measure.metrics import sorted_quantile
from simulator.model.components.servers import GRANTED, Servers
from simulator.model.components.station import wait_for


def _condition_wait(env, request, until):
    """Waiting as SimPy's documentation does it: a condition of the request and a timer."""
    granted = yield request | env.timeout(max(until - env.now, 0.0))
    if request not in granted:
        request.cancel()
        return None
    return request


def _workload(resource_of, seed: int, priority: bool, ties: bool, wait=wait_for):
    """Customers who queue with patience, hold a server, release it; capacity changes.

    Returns the log of (time, customer, what) and the number of events processed.
    ``ties``: times on a coarse grid, so that many things happen at the same instant.
    """
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    resource = resource_of(env)
    log: list[tuple[float, int, str]] = []

    def draw(mean: float) -> float:
        value = rng.exponential(mean)
        return round(value, 1) if ties else value

    def customer(i: int, lane: int):
        now = env.now
        if priority:
            request = (
                resource.request(lane)
                if isinstance(resource, Servers)
                else (resource.request(priority=lane))
            )
        else:
            request = resource.request()
        if not request.triggered:
            request = yield from wait(env, request, now + draw(1.0))
            if request is None:
                log.append((env.now, i, "reneged"))
                return
        log.append((env.now, i, "served"))
        yield env.timeout(draw(0.9))
        resource.release(request)
        log.append((env.now, i, "left"))

    def arrivals():
        for i in range(400):
            yield env.timeout(draw(0.3))
            env.process(customer(i, int(rng.integers(0, 2))))

    def capacity():
        for c in (1, 4, 2, 3):
            yield env.timeout(draw(20.0))
            if isinstance(resource, Servers):
                resource.resize(c)
            else:
                resource._capacity = c
                while resource.queue and resource.count < c:
                    resource._trigger_put(None)
            log.append((env.now, -1, f"capacity {c}"))

    env.process(arrivals())
    env.process(capacity())
    env.run()
    return log, next(env._eid)


@pytest.mark.parametrize("priority", [False, True])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_servers_grant_as_simpy_resource_does(seed: int, priority: bool, ties: bool) -> None:
    simpy_type = simpy.PriorityResource if priority else simpy.Resource
    theirs, their_events = _workload(lambda env: simpy_type(env, capacity=2), seed, priority, ties)
    ours, our_events = _workload(
        lambda env: Servers(env, 2, priority=priority), seed, priority, ties
    )
    assert ours == theirs
    served = sum(what == "served" for _, _, what in ours)
    reneged = sum(what == "reneged" for _, _, what in ours)
    assert served > 50 and reneged > 10  # both paths were exercised
    assert our_events < their_events  # no request or release events while servers are free


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_waiting_with_first_of_is_waiting_on_a_condition(seed: int, ties: bool) -> None:
    def resource_of(env):
        return simpy.Resource(env, capacity=2)

    theirs = _workload(resource_of, seed, False, ties, wait=_condition_wait)
    ours = _workload(resource_of, seed, False, ties)
    assert ours == theirs  # the same log and the same number of events


def test_a_free_server_is_granted_without_an_event() -> None:
    env = simpy.Environment()
    servers = Servers(env, 1)
    assert servers.request() is GRANTED and servers.count == 1
    waiting = servers.request()
    assert not waiting.triggered and list(servers.queue) == [waiting]
    servers.release()
    assert servers.count == 0 and not waiting.triggered  # handed over when processed
    env.run()
    assert waiting.triggered and servers.count == 1 and not servers.queue


def test_sorted_quantile_is_numpys_linear_quantile_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    for trial in range(3000):
        n = int(rng.integers(1, 300))
        values = rng.lognormal(5, 1, n) if trial % 2 else rng.integers(0, 4, n).astype(float)
        ordered = sorted(values.tolist())
        for q in (0.0, 0.25, 0.5, 0.95, 0.99, 0.999, 1.0):
            assert sorted_quantile(ordered, q) == float(np.quantile(values, q))
