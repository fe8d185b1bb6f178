"""Replications of one scenario: independent runs, each KPI's mean and confidence interval.

Replication *r* draws from streams keyed by ``(seed, r)``, so replications are
independent and each is the same wherever it ran. :class:`Replications` holds their
summaries and aggregates them (:mod:`~simulator.experiment.estimates`); a warm-up for
steady-state questions can be chosen by MSER-5 from pilot runs (:func:`choose_warmup`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiment.estimates import aggregate, estimates, flatten, is_kpi, method, mser5
from simulator.experiment.runner import (
    ExperimentError,
    Interrupted,
    Record,
    ScenarioLike,
    Scheduler,
    Summary,
    Task,
    collect,
    execute,
    load,
    workers_or_cores,
)
from simulator.results import SimulationResult, to_json
from simulator.results.display import Html, Row, cell, kpi_table, scale_caption, shown_kpis
from simulator.results.provenance import Invocation, stamp
from simulator.results.registry import answer_kpis
from simulator.scenario.loader import load_scenario
from simulator.scenario.presets import question
from simulator.scenario.schema import Scenario

__all__ = [
    "MSER_PILOTS",
    "PILOT_KEYS",
    "Replications",
    "choose_warmup",
    "replicate",
    "run_replications",
    "replication_tasks",
]

MSER_PILOTS = 5
"""Pilot replications whose averaged time series MSER-5 truncates."""
PILOT_KEYS = 1_000_000
"""Pilot runs draw from replication keys from here on, apart from the replications."""


@dataclass
class Replications:
    """N replications of one scenario.

    Attributes:
        scenario: the scenario as run (with the warm-up chosen, if any).
        seed: the seed; replication r draws from streams keyed by (seed, r).
        summaries: the replications' summaries, in replication order.
        folder: where each replication's files are (``replications/rNNNN``), or None.
        invocation: the command or call that ran them, for the summary's provenance.
    """

    scenario: Scenario
    seed: int
    summaries: list[Summary] = field(repr=False)
    folder: Path | None = None
    invocation: Invocation | None = None

    @cached_property
    def summary(self) -> Summary:
        """The replicated ``summary.json``: each KPI's mean, CI, n and values."""
        aggregated = aggregate(self.summaries, self.seed)
        if self.invocation is not None:
            stamp(aggregated, self.invocation, self.scenario)
        return aggregated

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

    def __repr__(self) -> str:
        return (
            f"<Replications of {self.scenario.name}: {len(self.summaries)} replications, "
            f"seed {self.seed}>"
        )

    def html(self, kpis: Iterable[str] | None = None) -> Html:
        """The KPI table a notebook shows: mean [95% CI] of the answer KPIs, then headline.

        Args:
            kpis: dotted KPI paths to show instead (see :meth:`table` for every one).
        """
        table = self.table()
        answers = set(answer_kpis(self.scenario)) if kpis is None else set()
        rows = []
        for path in shown_kpis(self.scenario, set(table.index), kpis):
            found = table.loc[path] if path in table.index else None
            value = "-" if found is None else cell(path, *found[["mean", "ci_low", "ci_high"]])
            rows.append(Row(path, [value], path in answers))
        caption = (
            f"{self.scenario.name} · {len(self.summaries)} replications, seed {self.seed}"
            f"{scale_caption(self.scenario)}"
        )
        return kpi_table(
            question(self.scenario.description), caption, ["KPI", "mean [95% CI]"], rows
        )

    def _repr_html_(self) -> str:
        return self.html()

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

    def write(self, out: Path) -> Path:
        """Write ``summary.json``, ``kpis.csv`` and the stacked tables (the report: ``present``)."""
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(to_json(self.summary) + "\n", encoding="utf-8")
        self.table().to_csv(out / "kpis.csv")
        self._tables("timeseries").to_parquet(out / "timeseries.parquet", index=False)
        self._tables("logistics").to_parquet(out / "logistics.parquet", index=False)
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


def replication_tasks(
    scenario: Scenario, seed: int, replications: int, prefix: str, keep: bool, start: int = 0
) -> list[Task]:
    """Replications 0..n-1 of a scenario, numbered from ``start``, filed under ``prefix``."""
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
    would otherwise chase) and truncated by :func:`~simulator.experiment.estimates.mser5`.

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
        execute(tasks, workers_or_cores(workers), scheduler, done)
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
    invocation: Invocation | None = None,
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
        invocation: the command that asked for them, for the provenance (default:
            this call).
    """
    overrides = list(overrides)
    if invocation is None:
        invocation = Invocation.python(
            "simulator.experiment.run_replications",
            scenario,
            replications,
            overrides=overrides,
            seed=seed,
            warmup=warmup,
        )
    loaded = load(scenario, overrides)
    seed = loaded.seed if seed is None else seed
    if warmup == "mser5":
        warmup = choose_warmup(loaded, seed, warmup_series, workers=workers, scheduler=scheduler)
    if warmup is not None:
        loaded = load_scenario(loaded, [f"warmup_s={float(warmup)!r}"])
    folder = None if out is None else Path(out)
    todo = replication_tasks(loaded, seed, replications, "", folder is not None)
    summaries = collect(todo, folder, workers, scheduler, progress)
    return Replications(loaded, seed, summaries, folder, invocation)


def replicate(scenario: ScenarioLike, replications: int = 10, **options: Any) -> pd.DataFrame:
    """Each KPI's mean and 95% CI over replications; options as :func:`run_replications`."""
    return run_replications(scenario, replications, **options).table()
