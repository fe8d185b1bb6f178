"""Every shipped preset at full size: how long it runs, how many events, how much memory.

A stopwatch held over the whole catalogue rather than over one sale: each preset in
``scenarios/`` (the validation cases included) runs once as ``campaign-sim run PRESET``
runs it -- one ``simulate()`` at the scale and seed written in the file -- in its own
fresh Python process, so that peak RSS (``ru_maxrss``) is that preset's alone. The
table is sorted slowest first (wall seconds) and written to ``presets.md`` and
``presets.json`` in ``--out``; the JSON is rewritten after each preset, so an
interrupted run keeps what it measured (``--resume`` then runs only the rest).

Usage::

    python benchmarks/presets.py                        # all presets, full size (long)
    python benchmarks/presets.py --only baseline mm1 --scale 0.1 --out /tmp/trial
    python benchmarks/presets.py --record /tmp/identity.json   # also the identity record
    PYTHONPATH=/tmp/before python benchmarks/presets.py --out /tmp/before-timing

``--record OUT.json`` writes the same record as ``identical.py record`` from the same
runs, so one full-size pass gives the timing table and the identity record together.
``--scale X`` multiplies each preset's own scale (``money-618-budget`` is written at
1/20, so ``--scale 0.5`` runs it at 1/40). With ``--jobs 2`` two presets share the
cores and the timings are noisier; the header says so.

Wall and CPU seconds (``time.process_time``) cover ``simulate()`` only, as
``bench.py`` times it: not the interpreter's start, the imports, the scenario's loading
(``load s`` in the JSON) or the files and report ``campaign-sim run`` writes afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import identical  # noqa: E402  (a sibling script, found through the line above)

COLUMNS = (
    "sessions",
    "wall_s",
    "cpu_s",
    "events",
    "events_per_session",
    "us_cpu_per_session",
    "peak_rss_mb",
)


def row_of(result: dict[str, Any]) -> dict[str, Any]:
    """One preset's line of the table, from :func:`identical.run_child`'s answer."""
    row = {k: result.get(k) for k in ("preset", "scale", "seed", "duration_s", "scale_factor")}
    if "error" in result:
        return {**row, "error": result["error"]}
    return {**row, **result["timing"]}


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slowest first by wall seconds; failed runs last."""
    return sorted(rows, key=lambda r: (r.get("wall_s") is None, -(r.get("wall_s") or 0)))


def header(
    under_test: dict[str, Any], env: dict[str, Any], factor: float, jobs: int
) -> dict[str, Any]:
    """What the table measured and where, for the JSON and the Markdown header.

    Paths are given within the checkout (``tree``), whose commit names the code: the
    table is committed, and where the checkout was on the machine says nothing.
    """
    tree = Path(under_test["tree"])
    return {
        "command": shlex.join(["python", "benchmarks/presets.py", *sys.argv[1:]]),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **under_test,
        "tree": ".",
        "simulator": in_checkout(under_test["simulator"], tree),
        "presets_dir": in_checkout(under_test["presets_dir"], tree),
        "pythonpath": "set" if under_test["pythonpath"] else "",
        **env,
        "scale_factor": factor,
        "jobs": jobs,
    }


def in_checkout(path: str, tree: Path) -> str:
    """``path`` relative to the checkout ``tree`` (as is when outside it)."""
    return Path(path).relative_to(tree).as_posix() if Path(path).is_relative_to(tree) else path


def markdown(head: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The table as Markdown, with a header naming the code, versions and machine."""
    v = head["versions"]
    changes = head["uncommitted"]
    size = (
        "full size (each preset's own scale and seed, as written)"
        if head["scale_factor"] == 1
        else f"{head['scale_factor']:g} x each preset's own scale (not full size)"
    )
    noise = (
        f"{head['jobs']} presets at a time: they share the cores, so wall and CPU times are "
        "noisier than with --jobs 1 (and with other work on the machine)"
        if head["jobs"] > 1
        else "one preset at a time"
    )
    done = [r for r in rows if "error" not in r]
    lines = [
        "# Every shipped preset, one run each",
        "",
        f"- Command: `{head['command']}`, started {head['started']}",
        f"- Code: commit `{head['commit']}`"
        + (f" + uncommitted changes in {', '.join(changes)}" if changes else "")
        + f"; `simulator` from that checkout's `{head['simulator']}`, presets from its "
        f"`{head['presets_dir']}`",
        f"- Python {v['python']}, SimPy {v['simpy']}, numpy {v['numpy']}, pandas {v['pandas']}",
        f"- Machine: {head['nproc']} CPUs (nproc), `lscpu` model name `{head['cpu']}`",
        f"- Size: {size}; {noise}",
        "- Each preset in its own fresh process; wall and CPU seconds cover `simulate()` only; "
        "peak RSS is that process's `ru_maxrss`",
    ]
    if done:
        wall = sum(r["wall_s"] for r in done)
        cpu = sum(r["cpu_s"] for r in done)
        sessions = sum(r["sessions"] for r in done)
        lines.append(
            f"- Total: {len(done)} presets, {sessions:,} sessions, {wall:,.0f} s wall "
            f"({wall / 60:.1f} min), {cpu:,.0f} s CPU"
        )
        per = [r["events_per_session"] for r in done if r.get("events_per_session")]
        if per:
            median = statistics.median(per)
            high = [
                f"{r['preset']} ({r['events_per_session']:.1f})"
                for r in done
                if (r.get("events_per_session") or 0) > 2 * median
            ]
            lines.append(
                f"- Events per session: median {median:.1f}"
                + (f"; above twice that: {', '.join(high)}" if high else "")
            )
    failed = [r for r in rows if "error" in r]
    if failed:
        failures = ", ".join(f"{r['preset']} ({r['error']})" for r in failed)
        lines.append(f"- Failed: {failures}")
    lines += [
        "",
        "| # | preset | scale | sessions | wall s | CPU s | events | events/session "
        "| µs CPU/session | peak RSS MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(done, 1):
        lines.append(
            f"| {i} | {r['preset']} | {r['scale']:g} | {r['sessions']:,} | {r['wall_s']:,.1f} "
            f"| {r['cpu_s']:,.1f} | {_count(r['events'])} | {_num(r['events_per_session'], 2)} "
            f"| {_num(r['us_cpu_per_session'], 1)} | {r['peak_rss_mb']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    """Run the presets and write the table (and, with --record, the identity record)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    identical.add_run_options(parser)
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="folder for presets.md/.json"
    )
    parser.add_argument("--record", type=Path, metavar="OUT.json", help="identity record too")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the presets already in OUT/presets.json (and --record) at this scale",
    )
    args = parser.parse_args(argv)

    under_test = identical.simulator_under_test()
    problem = identical.check_pythonpath(under_test)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    env = identical.environment()
    head = header(under_test, env, args.scale, args.jobs)
    paths = identical.select(identical.shipped_presets(under_test["presets_dir"]), args.only)
    json_path, md_path = args.out / "presets.json", args.out / "presets.md"
    rows: dict[str, dict[str, Any]] = {}
    if args.resume and json_path.exists():
        old = json.loads(json_path.read_text(encoding="utf-8"))
        rows = {
            r["preset"]: r
            for r in old.get("rows", [])
            if "error" not in r and r.get("scale_factor") == args.scale
        }
    recorder = (
        identical.Recorder(args.record, under_test, args.scale, args.resume)
        if args.record
        else None
    )
    todo = [
        p
        for p in paths
        if p.stem not in rows or (recorder is not None and not recorder.has(p.stem))
    ]
    for line in identical.header_lines(under_test, env):
        print(f"# {line}")
    print(
        f"# {len(todo)} of {len(paths)} presets to run at {args.scale:g} x their own scale, "
        f"{args.jobs} at a time; writing {json_path}"
        + (f" and {args.record}" if args.record else "")
    )
    lock = threading.Lock()

    def save() -> None:
        ordered = sort_rows(list(rows.values()))
        identical.write_json(json_path, {**head, "rows": ordered})
        md_path.write_text(markdown(head, ordered), encoding="utf-8")

    def done(result: dict[str, Any]) -> None:
        row = row_of(result)
        with lock:
            rows[row["preset"]] = row
            save()
        if recorder is not None:
            recorder.add(result)
        if "error" in row:
            note = f"FAILED {row['error']}"
        else:
            note = (
                f"{row['sessions']:>10,} sessions {row['wall_s']:8.1f} s wall "
                f"{row['cpu_s']:8.1f} s CPU {row['peak_rss_mb']:7.0f} MB"
            )
        print(f"  {row['preset']:<45} {note}", flush=True)

    started = time.perf_counter()
    try:
        identical.run_all(todo, args.scale, args.jobs, done)
    except KeyboardInterrupt:
        print(f"interrupted: {json_path} keeps the presets finished so far", file=sys.stderr)
        return 130
    with lock:
        save()
    failed = [r["preset"] for r in rows.values() if "error" in r]
    print(f"# {len(todo)} runs in {time.perf_counter() - started:.0f} s; {md_path}")
    if failed:
        print(f"# failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
