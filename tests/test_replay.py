"""Traffic replayed from a CSV export: the file's counts and rates, sampled exactly.

The statistical tests compare counts in disjoint windows, pooled over replications,
with their expectations computed from the file's numbers directly (not through the
code under test). Counts in disjoint windows of a Poisson process are independent
Poisson, so each window's count must lie in its exact two-sided Poisson interval at
level 0.001 / (number of windows) (Bonferroni: the chance that any window of a correct
sampler falls outside is at most 0.001). The seeds are fixed, so a test that passes
once passes always; the bound says how unlikely a false alarm was.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

import simulator
from simulator.interface.cli import app
from simulator.measure.streams import Streams
from simulator.model.scale import apply_scale
from simulator.model.traffic import arrival_times, expected_arrivals
from simulator.scenario.curves import read_curve
from simulator.scenario.loader import ScenarioError
from simulator.scenario.schema import Traffic
from tests.conftest import SCENARIOS, small

runner = CliRunner()
PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<column>[^:\s]+): (?P<message>.+)$")
FAMILY_ALPHA = 0.001

# Counts per 30 s interval, with a silent interval and sharp steps: a sampler that
# smooths between rows, or ignores the multiplier or the shift, misses them.
COUNTS = [300, 900, 0, 450, 1200, 60, 600, 30]
COUNT_CSV = "# made up for a test\ntime_s,sessions\n" + "".join(
    f"{30 * i},{n}\n" for i, n in enumerate(COUNTS)
)
RATES = [(0, 5.0), (60, 25.0), (90, 25.0), (150, 0.0), (240, 10.0)]
RATE_CSV = "time_s,rate_per_s\n" + "".join(f"{t},{r}\n" for t, r in RATES)


def write_scenario(folder: Path, replay: dict, csv_text: str, **changes) -> Path:
    """A small scenario in ``folder`` replaying ``csv_text`` from ``curves/c.csv``."""
    (folder / "curves").mkdir(exist_ok=True)
    (folder / "curves" / "c.csv").write_text(csv_text, encoding="utf-8")
    data = small(**changes)
    data["traffic"] = {"baseline_per_s": 2.0, "replay": {"file": "curves/c.csv", **replay}}
    path = folder / "s.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path


def pooled_counts(traffic: Traffic, duration: float, edges, reps: int, seed: int) -> np.ndarray:
    """Arrivals per window, summed over ``reps`` replications of the arrivals stream."""
    observed = np.zeros(len(edges) - 1)
    for r in range(reps):
        times = list(arrival_times(traffic, duration, Streams(seed, r).generator("arrivals")))
        observed += np.histogram(times, bins=edges)[0]
    return observed


def assert_poisson_counts(observed: np.ndarray, expected: np.ndarray) -> None:
    """Each window's count lies in its exact Poisson interval, Bonferroni over windows."""
    level = FAMILY_ALPHA / len(expected)
    for i, (seen, mean) in enumerate(zip(observed, expected, strict=True)):
        if mean == 0:
            assert seen == 0, (i, seen)
            continue
        low, high = stats.poisson.ppf(level / 2, mean), stats.poisson.isf(level / 2, mean)
        assert low <= seen <= high, f"window {i}: {seen:.0f} outside [{low:.0f}, {high:.0f}]"


def test_counts_per_interval_are_sampled_as_written(tmp_path):
    """Each interval's pooled count matches its count x multiplier, shifted; baseline outside.

    Count per interval is read as a constant rate over the interval, so each interval
    expects exactly its count; before the shifted curve and after its end (the last
    interval as long as the one before it) the baseline's 2/s applies.
    """
    path = write_scenario(tmp_path, {"multiplier": 1.3, "shift_s": 45}, COUNT_CSV)
    traffic = simulator.load_scenario(path, ["duration_s=400"]).traffic
    start, width = 45.0, 30.0
    end = start + width * len(COUNTS)
    edges = np.array([0.0, start, *(start + width * np.arange(1, len(COUNTS) + 1)), 400.0])
    expected_one = np.array([2.0 * start, *(1.3 * n for n in COUNTS), 2.0 * (400 - end)])
    assert expected_arrivals(traffic, 400) == pytest.approx(expected_one.sum())
    reps = 20
    observed = pooled_counts(traffic, 400, edges, reps, seed=5)
    assert_poisson_counts(observed, reps * expected_one)


def test_rates_are_linear_between_rows(tmp_path):
    """Pooled counts in half-segments match the trapezoids of the linear rate curve.

    Halves tell a linear curve from one held constant between rows: a step at each row
    would put the whole segment's mean rate in both halves.
    """
    path = write_scenario(tmp_path, {}, RATE_CSV)
    traffic = simulator.load_scenario(path, ["duration_s=300"]).traffic
    assert traffic.rate_at(30) == pytest.approx(15.0)  # half way from 5 to 25
    assert traffic.rate_at(270) == 2.0  # after the curve: the baseline
    edges, expected_one = [], []
    for (a, ra), (b, rb) in zip(RATES, RATES[1:], strict=False):
        mid, rm = (a + b) / 2, (ra + rb) / 2
        edges += [a, mid]
        expected_one += [(ra + rm) / 2 * (mid - a), (rm + rb) / 2 * (b - mid)]
    edges += [RATES[-1][0], 300.0]
    expected_one.append(2.0 * (300 - RATES[-1][0]))
    reps = 20
    observed = pooled_counts(traffic, 300, np.array(edges), reps, seed=7)
    assert_poisson_counts(observed, reps * np.array(expected_one))


def test_pulses_add_their_excess_on_top_of_the_replay(tmp_path):
    """A burst at 4x a 2/s baseline adds 6/s to the replayed rate while it holds."""
    path = write_scenario(tmp_path, {}, RATE_CSV)
    burst = {"start_s": 90, "ramp_s": 0, "hold_s": 60, "decay_s": 0, "multiplier": 4}
    scenario = simulator.load_scenario(path, ["duration_s=300", f"traffic.bursts=[{burst}]"])
    traffic = scenario.traffic
    assert traffic.rate_at(120) == pytest.approx(12.5 + 6.0)  # replay 25 -> 0 at half way
    edges = np.array([0.0, 90.0, 150.0, 240.0, 300.0])
    replayed = [(5 + 25) / 2 * 60 + 25 * 30, (25 + 0) / 2 * 60, (0 + 10) / 2 * 90, 2.0 * 60]
    expected_one = np.array(replayed) + np.array([0.0, 6.0 * 60, 0.0, 0.0])
    reps = 20
    observed = pooled_counts(traffic, 300, edges, reps, seed=9)
    assert_poisson_counts(observed, reps * expected_one)


def test_clock_times_are_placed_by_the_scenarios_clock(tmp_path):
    """A ``clock`` row at 20:00 is 30 minutes into a run whose clock starts at 19:30."""
    text = "clock,sessions\n19:00,60\n20:00,600\n20:01:30,90\n24:30,10\n"
    path = write_scenario(tmp_path, {}, text, clock_at_start_h=19.5)
    replay = simulator.load_scenario(path).traffic.replay
    assert replay is not None
    assert replay.time_s == [-1800.0, 1800.0, 1890.0, 18000.0]  # 24:30: after midnight
    assert replay.sessions == [60, 600, 90, 10]
    assert replay.rate_at(1800) == pytest.approx(600 / 90)


def test_an_export_is_read_as_it_is_once_its_columns_are_named(tmp_path):
    """A byte-order mark, quoted fields, spaces and columns the curve does not use are fine."""
    text = '\ufeffdate,time_s, sessions ,users\n"2024-11-11",0, 300 ,"1,024"\n2024-11-11,60,90,7\n'
    (tmp_path / "export.csv").write_bytes(text.encode("utf-8"))
    path = write_scenario(tmp_path, {"file": "export.csv"}, COUNT_CSV)
    replay = simulator.load_scenario(path).traffic.replay
    assert replay is not None and replay.time_s == [0, 60] and replay.sessions == [300, 90]


def test_scale_divides_the_replayed_rates(tmp_path):
    """At scale 1/10 the replayed curve brings a tenth of the sessions, pulses included."""
    path = write_scenario(tmp_path, {"multiplier": 1.3}, COUNT_CSV)
    full = simulator.load_scenario(path, ["duration_s=300"])
    tenth = apply_scale(simulator.load_scenario(path, ["duration_s=300", "scale=1/10"]))
    for t in (10.0, 45.0, 100.0, 250.0):
        assert tenth.traffic.rate_at(t) == pytest.approx(full.traffic.rate_at(t) / 10)
    expected = expected_arrivals(full.traffic, 300) / 10
    assert expected_arrivals(tenth.traffic, 300) == pytest.approx(expected)
    sessions = simulator.simulate(simulator.load_scenario(path, ["duration_s=300", "scale=1/10"]))
    count = sessions.summary["sessions"]
    low, high = stats.poisson.ppf(FAMILY_ALPHA / 2, expected), stats.poisson.isf(0.0005, expected)
    assert low <= count <= high, (count, expected)


def test_same_seed_same_arrivals_and_run(tmp_path):
    """Two runs of a replayed scenario on one seed agree; another seed differs."""
    path = write_scenario(tmp_path, {"multiplier": 1.3, "shift_s": 10}, COUNT_CSV)
    scenario = simulator.load_scenario(path, ["duration_s=120"])

    def times(seed: int) -> list[float]:
        return list(arrival_times(scenario.traffic, 120, Streams(seed).generator("arrivals")))

    assert times(3) == times(3) and times(3) != times(4)
    first, second = simulator.simulate(scenario, seed=3), simulator.simulate(scenario, seed=3)
    for key in ("sessions", "orders", "gmv", "outcomes"):
        assert first.summary[key] == second.summary[key], key


def test_the_resolved_scenario_carries_the_curve_not_only_its_name(tmp_path):
    """The dumped scenario holds the file's numbers and reloads without the file.

    The scenario store hashes this dump, so a changed file is a different scenario.
    """
    path = write_scenario(tmp_path, {}, COUNT_CSV)
    scenario = simulator.load_scenario(path)
    dumped = scenario.model_dump(mode="json")
    assert dumped["traffic"]["replay"]["sessions"] == COUNTS
    (tmp_path / "curves" / "c.csv").unlink()
    assert simulator.load_scenario(dumped) == scenario
    assert simulator.load_scenario(scenario, ["traffic.replay.multiplier=2"]).traffic.replay
    (tmp_path / "curves" / "c.csv").write_text(COUNT_CSV.replace("900", "901"))
    assert simulator.load_scenario(path).model_dump(mode="json") != dumped


def test_a_file_named_later_replaces_the_columns_read_before(tmp_path, monkeypatch):
    """``--set traffic.replay.file=...`` on a loaded scenario reads the new file.

    A path given in --set is relative to the working directory.
    """
    path = write_scenario(tmp_path, {}, COUNT_CSV)
    (tmp_path / "rates.csv").write_text(RATE_CSV)
    loaded = simulator.load_scenario(path)
    monkeypatch.chdir(tmp_path)
    replaced = simulator.load_scenario(loaded, ["traffic.replay.file=rates.csv"]).traffic.replay
    assert replaced is not None
    assert replaced.sessions is None and replaced.rate_per_s == [r for _, r in RATES]


def test_the_file_is_relative_to_the_scenario_that_names_it(tmp_path, monkeypatch):
    """A parent's curve is found beside the parent, whatever the working directory."""
    write_scenario(tmp_path, {}, COUNT_CSV)
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    child = child_dir / "c.yaml"
    child.write_text("extends: ../s.yaml\ntraffic: {replay: {multiplier: 2}}\n")
    monkeypatch.chdir(child_dir)
    replay = simulator.load_scenario("c.yaml").traffic.replay
    assert replay is not None and replay.sessions == COUNTS and replay.multiplier == 2


def test_a_missing_file_is_reported_where_it_is_named(tmp_path):
    """A file that does not exist is a problem at traffic.replay.file's line, exit 2."""
    path = write_scenario(tmp_path, {}, COUNT_CSV)
    result = runner.invoke(app, ["run", str(path), "--set", "traffic.replay.file=nope.csv"])
    assert result.exit_code == 2, result.output
    assert "traffic.replay.file: no file nope.csv" in result.output
    assert "Traceback" not in result.output


BAD_FILES = [
    ("time_s,rate_per_s\n0,1\n60,abc\n", 3, "rate_per_s", "must be a number ≥ 0, got 'abc'"),
    ("time_s,sessions\n0,1\n60,-3\n", 3, "sessions", "must be a number ≥ 0, got '-3'"),
    ("time_s,rate_per_s\n0,1\n60,nan\n", 3, "rate_per_s", "must be a number ≥ 0, got 'nan'"),
    ("# a comment\n\ntime,rate_per_s\n0,1\n", 3, "time_s", "missing column"),
    ("time_s,visits\n0,1\n60,2\n", 1, "rate_per_s", "missing column"),
    ("time_s,rate_per_s,sessions\n0,1,1\n", 1, "sessions", "both rate_per_s and sessions"),
    ("time_s,rate_per_s\n0,1\n60,2\n60,3\n", 4, "time_s", "times must increase: '60'"),
    ("time_s,rate_per_s\n0,1\n60,2\n30,3\n", 4, "time_s", "is not after '60' (line 3)"),
    ("", 1, "header", "no header and no rows"),
    ("# only a comment\n", 1, "header", "no header and no rows"),
    ("time_s,rate_per_s\n0,1\n", 1, "rate_per_s", "at least two rows, got 1"),
    ("time_s,rate_per_s\n0,12,5\n60,1\n", 2, "row", "3 fields where the header names 2"),
    ("time_s,rate_per_s\n0,1\n60,\n", 3, "rate_per_s", "missing value"),
    ("clock,sessions\n8pm,3\n20:01,4\n", 2, "clock", "must be a time of day HH:MM"),
    ("time_s,rate_per_s\n0,1\n60,[red]x[/red]\n", 3, "rate_per_s", "got '[red]x[/red]'"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), BAD_FILES)
def test_a_malformed_file_is_named_by_line_and_column_with_exit_2(
    tmp_path, text, line, column, message
):
    """``campaign-sim run`` prints ``FILE:LINE: column: problem`` literally and exits 2."""
    path = write_scenario(tmp_path, {}, text)
    result = runner.invoke(app, ["run", str(path), "--set", "duration_s=10"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    found = [m for row in result.output.splitlines() if (m := PROBLEM.match(row))]
    assert len(found) == 1, result.output  # the curve's problem, not one more for the schema
    [problem] = found
    assert problem["file"].endswith("curves/c.csv")
    assert (int(problem["line"]), problem["column"]) == (line, column), result.output
    assert message in problem["message"], result.output


def test_the_installed_command_exits_2_on_a_bad_curve(tmp_path):
    """``python -m simulator run`` (not only the test runner) exits 2 without a traceback."""
    path = write_scenario(tmp_path, {}, "time_s,rate_per_s\n0,1\n60,abc\n")
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "run", str(path), "--set", "duration_s=10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "curves/c.csv:3: rate_per_s: must be a number ≥ 0, got 'abc'" in proc.stderr


def test_long_lists_of_problems_are_cut():
    """A file wrong on every row lists twenty problems and says how many more."""
    text = "time_s,rate_per_s\n" + "".join(f"{t},x\n" for t in range(50))
    with pytest.raises(ValueError) as caught:
        read_curve(text)
    lines = str(caught.value).splitlines()
    assert len(lines) == 21 and lines[-1].startswith("51: file: 30 more problems")


def test_columns_written_in_the_scenario_are_checked():
    """Inline columns follow the file's rules: increasing times, one value a time."""
    base = {"baseline_per_s": 1}
    bad = [
        ({"time_s": [0, 60, 60], "rate_per_s": [1, 2, 3]}, "must increase"),
        ({"time_s": [0, 60], "rate_per_s": [1]}, "time_s has 2 values"),
        ({"time_s": [0, 60], "rate_per_s": [1, 2], "sessions": [1, 2]}, "not both"),
        ({"multiplier": 2}, "no curve"),
    ]
    for replay, message in bad:
        with pytest.raises(ScenarioError, match=message):
            simulator.load_scenario(small(traffic={**base, "replay": replay}))
    with pytest.raises(ValueError, match="x.csv has not been read: load the scenario"):
        Traffic(baseline_per_s=1, replay={"file": "x.csv"})  # the schema alone reads no file


def test_the_shipped_curve_reads_as_a_synthetic_evening():
    """The example curve says it is synthetic and gives 180 one-minute counts."""
    path = SCENARIOS / "curves" / "double11-synthetic.csv"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#") and "SYNTHETIC" in first
    replay = simulator.load_scenario(SCENARIOS / "replay-last-year.yaml").traffic.replay
    assert replay is not None and replay.sessions is not None and len(replay.sessions) == 180
    assert np.allclose(np.diff(replay.time_s), 60)
