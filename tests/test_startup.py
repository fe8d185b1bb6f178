"""The command line starts at once: its quick commands never import the heavy libraries.

scipy.stats alone takes over a second to import, pandas, matplotlib and pyarrow most of
another, so ``campaign-sim --help`` waited two seconds before printing when the command
line imported every room at the top. The rooms behind the commands are imported inside
the commands that use them; these tests keep it so. Each runs in a fresh interpreter,
since this test process has long imported everything, and asserts module names only:
timings depend on the machine, which modules load does not.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SCENARIOS

HEAVY = (
    "scipy",
    "scipy.stats",
    "pandas",
    "matplotlib",
    "pyarrow",
    "optuna",
    "dask",
    "distributed",
    "jinja2",
    "joblib",
    "loky",
    "plotly",
)
"""Libraries a command that only reads or prints scenarios has no use for."""


def heavy_modules_after(code: str) -> list[str]:
    """The heavy modules loaded once ``code`` has run in a fresh interpreter."""
    probe = (
        "import sys\n"
        f"{code}\n"
        f"print('\\n' + __import__('json').dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_command_line_loads_no_heavy_library():
    """`import simulator.interface.cli` (what `campaign-sim` runs first) stays light."""
    assert heavy_modules_after("import simulator.interface.cli") == []


def test_importing_the_package_loads_no_heavy_library():
    """`import simulator` stays light: its public names load when first read."""
    assert heavy_modules_after("import simulator") == []


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["list"],
        ["validate", str(SCENARIOS / "sale-start-spike.yaml")],
    ],
    ids=["help", "version", "list", "validate"],
)
def test_a_quick_command_loads_no_heavy_library(args):
    """`--help`, `--version`, `list` and `validate FILE` run without the heavy libraries.

    `validate` still loads and checks the whole scenario (pydantic and the YAML reader
    are what it needs); a scenario at a reduced ``scale`` also imports the model, to
    warn what the scale makes incomparable, and is not one of these.
    """
    run = (
        "from simulator.interface.cli import app\n"
        "try:\n"
        f"    app({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )
    assert heavy_modules_after(run) == []


def test_a_worker_loads_no_statistics_plotting_or_search_library():
    """A worker unpickling a replication imports the runner: no scipy, matplotlib or Optuna.

    Kept workers (a notebook's) are spawned and import the package afresh; only the
    parent computes intervals, draws and searches. pandas comes with the model's records.
    """
    assert set(heavy_modules_after("import simulator.experiment.runner")) <= {"pandas", "pyarrow"}


def test_the_public_names_still_load():
    """`from simulator import ...` gives every public name, loaded on first use."""
    code = (
        "import simulator\n"
        "from simulator import Scenario, ScenarioError, SimulationResult, load_scenario\n"
        "from simulator import optimize, simulate\n"
        "assert sorted(simulator.__all__) == sorted(n for n in simulator.__all__ "
        "if hasattr(simulator, n))\n"
        "assert simulate.__module__ == 'simulator.results.summary'\n"
    )
    assert "pandas" in heavy_modules_after(code)  # simulate's room, loaded when asked for


def test_reading_each_file_once_loads_the_same_scenarios(tmp_path):
    """`list` parses a parent once for all its children; each load is as if alone.

    Two children of one parent, loaded in the block, give the scenarios and the
    problems (file, line, field) that separate loads give: neither sees the other's
    changes to the parent's data.
    """
    from simulator.scenario.loader import ScenarioError, load_scenario, reading_each_file_once

    parent = SCENARIOS / "baseline.yaml"
    (tmp_path / "parent.yaml").write_bytes(parent.read_bytes())
    (tmp_path / "good.yaml").write_text("extends: parent.yaml\nname: good\nseed: 11\n")
    (tmp_path / "bad.yaml").write_text("extends: parent.yaml\nname: bad\ngateway:\n  workrs: 3\n")
    paths = [tmp_path / n for n in ("good.yaml", "bad.yaml", "parent.yaml", "good.yaml")]

    def load_all() -> list[object]:
        loaded: list[object] = []
        for path in paths:
            try:
                loaded.append(load_scenario(path).model_dump())
            except ScenarioError as exc:
                loaded.append([str(p) for p in exc.problems])
        return loaded

    alone = load_all()
    with reading_each_file_once():
        together = load_all()
    assert together == alone
    assert alone[1][0].startswith(f"{tmp_path / 'bad.yaml'}:4:3: gateway.workrs: unknown field")


def test_list_reads_each_presets_heading_as_the_validated_preset_gives_it():
    from simulator.scenario.loader import load_scenario
    from simulator.scenario.presets import presets, question

    listed = presets()
    assert len(listed) >= 70
    for name, path, asked in listed:
        scenario = load_scenario(path)
        assert (name, asked) == (scenario.name, question(scenario.description)), path
