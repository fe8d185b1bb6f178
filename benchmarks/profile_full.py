"""Profile the full model on sale-start-spike (default scale 0.3, ~100k sessions).

Two profilers, because they answer differently:

* pyinstrument (statistical, low overhead): the call tree, and the functions ranked by
  their *own* time (samples whose innermost frame is that function), which is the
  least distorted "where does the time go" figure.
* cProfile (deterministic): own time (tottime) and call counts per function; its
  per-call overhead inflates small, frequently called functions, so use it for the
  call counts and the ranking, not for absolute times.

Usage::

    python benchmarks/profile_full.py [--scale 0.3] [--top 10] [--out benchmarks/results] [--html]

Writes ``pyinstrument.txt`` (and with --html ``pyinstrument.html``) and ``cprofile.txt``
to --out and prints both top-N tables and the own time by layer. Note that pyinstrument
slows this generator-heavy run about 3x (15 s instead of 5 s at scale 0.3); the shares
are what to read.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
from collections import defaultdict
from pathlib import Path

import simulator

HERE = Path(__file__).resolve().parent
PRESET = HERE.parent / "scenarios" / "sale-start-spike.yaml"


def _short(path: str) -> str:
    for marker in ("/simulator/", "/simpy/", "/numpy/", "/pandas/"):
        if marker in path:
            return marker.strip("/") + "/" + path.split(marker, 1)[1]
    return Path(path).name


def own_time_table(root, top: int) -> list[tuple[str, float, float]]:
    """(function, own seconds, share of total) from a pyinstrument frame tree."""
    own: dict[str, float] = defaultdict(float)
    stack = [root]
    while stack:
        frame = stack.pop()
        children = frame.children
        stack.extend(children)
        if frame.is_synthetic:  # "[self]", "[await]", ...: accounted to the parent
            continue
        child_time = sum(c.time for c in children if not c.is_synthetic_leaf)
        key = f"{frame.function} ({_short(frame.file_path or '?')}:{frame.line_no})"
        own[key] += max(frame.time - child_time, 0.0)
    total = root.time
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    return [(k, v, v / total) for k, v in ranked]


def _group(path: str) -> str | None:
    """A coarse owner for a file: which layer the time belongs to."""
    short = _short(path)
    if short.startswith("simpy/"):
        return "simpy (event loop, resources, events)"
    if short in ("simulator/measure/metrics.py", "simulator/model/components/station.py"):
        return "simulator metrics (Tally, Level, IntervalCounter, StationStats)"
    if short.startswith("simulator/model/components/"):
        return "simulator components (gateway, cache, db, payment, ...)"
    if short in ("simulator/model/session.py", "simulator/model/campaign.py"):
        return "simulator session flow + arrivals (session.py, campaign.py)"
    if short in (
        "simulator/model/users.py",
        "simulator/measure/streams.py",
        "simulator/model/traffic.py",
    ):
        return "users, streams, traffic"
    if short.startswith(("simulator/results/", "pandas/", "numpy/")):
        return "summary and time series (result.py, pandas, numpy)"
    if path.startswith("<built-in>") or short == "<built-in>":
        return None  # builtins belong to their caller's layer
    return "other"


def own_time_by_layer(root) -> list[tuple[str, float, float]]:
    """Own time grouped by layer (builtins counted in their caller's layer)."""
    own: dict[str, float] = defaultdict(float)
    stack = [(root, "other")]
    while stack:
        frame, inherited = stack.pop()
        if frame.is_synthetic:
            continue
        group = _group(frame.file_path or "<built-in>") or inherited
        children = frame.children
        stack.extend((c, group) for c in children)
        child_time = sum(c.time for c in children if not c.is_synthetic_leaf)
        own[group] += max(frame.time - child_time, 0.0)
    total = root.time
    return [(k, v, v / total) for k, v in sorted(own.items(), key=lambda kv: -kv[1])]


def main(argv: list[str] | None = None) -> int:
    """Profile one run with pyinstrument, then one with cProfile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--html", action="store_true", help="also write pyinstrument.html")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    scenario = simulator.load_scenario(PRESET, [f"scale={args.scale}"])

    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    summary = simulator.simulate(scenario).summary
    session = profiler.stop()
    text = profiler.output_text(unicode=True, show_all=False)
    # The results are committed: where the checkout sits on this machine says nothing.
    text = text.replace(f"{HERE.parent}{os.sep}", "")
    (args.out / "pyinstrument.txt").write_text(text)
    if args.html:  # large (~13 MB at scale 0.3)
        (args.out / "pyinstrument.html").write_text(profiler.output_html())
    root = session.root_frame()
    sys.path.insert(0, str(HERE))
    from bench import code_version

    print(f"# {code_version()}")
    print(f"# pyinstrument: {summary['sessions']:,} sessions, {root.time:.2f} s sampled")
    print(f"{'own s':>7} {'share':>6}  function")
    for name, sec, share in own_time_table(root, args.top):
        print(f"{sec:>7.2f} {share:>6.1%}  {name}")

    print("\n# pyinstrument own time by layer")
    for name, sec, share in own_time_by_layer(root):
        print(f"{sec:>7.2f} {share:>6.1%}  {name}")

    prof = cProfile.Profile()
    prof.enable()
    simulator.simulate(scenario)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime")
    stats.print_stats(40)
    (args.out / "cprofile.txt").write_text(buf.getvalue())
    print(f"\n# cProfile, top {args.top} by own time (tottime)")
    print(f"{'tottime':>8} {'share':>6} {'calls':>10}  function")
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]
    for (file, line, func), (_cc, nc, tt, _ct, _callers) in rows:
        print(f"{tt:>8.2f} {tt / total:>6.1%} {nc:>10,}  {func} ({file}:{line})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
