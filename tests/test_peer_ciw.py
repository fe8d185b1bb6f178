"""Peer comparison: our simulator and Ciw agree on mean waits for the same networks.

Ciw (https://ciw.readthedocs.io) is an established discrete-event library for queueing
networks. Each validation scenario that reduces the shop to a textbook network is built
again in Ciw, and both simulators must give statistically indistinguishable mean waits:

- ``scenarios/validation/mmc.yaml``: the database pool as M/M/4 (Poisson 8/s, exponential
  service of mean 400 ms).
- ``scenarios/validation/tandem.yaml``: database (2 servers, mean 200 ms), payment channel
  (3 slots, mean 300 ms) and warehouse (2 pickers, mean 200 ms) in series, Poisson 8/s in.

Method. Each simulator runs ``REPLICATIONS`` independent replications of 4000 s, and the
first 400 s are deleted (ours: the scenario's ``warmup_s``; Ciw: only records whose
arrival at the node is at or after 400 s). Seeds are fixed and never chosen to make a
test pass: ours ``seed=OUR_SEED`` (the scenarios' own seed) with ``replication=r``, Ciw
``ciw.seed(1000 + r)``. The replication means of the two simulators are compared with a
Welch two-sample t-test, i.e. a Welch confidence interval on the difference of means.

Family-wise error. The file makes two families of checks, each at family-wise level
0.05 with a Bonferroni split:

- peer agreement, 5 comparisons (M/M/c wait; tandem wait at each of 3 stations; tandem
  end-to-end sojourn): each asserts that the two-sided 99% Welch interval on the
  difference contains 0 (p-value above 0.01);
- theory sanity, 10 checks (M/M/c wait; 3 tandem waits; tandem sojourn, each for both
  simulators): the closed form lies in the 99.5% Student-t interval of the replication
  means.

So a correct simulator and a correct peer fail this file with probability at most 0.10
(union bound), over the choice of seeds; with the seeds fixed the outcome is reproducible.

Power. A comparison that passes only because the replications are noisy is caught: the
half-width of the 99% interval on the difference must be below ``MAX_RELATIVE_HALF_WIDTH``
(15%) of the theoretical value. With 10 replications each the expected half-widths are
about 9-11% for the waits and 4-5% for the end-to-end sojourn, so the comparisons
resolve discrepancies of roughly that size. A 10% bound is not reachable for the waits
within the run-time budget (it needs roughly 15 replications each).

Run time. The replications take about 85 s of CPU time (per replication: ours 1.3 s and
3.5 s, Ciw 1.0 s and 2.6 s for M/M/c and tandem), so they run in a pool of two processes:
about 45 s of wall time on an otherwise idle 2-core machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ciw
import numpy as np
import pytest
from scipy import stats

import simulator
from simulator.validation.theory import mmc_mean_wait
from tests.conftest import SCENARIOS

REPLICATIONS = 10
OUR_SEED = 1
CIW_SEED_BASE = 1000
PEER_COMPARISONS = 5
THEORY_CHECKS = 10
FAMILY_WISE_ALPHA = 0.05
PEER_ALPHA = FAMILY_WISE_ALPHA / PEER_COMPARISONS
THEORY_ALPHA = FAMILY_WISE_ALPHA / THEORY_CHECKS
MAX_RELATIVE_HALF_WIDTH = 0.15

MMC_PATH = SCENARIOS / "validation" / "mmc.yaml"
TANDEM_PATH = SCENARIOS / "validation" / "tandem.yaml"
ARRIVAL_RATE = 8.0
DURATION_S = 4000.0
WARMUP_S = 400.0


@dataclass(frozen=True)
class Station:
    """A multi-server FCFS station with exponential service.

    Attributes:
        name: the station's key in ``summary["stations"]``.
        servers: number of servers.
        mean_service_s: mean service time in seconds.
    """

    name: str
    servers: int
    mean_service_s: float

    def theory_wait(self) -> float:
        """Mean wait in queue of this station fed by Poisson arrivals (M/M/c)."""
        return mmc_mean_wait(ARRIVAL_RATE, self.mean_service_s, self.servers)


MMC_STATION = Station("database", 4, 0.4)
TANDEM = (
    Station("database", 2, 0.2),
    Station("payment.only", 3, 0.3),
    Station("warehouse.only", 2, 0.2),
)
# Jackson: the sojourn through the network is the sum of the stations' M/M/c sojourns.
TANDEM_THEORY_SOJOURN = sum(s.theory_wait() + s.mean_service_s for s in TANDEM)


@dataclass(frozen=True)
class Samples:
    """One quantity's replication means from each simulator.

    Attributes:
        ours: our simulator's replication means.
        peer: Ciw's replication means.
    """

    ours: np.ndarray
    peer: np.ndarray


@dataclass(frozen=True)
class Difference:
    """Welch comparison of two samples: mean difference, its interval, the p-value.

    Attributes:
        estimate: mean of ours minus mean of the peer.
        low: lower end of the interval on the difference.
        high: upper end of the interval on the difference.
        p_value: two-sided Welch t-test p-value.
    """

    estimate: float
    low: float
    high: float
    p_value: float

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2


def welch(samples: Samples, alpha: float) -> Difference:
    """Welch t-test and two-sided (1 - alpha) interval on mean(ours) - mean(peer)."""
    result = stats.ttest_ind(samples.ours, samples.peer, equal_var=False)
    interval = result.confidence_interval(confidence_level=1 - alpha)
    return Difference(
        float(np.mean(samples.ours) - np.mean(samples.peer)),
        float(interval.low),
        float(interval.high),
        float(result.pvalue),
    )


def confidence_interval(values: Iterable[float], alpha: float) -> tuple[float, float]:
    """Two-sided (1 - alpha) Student-t interval for the mean of replication values."""
    values = np.asarray(list(values), dtype=float)
    n = len(values)
    half = stats.t.ppf(1 - alpha / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n)
    mean = float(np.mean(values))
    return mean - half, mean + half


# --- one replication of each simulator (module-level, so worker processes can run them)


def run_ours(path: Path, replication: int) -> dict[str, tuple[float, float]]:
    """Our simulator: (mean wait, mean sojourn) per station that saw arrivals."""
    result = simulator.simulate(path, seed=OUR_SEED, replication=replication)
    return {
        name: (station["wait_mean_s"], station["sojourn_mean_s"])
        for name, station in result.summary["stations"].items()
        if station["arrivals"]
    }


def run_ciw(stations: tuple[Station, ...], replication: int) -> dict[str, tuple[float, float]]:
    """Ciw: the stations in series, Poisson arrivals at the first; same keys as ours.

    Records of customers that arrived at a node during the warm-up are deleted, and
    the run stops at ``DURATION_S``.
    """
    n = len(stations)
    routing = [[1.0 if j == i + 1 else 0.0 for j in range(n)] for i in range(n)]
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=ARRIVAL_RATE)] + [None] * (n - 1),
        service_distributions=[ciw.dists.Exponential(rate=1 / s.mean_service_s) for s in stations],
        number_of_servers=[s.servers for s in stations],
        routing=routing,
    )
    ciw.seed(CIW_SEED_BASE + replication)
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_time(DURATION_S)
    waits: list[list[float]] = [[] for _ in stations]
    sojourns: list[list[float]] = [[] for _ in stations]
    for record in simulation.get_all_records():
        if record.record_type == "service" and record.arrival_date >= WARMUP_S:
            waits[record.node - 1].append(record.waiting_time)
            sojourns[record.node - 1].append(record.exit_date - record.arrival_date)
    return {
        s.name: (float(np.mean(w)), float(np.mean(t)))
        for s, w, t in zip(stations, waits, sojourns, strict=True)
    }


def replicate(
    ours: Callable[[int], dict[str, tuple[float, float]]],
    peer: Callable[[int], dict[str, tuple[float, float]]],
) -> tuple[list[dict[str, tuple[float, float]]], list[dict[str, tuple[float, float]]]]:
    """Run ``REPLICATIONS`` of both simulators in a pool of (at most) two processes."""
    workers = min(2, os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        ours_futures = [pool.submit(ours, r) for r in range(REPLICATIONS)]
        peer_futures = [pool.submit(peer, r) for r in range(REPLICATIONS)]
        return [f.result() for f in ours_futures], [f.result() for f in peer_futures]


def _ours_mmc(replication: int) -> dict[str, tuple[float, float]]:
    return run_ours(MMC_PATH, replication)


def _peer_mmc(replication: int) -> dict[str, tuple[float, float]]:
    return run_ciw((MMC_STATION,), replication)


def _ours_tandem(replication: int) -> dict[str, tuple[float, float]]:
    return run_ours(TANDEM_PATH, replication)


def _peer_tandem(replication: int) -> dict[str, tuple[float, float]]:
    return run_ciw(TANDEM, replication)


def _column(runs: list[dict[str, tuple[float, float]]], station: str, field: int) -> np.ndarray:
    return np.array([run[station][field] for run in runs])


# --- fixtures: the replications, run once per module


@pytest.fixture(scope="module")
def mmc_waits() -> Samples:
    """Mean wait at the M/M/4 database pool, per replication, from both simulators."""
    ours, peer = replicate(_ours_mmc, _peer_mmc)
    return Samples(_column(ours, "database", 0), _column(peer, "database", 0))


@pytest.fixture(scope="module")
def tandem() -> dict[str, Samples]:
    """Tandem figures per replication: ``wait:<station>`` and ``sojourn`` (end to end)."""
    ours, peer = replicate(_ours_tandem, _peer_tandem)
    samples = {
        f"wait:{s.name}": Samples(_column(ours, s.name, 0), _column(peer, s.name, 0))
        for s in TANDEM
    }
    samples["sojourn"] = Samples(
        sum(_column(ours, s.name, 1) for s in TANDEM),
        sum(_column(peer, s.name, 1) for s in TANDEM),
    )
    return samples


def assert_agree(samples: Samples, theory: float) -> None:
    """No significant difference at PEER_ALPHA, and an interval narrow enough to mean it."""
    diff = welch(samples, PEER_ALPHA)
    detail = (
        f"ours {np.mean(samples.ours):.4f}, Ciw {np.mean(samples.peer):.4f}, "
        f"difference {diff.estimate:+.4f} in [{diff.low:+.4f}, {diff.high:+.4f}], "
        f"p = {diff.p_value:.3f}, theory {theory:.4f}"
    )
    assert diff.low <= 0 <= diff.high, detail
    assert diff.half_width < MAX_RELATIVE_HALF_WIDTH * theory, detail


def assert_matches_theory(values: np.ndarray, theory: float) -> None:
    """The closed form lies in the (1 - THEORY_ALPHA) interval of the replication means."""
    low, high = confidence_interval(values, THEORY_ALPHA)
    assert low <= theory <= high, (theory, low, high)


# --- tests


def test_peer_networks_mirror_the_scenario_files():
    """The Ciw networks have the scenario files' arrival rate, run length, servers, means."""
    mmc = simulator.load_scenario(MMC_PATH)
    tandem = simulator.load_scenario(TANDEM_PATH)
    for scenario in (mmc, tandem):
        assert scenario.traffic.baseline_per_s == ARRIVAL_RATE
        assert (scenario.duration_s, scenario.warmup_s) == (DURATION_S, WARMUP_S)
        assert scenario.seed == OUR_SEED
    assert mmc.database.pool_size == MMC_STATION.servers
    assert mmc.database.read_time_ms.mean == MMC_STATION.mean_service_s * 1000
    database, payment, warehouse = TANDEM
    assert tandem.database.pool_size == database.servers
    assert tandem.database.write_time_ms.mean == database.mean_service_s * 1000
    (channel,) = tandem.payment.channels
    assert f"payment.{channel.name}" == payment.name
    assert channel.capacity == payment.servers
    assert channel.latency_ms.mean == payment.mean_service_s * 1000
    (picking,) = tandem.fulfilment.warehouses
    assert f"warehouse.{picking.name}" == warehouse.name
    assert picking.pickers == warehouse.servers
    assert picking.pick_time_s.mean == warehouse.mean_service_s


def test_mmc_mean_wait_agrees_with_ciw(mmc_waits):
    """M/M/4 pool: the mean wait of ours and Ciw's do not differ (Welch, 99%), CI < 15%."""
    assert_agree(mmc_waits, MMC_STATION.theory_wait())


@pytest.mark.parametrize("simulator_name", ["ours", "peer"])
def test_mmc_mean_wait_matches_erlang_c(mmc_waits, simulator_name):
    """M/M/4 pool: Erlang C's mean wait lies in each simulator's 99.5% interval."""
    assert_matches_theory(getattr(mmc_waits, simulator_name), MMC_STATION.theory_wait())


@pytest.mark.parametrize("station", TANDEM, ids=lambda s: s.name)
def test_tandem_station_wait_agrees_with_ciw(tandem, station):
    """Tandem: at each station the mean waits of ours and Ciw's do not differ, CI < 15%."""
    assert_agree(tandem[f"wait:{station.name}"], station.theory_wait())


def test_tandem_end_to_end_sojourn_agrees_with_ciw(tandem):
    """Tandem: the mean time through the three stations agrees with Ciw's, CI < 15%."""
    assert_agree(tandem["sojourn"], TANDEM_THEORY_SOJOURN)


@pytest.mark.parametrize("simulator_name", ["ours", "peer"])
@pytest.mark.parametrize("station", TANDEM, ids=lambda s: s.name)
def test_tandem_station_wait_matches_erlang_c(tandem, station, simulator_name):
    """Tandem (Burke): each station's M/M/c mean wait lies in the 99.5% interval."""
    samples = tandem[f"wait:{station.name}"]
    assert_matches_theory(getattr(samples, simulator_name), station.theory_wait())


@pytest.mark.parametrize("simulator_name", ["ours", "peer"])
def test_tandem_sojourn_matches_jackson(tandem, simulator_name):
    """Tandem (Jackson): the sum of M/M/c sojourns lies in the 99.5% interval."""
    assert_matches_theory(getattr(tandem["sojourn"], simulator_name), TANDEM_THEORY_SOJOURN)
