"""The report of an optimisation: the answer first, then how the search got there.

Sections: the question and the answer in words; the confirmation table (the best few
plans re-run, with paired differences from the chosen one); the search's history (each
trial's objective with its interval, feasible or not, and the best so far); the front
(two objectives) or the objective against each variable (one), with the chosen plan
marked; Optuna's parameter importances; every trial. Self-contained like the run report.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.ticker import MaxNLocator

from simulator.present.report import _page, _question, _svg  # sets the Agg backend

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


def _table(frame: pd.DataFrame, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.to_dict("records"):
        cells = "".join(f"<td class='num'>{html.escape(_cell(v))}</td>" for v in record.values())
        rows.append(f"<tr>{cells}</tr>")
    return f"<div class='wide'><table id='{table_id}'><tr>{head}</tr>{''.join(rows)}</table></div>"


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
    answer = "".join(f"<p>{html.escape(line)}</p>" for line in result.answer().splitlines())
    figures = [_history(result), *_landscape(result)]
    importance = _importance(result)
    if importance is not None:
        figures.append(importance)
    svgs = "".join(f"<figure>{_svg(fig)}</figure>" for fig in figures)
    variables = "".join(f"<li>{html.escape(str(v))}</li>" for v in problem.variables)
    constraints = "".join(f"<li>{html.escape(str(c))}</li>" for c in problem.constraints)
    sampler = "TPE" if len(problem.objectives) == 1 else "NSGA-II"
    trials = result.trials
    return _page(
        f"optimisation of {scenario.name} — campaign-sim report",
        f"""<h1>Optimisation of {html.escape(scenario.name)}</h1>
{_question(scenario)}
<h2>The answer</h2>
<div id="answer">{answer}</div>
<h2>Confirmation: the best plans re-run with {result.confirm_replications} replications</h2>
{_table(result.confirmation, "confirmation")}
<h2>The problem</h2>
<p>{html.escape("; ".join(str(o) for o in problem.objectives))}, varying</p>
<ul>{variables}</ul>
<p>subject to</p><ul>{constraints or "<li>nothing</li>"}</ul>
<h2>How it was searched</h2>
<p>Optuna's {sampler} sampler proposed {len(trials)} trials ({trials["plan"].nunique()}
distinct plans), each seeded from (seed {result.seed}, trial number). Every plan ran
replications 0, 1, 2, ... on the same stream keys (common random numbers), starting with
a few and doubling them while it was undecided: a constraint's interval straddling its
limit, or the objective's paired interval against the best plan so far straddling zero
(racing). A constraint counts as met when its one-sided upper confidence bound, at level
95% divided among the constraints (Bonferroni), is within its limit. The confirmation
re-ran the best plans on a block of replications of its own (shared by them, apart from
the search's), so the luck that made them look good in the search does not carry over
into the answer. This call ran
{result.replications_spent} replications; {result.replications_total} stand behind the
answer.</p>
<div class="figures">{svgs}</div>
<h2>Every trial</h2>
<details><summary>{len(trials)} trials</summary>{_table(trials, "trials")}</details>""",
    )


def write_optimization_report(result: Optimization, path: str | Path) -> Path:
    """Write the report to ``path`` and return it."""
    out = Path(path)
    out.write_text(render_optimization(result), encoding="utf-8")
    return out
