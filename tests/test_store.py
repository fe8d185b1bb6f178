"""The output folder's finished replications: kept when only the words change."""

from __future__ import annotations

import json

from simulator.experiment import run_replications
from simulator.scenario.loader import load_scenario
from tests.conftest import SCENARIOS

BASELINE = SCENARIOS / "baseline.yaml"
SHORT = ["duration_s=60"]


def _run(tmp_path, extra):
    scenario = load_scenario(BASELINE, [*SHORT, *extra])
    return run_replications(scenario, 2, workers=1, out=tmp_path, progress=False)


def test_a_reworded_scenario_reuses_its_finished_replications(tmp_path):
    """New description, answers and SLO: nothing is rerun; the provenance says the new words."""
    first = _run(tmp_path, [])
    again = _run(
        tmp_path,
        ["description='Reworded: what does the shop do?'", "answers=[orders]", "slo=['orders>=1']"],
    )
    assert [s["orders"] for s in again.summaries] == [s["orders"] for s in first.summaries]
    kept = json.loads((tmp_path / "replications" / "r0000" / "summary.json").read_text())
    assert kept["provenance"]["scenario"]["description"] != "Reworded: what does the shop do?"
    assert again.summaries[0]["provenance"]["scenario"]["answers"] == ["orders"]


def test_a_changed_sale_reruns_its_replications(tmp_path):
    """A field that changes the run (the gateway's workers) is not the same sale."""
    first = _run(tmp_path, [])
    changed = _run(tmp_path, ["gateway.workers=1"])
    assert changed.summaries[0]["provenance"]["scenario"]["gateway"]["workers"] == 1
    latency = [s["checkout_latency_ms"]["p99"] for s in (first.summaries[0], changed.summaries[0])]
    assert latency[0] != latency[1]
