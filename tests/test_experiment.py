"""Experiments: replications, paired comparison, sweeps, executors and resumption.

The launch-spike preset at a hundredth of its size (about 3,300 sessions, a quarter of a
second a replication) stands in for a sale throughout.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from simulator import experiment
from simulator.experiment import runner as runner_module
from simulator.experiment.estimates import confidence_interval
from simulator.interface.cli import app
from tests.conftest import ROOT, SCENARIOS
from tests.contract import contract_problems

runner = CliRunner()
SMALL = ["scale=1/100"]
SPIKE = SCENARIOS / "sale-start-spike.yaml"


def test_replicate_returns_each_kpi_with_its_interval():
    runs = experiment.run_replications(SPIKE, 4, overrides=SMALL, workers=1, progress=False)
    assert [s["replication"] for s in runs.summaries] == [0, 1, 2, 3]
    assert len({s["sessions"] for s in runs.summaries}) > 1  # independent streams
    table = runs.table()
    orders = [s["orders"] for s in runs.summaries]
    row = table.loc["orders"]
    assert (row["mean"], row["ci_low"], row["ci_high"]) == confidence_interval(orders)
    assert row["n"] == 4 and row["method"] == "t"
    assert table.loc["checkout_latency_ms.p99", "method"] == "t"  # bootstrap from 20
    values = runs.values()
    assert list(values.index) == [0, 1, 2, 3] and values["orders"].tolist() == orders
    frame = experiment.replicate(SPIKE, 2, overrides=SMALL, workers=1, progress=False)
    assert isinstance(frame, pd.DataFrame) and {"mean", "ci_low", "ci_high", "n"} <= set(frame)


def test_paired_interval_is_narrower_than_unpaired_with_common_random_numbers():
    """B differs from A in one component: the payment channels take 50% longer.

    Both see the same users (same stream keys), so per-replication differences cancel
    the traffic's noise; the unpaired (Welch) interval carries it in full.
    """
    slower = [*SMALL, "payment.channels[0].latency_ms.mean=450"]
    comparison = experiment.run_comparison(
        experiment.load(SPIKE, SMALL),
        experiment.load(SPIKE, slower),
        8,
        workers=1,
        progress=False,
    )
    table = comparison.table()
    width = table["ci_high"] - table["ci_low"]
    unpaired = table["unpaired_ci_high"] - table["unpaired_ci_low"]
    for kpi in ("orders", "gmv", "conversion_rate"):  # driven by who arrives
        assert width[kpi] < 0.5 * unpaired[kpi], (kpi, width[kpi], unpaired[kpi])
    assert width["checkout_latency_ms.p50"] < unpaired["checkout_latency_ms.p50"]
    assert table.loc["sessions", "difference"] == 0  # the very same arrivals
    p50 = table.loc["checkout_latency_ms.p50"]
    assert p50["significant"] and p50["ci_low"] > 0  # slower payment, slower checkout


def test_serial_local_workers_and_dask_give_identical_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = experiment.run_replications(SPIKE, 4, overrides=SMALL, workers=1, progress=False)
    local = experiment.run_replications(SPIKE, 4, overrides=SMALL, workers=2, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask = experiment.run_replications(
            SPIKE, 4, overrides=SMALL, scheduler=cluster.scheduler_address, progress=False
        )
        with distributed.Client(cluster) as client:
            pids = set(client.run(os.getpid).values())
        args = ["run", str(SPIKE), "--set", SMALL[0], "-r", "2", "--no-progress"]
        on_dask = [*args, "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "d")]
        command = runner.invoke(app, on_dask)
        assert command.exit_code == 0, command.output
    assert len(pids) == 2 and os.getpid() not in pids  # really other processes
    assert serial.summaries == local.summaries == dask.summaries
    assert serial.summary == local.summary == dask.summary
    here = runner.invoke(app, [*args, "--workers", "1", "--out", str(tmp_path / "s")])
    assert here.exit_code == 0, here.output
    on_dask, in_process = (
        json.loads((tmp_path / folder / "summary.json").read_text()) for folder in ("d", "s")
    )
    # the same file but for the command each was made by
    assert on_dask["provenance"].pop("command") != in_process["provenance"].pop("command")
    assert on_dask == in_process


def test_spawned_workers_give_the_same_results(monkeypatch):
    """Where workers cannot be forked (threads running, or no fork) they are spawned."""
    with monkeypatch.context() as patch:  # fork, even if an earlier test left threads
        patch.setattr(runner_module, "_context", lambda: multiprocessing.get_context("fork"))
        forked = experiment.run_replications(SPIKE, 2, overrides=SMALL, workers=2, progress=False)
    spawn = multiprocessing.get_context("spawn")
    monkeypatch.setattr(runner_module, "_context", lambda: spawn)
    spawned = experiment.run_replications(SPIKE, 2, overrides=SMALL, workers=2, progress=False)
    assert spawned.summaries == forked.summaries


def test_spawned_workers_are_kept_for_the_next_call(monkeypatch):
    """Where workers are spawned (a notebook kernel), the next call reuses the same ones."""
    psutil = pytest.importorskip("psutil")
    spawn = multiprocessing.get_context("spawn")
    monkeypatch.setattr(runner_module, "_context", lambda: spawn)
    executors = []
    local_workers = runner_module.local_workers
    monkeypatch.setattr(
        runner_module,
        "local_workers",
        lambda n: executors.append(local_workers(n)) or executors[-1],
    )

    def workers() -> set[int]:
        children = psutil.Process().children()
        return {c.pid for c in children if "popen_loky" in " ".join(c.cmdline())}

    try:
        first = experiment.run_replications(SPIKE, 2, overrides=SMALL, workers=2, progress=False)
        before = workers()
        second = experiment.run_replications(SPIKE, 2, overrides=SMALL, workers=2, progress=False)
        assert len(executors) == 2 and executors[0] is executors[1]
        assert len(before) == 2 and workers() == before
        assert second.summaries == first.summaries
    finally:
        if executors:
            executors[0].shutdown(wait=True, kill_workers=True)


def test_run_with_replications_writes_the_replicated_contract(tmp_path):
    out = tmp_path / "reps"
    args = ["run", str(SPIKE), "--set", SMALL[0], "-r", "3", "--workers", "2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 replications: mean [95% CI]" in result.output
    summary = json.loads((out / "summary.json").read_text())
    p99 = summary["checkout_latency_ms"]["p99"]
    assert set(p99) == {"mean", "ci_low", "ci_high", "n", "values"} and p99["n"] == 3
    assert p99["ci_low"] <= p99["mean"] <= p99["ci_high"]
    for r, value in enumerate(p99["values"]):
        single = json.loads((out / f"replications/r{r:04d}/summary.json").read_text())
        assert single["checkout_latency_ms"]["p99"] == value and single["replication"] == r
    timeseries = pd.read_parquet(out / "timeseries.parquet")
    assert sorted(timeseries["replication"].unique()) == [0, 1, 2]
    assert "3 replications" in (out / "report.html").read_text()
    assert contract_problems(out) == []


def test_replicated_run_of_a_faulted_preset_reports_each_fault(tmp_path):
    """Faults are listed per replication: they merge entry by entry, recovery as a KPI."""
    out = tmp_path / "failover"
    args = ["run", "payment-channel-failover", "--set", SMALL[0], "-r", "2", "--out", str(out)]
    result = runner.invoke(app, [*args, "--workers", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    fault = json.loads((out / "summary.json").read_text())["faults"][0]
    assert fault["kind"] == "component_down" and fault["at_s"]["mean"] == 700
    assert len(fault["recovery_time_s"]["values"]) == 2
    assert "Fault timeline" in (out / "report.html").read_text()


def test_warmup_fixed_or_chosen_by_mser5():
    mm1 = SCENARIOS / "validation" / "mm1.yaml"
    short = ["duration_s=1000"]
    fixed = experiment.run_replications(
        mm1, 2, overrides=short, warmup=120, workers=1, progress=False
    )
    assert fixed.scenario.warmup_s == 120
    assert all(s["provenance"]["scenario"]["warmup_s"] == 120 for s in fixed.summaries)
    with pytest.raises(experiment.ExperimentError, match="no values"):  # no checkouts here
        experiment.choose_warmup(experiment.load(mm1, short), seed=1, pilots=1, workers=1)
    gateway = "gateway_utilisation"  # mm1's station is the gateway
    chosen = experiment.choose_warmup(
        experiment.load(mm1, short), seed=1, series=gateway, workers=2
    )
    assert 0 <= chosen <= 500 and chosen % 5 == 0  # within the first half, whole batches
    mser = experiment.run_replications(
        mm1, 2, overrides=short, warmup="mser5", warmup_series=gateway, workers=1, progress=False
    )
    assert mser.scenario.warmup_s == chosen  # the same pilots, wherever they ran
    with pytest.raises(experiment.ExperimentError, match="no column 'nope'"):
        experiment.choose_warmup(experiment.load(mm1, short), seed=1, series="nope", pilots=1)


def test_sweep_runs_the_full_factorial_grid(tmp_path):
    grid = {"payment.channels[0].latency_ms.mean": [200, 400], "cache.levels[0].ttl_s": [5, 60]}
    swept = experiment.run_sweep(SPIKE, grid, 2, overrides=SMALL, workers=1, progress=False)
    assert swept.points == [
        {"payment.channels[0].latency_ms.mean": 200, "cache.levels[0].ttl_s": 5},
        {"payment.channels[0].latency_ms.mean": 200, "cache.levels[0].ttl_s": 60},
        {"payment.channels[0].latency_ms.mean": 400, "cache.levels[0].ttl_s": 5},
        {"payment.channels[0].latency_ms.mean": 400, "cache.levels[0].ttl_s": 60},
    ]
    for point, runs in zip(swept.points, swept.runs, strict=True):
        scenario = runs.summaries[0]["provenance"]["scenario"]
        assert scenario["cache"]["levels"][0]["ttl_s"] == point["cache.levels[0].ttl_s"]
    results = swept.results()
    kpis = results["kpi"].nunique()
    assert len(results) == 4 * 2 * kpis
    assert list(results.columns[:3]) == ["point", *grid]
    table = swept.table()
    p50 = table[table["kpi"] == "checkout_latency_ms.p50"].set_index("point")["mean"]
    assert p50[2] > p50[0] and p50[3] > p50[1]  # slower payments, slower checkout
    swept.write(tmp_path, kpi="checkout_latency_ms.p50")
    assert pd.read_csv(tmp_path / "results.csv").shape == results.shape
    assert (tmp_path / "sweep.png").stat().st_size > 0


def test_a_sweep_of_single_runs_reports_a_kpi_only_some_points_have(tmp_path):
    """-r 1 (no intervals) and time_to_limit_s, absent where the limiter never sheds."""
    out = tmp_path / "sweep"
    result = runner.invoke(
        app,
        [
            *("sweep", str(SCENARIOS / "late-peak-shaving.yaml"), "--set", "scale=1/100"),
            *("--grid", "gateway.rate_limit.rate_per_s=2,1000", "--kpi", "time_to_limit_s"),
            *("-r", "1", "--workers", "1", "--no-progress", "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    # a time, not a rate (stderr has the scale's notes, percentages among them)
    assert not re.search(r"\d%", result.stdout.replace("95% CI", ""))
    report = (out / "report.html").read_text()
    rows = re.findall(
        r'<tr><td class="num">(\d+)</td><td class="num">([^<]+)</td>'
        r'<td class="num">([^<]+)</td>',
        report,
    )
    assert [(point, rate) for point, rate, _ in rows] == [("0", "2"), ("1", "1000")]
    shed_at, never = rows[0][2], rows[1][2]
    assert re.fullmatch(r"[\d,.]+", shed_at) and never == "-"


def test_sweep_command_line_errors_name_what_is_wrong(tmp_path):
    bad_spec = runner.invoke(app, ["sweep", str(SPIKE), "--grid", "cache.levels[0].ttl_s"])
    assert bad_spec.exit_code == 2 and "expected PATH=V1,V2" in bad_spec.output
    bad_value = runner.invoke(
        app, ["sweep", str(SPIKE), "--grid", "database.pool_size=10,-3", "--out", str(tmp_path)]
    )
    assert bad_value.exit_code == 2, bad_value.output
    assert "sale-start-spike.yaml" in bad_value.output and "database.pool_size" in bad_value.output
    assert "Traceback" not in bad_value.output and not (tmp_path / "points").exists()
    bad_kpi = runner.invoke(
        app,
        [
            "sweep",
            str(SPIKE),
            "--set",
            SMALL[0],
            "--grid",
            "database.pool_size=10",
            "-r",
            "2",
            "--workers",
            "1",
            "--kpi",
            "checkout_latency.p99",
            "--out",
            str(tmp_path),
        ],
    )
    assert bad_kpi.exit_code == 2 and "checkout_latency_ms.p99" in bad_kpi.output
    assert (tmp_path / "results.parquet").exists()  # the work is kept
    bad_warmup = runner.invoke(app, ["run", str(SPIKE), "--warmup", "soon"])
    assert bad_warmup.exit_code == 2 and "mser5" in bad_warmup.output
    mm1 = str(SCENARIOS / "validation" / "mm1.yaml")
    no_series = runner.invoke(
        app, ["run", mm1, "--set", "duration_s=500", "-r", "2", "--warmup", "mser5"]
    )
    assert no_series.exit_code == 2 and "'checkout_p50_ms' has no values" in no_series.output


LATENCIES = [200, 300, 400, 500]


# SIGINT as in a terminal, even under a shell's background job (which starts with it
# ignored, and Python then installs no KeyboardInterrupt handler).
_TERMINAL_MAIN = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'campaign-sim'; runpy.run_module('simulator', run_name='__main__')"
)
# A process already running a thread, as a notebook kernel is: its workers are the kept
# (spawned, reusable) ones, not forked.
_THREADED_MAIN = (
    "import threading; threading.Thread(target=threading.Event().wait, daemon=True).start(); "
    + _TERMINAL_MAIN
)


def _sweep_command(out, *options: str, main: str = _TERMINAL_MAIN) -> list[str]:
    """The CLI sweep the interruption test runs: 4 points x 4 replications, 2 workers."""
    grid = f"payment.channels[0].latency_ms.mean={','.join(map(str, LATENCIES))}"
    return [
        *(sys.executable, "-c", main, "sweep", str(SPIKE), "--set", "scale=1/40"),
        *("--grid", grid, "-r", "4", "--workers", "2", "--out", str(out), *options),
    ]


def _left_running_in_group(group: int) -> list[int]:
    """Processes of a process group that do not end within 60 s (none, for a clean stop).

    A killed worker may await its reaping (a zombie: ended), and loky's resource tracker
    ends once it sees its parent gone, so the ones left are waited for, not sampled.
    """
    psutil = pytest.importorskip("psutil")
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    _, alive = psutil.wait_procs(members, timeout=60)
    return [p.pid for p in alive]


def _interrupted_sweep(out, main: str = _TERMINAL_MAIN) -> tuple[int, str]:
    """Start a sweep, press Ctrl-C once a replication has finished; (status, stderr).

    Ctrl-C in a terminal signals the whole process group, workers included: the sweep
    runs in a group of its own, and the group gets the signal. Returns once the sweep
    has exited; its workers must be gone with it (checked here).
    """
    process = subprocess.Popen(
        _sweep_command(out, "--progress", main=main),
        stderr=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,
    )
    assert process.stderr is not None
    seen, deadline = b"", time.monotonic() + 120
    try:
        while not re.search(rb"\b([1-9]\d*)/16 \[", seen):  # the bar shows one finished
            ready, _, _ = select.select([process.stderr], [], [], deadline - time.monotonic())
            assert ready, f"no replication finished within 120 s: {seen!r}"
            chunk = process.stderr.read1(1024)
            assert chunk, f"the sweep ended before a replication finished: {seen!r}"
            seen += chunk
        os.killpg(process.pid, signal.SIGINT)
        rest = process.stderr.read()
        status = process.wait(timeout=120)
        assert _left_running_in_group(process.pid) == [], "a worker outlived the sweep"
        return status, (seen + rest).decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_an_interrupted_sweep_keeps_finished_work_and_resumes(tmp_path):
    """Ctrl-C with two worker processes busy: they stop, the finished replications stay."""
    out = tmp_path / "sweep"
    status, stderr = _interrupted_sweep(out)
    assert status == 130, stderr
    message = " ".join(stderr.split())
    assert "interrupted:" in message and "run the same command again to resume" in message
    assert "Traceback" not in stderr
    finished = sorted(out.glob("points/*/replications/*/summary.json"))
    assert 1 <= len(finished) < 16
    kept = {path: path.stat().st_mtime_ns for path in finished}
    resumed = subprocess.run(_sweep_command(out), capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(finished)} of 16 replications already in" in resumed.stderr
    assert {path: path.stat().st_mtime_ns for path in finished} == kept  # not run again
    fresh = experiment.run_sweep(
        SPIKE,
        {"payment.channels[0].latency_ms.mean": LATENCIES},
        4,
        overrides=["scale=1/40"],
        workers=1,
        progress=False,
    )
    on_disk = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(on_disk, fresh.results(), check_dtype=False)


def test_ctrl_c_stops_kept_workers_too(tmp_path):
    """From a process running threads (a notebook kernel) Ctrl-C stops the kept workers."""
    out = tmp_path / "sweep"
    status, stderr = _interrupted_sweep(out, main=_THREADED_MAIN)
    assert status == 130, stderr
    message = " ".join(stderr.split())
    assert "interrupted:" in message and "run the same command again to resume" in message
    assert "Traceback" not in stderr
    assert 1 <= len(list(out.glob("points/*/replications/*/summary.json"))) < 16


def test_a_changed_scenario_is_not_taken_from_the_folder(tmp_path):
    first = experiment.run_replications(
        SPIKE, 2, overrides=SMALL, workers=1, out=tmp_path, progress=False
    )
    other = experiment.run_replications(
        SPIKE,
        2,
        overrides=[*SMALL, "cache.levels[0].ttl_s=5"],
        workers=1,
        out=tmp_path,
        progress=False,
    )
    assert other.summaries != first.summaries
    ttl = other.summaries[0]["provenance"]["scenario"]["cache"]["levels"][0]["ttl_s"]
    assert ttl == 5
