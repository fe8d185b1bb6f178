"""First use: presets by name, the version, and text printed exactly as written."""

from __future__ import annotations

import importlib.util
import json
from importlib import metadata
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from simulator.interface import cli
from simulator.interface.cli import app
from simulator.model import run
from simulator.model.campaign import PROGRESS_TICKS
from simulator.results import summarise, to_json
from simulator.scenario import presets as presets_module
from simulator.scenario.loader import ScenarioError, load_scenario
from tests.conftest import SCENARIOS, small

runner = CliRunner()


def test_extends_names_a_preset(tmp_path):
    """`extends: baseline` inherits the shipped preset, from a file anywhere."""
    child = tmp_path / "mine.yaml"
    child.write_text("extends: baseline\nname: mine\nduration_s: 60\n")
    scenario = load_scenario(child)
    baseline = load_scenario(SCENARIOS / "baseline.yaml")
    assert scenario.name == "mine" and scenario.duration_s == 60
    assert scenario.segments == baseline.segments
    assert scenario.database == baseline.database


def test_extends_a_validation_case_by_name(tmp_path):
    """A preset in a subfolder (the validation cases) is found by its name too."""
    child = tmp_path / "mine.yaml"
    child.write_text("extends: mm1\nname: mine\n")
    assert load_scenario(child).traffic == load_scenario(SCENARIOS / "validation/mm1.yaml").traffic


def test_extends_a_relative_path_still_works(tmp_path):
    """A path with .yaml is a file next to the one that extends it, as before."""
    YAML().dump(small(), tmp_path / "parent.yaml")
    (tmp_path / "child.yaml").write_text("extends: parent.yaml\nname: child\n")
    assert load_scenario(tmp_path / "child.yaml").name == "child"


def test_extends_an_unknown_name_says_so(tmp_path):
    """A name that is no file and no preset is a problem at the extends line, exit 2."""
    child = tmp_path / "mine.yaml"
    child.write_text("# mine\nextends: baselin\nname: mine\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(child)
    [problem] = err.value.problems
    assert (problem.source, problem.line, problem.path) == (str(child), 2, "extends")
    assert "no preset named 'baselin'" in problem.message
    result = runner.invoke(app, ["validate", str(child)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_version():
    """`campaign-sim --version` prints the installed version and exits 0."""
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"campaign-sim {metadata.version('campaign-sim')}"


def test_list_without_presets_is_an_error(tmp_path, monkeypatch):
    """A `list` that finds no presets (a broken install) says where it looked and exits 2."""
    monkeypatch.setattr(presets_module, "preset_dir", lambda: tmp_path)
    monkeypatch.setattr(cli, "preset_dir", lambda: tmp_path)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 2
    assert "no presets" in result.output and str(tmp_path) in result.output


def test_an_error_at_line_100_prints_literally(tmp_path):
    """`FILE:100:COL` stays as written: rich would turn ':100:' into an emoji."""
    path = tmp_path / "bad.yaml"
    lines = [f"# line {i}" for i in range(1, 100)]
    path.write_text("\n".join([*lines, "duraton_s: 60", ""]))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:100:1: duraton_s: unknown field" in result.output
    assert "\N{HUNDRED POINTS SYMBOL}" not in result.output


def test_the_dask_hint_prints_literally(monkeypatch):
    """The install hint keeps its '[dask]': rich markup would swallow it."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "distributed" else real(name, *a),
    )
    result = runner.invoke(app, ["run", "baseline", "-r", "2", "--scheduler", "tcp://nowhere:1"])
    assert result.exit_code == 2
    assert "pip install 'campaign-sim[dask]'" in result.output


def test_help_prints_literally():
    """Help text is not markup either: the --scheduler help keeps 'campaign-sim[dask]'."""
    result = runner.invoke(app, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "campaign-sim[dask]" in result.output


def test_user_text_in_list_prints_literally(tmp_path, monkeypatch):
    """A question with markup-like and emoji-like text is printed as written."""
    question = "Does [bold]this[/bold] hold at :100: and :fire:?"
    data = small(name="odd", description=f"{question}\nAssumed: everything.")
    YAML().dump(data, tmp_path / "odd.yaml")
    monkeypatch.setattr(presets_module, "preset_dir", lambda: tmp_path)
    result = runner.invoke(app, ["list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert question in result.output
    assert str(Path(tmp_path) / "odd.yaml") in result.output


@pytest.mark.parametrize(
    "changes",
    [{}, {"traffic": {"baseline_per_s": 0.05}, "duration_s": 600}],
    ids=["busy", "ends-before-duration"],
)
def test_the_progress_clock_does_not_change_the_run(changes):
    """Same seed, same summary.json byte for byte and time series, with the clock or not.

    The second case's last session ends before duration_s, with the clock still ticking.
    """
    scenario = load_scenario(small(**changes))
    ticks: list[float] = []
    plain = summarise(run(scenario, 3))
    shown = summarise(run(scenario, 3, progress=ticks.append))
    assert to_json(shown.summary) == to_json(plain.summary)
    assert shown.timeseries.equals(plain.timeseries)
    assert ticks == sorted(ticks) and 0 < len(ticks) <= PROGRESS_TICKS
    assert ticks[-1] <= scenario.duration_s + 1e-9


def test_the_progress_clock_reaches_the_sale_s_length():
    """The clock reports PROGRESS_TICKS even steps, the last at duration_s."""
    scenario = load_scenario(small())
    ticks: list[float] = []
    run(scenario, 3, progress=ticks.append)
    assert len(ticks) == PROGRESS_TICKS
    assert ticks[0] == pytest.approx(scenario.duration_s / PROGRESS_TICKS)
    assert ticks[-1] == pytest.approx(scenario.duration_s)


def test_run_shows_the_clock_bar_when_asked(tmp_path):
    """`run --progress` draws simulated seconds on stderr; --no-progress draws nothing.

    Both write the same summary.json but for its provenance, which records the command.
    """
    path = tmp_path / "s.yaml"
    YAML().dump(small(), path)
    shown = runner.invoke(app, ["run", str(path), "--progress", "--out", str(tmp_path / "a")])
    plain = runner.invoke(app, ["run", str(path), "--no-progress", "--out", str(tmp_path / "b")])
    assert shown.exit_code == 0 and plain.exit_code == 0, shown.output + plain.output
    assert "/60 s simulated" in shown.stderr
    assert "s simulated" not in plain.stderr
    summaries = [json.loads((tmp_path / side / "summary.json").read_text()) for side in "ab"]
    for summary in summaries:
        summary.pop("provenance")
    assert summaries[0] == summaries[1]
