"""Check that a change leaves every shipped preset's ``summary.json`` byte-identical.

A refactoring must not change a single figure. Run every preset once, at seed 1, with
the code before the change and again with the code after, then compare the files::

    python tools/same_summaries.py run before/     # on the old checkout
    python tools/same_summaries.py run after/      # on the new one
    python tools/same_summaries.py diff before/ after/

``run`` goes through the command line, as a user would (``campaign-sim run PRESET
--seed 1 --out DIR/PRESET``), two presets at a time. ``diff`` prints one line per preset
and exits 1 if any summary differs or is missing; it also compares the per-interval and
per-hour tables as DataFrames (Parquet files carry library metadata, so not bytes).
``provenance.command`` names each run's own ``--out`` folder (and the checkout's preset
path), so it is left out of the comparison; every other byte counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PRESETS = Path(__file__).resolve().parent.parent / "scenarios"


def presets() -> list[Path]:
    """Every shipped preset (the validation cases too), by file."""
    return sorted([*PRESETS.glob("*.yaml"), *PRESETS.glob("validation/*.yaml")])


def _name(path: Path) -> str:
    return path.relative_to(PRESETS).with_suffix("").as_posix().replace("/", "-")


def run(out: Path, jobs: int) -> int:
    """Run every preset at seed 1 into ``out/NAME``; return how many failed."""
    out.mkdir(parents=True, exist_ok=True)

    def one(path: Path) -> tuple[str, int]:
        name = _name(path)
        command = [sys.executable, "-m", "simulator", "run", str(path), "--seed", "1"]
        done = subprocess.run(
            [*command, "--out", str(out / name), "--no-progress"],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            print(f"{name}: exit {done.returncode}\n{done.stderr}", file=sys.stderr)
        return name, done.returncode

    with ThreadPoolExecutor(jobs) as pool:
        failed = [name for name, code in pool.map(one, presets()) if code]
    print(f"{len(presets()) - len(failed)} presets run into {out}/, {len(failed)} failed")
    return len(failed)


def diff(before: Path, after: Path, added: bool = False) -> int:
    """Compare each preset's ``summary.json``; return how many differ or are missing.

    ``added``: a summary may also gain keys (a new KPI), as long as every figure it had
    keeps its value (the scenario echoed in ``provenance`` may gain defaults too).
    """
    bad = 0
    for path in presets():
        name = _name(path)
        a, b = before / name / "summary.json", after / name / "summary.json"
        if not a.exists() or not b.exists():
            verdict, bad = "missing", bad + 1
        elif added and a.read_bytes() != b.read_bytes():
            changed = _changed(json.loads(a.read_text()), json.loads(b.read_text()), "")
            verdict = "same figures, keys added" if not changed else f"DIFFERENT: {changed}"
            bad += bool(changed)
        elif _but_command(a) == _but_command(b):
            verdict = f"identical ({a.stat().st_size:,} bytes)"
            for table in _different_tables(before / name, after / name):
                verdict, bad = f"summary identical, {table} DIFFERENT", bad + 1
        else:
            verdict, bad = "DIFFERENT", bad + 1
        print(f"{name:50} {verdict}")
    print(f"{len(presets()) - bad} of {len(presets())} summaries byte-identical")
    return bad


def _but_command(path: Path) -> bytes:
    """A summary's bytes with ``provenance.command`` (the run's own folder) left out."""
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary.get("provenance", {}).pop("command", None)
    return json.dumps(summary, indent=2).encode()


def _changed(a: object, b: object, where: str) -> str | None:
    """The first path whose value in ``a`` is missing or different in ``b``; None if none."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key, value in a.items():
            if key not in b:
                return f"{where}{key} missing"
            changed = _changed(value, b[key], f"{where}{key}.")
            if changed:
                return changed
        return None
    if where.startswith(("provenance.versions", "provenance.command")):
        return None
    return None if a == b else f"{where.rstrip('.')}: {a!r} -> {b!r}"


def _different_tables(a: Path, b: Path) -> list[str]:
    """The tables of two run folders that hold different values."""
    import pandas as pd

    return [
        name
        for name in ("timeseries.parquet", "logistics.parquet")
        if not pd.read_parquet(a / name).equals(pd.read_parquet(b / name))
    ]


def main() -> None:
    """Command line: ``run OUT`` or ``diff BEFORE AFTER``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run every preset at seed 1 into OUT/NAME")
    run_parser.add_argument("out", type=Path)
    run_parser.add_argument("--jobs", type=int, default=2)
    diff_parser = sub.add_parser("diff", help="compare two folders written by run")
    diff_parser.add_argument("before", type=Path)
    diff_parser.add_argument("after", type=Path)
    diff_parser.add_argument(
        "--added", action="store_true", help="allow new keys; every old figure must stay"
    )
    args = parser.parse_args()
    if args.command == "run":
        sys.exit(1 if run(args.out, args.jobs) else 0)
    sys.exit(1 if diff(args.before, args.after, args.added) else 0)


if __name__ == "__main__":
    main()
