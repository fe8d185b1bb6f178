"""Replications to an answer: the optimiser against the full grid, on an M/M/c staffing problem.

The problem of ``tests/test_optimize.py``: the fewest connections c of the ``mmc``
validation preset (Poisson arrivals at 8/s, exponential service of mean 0.4 s) whose
mean wait is within a target, over c = 4..12. Erlang C gives the answer c*.

Both methods use the same statistics: a plan meets the target when the one-sided 95%
upper confidence bound of its mean wait is within it (Student t over replications),
and the fewest such c is the answer. The grid runs every c with the replications the
optimiser confirms its answer with (``--confirm-replications``), as ``sweep`` would;
the optimiser spends what racing and its confirmation stage ask for. Reported: each
method's answer, replications and wall time, and the ratio of replications.

Usage::

    python benchmarks/optimize_mmc.py                 # target 0.03 s, 12 trials
    python benchmarks/optimize_mmc.py --target 0.1 --trials 10
    python benchmarks/optimize_mmc.py --json benchmarks/results/optimize-mmc.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

from simulator import experiment
from simulator.validation.theory import mmc_mean_wait

HERE = Path(__file__).resolve().parent
MMC = HERE.parent / "scenarios" / "validation" / "mmc.yaml"
ARRIVALS, SERVICE = 8.0, 0.4
LOW, HIGH = 4, 12
SHORT = ["duration_s=1500", "warmup_s=200"]
WAIT = "stations.database.wait_mean_s"


def erlang_answer(target: float) -> int:
    """c*: the fewest servers whose Erlang-C mean wait is within the target."""
    c = math.floor(ARRIVALS * SERVICE) + 1
    while mmc_mean_wait(ARRIVALS, SERVICE, c) > target:
        c += 1
    return c


def upper_bound(values: np.ndarray) -> float:
    """The one-sided 95% upper confidence bound of the mean."""
    n = len(values)
    return float(values.mean() + stats.t.ppf(0.95, n - 1) * values.std(ddof=1) / math.sqrt(n))


def main() -> None:
    """Run both methods and print (and optionally save) the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.03, help="mean-wait target, s")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--confirm-replications", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    c_star = erlang_answer(args.target)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        searched = experiment.run_optimization(
            MMC,
            [f"database.pool_size={LOW}:{HIGH}"],
            minimize="stations.database.servers",
            subject_to=[f"{WAIT}<={args.target}"],
            trials=args.trials,
            confirm_replications=args.confirm_replications,
            overrides=SHORT,
            workers=args.workers,
            out=folder,
            progress=False,
        )
    search_s = time.perf_counter() - started
    assert searched.chosen is not None
    search_answer = searched.chosen.values["database.pool_size"]

    started = time.perf_counter()
    grid = experiment.run_sweep(
        MMC,
        {"database.pool_size": list(range(LOW, HIGH + 1))},
        args.confirm_replications,
        overrides=SHORT,
        workers=args.workers,
        progress=False,
    )
    grid_s = time.perf_counter() - started
    meets = [
        point["database.pool_size"]
        for point, runs in zip(grid.points, grid.runs, strict=True)
        if upper_bound(runs.values()[WAIT].to_numpy()) <= args.target
    ]
    grid_answer = min(meets) if meets else None
    grid_replications = len(grid.points) * args.confirm_replications

    figures = {
        "target_wait_s": args.target,
        "erlang_c_answer": c_star,
        "optimizer_answer": search_answer,
        "optimizer_replications": searched.replications_total,
        "optimizer_trials": args.trials,
        "optimizer_wall_s": round(search_s, 1),
        "grid_answer": grid_answer,
        "grid_replications": grid_replications,
        "grid_wall_s": round(grid_s, 1),
        "replications_ratio": round(searched.replications_total / grid_replications, 3),
        "workers": args.workers,
    }
    print(
        f"target {args.target} s: Erlang C c* = {c_star}\n"
        f"  optimiser: c = {search_answer}, {searched.replications_total} replications "
        f"({args.trials} trials + confirmation), {search_s:.1f} s\n"
        f"  full grid: c = {grid_answer}, {grid_replications} replications "
        f"({HIGH - LOW + 1} points x {args.confirm_replications}), {grid_s:.1f} s\n"
        f"  optimiser / grid: {figures['replications_ratio']:.2f} of the replications"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
