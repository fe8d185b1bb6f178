"""Validation against queueing theory, with tolerances taken from confidence intervals.

Each test runs independent replications (streams keyed by replication), deletes a
warm-up period because a run that starts empty under-states waits, and checks that the
closed-form value lies inside the 95% Student-t confidence interval of the replication
means. A correct model fails such a check with probability 5%; the seeds are fixed, so
the outcome is reproducible, and a model error of the size of the CI fails it.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

import simulator
from simulator.validation.theory import erlang_b, erlang_c, mmc_mean_wait, ttl_hit_ratio
from tests.conftest import exp, fixed, small


def single_station(rate: float, mean_service_ms: float, servers: int, **over) -> dict:
    """A shop reduced to the gateway as M/M/c: one-page visits, nothing else takes time."""
    segment = {
        **small()["segments"][0],
        "bounce_rate": 1.0,
        "patience_s": fixed(1e9),
    }
    return small(
        traffic={"baseline_per_s": rate},
        segments=[segment],
        gateway={"workers": servers, "service_time_ms": exp(mean_service_ms)},
        cache={"levels": [{"name": "redis", "ttl_s": 1e9, "latency_ms": fixed(0)}]},
        database={
            "pool_size": 1000,
            "pool_timeout_ms": 1e9,
            "read_time_ms": fixed(0),
            "write_time_ms": fixed(0),
        },
        **over,
    )


def confidence_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval for the mean of independent replication values."""
    n = len(values)
    mean = float(np.mean(values))
    half = stats.t.ppf((1 + level) / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n)
    return mean - half, mean + half


def test_erlang_formulas_on_known_values():
    """Erlang B and C agree with published table values."""
    assert abs(erlang_b(1, 1.0) - 0.5) < 1e-12
    assert abs(erlang_b(10, 5.0) - 0.018384) < 1e-6  # standard Erlang B table
    assert abs(erlang_c(1, 0.8) - 0.8) < 1e-12  # M/M/1: P(wait) = rho
    assert abs(mmc_mean_wait(0.8, 1.0, 1) - 4.0) < 1e-12  # M/M/1: rho / (mu - lambda)


def test_gateway_as_mmc_reproduces_erlang_c():
    """Gateway with c=4 workers at 80% load: mean wait and P(wait) inside their 95% CIs."""
    rate, service_ms, servers = 8.0, 400.0, 4
    scenario = single_station(rate, service_ms, servers, duration_s=3000, warmup_s=300)
    waits, waited = [], []
    for replication in range(8):
        station = simulator.simulate(scenario, seed=2024, replication=replication).summary[
            "stations"
        ]["gateway"]
        waits.append(station["wait_mean_s"])
        waited.append(station["waited_fraction"])
    expected_wait = mmc_mean_wait(rate, service_ms / 1000, servers)
    low, high = confidence_interval(waits)
    assert low <= expected_wait <= high, (expected_wait, low, high)
    expected_p = erlang_c(servers, rate * service_ms / 1000)
    low, high = confidence_interval(waited)
    assert low <= expected_p <= high, (expected_p, low, high)


def test_gateway_utilisation_is_offered_load_per_server():
    """Utilisation of an M/M/c station is lambda / (c mu) (95% CI over replications)."""
    rate, service_ms, servers = 8.0, 400.0, 4
    scenario = single_station(rate, service_ms, servers, duration_s=2000, warmup_s=200)
    values = [
        simulator.simulate(scenario, seed=7, replication=r).summary["stations"]["gateway"][
            "utilisation"
        ]
        for r in range(6)
    ]
    low, high = confidence_interval(values)
    assert low <= rate * service_ms / 1000 / servers <= high, (low, high)


def test_ttl_cache_hit_ratio_matches_the_renewal_formula():
    """One key, Poisson requests: hit ratio = rT / (1 + rT), inside the 95% CI."""
    rate, ttl = 5.0, 0.4
    scenario = single_station(rate, 1.0, 64, duration_s=2000)
    scenario["catalogue"] = {"items": 1, "zipf_exponent": 1.0}
    scenario["cache"] = {"levels": [{"name": "redis", "ttl_s": ttl, "latency_ms": fixed(0)}]}
    ratios = [
        simulator.simulate(scenario, seed=3, replication=r).summary["cache_hit_ratio"]
        for r in range(6)
    ]
    low, high = confidence_interval(ratios)
    assert low <= ttl_hit_ratio(rate, ttl) <= high, (ttl_hit_ratio(rate, ttl), low, high)
