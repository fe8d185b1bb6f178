"""Parallel efficiency: replications serially, on N local workers and on a Dask cluster.

Runs the same set of replications of a preset three times in this invocation: serially
in this process, on ``--workers`` local worker processes (started as ``campaign-sim
run -r`` starts them), and on a Dask ``LocalCluster`` of ``--workers`` single-threaded
worker processes (``--scheduler`` given to ``run_replications``, as ``--scheduler`` on
the command line does). For each it reports the wall time, the speed-up against the
serial run, the parallel efficiency (speed-up / workers) and whether the results are
identical to the serial ones. The workers' start-up is part of the local workers' time,
as it is for a user; the Dask cluster is started before the clock, as a user's cluster
is (its start-up is printed apart). ``--no-dask`` skips the cluster.

Usage::

    python benchmarks/parallel.py                         # 8 replications, 2 workers
    python benchmarks/parallel.py --replications 4 --scale 0.01 --workers 2
    python benchmarks/parallel.py --preset cs-backlog --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from simulator import experiment

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parent / "scenarios"


def _timed(
    runs: int, scenario: object, workers: int, scheduler: object = None
) -> tuple[float, experiment.Replications]:
    started = time.perf_counter()
    result = experiment.run_replications(
        scenario, runs, workers=workers, scheduler=scheduler, progress=False
    )
    return time.perf_counter() - started, result


def _on_dask(
    runs: int, scenario: object, workers: int
) -> tuple[float, float, experiment.Replications]:
    """Cluster start-up seconds, wall seconds and the replications, on a LocalCluster."""
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        startup = time.perf_counter() - started
        wall, result = _timed(runs, scenario, workers, client)
    return startup, wall, result


def main() -> None:
    """Measure and print one line per mode, then the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sale-start-spike")
    parser.add_argument("--scale", type=float, default=0.1, help="the preset's scale")
    parser.add_argument("--replications", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    scenario = experiment.load(str(SCENARIOS / f"{args.preset}.yaml"), [f"scale={args.scale}"])
    serial_s, serial = _timed(args.replications, scenario, 1)
    serial_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    parallel_s, parallel = _timed(args.replications, scenario, args.workers)
    worker_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    sessions = sum(s["sessions"] for s in serial.summaries)
    figures = {
        "preset": args.preset,
        "scale": args.scale,
        "replications": args.replications,
        "sessions_per_replication": sessions / args.replications,
        "cores": os.cpu_count(),
        "workers": args.workers,
        "serial_s": round(serial_s, 2),
        "parallel_s": round(parallel_s, 2),
        "parallel_over_serial": round(parallel_s / serial_s, 3),
        "speed_up": round(serial_s / parallel_s, 3),
        "efficiency": round(serial_s / parallel_s / args.workers, 3),
        "identical": serial.summaries == parallel.summaries,
        "peak_rss_mb_this_process": round(serial_rss_mb, 1),
        "peak_rss_mb_largest_worker": round(worker_rss_mb, 1),
    }
    if not args.no_dask:
        startup, dask_s, on_dask = _on_dask(args.replications, scenario, args.workers)
        figures |= {
            "dask_cluster_startup_s": round(startup, 2),
            "dask_s": round(dask_s, 2),
            "dask_speed_up": round(serial_s / dask_s, 3),
            "dask_efficiency": round(serial_s / dask_s / args.workers, 3),
            "dask_identical": serial.summaries == on_dask.summaries,
        }
    print(
        f"{args.replications} replications of {args.preset} at scale {args.scale:g} "
        f"({figures['sessions_per_replication']:,.0f} sessions each), {os.cpu_count()} cores"
    )
    print(f"  serial (1 process):      {serial_s:7.2f} s")
    print(f"  {args.workers} local workers:        {parallel_s:7.2f} s")
    print(
        f"  parallel / serial = {figures['parallel_over_serial']:.2f}  "
        f"(speed-up {figures['speed_up']:.2f}x, efficiency {figures['efficiency']:.0%})"
    )
    print(f"  results identical: {figures['identical']}")
    if not args.no_dask:
        print(
            f"  Dask LocalCluster, {args.workers} workers: {figures['dask_s']:7.2f} s "
            f"(speed-up {figures['dask_speed_up']:.2f}x, efficiency "
            f"{figures['dask_efficiency']:.0%}; cluster start-up "
            f"{figures['dask_cluster_startup_s']:.1f} s, not counted); results identical: "
            f"{figures['dask_identical']}"
        )
    print(
        f"  peak RSS: {serial_rss_mb:.0f} MB here (serial runs), "
        f"{worker_rss_mb:.0f} MB in the largest worker"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
