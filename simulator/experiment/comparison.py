"""Paired comparison: A and B run on the same stream keys (common random numbers).

Replication *r* of A and of B see the same users arriving at the same moments and making
the same choices, so each KPI's B - A per replication measures the design, not luck; its
interval (:func:`~simulator.experiment.estimates.difference`) is far narrower than the
unpaired one, which the table also gives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiment.answer import verdict
from simulator.experiment.estimates import LEVEL, difference
from simulator.experiment.replications import Replications, replication_tasks
from simulator.experiment.runner import ScenarioLike, Scheduler, collect, load
from simulator.results.display import Html, Row, cell, kpi_table, scale_caption, shown_kpis
from simulator.results.provenance import Invocation, experiment_provenance, write_provenance
from simulator.results.registry import answer_kpis
from simulator.scenario.presets import question

__all__ = ["Comparison", "compare", "run_comparison"]


@dataclass
class Comparison:
    """A and B run on the same stream keys (common random numbers)."""

    a: Replications
    b: Replications
    invocation: Invocation | None = None
    """The command or call that ran the comparison."""

    @property
    def provenance(self) -> dict[str, Any]:
        """Version, command, overrides, seed, replications and scale (``provenance.json``)."""
        invocation = self.invocation or Invocation("unknown")
        scenarios = [self.a.scenario, self.b.scenario]
        replications = len(self.a.summaries)
        return experiment_provenance(
            invocation, scenarios, self.a.seed, replications, "each side (A and B)"
        )

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

    def __repr__(self) -> str:
        return (
            f"<Comparison A = {self.a.scenario.name}, B = {self.b.scenario.name}: "
            f"{len(self.b.summaries)} pairs, seed {self.a.seed}>"
        )

    def html(self, kpis: Iterable[str] | None = None) -> Html:
        """The table a notebook shows: B's question, A, B, B - A, and the verdicts.

        The rows are the answer KPIs (B's, or A's when B names none), then headline
        KPIs; each with A's and B's means and B - A with its paired 95% CI, "(real)"
        when that interval excludes 0. Below, the verdict in words on each answer KPI
        shown (:func:`~simulator.experiment.answer.verdict`).

        Args:
            kpis: dotted KPI paths to show instead.
        """
        table = self._table
        scenario = self.b.scenario if self.b.scenario.answers else self.a.scenario
        paths = shown_kpis(scenario, set(table.index), kpis)
        judged = [p for p in answer_kpis(scenario) if p in paths]
        n = len(self.b.summaries)
        rows = []
        for path in paths:
            if path not in table.index:
                rows.append(Row(path, ["-", "-", "-"], path in judged))
                continue
            r = table.loc[path]
            change = cell(path, r["difference"], r["ci_low"], r["ci_high"], change=True)
            cells = [cell(path, r["a_mean"]), cell(path, r["b_mean"])]
            cells.append(change + (" (real)" if r["significant"] else ""))
            rows.append(Row(path, cells, path in judged))
        lines = [verdict(p, table.loc[p].to_dict(), n) for p in judged if p in table.index]
        caption = (
            f"A = {self.a.scenario.name}, B = {self.b.scenario.name} · {n} pairs on the same "
            f"random streams, seed {self.a.seed}{scale_caption(self.b.scenario)}"
        )
        header = ["KPI", "A", "B", f"B - A [paired {LEVEL:.0%} CI]"]
        return kpi_table(question(self.b.scenario.description), caption, header, rows, lines)

    def _repr_html_(self) -> str:
        return self.html()

    def write(self, out: Path) -> Path:
        """Write ``comparison.csv`` / ``.parquet``, ``provenance.json`` and each side (A/, B/)."""
        out.mkdir(parents=True, exist_ok=True)
        for side, runs in (("A", self.a), ("B", self.b)):
            runs.write(out / side)
        self._table.to_csv(out / "comparison.csv")
        self._table.to_parquet(out / "comparison.parquet")
        write_provenance(out, self.provenance)
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
    invocation: Invocation | None = None,
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
        invocation: the command that asked for it, for the provenance (default: this
            call).
    """
    overrides = list(overrides)
    if invocation is None:
        invocation = Invocation.python(
            "simulator.experiment.run_comparison",
            a,
            b,
            replications,
            overrides=overrides,
            seed=seed,
        )
    first, second = load(a, overrides), load(b, overrides)
    seed = first.seed if seed is None else seed
    folder = None if out is None else Path(out)
    keep = folder is not None
    todo = replication_tasks(first, seed, replications, "A/", keep)
    todo += replication_tasks(second, seed, replications, "B/", keep, start=replications)
    summaries = collect(todo, folder, workers, scheduler, progress)
    a_side, b_side = (
        Replications(s, seed, part, None if folder is None else folder / side, invocation)
        for s, part, side in (
            (first, summaries[:replications], "A"),
            (second, summaries[replications:], "B"),
        )
    )
    return Comparison(a_side, b_side, invocation)


def compare(
    a: ScenarioLike, b: ScenarioLike, replications: int = 10, **options: Any
) -> pd.DataFrame:
    """Per KPI, B - A with its paired 95% CI; options as :func:`run_comparison`."""
    return run_comparison(a, b, replications, **options).table()
