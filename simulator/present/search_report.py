"""The report of an optimisation: the answer first, then how the search got there.

Sections: the question and the answer in words; the confirmation table (the best few
plans re-run, with paired differences from the chosen one); the search's history (each
trial's objective with its interval, feasible or not, and the best so far); the front
(two objectives) or the objective against each variable (one), with the chosen plan
marked; Optuna's parameter importances; every trial. Self-contained like the run report,
and laid out by ``templates/optimization.html.j2`` (its ``answer`` block holds the answer).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.ticker import MaxNLocator

from simulator.present.pages import render, svg  # sets the Agg backend
from simulator.present.report import _question
from simulator.results.provenance import describe

if TYPE_CHECKING:
    from simulator.experiment.optimization import Optimization

__all__ = ["render_optimization", "write_optimization_report"]


def _history(result: Optimization) -> Any:
    """Each trial's first objective (mean, 95% CI), feasible filled, and the best so far."""
    import matplotlib.pyplot as plt

    trials = result.trials
    name = str(result.problem.objectives[0].expression)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    styles: tuple[tuple[bool, dict[str, Any]], ...] = (
        (True, {"color": "C0"}),
        (False, {"color": "0.6", "mfc": "white"}),
    )
    for feasible, style in styles:
        part = trials[trials["feasible"] == feasible]
        if part.empty:
            continue
        low = (part[name] - part[f"{name} ci_low"]).clip(lower=0).fillna(0)
        high = (part[f"{name} ci_high"] - part[name]).clip(lower=0).fillna(0)
        finite = low.map(math.isfinite) & high.map(math.isfinite)
        ax.errorbar(
            part["trial"][finite],
            part[name][finite],
            yerr=[low[finite], high[finite]],
            fmt="o",
            capsize=2,
            label="meets the constraints" if feasible else "fails a constraint",
            **style,
        )
    ax.step(trials["trial"], trials["best so far"], where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(name)
    ax.set_title(f"Search history: {result.problem.objectives[0]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _landscape(result: Optimization) -> list[Any]:
    """Two objectives: the front; one: the objective against each numeric variable."""
    import matplotlib.pyplot as plt

    trials = result.trials
    chosen = result.chosen
    names = [str(o.expression) for o in result.problem.objectives]
    mark = trials["plan"] == (chosen.key if chosen else "")
    figures = []
    if len(names) == 2:
        fig, ax = plt.subplots(figsize=(6, 4))
        feasible = trials[trials["feasible"]]
        ax.scatter(trials[names[0]], trials[names[1]], color="0.7", label="fails a constraint")
        ax.scatter(feasible[names[0]], feasible[names[1]], color="C0", label="meets them")
        front = result.confirmation
        if len(front):
            ax.plot(front[names[0]], front[names[1]], "o--", color="C1", label="confirmed")
        ax.scatter(
            trials[names[0]][mark], trials[names[1]][mark], s=200, marker="*", color="C3",
            label="chosen", zorder=3,
        )  # fmt: skip
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title("Trade-off between the objectives")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        return [fig]
    paths = [p for v in result.problem.variables for p in v.paths]
    for path in paths:
        values = pd.to_numeric(trials[path], errors="coerce") if path in trials else None
        if values is None or values.isna().all():
            values = trials[path].astype(str)
        fig, ax = plt.subplots(figsize=(5, 3.4))
        colours = trials["feasible"].map({True: "C0", False: "0.7"})
        ax.scatter(values, trials[names[0]], c=colours)
        ax.scatter(values[mark], trials[names[0]][mark], s=200, marker="*", color="C3", zorder=3)
        ax.set_xlabel(path)
        ax.set_ylabel(names[0])
        ax.set_title(f"{names[0]} against {path} (star: chosen; grey: fails a constraint)")
        ax.title.set_fontsize("small")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        figures.append(fig)
    return figures


def _importance(result: Optimization) -> Any | None:
    import matplotlib.pyplot as plt

    if not result.importance:
        return None
    names = list(result.importance)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(names)))
    ax.barh(names, [result.importance[n] for n in names], color="C0")
    ax.set_xlabel("importance (Optuna, PED-ANOVA; sums to 1)")
    ax.set_title(f"What moves {result.problem.objectives[0].expression}")
    fig.tight_layout()
    return fig


def _table(frame: pd.DataFrame) -> dict[str, Any]:
    """A frame as a header and rows of text cells."""
    return {
        "header": [str(c) for c in frame.columns],
        "rows": [[_cell(v) for v in record.values()] for record in frame.to_dict("records")],
    }


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "+inf" if value > 0 else "-inf"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def render_optimization(result: Optimization) -> str:
    """The whole report as one self-contained HTML page."""
    assert result.base is not None
    scenario = result.base
    problem = result.problem
    figures = [_history(result), *_landscape(result)]
    importance = _importance(result)
    if importance is not None:
        figures.append(importance)
    trials = result.trials
    return render(
        "optimization.html.j2",
        title=f"optimisation of {scenario.name} — campaign-sim report",
        provenance=describe(result.provenance),
        name=scenario.name,
        question=_question(scenario),
        answer=result.answer().splitlines(),
        confirm_replications=result.confirm_replications,
        confirmation=_table(result.confirmation),
        objectives="; ".join(str(o) for o in problem.objectives),
        variables=[str(v) for v in problem.variables],
        constraints=[str(c) for c in problem.constraints],
        sampler="TPE" if len(problem.objectives) == 1 else "NSGA-II",
        trials={"count": len(trials), "plans": trials["plan"].nunique(), **_table(trials)},
        seed=result.seed,
        replications_spent=result.replications_spent,
        replications_total=result.replications_total,
        figures=[svg(fig) for fig in figures],
    )


def write_optimization_report(result: Optimization, path: str | Path) -> Path:
    """Write the report to ``path`` and return it."""
    out = Path(path)
    out.write_text(render_optimization(result), encoding="utf-8")
    return out
