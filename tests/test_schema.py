"""The exported JSON Schema: committed, complete, and documented field by field."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from simulator.interface.cli import app, schema_json
from tests.conftest import SCENARIOS


def test_committed_schema_equals_the_exported_one():
    """scenarios/scenario.schema.json is what `campaign-sim schema` prints (regenerate it)."""
    committed = (SCENARIOS / "scenario.schema.json").read_text()
    assert committed.strip() == schema_json().strip(), (
        "run: campaign-sim schema > scenarios/scenario.schema.json"
    )


def test_schema_command_prints_valid_json():
    """The command's output parses and describes the top-level scenario."""
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "Scenario"
    assert {"traffic", "gateway", "cache", "database", "payment"} <= set(schema["properties"])


def test_every_field_has_a_description():
    """Each property of each model in the schema says what it means."""
    schema = json.loads(schema_json())
    models = {"Scenario": schema, **schema["$defs"]}
    undocumented = [
        f"{model}.{name}"
        for model, body in models.items()
        for name, prop in body.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []


def test_unknown_keys_are_forbidden_everywhere():
    """Every object in the schema rejects extra keys (typos are errors)."""
    schema = json.loads(schema_json())
    models = {"Scenario": schema, **schema["$defs"]}
    open_models = [m for m, body in models.items() if body.get("additionalProperties") is not False]
    assert open_models == []
