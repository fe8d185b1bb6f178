"""Scenario loading: every error path names file, line, column and field, and exits 2."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from simulator.interface.cli import app
from simulator.scenario.loader import ScenarioError, load_scenario, parse_path
from tests.conftest import SCENARIOS, small

runner = CliRunner()
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<msg>.+)$")


def write_small(tmp_path: Path, name: str = "s.yaml", **changes) -> Path:
    """Write the small scenario as YAML (block style, one key per line)."""
    path = tmp_path / name
    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w") as fh:
        yaml.dump(small(**changes), fh)
    return path


def replace_line(path: Path, old: str, new: str) -> int:
    """Replace the first line containing ``old``; return its 1-based number."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if old in line:
            lines[i] = line.replace(old, new)
            path.write_text("\n".join(lines) + "\n")
            return i + 1
    raise AssertionError(f"{old!r} not in {path}")


def check_cli_fails(path: Path, *args: str) -> list[re.Match]:
    """Run ``validate`` on ``path``: exit 2, no traceback; return the parsed problem lines."""
    result = runner.invoke(app, ["validate", str(path), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    problems = [m for line in result.output.splitlines() if (m := LINE.match(line))]
    assert problems, result.output
    return problems


def test_valid_small_scenario_passes(tmp_path):
    """A correct file validates with exit status 0."""
    path = write_small(tmp_path)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_unknown_key_is_reported_with_position_and_suggestion(tmp_path):
    """A misspelt key is an error at its own line, with the likely intended name."""
    path = write_small(tmp_path)
    line = replace_line(path, "ttl_s:", "ttl_sec:")
    problems = check_cli_fails(path)
    assert [p["path"] for p in problems] == ["cache.levels[0].ttl_s", "cache.levels[0].ttl_sec"]
    missing, problem = problems
    assert "missing" in missing["msg"]
    assert problem["file"] == str(path)
    assert int(problem["line"]) == line
    assert problem["path"] == "cache.levels[0].ttl_sec"
    assert "unknown field" in problem["msg"] and "ttl_s" in problem["msg"]


def test_wrong_type_is_reported(tmp_path):
    """A string where a number belongs names the field and the bad value."""
    path = write_small(tmp_path)
    line = replace_line(path, "pool_size: 4", "pool_size: four")
    [problem] = check_cli_fails(path)
    assert int(problem["line"]) == line
    assert problem["path"] == "database.pool_size"
    assert "integer" in problem["msg"] and "four" in problem["msg"]


def test_negative_capacity_is_reported(tmp_path):
    """A negative capacity is rejected with the constraint it broke."""
    path = write_small(tmp_path)
    line = replace_line(path, "workers: 8", "workers: -3")
    [problem] = check_cli_fails(path)
    assert int(problem["line"]) == line
    assert problem["path"] == "gateway.workers"
    assert "greater than or equal to 1" in problem["msg"]


def test_error_inside_list_and_distribution_has_indexed_path(tmp_path):
    """Errors inside list items and distributions get paths like a.b[1].c.mean."""
    path = write_small(tmp_path)
    text = path.read_text()
    # the second channel's latency mean
    head, tail = text.split("name: b", 1)
    path.write_text(head + "name: b" + tail.replace("mean: 300", "mean: -300", 1))
    [problem] = check_cli_fails(path)
    assert problem["path"] == "payment.channels[1].latency_ms.mean"
    assert "greater than 0" in problem["msg"]


def test_every_error_is_reported_at_once(tmp_path):
    """Three independent mistakes give three lines, sorted by position."""
    path = write_small(tmp_path)
    replace_line(path, "workers: 8", "workers: 0")
    replace_line(path, "ttl_s:", "ttl: ")
    replace_line(path, "pool_timeout_ms: 500", "pool_timeout_ms: soon")
    problems = check_cli_fails(path)
    assert {p["path"] for p in problems} >= {
        "gateway.workers",
        "cache.levels[0].ttl",
        "cache.levels[0].ttl_s",
        "database.pool_timeout_ms",
    }
    lines = [int(p["line"]) for p in problems]
    assert lines == sorted(lines)


def test_yaml_syntax_error_points_at_the_line(tmp_path):
    """A YAML syntax error names the file and the line of the fault."""
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntraffic:\n  baseline_per_s: [1, 2\nseed: 3\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    first = result.output.splitlines()[0]
    assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: YAML error", first), first


def test_duplicate_key_is_an_error(tmp_path):
    """YAML 1.2 forbids a key twice in a mapping; the loader says where."""
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nseed: 1\nname: b\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert re.search(rf"{re.escape(str(path))}:3:\d+: YAML error: .*duplicate", result.output)


def test_missing_file_exits_2(tmp_path):
    """A scenario path that does not exist is a clear error, not a traceback."""
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read file" in result.output


def test_missing_required_field_points_at_its_parent(tmp_path):
    """A missing field is reported under the mapping that should hold it."""
    path = write_small(tmp_path)
    replace_line(path, "ttl_s:", "# ttl_s:")
    [problem] = check_cli_fails(path)
    assert problem["path"] == "cache.levels[0].ttl_s"
    assert "missing" in problem["msg"]


def test_shares_must_sum_to_one(tmp_path):
    """Segment shares that do not sum to 1 are an error on the list."""
    path = write_small(tmp_path)
    replace_line(path, "share: 1.0", "share: 0.7")
    [problem] = check_cli_fails(path)
    assert problem["path"] == "segments"
    assert "sum to 1" in problem["msg"]


def test_console_script_exits_2_without_traceback(tmp_path):
    """The installed command itself (not just the test runner) exits 2 on a bad file."""
    path = write_small(tmp_path)
    replace_line(path, "workers: 8", "workers: -1")
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "gateway.workers" in proc.stderr


def test_extends_merges_deeply_and_reports_child_positions(tmp_path):
    """A child overrides single fields of its parent; errors point into the right file."""
    write_small(tmp_path, "parent.yaml")
    child = tmp_path / "child.yaml"
    child.write_text(
        textwrap.dedent(
            """\
            extends: parent.yaml
            name: child
            database:
              pool_timeout_ms: 99
            """
        )
    )
    scenario = load_scenario(child)
    assert scenario.name == "child"
    assert scenario.database.pool_timeout_ms == 99
    assert scenario.database.pool_size == 4  # kept from the parent
    child.write_text(child.read_text().replace("pool_timeout_ms: 99", "pool_timeout_ms: -1"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(child)
    [problem] = err.value.problems
    assert (problem.source, problem.line, problem.path) == (
        str(child),
        4,
        "database.pool_timeout_ms",
    )


def test_extends_cycle_is_an_error(tmp_path):
    """Two files extending each other are reported, not followed forever."""
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(tmp_path / "a.yaml")


def test_set_overrides_are_typed_by_the_schema():
    """--set values become numbers, strings, mappings as the schema expects."""
    scenario = load_scenario(
        small(),
        [
            "cache.levels[0].ttl_s=30",
            "name=2024",
            "payment.channels[1].timeout_ms=750",
            "gateway.service_time_ms={dist: deterministic, value: 4}",
            "inventory.stock_per_item=null",
        ],
    )
    assert scenario.cache.levels[0].ttl_s == 30.0
    assert scenario.name == "2024"
    assert scenario.payment.channels[1].timeout_ms == 750
    assert scenario.gateway.service_time_ms.average() == 4
    assert scenario.inventory.stock_per_item is None


def test_bad_set_overrides_are_reported_with_exit_2(tmp_path):
    """An override with a bad value or path is named in the error and exits 2."""
    path = write_small(tmp_path)
    result = runner.invoke(
        app,
        [
            "validate",
            str(path),
            "--set",
            "cache.levels[0].ttl_s=abc",
            "--set",
            "payment.channels[5].x=1",
        ],
    )
    assert result.exit_code == 2
    assert "--set cache.levels[0].ttl_s=abc" in result.output
    assert "cache.levels[0].ttl_s" in result.output
    assert "no item 5" in result.output


def test_parse_path():
    """Dotted paths with indices parse into keys and integers."""
    assert parse_path("cache.levels[0].ttl_s") == ("cache", "levels", 0, "ttl_s")
    assert parse_path("a[1][2]") == ("a", 1, 2)
    with pytest.raises(ValueError):
        parse_path("a[x]")


def test_shipped_presets_validate():
    """Every shipped scenario is valid."""
    for path in sorted(SCENARIOS.glob("*.yaml")):
        assert load_scenario(path).description.strip(), path


def test_extends_replaces_a_distribution_whole(tmp_path):
    """A child's distribution replaces the parent's; fields of the old family do not linger."""
    write_small(tmp_path, "parent.yaml")
    child = tmp_path / "child.yaml"
    child.write_text(
        "extends: parent.yaml\ndatabase:\n  read_time_ms: {dist: exponential, mean: 3}\n"
    )
    scenario = load_scenario(child)
    assert scenario.database.read_time_ms.dist == "exponential"
    assert scenario.database.read_time_ms.average() == 3
