"""The command line: run writes the contract files, list and schema answer."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from simulator.interface.cli import app
from tests.conftest import SCENARIOS
from tests.contract import contract_problems

runner = CliRunner()


def test_run_prints_kpis_and_writes_the_contract_files(tmp_path):
    """`run` prints a KPI table and writes summary.json, timeseries.parquet, report.html."""
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run",
            str(SCENARIOS / "baseline.yaml"),
            "--seed",
            "4",
            "--set",
            "duration_s=60",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "checkout latency" in result.output and "sessions simulated" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 4
    assert summary["provenance"]["scenario"]["duration_s"] == 60
    assert sum(summary["outcomes"].values()) == summary["sessions"] > 0
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert {
        "t_s",
        "arrivals",
        "checkout_p99_ms",
        "cache_hit_ratio",
        "db_utilisation",
        "payment_success_rate",
    } <= set(ts.columns)
    report = (out / "report.html").read_text()
    assert "<svg" in report and "baseline" in report and "http" not in report.split("<svg")[0]


def test_run_output_keeps_the_output_contract(tmp_path):
    """A run's folder has every contract key, outcomes adding up, ordered quantiles."""
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "baseline", "--set", "duration_s=60", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert contract_problems(out) == []


def test_the_contract_check_finds_a_broken_summary(tmp_path):
    """The check is not vacuous: lost sessions, disordered quantiles, a rate above 1."""
    out = tmp_path / "run"
    runner.invoke(app, ["run", "baseline", "--set", "duration_s=60", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    summary["outcomes"]["ordered"] += 1
    summary["checkout_latency_ms"]["p50"] = summary["checkout_latency_ms"]["p99"] + 1
    summary["conversion_rate"] = 1.5
    del summary["funnel"]
    (out / "summary.json").write_text(json.dumps(summary))
    assert contract_problems(out) == ["missing key funnel"]
    summary["funnel"] = {}
    (out / "summary.json").write_text(json.dumps(summary))
    problems = contract_problems(out)
    assert len(problems) == 3 and "outcomes add up" in problems[0], problems
    assert "out of order" in problems[1] and "conversion_rate = 1.5" in problems[2]


def test_scenario_text_is_escaped_in_the_report(tmp_path):
    """A description with markup shows as text, never as HTML."""
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run",
            "baseline",
            "--set",
            "duration_s=30",
            "--out",
            str(out),
            "--set",
            "description=<script>alert(1)</script> & more",
        ],
    )
    assert result.exit_code == 0, result.output
    report = (out / "report.html").read_text()
    assert "<script>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in report


def test_list_shows_every_preset_with_its_question():
    """`list` names each preset and the first line of its description."""
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for path in [*SCENARIOS.glob("*.yaml"), *SCENARIOS.glob("validation/*.yaml")]:
        assert path.stem in result.output
    assert "launch spike" in result.output


def test_validate_accepts_a_preset_by_name():
    """A preset, or a validation case, can be named without its path."""
    for name in ("sale-start-spike", "mmc"):
        result = runner.invoke(app, ["validate", name])
        assert result.exit_code == 0, result.output
        assert f"'{name}'" in result.output
