"""The scale's notes: what a smaller simulated sale changes that is not comparable.

One test per kind of note (rounded capacities, a single server, per-key read rates,
race windows, pooling), the notes' absence at scale 1 and where a count divides
evenly, and the notes reaching the terminal, summary.json and report.html.
"""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from simulator import load_scenario, simulate
from simulator.interface.cli import app
from simulator.model import scale_notes
from tests.conftest import SCENARIOS, small


def _notes(scenario: dict[str, Any], scale: str) -> dict[str, str]:
    loaded = load_scenario(scenario, [f"scale={scale}"])
    return {n.field: n.note for n in scale_notes(loaded)}


def _service(agents: int) -> dict[str, Any]:
    return {
        "enquiries": {"order_status": {"probability": 0.01, "simple": True}},
        "agents": agents,
        "handle_time_s": {"dist": "exponential", "mean": 60},
        "patience_s": {"dist": "exponential", "mean": 600},
    }


def test_full_size_has_no_notes():
    assert _notes(small(), "1") == {}


def test_a_capacity_that_rounds_names_its_field_and_the_exact_value():
    """24 workers at 1/10 are 2 (2.4 exact): 17% less capacity than the scaled sale."""
    gateway = small()["gateway"] | {"workers": 24}
    notes = _notes(small(gateway=gateway), "1/10")
    assert notes["gateway.workers"].startswith("24 -> 2 (24 x 1/10 = 2.4): -17%")


def test_a_count_that_divides_evenly_has_no_rounding_note():
    gateway = small()["gateway"] | {"workers": 20}
    assert "gateway.workers" not in _notes(small(gateway=gateway), "1/10")


def test_staff_rounded_up_to_one_agent_is_named():
    """Three agents at 1/10 are one (0.3 exact): more than three times the scaled size."""
    notes = _notes(small(customer_service=_service(3)), "1/10")
    assert notes["customer_service.agents"].startswith("3 -> 1 (3 x 1/10 = 0.3): +233%")


def test_an_exact_single_server_is_named_too():
    """Ten agents at 1/10 are exactly one, but one server pools nothing."""
    notes = _notes(small(customer_service=_service(10)), "1/10")
    assert "a single server" in notes["customer_service.agents"]


def test_stock_rounded_to_nothing_is_named():
    notes = _notes(small(inventory={"stock_per_item": 4}), "1/10")
    assert notes["inventory.stock_per_item"].startswith("4 -> 0 (4 x 1/10 = 0.4): -100%")


def test_queues_pool_fewer_servers_at_any_scale():
    assert "latency tails" in _notes(small(), "1/2")["scale"]


def test_a_cache_is_read_less_often_per_key():
    assert "stampede" in _notes(small(), "1/10")["cache"]
    assert "cache" not in _notes(small(cache=None), "1/10")


def test_race_windows_are_named_for_the_deductions_that_have_them():
    racing = {"stock_per_item": 50, "deduction": "read_then_write", "race_window_ms": exp_ms()}
    assert "overselling" in _notes(small(inventory=racing), "1/10")["inventory.deduction"]
    atomic = _notes(small(inventory={"stock_per_item": 50}), "1/10")
    assert "inventory.deduction" not in atomic
    unlimited = racing | {"stock_per_item": None}
    assert "inventory.deduction" not in _notes(small(inventory=unlimited), "1/10")


def test_a_coupon_rains_lock_is_named():
    notes = _notes(load_scenario(SCENARIOS / "coupon-over-issue-lock-failure.yaml"), "1/10")
    assert "over-issue" in notes["promotions.coupon_rains[0].deduction"]


def exp_ms() -> dict[str, Any]:
    return {"dist": "exponential", "mean": 20}


def test_the_notes_are_printed_and_written(tmp_path):
    """On stderr before the run, in summary.json and in the report; none at scale 1."""
    gateway = small()["gateway"] | {"workers": 24}
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(small(gateway=gateway)))
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(path), "--set", "scale=1/10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "small at scale 1/10" in result.stderr
    assert "gateway.workers: 24 -> 2 (24 x 1/10 = 2.4)" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    fields = [n["field"] for n in summary["scale_notes"]]
    assert "gateway.workers" in fields and "scale" in fields
    report = (out / "report.html").read_text()
    assert 'id="scale-notes"' in report and "<code>gateway.workers</code>" in report
    full = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "full")])
    assert full.exit_code == 0 and "scale" not in full.stderr
    assert simulate(load_scenario(path)).summary["scale_notes"] == []
    assert 'id="scale-notes"' not in (tmp_path / "full" / "report.html").read_text()


# The presets whose failure mode a scale of 1/10 erases. Each preset's own test shows
# the failure at the size it ships; these show it gone at 1/10, and the note that says why.


def _at_tenth(preset: str) -> tuple[dict[str, Any], dict[str, str]]:
    scenario = load_scenario(SCENARIOS / f"{preset}.yaml", ["scale=1/10"])
    notes = {n.field: n.note for n in scale_notes(scenario)}
    return simulate(scenario).summary, notes


def test_the_hot_key_stampede_disappears_at_a_tenth():
    """The stampede's 50 rebuilds at full size are 2 at 1/10, and nobody is lost.

    At full size 175 queries time out and 1,211 users are turned away.
    """
    s, notes = _at_tenth("hot-key-cache-breakdown")
    assert s["max_concurrent_rebuilds"] < 5
    assert s["db_pool_timeouts"] == 0 and s["outcomes"]["rejected"] == 0
    assert "stampede" in notes["cache"]


def test_the_retry_storm_disappears_at_a_tenth():
    """16 workers round to 2, a quarter more than 1.6: the lost half no longer overloads."""
    s, notes = _at_tenth("retry-storm")
    assert s["retries"] == 0
    assert notes["gateway.workers"].startswith("16 -> 2 (16 x 1/10 = 1.6): +25%")


def test_overselling_shrinks_at_a_tenth():
    """About a fifth of the slot is oversold at full size; at 1/10 under 5% of its 200."""
    s, notes = _at_tenth("oversell-non-atomic-stock")
    assert s["oversold_units"] < 0.05 * 200
    assert "overselling" in notes["inventory.deduction"]
