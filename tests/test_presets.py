"""Every shipped scenario runs, briefly, and gives a coherent summary."""

from __future__ import annotations

import pytest

import simulator
from simulator.experiment.answer import unknown_kpis
from simulator.experiment.estimates import flatten
from simulator.scenario.presets import question
from tests.conftest import SCENARIOS

PRESETS = sorted(SCENARIOS.glob("*.yaml"))
VALIDATION_CASES = sorted(SCENARIOS.glob("validation/*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_runs_briefly(path):
    """Two simulated minutes of each preset end with every session accounted for.

    The preset names the KPIs that answer its question (its own or inherited), and
    the run reports every one of them, as it reports every KPI its ``slo:`` reads.
    """
    scenario = simulator.load_scenario(path, ["duration_s=120"])
    summary = simulator.simulate(scenario).summary
    assert summary["sessions"] > 0
    assert sum(summary["outcomes"].values()) == summary["sessions"]
    assert summary["orders"] > 0
    assert scenario.answers, f"{path.stem} names no answers"
    assert unknown_kpis(scenario, list(flatten(summary))) == []


@pytest.mark.parametrize("path", VALIDATION_CASES, ids=[p.stem for p in VALIDATION_CASES])
def test_validation_case_names_answers_its_run_reports(path):
    """A validation case (also listed as a preset) names answers that its run reports."""
    scenario = simulator.load_scenario(path, ["duration_s=120", "warmup_s=0"])
    summary = simulator.simulate(scenario).summary
    assert scenario.answers, f"{path.stem} names no answers"
    assert unknown_kpis(scenario, list(flatten(summary))) == []


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_states_question_and_assumptions(path):
    """A preset's description opens with a question and names seeds and assumptions."""
    description = simulator.load_scenario(path).description
    assert question(description).endswith("?")
    assert "Seed figures used" in description and "Assumed" in description
