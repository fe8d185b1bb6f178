"""Closed-form queueing results the simulator is validated against.

Where a textbook answer exists the model must reproduce it: a station fed by Poisson
arrivals with exponential service is an M/M/c queue, whose probability of waiting is
Erlang's C formula and whose mean wait follows from it.
"""

from __future__ import annotations

__all__ = ["erlang_b", "erlang_c", "mmc_mean_wait", "ttl_hit_ratio"]


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c with offered load a = lambda / mu (Erlang B).

    Uses the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)).
    """
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in M/M/c (Erlang C); needs load < servers."""
    if offered_load >= servers:
        raise ValueError(f"unstable: offered load {offered_load} >= {servers} servers")
    b = erlang_b(servers, offered_load)
    rho = offered_load / servers
    return b / (1 - rho * (1 - b))


def mmc_mean_wait(arrival_rate: float, mean_service: float, servers: int) -> float:
    """Mean time in queue (before service) of M/M/c: C(c, a) / (c mu - lambda)."""
    offered = arrival_rate * mean_service
    return erlang_c(servers, offered) * mean_service / (servers - offered)


def ttl_hit_ratio(request_rate: float, ttl: float) -> float:
    """Hit ratio of one key with Poisson requests in a cache that refills on a miss.

    Each miss starts a TTL window; the window holds on average rate * TTL hits, so
    a cycle is one miss plus rate * TTL hits (rebuild time taken as zero).
    """
    hits = request_rate * ttl
    return hits / (1 + hits)
