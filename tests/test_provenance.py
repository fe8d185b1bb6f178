"""Every output says how it was made: version, command, overrides, seed, replications, scale.

And nothing in it changes from one process to the next: no wall-clock time, and the
report's SVG figures drawn with a fixed hash salt, so the same command writes the same
bytes (``summary.json`` and ``report.html``) whatever ``PYTHONHASHSEED`` the process got.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from importlib import metadata

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from simulator import simulate
from simulator.experiment import run_comparison
from simulator.interface.cli import app
from simulator.present.report import render_report
from simulator.results.provenance import SCALE_NOTE, describe
from tests.conftest import ROOT, small

runner = CliRunner()
SHORT = ["--set", "duration_s=240", "--set", "scale=1/100"]
"""A few minutes of the spike at 1/100: a second's work, with every plot drawn."""


def test_same_command_in_two_processes_writes_identical_files(tmp_path):
    """The same scenario and seed, run by two processes hashing differently: same bytes.

    matplotlib salts the SVG ids with Python's string hashing unless told otherwise; the
    report fixes the salt and leaves the date out, and no file holds a wall-clock time.
    """
    files = {}
    for hashseed in ("1", "2"):
        folder = tmp_path / f"process-{hashseed}"
        folder.mkdir()
        command = [sys.executable, "-m", "simulator", "run", "sale-start-spike", "--seed", "3"]
        done = subprocess.run(
            [*command, *SHORT, "--out", "out"],
            cwd=folder,  # the same command, --out included, in two folders
            env={**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        files[hashseed] = [
            (folder / "out" / n).read_bytes() for n in ("summary.json", "report.html")
        ]
    (summary, report), (summary_2, report_2) = files["1"], files["2"]
    assert b"clip-path" in report  # ids that matplotlib would otherwise salt
    assert summary == summary_2
    assert report == report_2
    made = json.loads(summary)["provenance"]
    assert made["command"] == (
        "campaign-sim run sale-start-spike --seed 3 --set duration_s=240 --set scale=1/100 "
        "--out out"
    )


def test_a_run_records_version_command_overrides_seed_and_scale(tmp_path):
    """summary.json's provenance: the command as typed, its --set values, the scale's note."""
    out = tmp_path / "run"
    args = ["run", "baseline", "--seed", "4", "--set", "duration_s=60", "--set", "scale=1/10"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    made = json.loads((out / "summary.json").read_text())["provenance"]
    assert made["version"] == metadata.version("campaign-sim")
    assert made["command"] == shlex.join(["campaign-sim", *args, "--out", str(out)])
    assert made["overrides"] == ["duration_s=60", "scale=1/10"]
    assert (made["seed"], made["replication"]) == (4, 0)
    assert (made["scale"], made["scale_note"]) == ("1/10", SCALE_NOTE)
    assert made["scenario"]["duration_s"] == 60  # the scenario as resolved, as before


def test_at_full_size_there_is_no_scale_note():
    """Scale 1: money and counts are both the simulated sale's, nothing to warn about."""
    made = simulate(small(duration_s=30), seed=2).summary["provenance"]
    assert (made["scale"], made["scale_note"]) == ("1", None)


def test_the_python_api_records_the_call():
    """Without a command line, the provenance names the call and its arguments."""
    made = simulate(small(duration_s=30), seed=2).summary["provenance"]
    assert made["command"] == "Python API: simulator.simulate(<scenario small>, seed=2)"
    assert made["overrides"] == []


def test_a_command_shows_as_typed_and_markup_in_it_stays_text():
    """The report lists the provenance; a --set value with markup is escaped like the rest."""
    result = simulate(small(duration_s=30), seed=2)
    result.summary["provenance"]["command"] = "campaign-sim run x --set 'description=<b>'"
    page = render_report(result)
    provenance = page.split('<dl id="provenance"')[1].split("</dl>")[0]
    assert "campaign-sim run x --set &#39;description=&lt;b&gt;&#39;" in provenance
    assert "<b>" not in provenance and "seed" in provenance


def test_replications_record_their_numbers_and_the_call(tmp_path):
    """A comparison's sides and its provenance.json: the call, seed, replications, scale."""
    comparison = run_comparison(
        small(duration_s=30),
        small(duration_s=30, name="other"),
        2,
        seed=5,
        overrides=["scale=1/2"],
        workers=1,
        progress=False,
        out=tmp_path,
    )
    comparison.write(tmp_path)
    made = json.loads((tmp_path / "provenance.json").read_text())
    assert made["command"].startswith("Python API: simulator.experiment.run_comparison(")
    assert made["overrides"] == ["scale=1/2"]
    assert (made["seed"], made["replications"], made["scale"]) == (5, 2, "1/2")
    assert made["scale_note"] == SCALE_NOTE and made["scenarios"] == ["small", "other"]
    side = json.loads((tmp_path / "A" / "summary.json").read_text())["provenance"]
    assert side["command"] == made["command"] and side["replications"] == [0, 1]
    assert dict(describe(side))["replications"] == "2 (numbers 0, 1)"


@pytest.mark.parametrize("scale", ["1/10", "1"])
def test_describe_says_the_scale_note_only_where_it_applies(scale):
    made = simulate(small(duration_s=30, scale=scale), seed=1).summary["provenance"]
    lines = dict(describe(made))
    assert lines["made by"] == f"campaign-sim {metadata.version('campaign-sim')}"
    assert (SCALE_NOTE in lines["scale"]) == (scale != "1")


def test_best_yaml_ends_with_the_command_that_made_it(tmp_path):
    """The optimiser's best.yaml (still opening with extends) and provenance.json."""
    mmc = ROOT / "scenarios" / "validation" / "mmc.yaml"
    args = [
        *("optimize", str(mmc), "--set", "duration_s=300", "--set", "warmup_s=50"),
        *("--vary", "database.pool_size=5:6", "--minimize", "stations.database.servers"),
        *("--trials", "2", "--confirm", "1", "--confirm-replications", "2", "-r", "2"),
        *("--max-replications", "2", "--workers", "1", "--no-progress"),
    ]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    command = shlex.join(["campaign-sim", *args, "--out", str(tmp_path)])
    version = metadata.version("campaign-sim")
    best = (tmp_path / "best.yaml").read_text()
    assert best.startswith("extends: ")
    assert best.splitlines()[-1] == f"# made by campaign-sim {version}: {command}"
    assert YAML(typ="safe").load(best)["name"] == "mmc-best"
    made = json.loads((tmp_path / "provenance.json").read_text())
    assert made["command"] == command and made["replications_of"] == "each confirmed plan"
