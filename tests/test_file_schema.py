"""The exported JSON Schema describes files as written: every shipped file passes it.

Editors (VS Code's YAML extension, through the ``# yaml-language-server: $schema=...``
line that opens each preset) check files against ``scenarios/scenario.schema.json``.
These tests run a real validator (``jsonschema``) on the committed schema, so a preset
an editor would flag, or a schema that lets a typo through, fails here first.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from simulator.scenario.loader import load_scenario
from tests.conftest import SCENARIOS, small

SCHEMA_FILE = SCENARIOS / "scenario.schema.json"
FILES = sorted(SCENARIOS.rglob("*.yaml"))
HEADER = re.compile(r"^# yaml-language-server: \$schema=(?P<path>\S+)$")


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    """A validator of the committed schema, of the draft the schema is written in."""
    schema = json.loads(SCHEMA_FILE.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def errors(validator: Any, data: Any) -> list[str]:
    """Each schema error as ``path: message``."""
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


def read(path: Path) -> Any:
    """A YAML file as plain data (anchors and merge keys resolved, as the loader does)."""
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def test_every_shipped_file_is_checked():
    """The presets, the validation cases in subfolders and more: none is skipped."""
    assert len(FILES) > 50
    assert any(path.parent != SCENARIOS for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_shipped_file_passes_the_schema(validator, path):
    """Every preset and scenario shipped validates against the committed schema."""
    assert errors(validator, read(path)) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_editor_line_points_at_the_schema(path):
    """Each file's first line names the committed schema by a path that resolves to it."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = HEADER.match(first)
    assert match, f"{path}: first line should be '# yaml-language-server: $schema=...'"
    assert (path.parent / match["path"]).resolve() == SCHEMA_FILE.resolve()


def baseline() -> dict[str, Any]:
    """The baseline preset, which extends nothing, as plain data."""
    data = read(SCENARIOS / "baseline.yaml")
    assert "extends" not in data
    return data


def test_misspelt_field_fails(validator):
    """A typo in a top-level field name is an error, as the loader says too."""
    data = baseline()
    data["duraton_s"] = data.pop("duration_s")
    found = errors(validator, data)
    assert any("duraton_s" in e for e in found), found


def test_wrong_type_fails(validator):
    """A string where a number belongs is an error."""
    data = baseline()
    data["database"]["pool_size"] = "forty"
    found = errors(validator, data)
    assert any("$.database.pool_size" in e for e in found), found


def test_misspelt_field_in_a_file_that_extends_fails(validator):
    """Leaving fields out is allowed when extending; misspelling one is still an error."""
    data = {"extends": "baseline", "database": {"pool_sise": 40}}
    found = errors(validator, data)
    assert any("pool_sise" in e for e in found), found


def test_file_that_extends_nothing_must_be_complete(validator):
    """Without extends, a missing required field (top level or nested) is an error."""
    data = baseline()
    del data["database"]["pool_size"]
    del data["traffic"]
    found = errors(validator, data)
    assert any("'traffic' is a required property" in e for e in found), found
    assert any("'pool_size' is a required property" in e for e in found), found


def test_list_items_stay_complete_when_extending(validator):
    """A list replaces the inherited one, so its items must be whole even in a child."""
    data = {"extends": "baseline", "segments": [{"name": "all", "share": 1.0}]}
    assert errors(validator, data) != []


def test_a_partial_file_passes_and_the_loader_agrees(validator, tmp_path):
    """What a child may leave out, with scale as a fraction and a preset by name."""
    data = {
        "extends": "baseline",
        "name": "child",
        "scale": "1/10",
        "database": {"pool_size": 40, "read_time_ms": {"mean": 3}},
        "gateway": {"service_time_ms": {"dist": "deterministic", "value": 2}},
    }
    assert errors(validator, data) == []
    path = tmp_path / "child.yaml"
    YAML().dump(data, path)
    scenario = load_scenario(path)
    assert scenario.scale == pytest.approx(0.1)
    assert scenario.database.pool_size == 40


def test_wrong_distribution_fails(validator):
    """A distribution family that does not exist, or a stray parameter, is an error."""
    for value in ({"dist": "normal", "mean": 3}, {"mean": 3, "sigma": 1}):
        data = {"extends": "baseline", "database": {"read_time_ms": value}}
        assert errors(validator, data) != [], value


def test_bad_scale_fraction_fails(validator):
    """A scale written as a string must be a fraction of two numbers."""
    assert errors(validator, {"extends": "baseline", "scale": "1/10"}) == []
    assert errors(validator, {"extends": "baseline", "scale": "a tenth"}) != []


def test_the_tests_small_scenario_passes(validator):
    """The scenario the test suite builds (every required field, nothing else) passes."""
    assert errors(validator, copy.deepcopy(small())) == []
