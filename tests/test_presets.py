"""Every shipped scenario runs, briefly, and gives a coherent summary."""

from __future__ import annotations

import pytest

import simulator
from simulator.scenario.presets import question
from tests.conftest import SCENARIOS

PRESETS = sorted(SCENARIOS.glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_runs_briefly(path):
    """Two simulated minutes of each preset end with every session accounted for."""
    scenario = simulator.load_scenario(path, ["duration_s=120"])
    summary = simulator.simulate(scenario).summary
    assert summary["sessions"] > 0
    assert sum(summary["outcomes"].values()) == summary["sessions"]
    assert summary["orders"] > 0


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_states_question_and_assumptions(path):
    """A preset's description opens with a question and names seeds and assumptions."""
    description = simulator.load_scenario(path).description
    assert question(description).endswith("?")
    assert "Seed figures used" in description and "Assumed" in description
