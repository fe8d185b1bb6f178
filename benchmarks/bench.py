"""Benchmark: the full model (``simulator.simulate``) against the bare-SimPy reference.

For each target size N (sessions), the ``sale-start-spike`` preset is run at
``scale = N / 332334`` (the preset gives about 332,334 sessions at scale 1 with its
seed; scale multiplies arrival rates and capacities, so utilisations are kept) in the
full model ("full") and in ``benchmarks/bare_simpy.py`` ("reference": the same flow
hand-written on SimPy, see its docstring), one after the other, each in its own fresh
Python subprocess so that peak RSS (``ru_maxrss`` of that child) is not shared.

Usage::

    python benchmarks/bench.py                       # sizes 100k and 1M
    python benchmarks/bench.py --sizes 100000 1000000
    python benchmarks/bench.py --quick               # sizes 20k and 100k
    python benchmarks/bench.py --textbook            # also the reference racing every request
    python benchmarks/bench.py --repeat 3            # best of 3 per cell (wall and CPU apart)
    python benchmarks/bench.py --json out.json       # also write every run as JSON
    python benchmarks/bench.py --sizes 100000 --set gateway.workers=10 database.pool_size=4
                                                     # a variant that makes requests queue

Wall time is measured inside the child around the run only (not interpreter start-up,
imports or scenario loading); for the full model it is the whole ``simulate()`` call,
which includes building the summary and the per-second time series. CPU seconds
(``time.process_time``) are reported next to wall seconds: on a shared 2-core machine
they are the less noisy of the two. With ``--repeat``, the best wall time and the best
CPU time of a cell are taken separately (they may come from different runs); the table
shows the run with the best CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRESET = HERE.parent / "scenarios" / "sale-start-spike.yaml"
SESSIONS_AT_SCALE_1 = 332334
BASELINE = HERE.parent / "scenarios" / "baseline.yaml"
BASELINE_RATE_PER_S = 20.0  # the baseline preset's traffic.baseline_per_s
WORK_FIGURES = ("cache_hits", "gmv", "on_time_delivery_rate")
"""Figures besides the outcome counts that both models report and must agree on."""
REFERENCE = "reference"
TEXTBOOK = "reference-textbook"
"""The reference racing every request against patience (``race="always"``)."""


def _child(model: str, scale: float, overrides: list[str], preset: Path = PRESET) -> None:
    """Run one model once in this process and print one JSON line."""
    import resource

    import simulator

    sys.path.insert(0, str(HERE))
    import bare_simpy

    scenario = simulator.load_scenario(preset, [f"scale={scale}", *overrides])
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if model == "full":
        t, c = time.perf_counter(), time.process_time()
        summary = simulator.simulate(scenario).summary
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        sessions, events = summary["sessions"], summary["run"]["events"]
        outcomes = summary["outcomes"]
        figures = {name: summary[name] for name in WORK_FIGURES}
    else:
        race = "always" if model == TEXTBOOK else "queued"
        t, c = time.perf_counter(), time.process_time()
        out = bare_simpy.run(scenario, race=race)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        sessions, events, outcomes = out["sessions"], out["events"], out["outcomes"]
        figures = {name: out[name] for name in WORK_FIGURES}
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "model": model,
                "scale": scale,
                "sessions": sessions,
                "wall_s": wall,
                "cpu_s": cpu,
                "events": events,
                "rss_before_run_mb": rss_before_kb / 1024,
                "peak_rss_mb": peak_kb / 1024,
                "outcomes": outcomes,
                "figures": figures,
            }
        )
    )


def same_work(full: dict, reference: dict) -> str:
    """Whether the two runs did the same work: "identical", or what differs.

    The full model has outcomes the reference does not model (``rate_limited``,
    ``deposit_forfeited``): those must be zero, and every outcome both have equal, as
    must the figures of :data:`WORK_FIGURES`.
    """
    shared = reference["outcomes"].keys()
    extra = {k: v for k, v in full["outcomes"].items() if k not in shared and v}
    differ = [k for k in shared if full["outcomes"].get(k) != reference["outcomes"][k]]
    differ += [k for k in WORK_FIGURES if full["figures"][k] != reference["figures"][k]]
    differ += [f"{k} (full only)" for k in extra]
    return "identical" if not differ else "different: " + ", ".join(differ)


def _run_child(model: str, scale: float, overrides: list[str], preset: Path = PRESET) -> dict:
    spec = json.dumps({"overrides": overrides, "preset": str(preset)})
    proc = subprocess.run(
        [sys.executable, __file__, "--child", model, repr(scale), spec],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {model} at scale {scale} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def code_version() -> str:
    """The commit measured, and whether simulator/ differs from it."""
    root = HERE.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "simulator"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown commit"
    return f"commit {head or '?'}" + (" + uncommitted changes in simulator/" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --child, one model in this process)."""
    parser = argparse.ArgumentParser(description="full model vs the bare-SimPy reference")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--quick", action="store_true", help="sizes 20k and 100k")
    parser.add_argument(
        "--textbook", action="store_true", help="also the reference racing every request"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; best is kept")
    parser.add_argument("--json", type=Path, default=None, help="write rows to this file")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="PATH=VALUE",
        help="scenario overrides applied before scale, e.g. gateway.workers=10",
    )
    parser.add_argument(
        "--sizing",
        choices=["scale", "duration"],
        default="scale",
        help="scale: the spike preset at scale N/332,334 (sessions in flight grow with N); "
        "duration: the baseline preset at scale 10 (200 sessions/s) run for N/200 s, so "
        "the sessions in flight stay the same and only N grows",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child[2])
        _child(args.child[0], float(args.child[1]), spec["overrides"], Path(spec["preset"]))
        return 0

    sizes = args.sizes or ([20_000, 100_000] if args.quick else [100_000, 1_000_000])
    models = ["full", REFERENCE] + ([TEXTBOOK] if args.textbook else [])
    print(
        f"# {_cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{code_version()}, sizing by {args.sizing}, "
        f"preset {(PRESET if args.sizing == 'scale' else BASELINE).name}, "
        f"best of {args.repeat} (wall and CPU each)"
        + (f", --set {' '.join(args.set)}" if args.set else "")
    )
    rows, best, best_wall = [], {}, {}
    for n in sizes:
        if args.sizing == "scale":
            preset, scale, overrides = PRESET, n / SESSIONS_AT_SCALE_1, args.set
        else:
            preset, scale = BASELINE, 10.0
            overrides = [*args.set, f"duration_s={n / (BASELINE_RATE_PER_S * scale)}"]
        for rep in range(args.repeat):
            for model in models:  # one after the other, never in parallel
                print(f"  {model} at N={n:,} (scale {scale:.4f}) run {rep + 1}", file=sys.stderr)
                row = _run_child(model, scale, overrides, preset)
                row["target"] = n
                rows.append(row)
                key = (n, model)
                if key not in best or row["cpu_s"] < best[key]["cpu_s"]:
                    best[key] = row
                if key not in best_wall or row["wall_s"] < best_wall[key]["wall_s"]:
                    best_wall[key] = row

    def rate(r: dict, clock: str = "wall_s") -> float:
        return r["sessions"] / r[clock]

    header = (
        f"{'target':>9} {'model':<19}{'sessions':>10}{'wall s':>8}{'cpu s':>8}"
        f"{'sess/s':>9}{'us/sess':>8}{'cpu us/sess':>12}{'events/sess':>12}"
        f"{'RSS0 MB':>9}{'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    for (n, model), r in best.items():
        print(
            f"{n:>9,} {model:<19}{r['sessions']:>10,}{r['wall_s']:>8.2f}{r['cpu_s']:>8.2f}"
            f"{rate(r):>9,.0f}{1e6 / rate(r):>8.1f}{1e6 / rate(r, 'cpu_s'):>12.1f}"
            f"{r['events'] / r['sessions']:>12.2f}"
            f"{r['rss_before_run_mb']:>9.1f}{r['peak_rss_mb']:>9.1f}"
        )
    print()
    for n in sizes:
        full, ref = best[(n, "full")], best[(n, REFERENCE)]
        wall_full, wall_ref = best_wall[(n, "full")], best_wall[(n, REFERENCE)]
        line = (
            f"N={n:,}: per-session cost full / reference = "
            f"{rate(wall_ref) / rate(wall_full):.2f}x wall, "
            f"{rate(ref, 'cpu_s') / rate(full, 'cpu_s'):.2f}x CPU "
            f"(outcome counts, cache hits, GMV and on-time deliveries {same_work(full, ref)})"
        )
        if args.textbook:
            tb = best[(n, TEXTBOOK)]
            line += (
                f"; full / {TEXTBOOK} = {rate(tb, 'cpu_s') / rate(full, 'cpu_s'):.2f}x CPU "
                f"({same_work(full, tb)})"
            )
        print(line)
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for model in models:
            a, b = best_wall[(lo, model)], best_wall[(hi, model)]
            growth = rate(a) / rate(b)
            a, b = best[(lo, model)], best[(hi, model)]
            growth_cpu = rate(a, "cpu_s") / rate(b, "cpu_s")
            verdict = "flat" if abs(growth - 1) <= 0.10 else "NOT flat"
            print(
                f"{model}: per-session cost at N={hi:,} / at N={lo:,} = {growth:.2f} wall, "
                f"{growth_cpu:.2f} CPU ({verdict} within 10%)"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
