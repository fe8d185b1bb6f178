"""Closed-form queueing results the simulator is validated against.

Where a textbook answer exists the model must reproduce it: a station fed by Poisson
arrivals with exponential service is an M/M/c queue, whose probability of waiting is
Erlang's C formula and whose mean wait follows from it.
"""

from __future__ import annotations

__all__ = [
    "erlang_b",
    "erlang_c",
    "md1_mean_wait",
    "mmcm_abandonment",
    "mmc_mean_wait",
    "mmck_blocking",
    "mmck_mean_wait",
    "mmck_probabilities",
    "ttl_hit_ratio",
]


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


def mmck_probabilities(arrival_rate: float, mean_service: float, servers: int, capacity: int):
    """Stationary distribution p_0..p_K of M/M/c/K (K = capacity, servers + waiting room)."""
    offered = arrival_rate * mean_service
    weights = [1.0]
    for n in range(1, capacity + 1):
        weights.append(weights[-1] * offered / min(n, servers))
    total = sum(weights)
    return [w / total for w in weights]


def mmck_blocking(arrival_rate: float, mean_service: float, servers: int, capacity: int) -> float:
    """Probability that an arrival finds M/M/c/K full and is turned away (p_K)."""
    return mmck_probabilities(arrival_rate, mean_service, servers, capacity)[-1]


def mmck_mean_wait(arrival_rate: float, mean_service: float, servers: int, capacity: int) -> float:
    """Mean time in queue of admitted arrivals: Lq / (lambda (1 - p_K)) by Little's law."""
    p = mmck_probabilities(arrival_rate, mean_service, servers, capacity)
    queue = sum((n - servers) * pn for n, pn in enumerate(p) if n > servers)
    return queue / (arrival_rate * (1 - p[-1]))


def md1_mean_wait(arrival_rate: float, service: float) -> float:
    """Mean time in queue of M/D/1 (Pollaczek-Khinchine with zero service variance)."""
    rho = arrival_rate * service
    if rho >= 1:
        raise ValueError(f"unstable: utilisation {rho} >= 1")
    return rho * service / (2 * (1 - rho))


def mmcm_abandonment(
    arrival_rate: float, mean_service: float, servers: int, mean_patience: float
) -> float:
    """Share of arrivals who give up in M/M/c+M (Erlang A, Palm's queue with impatience).

    The number inside is a birth-death chain with births lambda and deaths
    min(n, c) mu + max(n - c, 0) theta; by Little's law applied to the abandonment
    flow, P(abandon) = theta E[queue length] / lambda. The chain is summed until its
    terms are negligible.
    """
    mu, theta = 1 / mean_service, 1 / mean_patience
    weight, total, queued = 1.0, 1.0, 0.0
    n = 0
    while True:
        n += 1
        weight *= arrival_rate / (min(n, servers) * mu + max(n - servers, 0) * theta)
        total += weight
        queued += max(n - servers, 0) * weight
        if n > servers and weight < 1e-16 * total:
            break
    return theta * queued / total / arrival_rate
