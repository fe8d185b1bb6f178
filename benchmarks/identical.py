"""Does a change to the simulator change any result? Record every preset's, then compare.

Like weighing every parcel before and after the warehouse is rearranged: the parcels
must come out the same, however much faster they move. ``record`` runs every shipped
preset once (as ``campaign-sim run PRESET`` does: one ``simulate()`` with the preset's
own seed and scale), each in a fresh subprocess, and writes per preset a SHA-256 of its
summary (``summary.json``'s dict) with the run's metadata removed, the canonical JSON
that was hashed, and digests of its per-interval and per-hour tables. ``compare`` says
per preset whether two records are identical and, where not, which keys differ.

Usage::

    python benchmarks/identical.py record OUT.json                 # every preset, full size
    python benchmarks/identical.py record OUT.json --scale 0.25 --only baseline mm1
    python benchmarks/identical.py record OUT.json --jobs 2 --resume
    python benchmarks/identical.py compare BEFORE.json AFTER.json  # exit 1 if any differ

    # the code of another checkout (a worktree of the commit before a change):
    git worktree add /tmp/before HEAD
    PYTHONPATH=/tmp/before python benchmarks/identical.py record /tmp/before.json

``compare`` exits 0 when every preset in both records is identical, 1 when any
differs (it prints the first differing keys with both values, and the time-series
columns whose digests differ with their sums), 2 when nothing is comparable (no preset
in both, or one run at another scale or seed). ``record`` rewrites OUT.json after each
preset, so an interrupted run keeps what it finished; ``--resume`` runs only the rest.
A full-size record of all 72 presets takes 30-55 min on the 2-core machine (1.7 MB);
``--scale 0.25`` about 8 min.

Run it as a script (``python benchmarks/identical.py``), not with ``python -m`` from
the checkout: a script puts only ``benchmarks/`` on the path, so ``simulator`` comes from
``PYTHONPATH`` when it is set and from the installed (editable) package otherwise. The
header prints ``simulator.__file__`` and the commit of the tree it lies in; the presets
run are that tree's ``scenarios/`` (``simulator.scenario.presets.preset_dir()``).

What every shipped preset is: a single run. The CLI's ``run`` calls ``simulate()`` once
when given neither ``-r`` nor ``--warmup``; there are no multi-sale chains and no
search presets among the files (``double11-chain`` is one evening, named for its chain
of causes; ``cs-backlog-target`` is the base a search varies, and runs as a sale). The
validation cases in ``scenarios/validation/`` run the same way (their ``warmup_s`` is
in the file). Nothing is skipped.

Dropped before hashing (facts about how the run was made, not what it produced):

- ``run.events``: how many events SimPy scheduled; an optimisation that schedules fewer
  events for the same outcome changes it. It is kept next to the digest, not in it.
- ``provenance`` (the whole section): ``version``, ``command``, ``overrides``,
  ``versions`` (Python and package versions), ``scenario`` (the scenario as resolved:
  a new schema field with a default changes it without changing any result), and the
  copies of ``seed``, ``replication``, ``scale`` and ``scale_note``. The seed,
  replication and scale stay in the digest through the top-level keys of the same names;
  the resolved scenario's own digest is kept next to it, and ``compare`` reports a
  change of it as a note, not as a difference.

Everything else is in the digest: outcome counts, KPIs, per-station statistics, the
figures derived from the time series, the simulated times in ``run``
(``sessions_ended_at_s``, ``stations_idle_at_s``, ``last_delivery_at_s``). The summary
holds no wall-clock time, timestamp or commit. Canonical form: keys sorted, NaN and
infinities as null and numpy scalars as plain numbers (as ``summary.json`` writes
them), ``-0.0`` as ``0.0``, floats at full precision (``repr``), ints kept apart from
floats. The time series and the after-sale table are hashed column by column (dtype and
values); a preset is identical when its summary digest and its table digests agree.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import hashlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FORMAT = 1
"""Version of the record's layout."""
DROPPED = ("run.events", "provenance")
"""Summary keys left out of the digest (dotted paths); see the module docstring."""
SHOWN = 10
"""Differing keys ``compare`` prints per preset."""


# --- canonical form and digests --------------------------------------------------------


def canonical(value: Any) -> Any:
    """``value`` as ``summary.json`` would hold it, with ``-0.0`` as ``0.0``."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value + 0.0 if math.isfinite(value) else None
    return value


def strip_metadata(summary: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``summary`` without the keys of :data:`DROPPED`."""
    out = dict(summary)
    for path in DROPPED:
        parent = out
        *heads, last = path.split(".")
        for head in heads:
            inner = parent.get(head)
            if not isinstance(inner, dict):
                break
            parent[head] = inner = dict(inner)
            parent = inner
        else:
            parent.pop(last, None)
    return out


def dumps(value: Any) -> str:
    """The canonical JSON text: sorted keys, no spaces, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256(text: str | bytes) -> str:
    """Hex SHA-256 of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def table_digest(frame: Any) -> dict[str, Any] | None:
    """Per column of a DataFrame: dtype, SHA-256 of the values, and their sum if numeric."""
    if frame is None:
        return None
    import numpy as np

    columns = {}
    for name in frame.columns:
        column = frame[name]
        values = column.to_numpy()
        entry: dict[str, Any] = {"dtype": str(column.dtype)}
        if values.dtype.kind in "biuf":
            floats = values.astype(np.float64) + 0.0  # -0.0 as 0.0
            floats[np.isnan(floats)] = np.nan  # one NaN bit pattern
            entry["sha256"] = sha256(floats.tobytes())
            entry["sum"] = canonical(float(np.nansum(floats)))
        else:
            entry["sha256"] = sha256(
                dumps(canonical([None if v is None else str(v) for v in values.tolist()]))
            )
        columns[str(name)] = entry
    whole = sha256(dumps([len(frame), columns]))
    return {"rows": len(frame), "sha256": whole, "columns": columns}


# --- one preset in this process (the child) -----------------------------------------------


def measure(path: Path, factor: float) -> dict[str, Any]:
    """Run one preset once in this process: timings, and its identity entry.

    Wall and CPU seconds cover ``simulate()`` only (as ``bench.py`` times it), not the
    interpreter's start, the imports or the scenario's loading.
    """
    import resource

    import simulator

    started = time.perf_counter()
    scenario = simulator.load_scenario(path, [])
    if factor != 1:
        scenario = simulator.load_scenario(path, [f"scale={scenario.scale * factor!r}"])
    load_s = time.perf_counter() - started
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    result = simulator.simulate(scenario)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    summary = result.summary
    sessions, events = summary["sessions"], summary.get("run", {}).get("events")
    kept = canonical(strip_metadata(summary))
    scenario_dump = summary.get("provenance", {}).get("scenario")
    timing = {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_s": load_s,
        "sessions": sessions,
        "events": events,
        "events_per_session": events / sessions if events and sessions else None,
        "us_cpu_per_session": 1e6 * cpu / sessions if sessions else None,
        "rss_before_run_mb": rss_before_kb / 1024,
        "peak_rss_mb": peak_kb / 1024,
    }
    identity = {
        "digest": sha256(dumps(kept)),
        "tables": {
            "timeseries": table_digest(result.timeseries),
            "logistics": table_digest(result.logistics),
        },
        "metadata": {
            "events": events,
            "scenario_sha256": sha256(dumps(canonical(scenario_dump))),
        },
        "summary": kept,
    }
    return {
        "preset": path.stem,
        "path": str(path),
        "simulator": simulator.__file__,
        "file_sha256": sha256(path.read_bytes()),
        "scale_factor": factor,
        "scale": scenario.scale,
        "seed": scenario.seed,
        "duration_s": scenario.duration_s,
        "timing": timing,
        "identity": identity,
    }


def _child(path: str, factor: str) -> int:
    print(json.dumps(measure(Path(path), float(factor))))
    return 0


def run_child(
    path: Path, factor: float, children: set[subprocess.Popen[str]] | None = None
) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (its own peak RSS); errors as ``error``.

    The process is in ``children`` while it runs, so that an interrupted run can end it.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), repr(factor)]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        if children is not None:
            children.add(proc)
        try:
            stdout, stderr = proc.communicate()
        finally:
            if children is not None:
                children.discard(proc)
    lines = stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        measured: dict[str, Any] = json.loads(lines[-1])
        return measured
    tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
    return {
        "preset": path.stem,
        "path": str(path),
        "scale_factor": factor,
        "error": f"exit {proc.returncode}: {tail}",
    }


# --- what is measured, and on what --------------------------------------------------------


def simulator_under_test() -> dict[str, Any]:
    """Where ``simulator`` is imported from, its tree's commit, and the presets' folder."""
    import simulator
    from simulator.scenario.presets import preset_dir

    source = Path(simulator.__file__).resolve()
    tree = source.parents[1]
    commit = _git(tree, "rev-parse", "HEAD").strip()
    dirty = _git(tree, "status", "--porcelain", "--", "simulator", "scenarios")
    return {
        "simulator": str(source),
        "tree": str(tree),
        "commit": commit or "unknown",
        "uncommitted": sorted(line[3:] for line in dirty.splitlines()) if dirty else [],
        "presets_dir": str(preset_dir().resolve()),
        "pythonpath": os.environ.get("PYTHONPATH", ""),
    }


def check_pythonpath(under_test: dict[str, Any]) -> str | None:
    """A complaint if PYTHONPATH is set but ``simulator`` did not come from it."""
    entries = [Path(p).resolve() for p in under_test["pythonpath"].split(os.pathsep) if p]
    source = Path(under_test["simulator"])
    if entries and not any(source.is_relative_to(e) for e in entries):
        return (
            f"PYTHONPATH={under_test['pythonpath']} but simulator was imported from "
            f"{source}: run this file as a script, not with python -m from a checkout"
        )
    return None


def _git(tree: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=tree, capture_output=True, text=True)
    except OSError:
        return ""
    return out.stdout.rstrip() if out.returncode == 0 else ""


def environment() -> dict[str, Any]:
    """Python and package versions, cores and CPU model of this machine."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("simpy", "numpy", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"versions": versions, "nproc": os.cpu_count(), "cpu": cpu_model()}


def cpu_model() -> str:
    """``lscpu``'s model name."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def shipped_presets(presets_dir: str | Path) -> list[Path]:
    """Every preset file, as ``campaign-sim list`` finds them: the sales, then subfolders."""
    root = Path(presets_dir)
    return sorted(root.glob("*.yaml")) + sorted(root.glob("*/*.yaml"))


def select(paths: list[Path], only: list[str] | None) -> list[Path]:
    """The presets named in ``only`` (file names without ``.yaml``), or all of them."""
    if not only:
        return paths
    by_name = {p.stem: p for p in paths}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise SystemExit(f"no such preset: {', '.join(unknown)} (see campaign-sim list)")
    return [by_name[n] for n in dict.fromkeys(only)]


def run_all(
    paths: list[Path], factor: float, jobs: int, done: Callable[[dict[str, Any]], None]
) -> None:
    """Run every preset in its own subprocess, ``jobs`` at a time; ``done`` gets each row.

    Ctrl-C or SIGTERM ends the running children and raises KeyboardInterrupt; what
    ``done`` has saved is kept.
    """
    children: set[subprocess.Popen[str]] = set()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(run_child, p, factor, children) for p in paths]
        for future in concurrent.futures.as_completed(futures):
            done(future.result())
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(children):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True)
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` atomically, so an interruption leaves the last good file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --- the identity record -------------------------------------------------------------------


class Recorder:
    """An identity record being written: one entry per preset, saved after each."""

    def __init__(self, out: Path, under_test: dict[str, Any], factor: float, resume: bool) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.record: dict[str, Any] = {
            "format": FORMAT,
            "tool": "benchmarks/identical.py",
            **under_test,
            **environment(),
            "scale_factor": factor,
            "dropped": list(DROPPED),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "presets": {},
        }
        if resume and out.exists():
            old = json.loads(out.read_text(encoding="utf-8"))
            self.record["presets"] = {
                name: entry
                for name, entry in old.get("presets", {}).items()
                if "error" not in entry and entry.get("scale_factor") == factor
            }

    def has(self, name: str) -> bool:
        """Whether ``name`` is already recorded (kept by ``--resume``)."""
        return name in self.record["presets"]

    def add(self, row: dict[str, Any]) -> None:
        """Keep one preset's entry (without its timings) and save the record."""
        entry = {k: v for k, v in row.items() if k != "timing"}
        if "identity" in entry:
            entry.update(entry.pop("identity"))
        with self.lock:
            self.record["presets"][row["preset"]] = entry
            self.record["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            write_json(self.out, self.record)


def header_lines(under_test: dict[str, Any], env: dict[str, Any]) -> list[str]:
    """What is measured and where: the code, its commit, the versions, the machine."""
    v = env["versions"]
    changes = under_test["uncommitted"]
    return [
        f"simulator: {under_test['simulator']}",
        f"commit: {under_test['commit']}"
        + (f" + uncommitted changes in {', '.join(changes)}" if changes else ""),
        f"presets: {under_test['presets_dir']}",
        f"Python {v['python']}, SimPy {v['simpy']}, numpy {v['numpy']}, pandas {v['pandas']}; "
        f"{env['nproc']} CPUs, {env['cpu']}",
    ]


def record(args: argparse.Namespace) -> int:
    """``record``: run the presets and write the identity record."""
    under_test = simulator_under_test()
    problem = check_pythonpath(under_test)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    paths = select(shipped_presets(under_test["presets_dir"]), args.only)
    recorder = Recorder(args.out, under_test, args.scale, args.resume)
    for line in header_lines(under_test, recorder.record):
        print(f"# {line}")
    todo = [p for p in paths if not recorder.has(p.stem)]
    print(
        f"# {len(todo)} of {len(paths)} presets to run at {args.scale:g} x their own scale, "
        f"{args.jobs} at a time; writing {args.out}"
    )
    started = time.perf_counter()

    def done(row: dict[str, Any]) -> None:
        recorder.add(row)
        print(f"  {row['preset']:<45} {_row_note(row)}", flush=True)

    run_all(todo, args.scale, args.jobs, done)
    failed = [n for n, e in recorder.record["presets"].items() if "error" in e]
    print(f"# {len(todo)} runs in {time.perf_counter() - started:.0f} s; {args.out}")
    if failed:
        print(f"# failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _row_note(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"FAILED {row['error']}"
    t = row["timing"]
    return f"{row['identity']['digest'][:12]}  {t['sessions']:>10,} sessions  {t['wall_s']:7.1f} s"


# --- comparing two records -------------------------------------------------------------------


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.path, leaf)`` pairs in document order; list items as ``path[i]``."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for i, inner in enumerate(value):
            yield from flatten(inner, f"{prefix}[{i}]")
    else:
        yield prefix, value


def differences(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """Leaves that differ between ``a`` and ``b``, as ``(path, a's, b's)``; missing is ``...``."""
    left, right = dict(flatten(a)), dict(flatten(b))
    paths = list(dict.fromkeys([*left, *right]))
    out = []
    for path in paths:
        x, y = left.get(path, ...), right.get(path, ...)
        if x is ... or y is ... or type(x) is not type(y) or x != y:
            out.append((path, x, y))
    return out


def table_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Table columns whose digests differ, as ``(table.column, a's sum, b's sum)``."""
    out: list[tuple[str, Any, Any]] = []
    for table in dict.fromkeys([*a, *b]):
        x, y = a.get(table) or {}, b.get(table) or {}
        if x.get("sha256") == y.get("sha256"):
            continue
        if x.get("rows") != y.get("rows"):
            out.append((f"{table} rows", x.get("rows", ...), y.get("rows", ...)))
        xc, yc = x.get("columns", {}), y.get("columns", {})
        for column in dict.fromkeys([*xc, *yc]):
            cx, cy = xc.get(column), yc.get(column)
            if cx == cy:
                continue
            sx, sy = (
                ... if c is None else (c.get("sum", c["sha256"][:12]), c["dtype"]) for c in (cx, cy)
            )
            out.append((f"{table}.{column} (sum, dtype)", sx, sy))
    return out


def compare_entries(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, list[str]]:
    """One preset: ``identical``, ``different`` or ``not comparable``, and detail lines."""
    if "error" in a or "error" in b:
        same = a.get("error") == b.get("error")
        lines = [f"A: {a.get('error', 'ran')}", f"B: {b.get('error', 'ran')}"]
        return ("identical (both failed alike)" if same else "different"), lines
    if (a["scale"], a["seed"]) != (b["scale"], b["seed"]):
        return "not comparable", [
            f"scale {a['scale']} seed {a['seed']} vs scale {b['scale']} seed {b['seed']}"
        ]
    diffs = differences(a["summary"], b["summary"])
    tables = table_differences(a["tables"], b["tables"])
    notes = []
    ea, eb = a["metadata"].get("events"), b["metadata"].get("events")
    if ea != eb:
        notes.append(f"note: SimPy events {_show(ea)} -> {_show(eb)} (not in the digest)")
    if a["metadata"].get("scenario_sha256") != b["metadata"].get("scenario_sha256"):
        notes.append("note: the scenario as resolved differs (provenance.scenario)")
    if a.get("file_sha256") != b.get("file_sha256"):
        notes.append("note: the preset file differs")
    if not diffs and not tables and a["digest"] == b["digest"]:
        return "identical", notes
    lines = [f"{len(diffs)} summary keys differ" + (f", first {SHOWN}:" if diffs else "")]
    lines += [f"  {p}: {_show(x)} -> {_show(y)}" for p, x, y in diffs[:SHOWN]]
    if not diffs and a["digest"] != b["digest"]:
        lines.append("  (digests differ but the recorded summaries agree: was a record edited?)")
    if tables:
        lines.append(f"{len(tables)} table columns differ, first {SHOWN}:")
        lines += [f"  {p}: {_show(x)} -> {_show(y)}" for p, x, y in tables[:SHOWN]]
    return "different", lines + notes


def _show(value: Any) -> str:
    if value is ...:
        return "(missing)"
    text = json.dumps(value) if not isinstance(value, tuple) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def compare(args: argparse.Namespace) -> int:
    """``compare``: per preset identical / different; exit 1 if any differ.

    Exit 2 when nothing can be compared: no preset in both records, or a preset run at
    another scale or seed in one of them.
    """
    a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in (args.a, args.b))
    for label, rec, path in (("A", a, args.a), ("B", b, args.b)):
        print(
            f"# {label}: {path}: commit {rec.get('commit')}, {rec.get('simulator')}, "
            f"scale factor {rec.get('scale_factor')}"
        )
    pa, pb = a["presets"], b["presets"]
    counts: dict[str, int] = {}
    for name in sorted(n for n in pa if n in pb):
        verdict, lines = compare_entries(pa[name], pb[name])
        kind = verdict.split(" (")[0]
        counts[kind] = counts.get(kind, 0) + 1
        print(f"{name:<45} {verdict}")
        for line in lines:
            print(f"    {line}")
    for label, mine, other in (("A", pa, pb), ("B", pb, pa)):
        only = sorted(n for n in mine if n not in other)
        if only:
            print(f"# only in {label} (not compared): {', '.join(only)}")
    print("# " + (", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing"))
    if counts.get("different"):
        return 1
    return 2 if not counts or counts.get("not comparable") else 0


# --- command line ----------------------------------------------------------------------------


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options ``record`` shares with ``presets.py``."""
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply each preset's own scale by this (default 1: full size as written)",
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these presets only")
    parser.add_argument(
        "--jobs", type=int, default=1, help="presets run at once (default 1; 2 adds noise)"
    )


def main(argv: Iterable[str] | None = None) -> int:
    """Parse the command line and run ``record`` or ``compare``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="run the presets and write OUT.json")
    rec.add_argument("out", type=Path, metavar="OUT.json")
    add_run_options(rec)
    rec.add_argument(
        "--resume", action="store_true", help="keep presets already in OUT.json at this scale"
    )
    cmp = commands.add_parser("compare", help="compare two records; exit 1 if any differ")
    cmp.add_argument("a", type=Path, metavar="A.json")
    cmp.add_argument("b", type=Path, metavar="B.json")
    args = parser.parse_args(argv)
    if args.command == "compare":
        return compare(args)
    try:
        return record(args)
    except KeyboardInterrupt:
        print(f"interrupted: {args.out} keeps the presets finished so far", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
