"""The benchmark's identity record: same code, same digests; a changed value is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "identical.py"
PRESETS = ["baseline", "mm1"]
"""Two small presets; at 1/50 of their size each runs in well under a second."""


def _identical(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The two presets recorded twice on the same code, in separate runs."""
    folder = tmp_path_factory.mktemp("identity")
    paths = folder / "a.json", folder / "b.json"
    for path in paths:
        done = _identical("record", path, "--scale", "0.02", "--jobs", "2", "--only", *PRESETS)
        assert done.returncode == 0, done.stderr
    return paths


def test_same_code_gives_same_digests(records):
    """Recording the same presets twice gives the same digests, and compare exits 0."""
    a, b = (json.loads(p.read_text())["presets"] for p in records)
    assert sorted(a) == sorted(b) == sorted(PRESETS)
    for name in PRESETS:
        assert a[name]["digest"] == b[name]["digest"]
        assert a[name]["tables"] == b[name]["tables"]
    done = _identical("compare", *records)
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("identical") >= len(PRESETS)


def test_record_leaves_run_metadata_out(records):
    """The events count and the provenance are not in the hashed summary; outcomes are."""
    entry = json.loads(records[0].read_text())["presets"]["baseline"]
    assert "provenance" not in entry["summary"]
    assert "events" not in entry["summary"]["run"]
    assert entry["metadata"]["events"] > 0
    assert "outcomes" in entry["summary"] and "stations" in entry["summary"]


def test_changed_value_is_different_and_named(records, tmp_path):
    """A record with one summary value changed compares as different (exit 1), by key."""
    changed = json.loads(records[1].read_text())
    outcomes = changed["presets"]["mm1"]["summary"]["outcomes"]
    key = next(iter(outcomes))
    outcomes[key] += 1
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    done = _identical("compare", records[0], path)
    assert done.returncode == 1, done.stdout
    assert f"outcomes.{key}" in done.stdout
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line[:1].isalpha()}
    assert "different" in lines["mm1"] and "identical" in lines["baseline"]
