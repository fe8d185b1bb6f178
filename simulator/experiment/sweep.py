"""Sweeps: every combination of a grid of field values (full factorial), each replicated.

Every point runs on the same stream keys, so differences between points are paired
(common random numbers). Values are typed by the schema as ``--set`` values are, and a
bad one is reported as ``--grid PATH=VALUE`` before anything runs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.experiment.estimates import LEVEL, difference
from simulator.experiment.replications import Replications, replication_tasks
from simulator.experiment.runner import ScenarioLike, Scheduler, Task, collect, load
from simulator.results.display import Html, Row, cell, kpi_table, scale_caption, value_text
from simulator.results.provenance import Invocation, experiment_provenance, write_provenance
from simulator.results.registry import answer_kpis
from simulator.scenario.loader import ScenarioError
from simulator.scenario.presets import question
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Sweep", "parse_grid", "run_sweep", "sweep"]


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
        invocation: the command or call that ran the sweep.
    """

    grid: dict[str, list[Any]]
    points: list[dict[str, Any]]
    runs: list[Replications] = field(repr=False)
    invocation: Invocation | None = None

    @property
    def provenance(self) -> dict[str, Any]:
        """Version, command, overrides, seed, replications and scale (``provenance.json``)."""
        invocation = self.invocation or Invocation("unknown")
        first = self.runs[0]
        scenarios = [r.scenario for r in self.runs]
        replications = len(first.summaries)
        return experiment_provenance(invocation, scenarios, first.seed, replications, "each point")

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

    def differences(self, reference: int = 0, kpis: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per point x KPI: the point minus the reference point, paired.

        Every point runs replication r on the same stream keys (common random numbers),
        so a point's difference from the reference is paired replication by replication,
        as in ``compare``: its interval is the one that says whether the change is real.
        Columns as in ``comparison.csv`` (``a_mean`` the reference's, ``b_mean`` the
        point's), with the swept values; the reference's own rows have a difference of 0.

        Args:
            reference: the point the others are compared with.
            kpis: only these KPIs (dotted paths; at least one every point has), else all.
        """
        if not 0 <= reference < len(self.runs):
            raise ValueError(f"reference point {reference}: the sweep has {len(self.runs)}")
        base = self.runs[reference].values()
        wanted = None if kpis is None else set(kpis)
        frames = []
        for point, runs in enumerate(self.runs):
            values = runs.values()
            shared = [
                k for k in values.columns if k in base.columns and (wanted is None or k in wanted)
            ]
            rows = [
                difference(k, base[k].tolist(), values[k].tolist(), self.runs[0].seed)
                for k in shared
            ]
            frame = pd.DataFrame(rows)
            frame.insert(0, "point", point)
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        table.insert(list(table.columns).index("kpi") + 1, "reference", reference)
        return self._point_columns().merge(table, on="point")

    def __repr__(self) -> str:
        grid = "; ".join(f"{p}={', '.join(map(value_text, v))}" for p, v in self.grid.items())
        first = self.runs[0]
        return (
            f"<Sweep of {first.scenario.name} over {grid}: {len(self.points)} points x "
            f"{len(first.summaries)} replications, seed {first.seed}>"
        )

    def html(self, kpis: Iterable[str] | None = None) -> Html:
        """The table a notebook shows: each KPI per point, and its change from point 0.

        Per KPI (the base scenario's answer KPIs, or ``kpis``) and point: the swept
        values, the mean [95% CI], and the difference from point 0 with its paired 95%
        CI ("(real)" when it excludes 0), from :meth:`differences`.

        Args:
            kpis: dotted KPI paths to show instead of the answer KPIs.
        """
        first = self.runs[0]
        table = self.table()
        paths = list(dict.fromkeys(answer_kpis(first.scenario) if kpis is None else kpis))
        have = [p for p in paths if p in set(table["kpi"])]
        changes = self.differences(kpis=have) if have else pd.DataFrame(columns=["kpi", "point"])
        rows = []
        for path in paths:
            means = table[table["kpi"] == path].set_index("point")
            diffs = changes[changes["kpi"] == path].set_index("point")
            for point, values in enumerate(self.points):
                cells = [value_text(values[p]) for p in self.grid]
                cells += _point_cells(path, point, means, diffs)
                rows.append(Row(path, cells, kpis is None, None if point == 0 else ""))
        caption = (
            f"{first.scenario.name} · {len(self.points)} points x {len(first.summaries)} "
            f"replications on the same random streams, seed {first.seed}"
            f"{scale_caption(first.scenario)}"
        )
        header = [
            "KPI",
            *self.grid,
            f"mean [{LEVEL:.0%} CI]",
            f"- point 0 [paired {LEVEL:.0%} CI]",
        ]
        return kpi_table(question(first.scenario.description), caption, header, rows)

    def _repr_html_(self) -> str:
        return self.html()

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

    def write(self, out: Path, kpi: str | None = "checkout_latency_ms.p99") -> Path:
        """Write ``results``, ``summary``, ``differences``, ``sweep.png``, ``provenance.json``.

        The tables are Parquet and CSV; ``sweep.png`` plots ``kpi`` (none when None).
        """
        import matplotlib.pyplot as plt

        out.mkdir(parents=True, exist_ok=True)
        tables = (
            ("results", self.results()),
            ("summary", self.table()),
            ("differences", self.differences()),
        )
        for name, frame in tables:
            frame.to_parquet(out / f"{name}.parquet", index=False)
            frame.to_csv(out / f"{name}.csv", index=False)
        if kpi is not None:
            fig = self.plot(kpi)
            fig.savefig(out / "sweep.png", dpi=120)
            plt.close(fig)
        write_provenance(out, self.provenance)
        return out


def _point_cells(path: str, point: int, means: pd.DataFrame, diffs: pd.DataFrame) -> list[str]:
    """A point's mean [CI] of a KPI and its paired change from point 0, as printed."""
    if point not in means.index:
        return ["-", "-"]
    m = means.loc[point]
    mean = cell(path, m["mean"], m["ci_low"], m["ci_high"])
    if point == 0:
        return [mean, "reference"]
    if point not in diffs.index:
        return [mean, "-"]
    d = diffs.loc[point]
    change = cell(path, d["difference"], d["ci_low"], d["ci_high"], change=True)
    return [mean, change + (" (real)" if d["significant"] else "")]


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
    invocation: Invocation | None = None,
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
        invocation: the command that asked for it, for the provenance (default: this
            call).

    Raises:
        ScenarioError: if a point is not a valid scenario (before anything runs).
    """
    overrides = list(overrides)
    if invocation is None:
        invocation = Invocation.python(
            "simulator.experiment.run_sweep",
            scenario,
            {p: list(v) for p, v in grid.items()},
            replications,
            overrides=overrides,
            seed=seed,
        )
    paths = list(grid)
    points = [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*grid.values())]
    scenarios = [_load_point(scenario, list(overrides), point) for point in points]
    seed = scenarios[0].seed if seed is None else seed
    folder = None if out is None else Path(out)
    todo: list[Task] = []
    for i, point_scenario in enumerate(scenarios):
        prefix = f"points/p{i:03d}/"
        todo += replication_tasks(
            point_scenario, seed, replications, prefix, False, start=len(todo)
        )
    summaries = collect(todo, folder, workers, scheduler, progress)
    runs = [
        Replications(
            s, seed, summaries[i * replications : (i + 1) * replications], invocation=invocation
        )
        for i, s in enumerate(scenarios)
    ]
    return Sweep({p: list(v) for p, v in grid.items()}, points, runs, invocation)


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
