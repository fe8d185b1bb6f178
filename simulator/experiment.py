"""Experiments: replications with confidence intervals, paired comparisons and sweeps.

One run of a stochastic model is an anecdote; an experiment runs replications. Each
replication of a scenario draws from its own streams, keyed by ``(seed, replication)``,
so replication *r* of a scenario is the same wherever it runs: in this process, in a
local worker process, or on a Dask cluster. Results are therefore identical however
they were executed, and two scenarios run on the same keys see the same users (common
random numbers), which is what makes :func:`compare` precise.

For notebooks, :func:`replicate`, :func:`compare` and :func:`sweep` return DataFrames::

    from simulator import experiment
    experiment.replicate("sale-start-spike", 10, overrides=["scale=1/10"])
    experiment.compare("baseline", "sale-start-spike", 10)
    experiment.sweep("sale-start-spike", {"database.pool_size": [20, 40, 80]}, 5)

The ``run_*`` functions return the objects behind them, which also write the output
folder. Given ``out``, every finished replication is written to its own folder as it
finishes (``summary.json`` last, so a half-written one is never taken as finished), and
a later call with the same folder skips the replications already there whose scenario,
seed and replication match. An interrupted experiment raises :class:`Interrupted`
(a ``KeyboardInterrupt``) saying how much is kept.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.campaign import simulate
from simulator.estimates import (
    LEVEL,
    aggregate,
    difference,
    estimates,
    flatten,
    is_kpi,
    method,
    mser5,
)
from simulator.presets import resolve
from simulator.result import SimulationResult, to_json
from simulator.scenario.loader import ScenarioError, load_scenario
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Comparison",
    "ExperimentError",
    "Interrupted",
    "Replications",
    "SchedulerError",
    "Sweep",
    "compare",
    "load",
    "replicate",
    "run_comparison",
    "run_replications",
    "run_sweep",
    "sweep",
]

ScenarioLike = Scenario | str | Path | Mapping[str, Any]
Scheduler = Any  # a Dask scheduler address, or a distributed.Client
Summary = dict[str, Any]

MSER_PILOTS = 5
"""Pilot replications whose averaged time series MSER-5 truncates."""
PILOT_KEYS = 1_000_000
"""Pilot runs draw from replication keys from here on, apart from the replications."""
_TABLES = ("timeseries", "logistics")


class ExperimentError(ValueError):
    """An experiment asked for something the scenario cannot give (e.g. a warm-up series)."""


class SchedulerError(RuntimeError):
    """The Dask scheduler could not be used (extra not installed, or not reachable)."""


class Interrupted(KeyboardInterrupt):
    """An experiment stopped by Ctrl-C; the message says what was kept and where."""

    def __init__(
        self, finished: int, total: int, folder: Path | None, what: str = "replications"
    ) -> None:
        kept = (
            f"kept in {folder}/; run the same command again to resume"
            if folder is not None
            else "not kept (no output folder)"
        )
        super().__init__(f"interrupted: {finished} of {total} {what} finished, {kept}")


# --- one replication, wherever it runs -------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One replication to run, and where its files go within the output folder."""

    index: int
    scenario: Scenario
    seed: int
    replication: int
    folder: str
    keep_tables: bool


@dataclass
class Record:
    """A finished replication: its summary (JSON-clean) and, if kept, its tables."""

    task: Task
    summary: Summary
    timeseries: pd.DataFrame | None = field(default=None, repr=False)
    logistics: pd.DataFrame | None = field(default=None, repr=False)


def run_task(task: Task) -> Record:
    """Run one replication (in whichever process the executor chose)."""
    result = simulate(task.scenario, seed=task.seed, replication=task.replication)
    summary = json.loads(to_json(result.summary))  # the form it has on disk
    if not task.keep_tables:
        return Record(task, summary)
    return Record(task, summary, result.timeseries, result.logistics)


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _execute(
    tasks: Sequence[Task], workers: int, scheduler: Scheduler, done: Callable[[Record], None]
) -> None:
    """Run the tasks serially, on local worker processes, or on a Dask cluster."""
    if not tasks:
        return
    if scheduler is not None:
        _on_dask(tasks, scheduler, done)
    elif workers <= 1 or len(tasks) == 1:
        for task in tasks:
            done(run_task(task))
    else:
        pool = _context().Pool(min(workers, len(tasks)), initializer=_ignore_interrupts)
        try:
            for record in pool.imap_unordered(run_task, tasks):
                done(record)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()


def _context() -> multiprocessing.context.BaseContext:
    """How to start local workers: fork when it is safe, else spawn.

    Forked workers start at once and need no ``if __name__ == "__main__"`` guard in a
    user's script; but forking a process that runs other threads (a notebook kernel, a
    Dask client) can deadlock the child, and macOS's system libraries do not survive a
    fork, so otherwise workers are spawned: a fresh interpreter that imports the package
    (a second or two each).
    """
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _on_dask(tasks: Sequence[Task], scheduler: Scheduler, done: Callable[[Record], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SchedulerError(
            "a Dask scheduler needs the dask extra: pip install 'campaign-sim[dask]'"
        ) from None
    try:
        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    except (OSError, ValueError) as exc:
        raise SchedulerError(f"cannot use the Dask scheduler at {scheduler}: {exc}") from None
    futures = client.map(run_task, tasks, pure=False)
    try:
        for future in as_completed(futures):
            done(future.result())
            future.release()  # the cluster may drop the replication's tables now
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        if client is not scheduler:
            client.close()


# --- finished replications on disk ------------------------------------------------------


class _Store:
    """The output folder's finished replications: what to skip, where to write."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._plain: dict[int, Any] = {}

    def _scenario(self, scenario: Scenario) -> Any:
        key = id(scenario)
        if key not in self._plain:
            self._plain[key] = json.loads(to_json(scenario.model_dump(mode="json")))
        return self._plain[key]

    def finished(self, task: Task) -> Summary | None:
        """The task's summary if the folder holds this very replication, else None."""
        if self.root is None:
            return None
        folder = self.root / task.folder
        path = folder / "summary.json"
        tables = [folder / f"{name}.parquet" for name in _TABLES] if task.keep_tables else []
        if not path.exists() or not all(t.exists() for t in tables):
            return None
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:  # cut short by a crash: run it again
            return None
        made = summary.get("provenance", {})
        same = (
            made.get("seed") == task.seed
            and made.get("replication") == task.replication
            and made.get("scenario") == self._scenario(task.scenario)
        )
        return summary if same else None

    def save(self, record: Record) -> None:
        """Write a finished replication; ``summary.json`` last, atomically."""
        if self.root is None:
            return
        folder = self.root / record.task.folder
        folder.mkdir(parents=True, exist_ok=True)
        # another scenario's replication may be here: it stops counting as finished
        # before its tables are replaced
        (folder / "summary.json").unlink(missing_ok=True)
        if record.timeseries is not None:
            record.timeseries.to_parquet(folder / "timeseries.parquet", index=False)
        if record.logistics is not None:
            record.logistics.to_parquet(folder / "logistics.parquet", index=False)
        part = folder / "summary.json.part"
        part.write_text(to_json(record.summary) + "\n", encoding="utf-8")
        os.replace(part, folder / "summary.json")


def _workers(workers: int | None) -> int:
    return (os.cpu_count() or 1) if workers is None else max(1, workers)


def _progress_bar(total: int, initial: int, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        monitor_interval = 0  # no monitor thread: local workers can then be forked

    # enabled=None: a bar on a terminal or in a notebook, none in a log file
    return Bar(
        total=total,
        initial=initial,
        unit="rep",
        desc="replications",
        disable=None if enabled is None else not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _collect(
    tasks: Sequence[Task],
    out: Path | None,
    workers: int | None,
    scheduler: Scheduler,
    progress: bool | None,
) -> list[Summary]:
    """Every task's summary, in task order: from disk when finished before, else run.

    Raises:
        Interrupted: on Ctrl-C, after stopping the workers; what finished is on disk.
    """
    store = _Store(out)
    summaries: list[Summary | None] = [store.finished(t) for t in tasks]
    todo = [t for t, s in zip(tasks, summaries, strict=True) if s is None]
    if len(todo) < len(tasks):
        rest = f"running the other {len(todo)}" if todo else "nothing left to run"
        kept = len(tasks) - len(todo)
        print(f"{kept} of {len(tasks)} replications already in {out}/; {rest}", file=sys.stderr)
    bar = _progress_bar(len(tasks), len(tasks) - len(todo), progress)

    def done(record: Record) -> None:
        store.save(record)
        summaries[record.task.index] = record.summary
        bar.update()

    try:
        _execute(todo, _workers(workers), scheduler, done)
    except KeyboardInterrupt:
        finished = sum(s is not None for s in summaries)
        raise Interrupted(finished, len(tasks), out) from None
    finally:
        bar.close()
    return [s for s in summaries if s is not None]


def load(scenario: ScenarioLike, overrides: Iterable[str] = ()) -> Scenario:
    """A scenario from a file, a preset name, a mapping or a Scenario, with overrides."""
    if isinstance(scenario, str):
        scenario = resolve(scenario)
    return load_scenario(scenario, overrides)


# --- replications -------------------------------------------------------------------------


@dataclass
class Replications:
    """N replications of one scenario.

    Attributes:
        scenario: the scenario as run (with the warm-up chosen, if any).
        seed: the seed; replication r draws from streams keyed by (seed, r).
        summaries: the replications' summaries, in replication order.
        folder: where each replication's files are (``replications/rNNNN``), or None.
    """

    scenario: Scenario
    seed: int
    summaries: list[Summary] = field(repr=False)
    folder: Path | None = None

    @cached_property
    def summary(self) -> Summary:
        """The replicated ``summary.json``: each KPI's mean, CI, n and values."""
        return aggregate(self.summaries, self.seed)

    def values(self) -> pd.DataFrame:
        """One row per replication, one column per numeric KPI (dotted path)."""
        frame = pd.DataFrame([flatten(s) for s in self.summaries])
        frame.index = pd.Index([s["replication"] for s in self.summaries], name="replication")
        return frame

    def table(self) -> pd.DataFrame:
        """One row per KPI: mean, 95% CI and its method (see estimates.method), n."""
        rows = [
            {
                "kpi": kpi,
                "mean": leaf["mean"],
                "ci_low": leaf["ci_low"],
                "ci_high": leaf["ci_high"],
                "n": leaf["n"],
                "method": method(kpi, leaf["n"]),
            }
            for kpi, leaf in _leaves(self.summary)
        ]
        return pd.DataFrame(rows).set_index("kpi")

    def result(self) -> SimulationResult:
        """The KPIs as estimates (means carrying CIs), with the first replication's tables."""
        first = self.summaries[:1]
        return SimulationResult(
            self.scenario,
            estimates(self.summary),
            self._tables("timeseries", first),
            logistics=self._tables("logistics", first),
        )

    def _tables(self, name: str, summaries: list[Summary] | None = None) -> pd.DataFrame:
        """A per-replication table of the replications, with a ``replication`` column."""
        if self.folder is None:
            raise ValueError("the replications' tables were not kept (no output folder)")
        frames = []
        for s in self.summaries if summaries is None else summaries:
            path = self.folder / _rep_folder(s["replication"]) / f"{name}.parquet"
            frame = pd.read_parquet(path)
            frame.insert(0, "replication", s["replication"])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def write(self, out: Path, report: bool = True) -> Path:
        """Write ``summary.json``, ``kpis.csv``, the stacked tables and the report."""
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(to_json(self.summary) + "\n", encoding="utf-8")
        self.table().to_csv(out / "kpis.csv")
        self._tables("timeseries").to_parquet(out / "timeseries.parquet", index=False)
        self._tables("logistics").to_parquet(out / "logistics.parquet", index=False)
        if report:
            from simulator.report import write_report

            write_report(self.result(), out / "report.html")
        return out


def _rep_folder(replication: int) -> str:
    return f"replications/r{replication:04d}"


def _leaves(aggregated: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Mapping]]:
    """``(dotted path, leaf)`` of each numeric KPI of a replicated summary."""
    for key, value in aggregated.items():
        if key == "provenance" or not isinstance(value, Mapping):
            continue
        if is_kpi(value):
            yield f"{prefix}{key}", value
        else:
            yield from _leaves(value, f"{prefix}{key}.")


def _tasks(
    scenario: Scenario, seed: int, replications: int, prefix: str, keep: bool, start: int = 0
) -> list[Task]:
    return [
        Task(start + r, scenario, seed, r, f"{prefix}{_rep_folder(r)}", keep)
        for r in range(replications)
    ]


def choose_warmup(
    scenario: Scenario,
    seed: int,
    series: str = "checkout_p50_ms",
    pilots: int = MSER_PILOTS,
    workers: int | None = None,
    scheduler: Scheduler = None,
) -> float:
    """Warm-up by MSER-5: the truncation point of pilot runs' averaged time series.

    The pilots are runs with no warm-up on keys of their own (:data:`PILOT_KEYS` on,
    so the cut is not chosen on the very runs it is applied to); their ``series``
    column is averaged across them interval by interval (which smooths the noise MSER
    would otherwise chase) and truncated by :func:`~simulator.estimates.mser5`.

    Returns:
        The warm-up in seconds (a multiple of the time-series interval).
    """
    pilot = load_scenario(scenario, ["warmup_s=0"])
    tasks = [Task(r, pilot, seed, PILOT_KEYS + r, "", True) for r in range(pilots)]
    series_by_run: list[np.ndarray] = [np.empty(0)] * pilots

    def done(record: Record) -> None:
        assert record.timeseries is not None
        if series not in record.timeseries:
            raise ExperimentError(f"--warmup-series: the time series has no column {series!r}")
        series_by_run[record.task.index] = record.timeseries[series].to_numpy(float)

    try:
        _execute(tasks, _workers(workers), scheduler, done)
    except KeyboardInterrupt:
        raise Interrupted(0, pilots, None, what="MSER-5 pilot runs") from None
    length = min(len(s) for s in series_by_run)
    stacked = np.vstack([s[:length] for s in series_by_run])
    with warnings.catch_warnings():  # intervals no pilot measured stay NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        averaged = np.nanmean(stacked, axis=0)
    if not np.isfinite(averaged).any():
        raise ExperimentError(
            f"--warmup-series: {series!r} has no values in this scenario (nothing it measures "
            f"happens); choose a column that does, e.g. a station's utilisation"
        )
    return mser5(averaged) * scenario.timeseries_interval_s


def run_replications(
    scenario: ScenarioLike,
    replications: int = 10,
    *,
    seed: int | None = None,
    overrides: Iterable[str] = (),
    warmup: float | str | None = None,
    warmup_series: str = "checkout_p50_ms",
    workers: int | None = None,
    scheduler: Scheduler = None,
    out: str | Path | None = None,
    progress: bool | None = True,
) -> Replications:
    """Run independent replications of a scenario.

    Args:
        scenario: a Scenario, a file, a preset name or a mapping.
        replications: how many (at least 1; a CI needs 2).
        seed: the seed (default: the scenario's).
        overrides: ``PATH=VALUE`` strings, as ``--set``.
        warmup: seconds to delete at the start (sets ``warmup_s``), ``"mser5"`` to
            choose them from pilot runs (see :func:`choose_warmup`), or None to keep the
            scenario's ``warmup_s`` (0 for a sale, a terminating simulation).
        warmup_series: the time-series column MSER-5 reads.
        workers: local worker processes (default: all cores; 1 runs here, serially).
        scheduler: a Dask scheduler address or ``distributed.Client``; replaces workers.
        out: folder for each replication's files; finished ones there are skipped.
        progress: show a progress bar (None: only on a terminal or in a notebook).
    """
    loaded = load(scenario, overrides)
    seed = loaded.seed if seed is None else seed
    if warmup == "mser5":
        warmup = choose_warmup(loaded, seed, warmup_series, workers=workers, scheduler=scheduler)
    if warmup is not None:
        loaded = load_scenario(loaded, [f"warmup_s={float(warmup)!r}"])
    folder = None if out is None else Path(out)
    tasks = _tasks(loaded, seed, replications, "", folder is not None)
    summaries = _collect(tasks, folder, workers, scheduler, progress)
    return Replications(loaded, seed, summaries, folder)


def replicate(scenario: ScenarioLike, replications: int = 10, **options: Any) -> pd.DataFrame:
    """Each KPI's mean and 95% CI over replications; options as :func:`run_replications`."""
    return run_replications(scenario, replications, **options).table()


# --- paired comparison ------------------------------------------------------------------

HEADLINE = (
    "sessions",
    "orders",
    "gmv",
    "conversion_rate",
    "checkout_latency_ms.p50",
    "checkout_latency_ms.p99",
    "page_latency_ms.p95",
    "cache_hit_ratio",
    "db_peak_qps",
    "db_pool_timeouts",
    "payment_success_rate",
    "gross_margin",
    "lost_gmv_total",
    "on_time_delivery_rate",
    "next_day_delivery_rate",
    "requests_shed",
    "cs_wait_s.mean",
)
"""KPIs the command line shows first; every KPI is in the full tables."""


@dataclass
class Comparison:
    """A and B run on the same stream keys (common random numbers)."""

    a: Replications
    b: Replications

    @cached_property
    def _table(self) -> pd.DataFrame:
        va, vb = self.a.values(), self.b.values()
        kpis = list(dict.fromkeys([*va.columns, *vb.columns]))
        va, vb = va.reindex(columns=kpis), vb.reindex(columns=kpis)
        rows = [difference(k, va[k].tolist(), vb[k].tolist(), self.a.seed) for k in kpis]
        table = pd.DataFrame(rows).set_index("kpi")
        with np.errstate(invalid="ignore", divide="ignore"):
            table.insert(3, "relative", table["difference"] / table["a_mean"].abs())
        return table

    def table(self) -> pd.DataFrame:
        """Per KPI: A and B means, B - A with its paired 95% CI, significance, Welch CI."""
        return self._table.copy()

    def write(self, out: Path, report: bool = True) -> Path:
        """Write ``comparison.csv`` / ``.parquet``, each side's summary and ``report.html``."""
        out.mkdir(parents=True, exist_ok=True)
        for side, runs in (("A", self.a), ("B", self.b)):
            runs.write(out / side, report=False)
        self._table.to_csv(out / "comparison.csv")
        self._table.to_parquet(out / "comparison.parquet")
        if report:
            from simulator.report import render_comparison

            (out / "report.html").write_text(render_comparison(self), encoding="utf-8")
        return out


def run_comparison(
    a: ScenarioLike,
    b: ScenarioLike,
    replications: int = 10,
    *,
    seed: int | None = None,
    overrides: Iterable[str] = (),
    workers: int | None = None,
    scheduler: Scheduler = None,
    out: str | Path | None = None,
    progress: bool | None = True,
) -> Comparison:
    """Run A and B with common random numbers: replication r of both uses the same keys.

    Args:
        a: the reference scenario (file, preset name, mapping or Scenario).
        b: the alternative; differences are B - A.
        replications: pairs to run (at least 2 for a CI).
        seed: the seed of both (default: A's).
        overrides: ``PATH=VALUE`` strings applied to both.
        workers: local worker processes, as :func:`run_replications`.
        scheduler: a Dask scheduler, as :func:`run_replications`.
        out: output folder; A's replications go to ``out/A``, B's to ``out/B``.
        progress: show a progress bar, as :func:`run_replications`.
    """
    first, second = load(a, overrides), load(b, overrides)
    seed = first.seed if seed is None else seed
    folder = None if out is None else Path(out)
    keep = folder is not None
    tasks = _tasks(first, seed, replications, "A/", keep)
    tasks += _tasks(second, seed, replications, "B/", keep, start=replications)
    summaries = _collect(tasks, folder, workers, scheduler, progress)
    sides = [
        Replications(s, seed, part, None if folder is None else folder / side)
        for s, part, side in (
            (first, summaries[:replications], "A"),
            (second, summaries[replications:], "B"),
        )
    ]
    return Comparison(*sides)


def compare(
    a: ScenarioLike, b: ScenarioLike, replications: int = 10, **options: Any
) -> pd.DataFrame:
    """Per KPI, B - A with its paired 95% CI; options as :func:`run_comparison`."""
    return run_comparison(a, b, replications, **options).table()


# --- sweeps -------------------------------------------------------------------------------


def parse_grid(specs: Iterable[str]) -> dict[str, list[str]]:
    """``["path=v1,v2", ...]`` as ``{path: [v1, v2]}`` (values stay text, typed on load)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        path, sep, values = spec.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not path.strip() or not items:
            raise ValueError(f"--grid {spec!r}: expected PATH=V1,V2,...")
        if path.strip() in grid:
            raise ValueError(f"--grid {spec!r}: {path.strip()} is swept twice")
        grid[path.strip()] = items
    return grid


def _axis(values: Sequence[Any]) -> list[Any]:
    """Grid values as numbers when they all are (for plotting), else as text."""
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return [str(v) for v in values]


@dataclass
class Sweep:
    """A full factorial sweep: every combination of the grid's values, replicated.

    Attributes:
        grid: swept field path -> values, in the order given.
        points: one dict per combination (path -> value), in run order.
        runs: the replications of each point.
    """

    grid: dict[str, list[Any]]
    points: list[dict[str, Any]]
    runs: list[Replications] = field(repr=False)

    def _point_columns(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.points, columns=list(self.grid))
        for path in self.grid:
            frame[path] = _axis(frame[path].tolist())
        frame.insert(0, "point", range(len(self.points)))
        return frame

    def results(self) -> pd.DataFrame:
        """Tidy: one row per point x replication x KPI, with the swept values."""
        frames = []
        for point, runs in enumerate(self.runs):
            long = runs.values().reset_index().melt(id_vars="replication", var_name="kpi")
            long.insert(0, "point", point)
            frames.append(long)
        tidy = pd.concat(frames, ignore_index=True)
        return self._point_columns().merge(tidy, on="point")

    def table(self) -> pd.DataFrame:
        """One row per point x KPI: mean, 95% CI and n, with the swept values."""
        frames = []
        for point, runs in enumerate(self.runs):
            frame = runs.table().reset_index()
            frame.insert(0, "point", point)
            frames.append(frame)
        return self._point_columns().merge(pd.concat(frames, ignore_index=True), on="point")

    def plot(self, kpi: str = "checkout_latency_ms.p99", x: str | None = None) -> Figure:
        """A KPI's mean and 95% CI against a swept field, one line per other combination."""
        import matplotlib.pyplot as plt

        x = x or next(iter(self.grid))
        if x not in self.grid:
            raise ValueError(f"{x!r} is not swept; swept: {', '.join(self.grid)}")
        rows = self.table()
        rows = rows[rows["kpi"] == kpi]
        if rows.empty:
            raise ValueError(f"no KPI {kpi!r} in the sweep's results")
        others = [p for p in self.grid if p != x]
        fig, ax = plt.subplots(figsize=(7, 4))
        groups = rows.groupby(others, sort=False) if others else [((), rows)]
        for key, line in groups:
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(
                f"{p}={v:g}" if isinstance(v, float) else f"{p}={v}"
                for p, v in zip(others, key, strict=True)
            )
            low = (line["mean"] - line["ci_low"]).fillna(0)
            high = (line["ci_high"] - line["mean"]).fillna(0)
            ax.errorbar(
                line[x], line["mean"], yerr=[low, high], marker="o", capsize=3, label=label or None
            )
        ax.set_xlabel(x)
        ax.set_ylabel(kpi)
        ax.set_title(f"{kpi} (mean, {LEVEL:.0%} CI, {len(self.runs[0].summaries)} replications)")
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize="small")
        fig.tight_layout()
        return fig

    def write(
        self, out: Path, kpi: str | None = "checkout_latency_ms.p99", report: bool = True
    ) -> Path:
        """Write the ``results`` and ``summary`` tables, ``sweep.png`` and ``report.html``.

        The tables are Parquet and CSV; ``sweep.png`` plots ``kpi``; the report shows
        ``kpi`` first, then the headline KPIs the runs have.
        """
        import matplotlib.pyplot as plt

        out.mkdir(parents=True, exist_ok=True)
        for name, frame in (("results", self.results()), ("summary", self.table())):
            frame.to_parquet(out / f"{name}.parquet", index=False)
            frame.to_csv(out / f"{name}.csv", index=False)
        if kpi is not None:
            fig = self.plot(kpi)
            fig.savefig(out / "sweep.png", dpi=120)
            plt.close(fig)
        if report:
            from simulator.report import render_sweep

            (out / "report.html").write_text(render_sweep(self, kpi), encoding="utf-8")
        return out


def run_sweep(
    scenario: ScenarioLike,
    grid: Mapping[str, Sequence[Any]],
    replications: int = 5,
    *,
    seed: int | None = None,
    overrides: Iterable[str] = (),
    workers: int | None = None,
    scheduler: Scheduler = None,
    out: str | Path | None = None,
    progress: bool | None = True,
) -> Sweep:
    """Run every combination of the grid's values (full factorial), each replicated.

    Every point runs on the same stream keys, so differences between points are paired
    (common random numbers). Each point's replications go to ``out/points/pNNN``.

    Args:
        scenario: the base scenario (file, preset name, mapping or Scenario).
        grid: field path -> values, e.g. ``{"database.pool_size": [20, 40, 80]}``.
        replications: replications per point.
        seed: the seed of every point (default: the scenario's).
        overrides: ``PATH=VALUE`` strings applied to every point.
        workers: local worker processes, as :func:`run_replications`.
        scheduler: a Dask scheduler, as :func:`run_replications`.
        out: output folder; point i's replications go to ``out/points/pNNN``.
        progress: show a progress bar, as :func:`run_replications`.

    Raises:
        ScenarioError: if a point is not a valid scenario (before anything runs).
    """
    paths = list(grid)
    points = [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*grid.values())]
    scenarios = [_load_point(scenario, list(overrides), point) for point in points]
    seed = scenarios[0].seed if seed is None else seed
    folder = None if out is None else Path(out)
    tasks: list[Task] = []
    for i, point_scenario in enumerate(scenarios):
        prefix = f"points/p{i:03d}/"
        tasks += _tasks(point_scenario, seed, replications, prefix, False, start=len(tasks))
    summaries = _collect(tasks, folder, workers, scheduler, progress)
    runs = [
        Replications(s, seed, summaries[i * replications : (i + 1) * replications])
        for i, s in enumerate(scenarios)
    ]
    return Sweep({p: list(v) for p, v in grid.items()}, points, runs)


def _load_point(scenario: ScenarioLike, overrides: list[str], point: dict[str, Any]) -> Scenario:
    """A grid point's scenario; a bad grid value is reported as ``--grid PATH=VALUE``."""
    swept = [f"{path}={_text(value)}" for path, value in point.items()]
    try:
        return load(scenario, [*overrides, *swept])
    except ScenarioError as exc:
        from_grid = {f"--set {text}" for text in swept}
        raise ScenarioError(
            replace(p, source=p.source.replace("--set", "--grid", 1))
            if p.source in from_grid
            else p
            for p in exc.problems
        ) from None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def sweep(
    scenario: ScenarioLike,
    grid: Mapping[str, Sequence[Any]],
    replications: int = 5,
    **options: Any,
) -> pd.DataFrame:
    """Per point and KPI, mean and 95% CI; options as :func:`run_sweep`."""
    return run_sweep(scenario, grid, replications, **options).table()
