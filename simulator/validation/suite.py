"""The validation suite: the model against closed-form queueing results.

Each case runs a scenario of ``scenarios/validation/`` that reduces the shop to a
textbook queue, in independent replications, and asks whether the closed-form value
lies inside the confidence interval of the replication means.

How often a correct model passes: the intervals are Student-t intervals at level
1 - alpha/k for k checks (Bonferroni), so for a fresh seed a correct model passes
*all* k checks with probability at least 1 - alpha = 95%, and each single check with
probability 1 - alpha/k. A fixed seed makes the verdict reproducible; the seed is
never chosen to make a check pass.

Why warm-up deletion: a run starts with empty queues, so early customers wait less
than in steady state, and at utilisation 0.8 the bias is large enough to fail the
check. Each validation scenario deletes a warm-up (``warmup_s``) of many relaxation
times of its queue, about 1 / (mu (1 - sqrt(rho))^2) for one server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.experiment.estimates import confidence_interval
from simulator.results import simulate
from simulator.scenario.loader import load_scenario
from simulator.scenario.presets import preset_dir
from simulator.scenario.schema import Scenario
from simulator.validation.theory import (
    erlang_c,
    md1_mean_wait,
    mmc_mean_wait,
    mmck_blocking,
    mmck_mean_wait,
)

__all__ = ["Check", "checks", "confidence_interval", "run_validation"]

Summary = dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One quantity of one validation scenario compared with its closed form."""

    case: str
    scenario: str
    measure: Callable[[Summary], float]
    theory: float


def _station(name: str, field: str) -> Callable[[Summary], float]:
    return lambda s: s["stations"][name][field]


def _blocked(name: str) -> Callable[[Summary], float]:
    return lambda s: s["stations"][name]["rejected"] / s["stations"][name]["arrivals"]


def _sojourn_sum(*names: str) -> Callable[[Summary], float]:
    return lambda s: sum(s["stations"][n]["sojourn_mean_s"] for n in names)


def _ms(distribution: Any) -> float:
    return distribution.average() / 1000


def checks(folder: Path | None = None) -> list[Check]:
    """The suite's checks; theory values are computed from the scenarios' own parameters."""
    folder = folder or preset_dir() / "validation"

    def load(name: str) -> Scenario:
        return load_scenario(folder / f"{name}.yaml")

    out: list[Check] = []
    s = load("mm1")
    assert s.gateway is not None, "mm1.yaml validates the gateway"
    lam, service = s.traffic.baseline_per_s, _ms(s.gateway.service_time_ms)
    out += [
        Check(
            "M/M/1 gateway: mean wait (s)",
            "mm1",
            _station("gateway", "wait_mean_s"),
            mmc_mean_wait(lam, service, 1),
        ),
        Check(
            "M/M/1 gateway: P(wait)", "mm1", _station("gateway", "waited_fraction"), lam * service
        ),
        Check(
            "M/M/1 gateway: utilisation", "mm1", _station("gateway", "utilisation"), lam * service
        ),
    ]
    s = load("mmc")
    lam, service, c = s.traffic.baseline_per_s, _ms(s.database.read_time_ms), s.database.pool_size
    out += [
        Check(
            f"M/M/{c} DB pool: mean wait (s)",
            "mmc",
            _station("database", "wait_mean_s"),
            mmc_mean_wait(lam, service, c),
        ),
        Check(
            f"M/M/{c} DB pool: P(wait) (Erlang C)",
            "mmc",
            _station("database", "waited_fraction"),
            erlang_c(c, lam * service),
        ),
    ]
    s = load("mmck")
    gateway = s.gateway
    assert gateway is not None, "mmck.yaml validates the gateway"
    lam, service, c = s.traffic.baseline_per_s, _ms(gateway.service_time_ms), gateway.workers
    k = c + (gateway.queue_limit or 0)
    out += [
        Check(
            f"M/M/{c}/{k} gateway: P(block)",
            "mmck",
            _blocked("gateway"),
            mmck_blocking(lam, service, c, k),
        ),
        Check(
            f"M/M/{c}/{k} gateway: mean wait of admitted (s)",
            "mmck",
            _station("gateway", "wait_mean_s"),
            mmck_mean_wait(lam, service, c, k),
        ),
    ]
    s = load("md1")
    channel = s.payment.channels[0]
    lam, service = s.traffic.baseline_per_s, _ms(channel.latency_ms)
    out.append(
        Check(
            "M/D/1 payment: mean wait (s)",
            "md1",
            _station(f"payment.{channel.name}", "wait_mean_s"),
            md1_mean_wait(lam, service),
        )
    )
    s = load("tandem")
    lam = s.traffic.baseline_per_s
    channel, warehouse = s.payment.channels[0], s.fulfilment.warehouses[0]
    stations = [
        ("database", _ms(s.database.write_time_ms), s.database.pool_size),
        (f"payment.{channel.name}", _ms(channel.latency_ms), channel.capacity),
        (f"warehouse.{warehouse.name}", warehouse.pick_time_s.average(), warehouse.pickers),
    ]
    sojourns = [mmc_mean_wait(lam, mean, c) + mean for _, mean, c in stations]
    for (name, _, c), sojourn in zip(stations, sojourns, strict=True):
        out.append(
            Check(
                f"Tandem {name} (M/M/{c}): mean sojourn (s)",
                "tandem",
                _station(name, "sojourn_mean_s"),
                sojourn,
            )
        )
    out.append(
        Check(
            "Tandem network: mean time through (Jackson) (s)",
            "tandem",
            _sojourn_sum(*(name for name, _, _ in stations)),
            sum(sojourns),
        )
    )
    return out


def run_validation(
    replications: int = 10,
    seed: int = 20261123,
    family_alpha: float = 0.05,
    folder: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run every check; one row per check with theory, mean, CI and verdict.

    Args:
        replications: independent replications per scenario (at least 2).
        seed: the seed of every run; replications differ by their index.
        family_alpha: chance that a correct model fails at least one check.
        folder: where the validation scenarios are (default ``scenarios/validation``).
        progress: called with a short message before each run.
    """
    if replications < 2:
        raise ValueError("a confidence interval needs at least 2 replications")
    suite = checks(folder)
    level = 1 - family_alpha / len(suite)
    folder = folder or preset_dir() / "validation"
    summaries: dict[str, list[Summary]] = {}
    for name in dict.fromkeys(c.scenario for c in suite):
        scenario = load_scenario(folder / f"{name}.yaml")
        summaries[name] = []
        for r in range(replications):
            if progress:
                progress(f"{name} replication {r + 1}/{replications}")
            summaries[name].append(simulate(scenario, seed=seed, replication=r).summary)
    rows = []
    for check in suite:
        values = [check.measure(s) for s in summaries[check.scenario]]
        mean, low, high = confidence_interval(values, level)
        rows.append(
            {
                "case": check.case,
                "theory": check.theory,
                "simulated": mean,
                "ci_low": low,
                "ci_high": high,
                "ci_level": level,
                "relative_half_width": (high - low) / 2 / abs(check.theory),
                "passed": bool(low <= check.theory <= high),
            }
        )
    return pd.DataFrame(rows)
