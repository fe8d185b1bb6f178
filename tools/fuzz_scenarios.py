"""Run the scenario fuzzer at a large budget and count what happens, without stopping.

``tests/test_fuzz_scenarios.py`` stops at the first mutant that breaks the rule (exit 2
with a message naming file and field, no traceback, no hang; a valid file runs). This
runs the same generator and the same checks over many more mutants, tallies them and
writes every rule-breaking mutant to a log, so a whole class of bugs shows up at once::

    python tools/fuzz_scenarios.py -n 2000 --seed 1 --log fuzz-1.log

Prints: mutants tried, accepted by ``validate`` and run with exit 0, rejected with exit
2, tracebacks, hangs, and other rule breaks (an exit status other than 0 and 2, an
error report that names no file or field). Exits 1 if any mutant broke the rule.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.interface.cli import OUT_OF_MEMORY  # noqa: E402
from tests.test_fuzz_scenarios import (  # noqa: E402
    Cli,
    Mutant,
    Verdict,
    check,
    field_sweep,
    mutants,
)


def main() -> int:
    """Fuzz, tally, log; exit 1 if any mutant broke the rule."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, default=Path("fuzz.log"))
    parser.add_argument(
        "--sweep",
        metavar="K/N",
        help="instead of random mutants, check part K of N of the sweep: every numeric "
        "field of the schema set to each extreme value, one at a time",
    )
    args = parser.parse_args()

    counts: collections.Counter[str] = collections.Counter()
    bad: list[Verdict] = []
    args.log.write_text("")
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    cli = Cli(root)
    started = time.monotonic()

    @seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(mutant=mutants())
    def survey(mutant: Mutant) -> None:
        folder = Path(tempfile.mkdtemp(dir=root))
        try:
            verdict = check(cli, mutant, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        counts["tried"] += 1
        last = verdict.outcomes[-1]
        if any(o.hung for o in verdict.outcomes):
            counts["hangs"] += 1
        elif any(o.traceback for o in verdict.outcomes):
            counts["tracebacks"] += 1
        elif last.exit == 2 and OUT_OF_MEMORY in last.stderr:
            counts["exit 2 (valid, run out of memory)"] += 1
        elif verdict.skipped:
            counts["exit 0 (valid, too big to run briefly)"] += 1
        elif last.exit == 0:
            counts["exit 0"] += 1
        elif last.exit == 2:
            counts["exit 2" + (" (from run)" if len(verdict.outcomes) == 2 else "")] += 1
        else:
            counts[f"exit {last.exit}"] += 1
        if verdict.violations:
            counts["rule broken"] += 1
            bad.append(verdict)
            with args.log.open("a") as log:
                log.write(f"{'=' * 88}\n{verdict}\n")
        if counts["tried"] % 100 == 0:
            print(f"{counts['tried']} tried, {time.monotonic() - started:.0f} s", flush=True)

    try:
        if args.sweep:
            part, parts = (int(x) for x in args.sweep.split("/"))
            for mutant in field_sweep()[part - 1 :: parts]:
                survey.hypothesis.inner_test(mutant)  # type: ignore[attr-defined]
        else:
            survey()
    finally:
        cli.close()
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{time.monotonic() - started:.0f} s; " + ", ".join(f"{k}: {v}" for k, v in counts.items())
    )
    print(f"{len(bad)} rule-breaking mutants logged in {args.log}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
