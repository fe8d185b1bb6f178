"""The ``campaign-sim`` command line.

Bad input never shows a traceback: scenario problems are printed one per line as
``FILE:LINE:COL: path: message`` and the command exits with status 2.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from simulator.interface.invocation import ArgvGroup, invocation
from simulator.scenario.presets import preset_dir, presets, resolve

# The rooms behind the commands (pandas, scipy, matplotlib, Optuna with them) are imported
# inside the commands that use them: ``--help``, ``--version``, ``list`` and ``validate``
# start at once. tests/test_startup.py keeps it so.
if TYPE_CHECKING:
    import pandas as pd

    from simulator.experiment.answer import SloCheck
    from simulator.results import SimulationResult
    from simulator.scenario.loader import ScenarioError
    from simulator.scenario.schema import Scenario

__all__ = ["app", "main"]

app = typer.Typer(
    cls=ArgvGroup,  # records the command as typed, for the outputs' provenance
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is printed as written: "campaign-sim[dask]" stays
    help="Simulate an e-commerce sale: traffic spike, cache, database, payment, fulfilment.",
)
# A log file or pipe does not wrap lines: give tables room there (a terminal sets its own).
# Everything is printed as written: emoji codes are off (a problem at line 100 is
# "FILE:100:7", not a hundred-points emoji) and so is markup, in plain strings and table
# cells alike ("pip install 'campaign-sim[dask]'" keeps its "[dask]", and "[red]" in a
# name stays literal). Styles are given as Text objects or _say's style, never as tags.
_out = Console(width=None if sys.stdout.isatty() else 120, emoji=False, markup=False)
_err = Console(stderr=True, emoji=False, markup=False)


def _say(console: Console, text: str, style: str | None = None) -> None:
    """Print ``text`` literally: no markup, no highlighting, long lines unbroken."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a field: PATH=VALUE, e.g. --set cache.levels[0].ttl_s=30 (repeatable).",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        _say(_out, f"campaign-sim {_package_version()}")
        raise typer.Exit()


def _package_version() -> str:
    try:
        return metadata.version("campaign-sim")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Simulate an e-commerce sale: traffic spike, cache, database, payment, fulfilment."""


def _load(scenario: str, overrides: list[str] | None) -> Scenario:
    from simulator.scenario.loader import ScenarioError, load_scenario

    try:
        loaded = load_scenario(resolve(scenario), overrides or [])
    except ScenarioError as exc:
        _problems(exc, scenario)
        raise typer.Exit(2) from None
    _warn_scale(loaded)
    return loaded


def _warn_scale(scenario: Scenario) -> None:
    """What the scenario's scale makes incomparable with the full-size sale, on stderr."""
    if scenario.scale == 1:
        return  # nothing to note (scale_notes says so too): the model need not be imported
    from simulator.model import scale_notes

    notes = scale_notes(scenario)
    if notes:
        scale = Fraction(scenario.scale).limit_denominator(10_000)
        _say(
            _err,
            f"{scenario.name} at scale {scale}: money is at full size, counts are simulated, "
            f"and {len(notes)} things are not comparable with the full size:",
            "yellow",
        )
        for note in notes:
            _say(_err, f"  {note.field}: {note.note}")


def _problems(exc: ScenarioError, source: str) -> None:
    for problem in exc.problems:
        _say(_err, str(problem))
    count = len(exc.problems)
    _say(_err, f"{count} problem{'s' if count != 1 else ''} in {source}", "bold red")


def simulate(scenario: Scenario, **options: Any) -> SimulationResult:
    """One run: :func:`simulator.simulate`, imported (with the model and pandas) when called."""
    from simulator.results import simulate as simulate_one

    return simulate_one(scenario, **options)


OUT_OF_MEMORY = (
    "out of memory: the run's records grow with its clock, and this one ran far past "
    "duration_s (queues that take simulated weeks to drain: long service times, users "
    "who never give up) or the sale is too big for this machine; shorten those times "
    "or lower scale"
)


ReplicationsOption = Annotated[
    int, typer.Option("-r", "--replications", min=1, help="Independent replications.")
]
WorkersOption = Annotated[
    int | None,
    typer.Option(help="Local worker processes (default: all cores; 1 runs serially).", min=1),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786: run the replications on "
        "that cluster (needs campaign-sim[dask]).",
        show_default=False,
    ),
]
ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bar (default: on a terminal only).",
        show_default=False,
    ),
]
SeedOption = Annotated[int | None, typer.Option(help="Seed (default: the scenario's).")]
OutOption = Annotated[Path | None, typer.Option(help="Output folder.", show_default=False)]


@contextmanager
def _experiment(scheduler: str | None, source: str = "") -> Iterator[None]:
    """Run an experiment: Ctrl-C keeps finished work (exit 130); bad input exits 2."""
    from simulator.experiment.runner import ExperimentError, Interrupted, SchedulerError
    from simulator.scenario.loader import ScenarioError

    if scheduler is not None and importlib.util.find_spec("distributed") is None:
        _say(_err, "--scheduler needs the dask extra: pip install 'campaign-sim[dask]'")
        raise typer.Exit(2)
    try:
        yield
    except Interrupted as exc:
        _say(_err, str(exc), "bold yellow")
        raise typer.Exit(130) from None
    except (SchedulerError, ExperimentError) as exc:
        _say(_err, str(exc))
        raise typer.Exit(2) from None
    except ScenarioError as exc:
        _problems(exc, source)
        raise typer.Exit(2) from None


def _warmup(text: str | None) -> float | str | None:
    if text is None or text == "mser5":
        return text
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        _say(_err, f"--warmup {text!r}: give seconds (>= 0) or mser5")
        raise typer.Exit(2)
    return seconds


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Scenario file or preset name.")],
    seed: SeedOption = None,
    replications: ReplicationsOption = 1,
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/SCENARIO-NAME).")
    ] = None,
    warmup: Annotated[
        str | None,
        typer.Option(
            help="Steady-state studies only: seconds to delete at the start, or mser5 to "
            "choose them from 5 pilot runs. A sale needs none.",
            show_default=False,
        ),
    ] = None,
    warmup_series: Annotated[
        str, typer.Option(help="Time-series column MSER-5 reads.")
    ] = "checkout_p50_ms",
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    progress: ProgressOption = None,
) -> None:
    """Run a scenario, print its KPIs and write summary.json, timeseries.parquet, report.html.

    With -r N the KPIs are means with 95% confidence intervals, each replication is kept
    in OUT/replications/, and running the same command again resumes. The progress bar
    shows a single run's simulated clock against duration_s, replications as they finish.

    Exit status: 0 done; 2 a bad scenario or option, or a single run that ran out of
    memory (queues that take simulated weeks to drain, or a sale too big for the
    machine: the scenario asks more than it can have). 1 stays free for unmet service
    levels.
    """
    loaded = _load(scenario, set_)  # a bad scenario is told before pandas and scipy load
    from simulator.experiment import run_replications
    from simulator.experiment.estimates import BOOTSTRAP_MIN_N, flatten
    from simulator.present.report import write_report

    folder = out or Path("runs") / loaded.name
    started = time.perf_counter()
    if replications == 1 and warmup is None:
        try:
            result = simulate(loaded, seed=seed, invocation=invocation(set_), progress=progress)
            wall_s = time.perf_counter() - started
            result.write(folder)
            write_report(result, folder / "report.html")
        except MemoryError:
            _say(_err, f"{scenario}: {OUT_OF_MEMORY}", "bold red")
            raise typer.Exit(2) from None
        checks = _print_answer(loaded, [flatten(result.summary)], folder)
        _out.print(kpi_table(result))
        _print_channels(result)
        sessions = result.summary["sessions"]
        _say(
            _out,
            f"{sessions:,} sessions simulated in {wall_s:.1f} s "
            f"({sessions / wall_s:,.0f} sessions/s); results in {folder}/",
        )
        _exit_on_slo(checks)
        return
    with _experiment(scheduler):
        runs = run_replications(
            loaded,
            replications,
            seed=seed,
            warmup=_warmup(warmup),
            warmup_series=warmup_series,
            workers=workers,
            scheduler=scheduler,
            out=folder,
            progress=progress,
            invocation=invocation(set_),
        )
    runs.write(folder)
    write_report(runs.result(), folder / "report.html")
    wall_s = time.perf_counter() - started
    checks = _print_answer(
        runs.scenario, [flatten(r) for r in runs.summaries], folder, runs.table()
    )
    _out.print(kpi_table(runs.result()))
    _print_channels(runs.result())
    if runs.scenario.warmup_s:
        _out.print(
            f"warm-up: station statistics (stations.*: waits, utilisation, number inside) "
            f"leave out the first {runs.scenario.warmup_s:,.0f} s of each run; the other "
            f"KPIs cover the whole run"
        )
    _say(
        _out,
        f"{replications} replications in {wall_s:.1f} s; mean [95% CI] per KPI (Student t; "
        f"bootstrap for p95/p99/max from {BOOTSTRAP_MIN_N} replications; cut to each KPI's "
        f"range: counts and durations never below 0, ratios within [0, 1]); results in "
        f"{folder}/",
    )
    _exit_on_slo(checks)


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="Scenario A (the reference): file or preset.")],
    b: Annotated[str, typer.Argument(help="Scenario B: differences are B - A.")],
    replications: Annotated[
        int, typer.Option("-r", "--replications", min=2, help="Replications of each.")
    ] = 10,
    seed: SeedOption = None,
    set_: SetOption = None,
    out: OutOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    progress: ProgressOption = None,
    all_kpis: Annotated[
        bool, typer.Option("--all", help="Print every KPI, not the headline ones.")
    ] = False,
) -> None:
    """Compare two scenarios with common random numbers: B - A per KPI with its 95% CI.

    Both run on the same stream keys, so the differences are paired and their intervals
    narrow. Writes OUT/comparison.csv and .parquet, OUT/report.html (A and B side by
    side with the differences), and each side's runs in OUT/A, OUT/B.
    """
    first, second = _load(a, set_), _load(b, set_)
    from simulator.experiment import run_comparison
    from simulator.present.report import write_comparison_report

    folder = out or Path("runs") / f"compare-{first.name}-vs-{second.name}"
    with _experiment(scheduler):
        comparison = run_comparison(
            first,
            second,
            replications,
            seed=seed,
            workers=workers,
            scheduler=scheduler,
            out=folder,
            progress=progress,
            invocation=invocation(set_),
        )
    comparison.write(folder)
    write_comparison_report(comparison, folder / "report.html")
    table = comparison.table()
    checks = _print_verdict(comparison, table, folder)
    _out.print(comparison_table(table, first.name, second.name, replications, all_kpis))
    significant = int(table["significant"].sum())
    _say(
        _out,
        f"{significant} of {len(table)} KPIs differ significantly (95% CI of B - A excludes "
        f"0; each KPI is tested on its own, so among many about 1 in 20 unchanged ones will "
        f"show as significant by chance); every KPI in {folder}/comparison.csv, the "
        f"report in {folder}/report.html",
    )
    _exit_on_slo(checks)


def comparison_table(
    table: pd.DataFrame, a: str, b: str, replications: int, all_kpis: bool = False
) -> Table:
    """B - A per KPI as a rich table: means, difference [95% CI], significance."""
    from simulator.present.kpis import HEADLINE, difference_cells, kpi_kind

    kpis = list(table.index) if all_kpis else [k for k in HEADLINE if k in table.index]
    out = Table(
        title=f"A = {a}, B = {b}: B - A paired over {replications} replications "
        "(common random numbers)"
    )
    out.add_column("KPI", no_wrap=True)
    for column in ("A", "B", "B - A", "95% CI", "sig."):
        out.add_column(column, justify="right", no_wrap=True)
    for kpi in kpis:
        row = table.loc[kpi].to_dict()
        out.add_row(kpi, *difference_cells(row, kpi_kind(kpi)), "yes" if row["significant"] else "")
    return out


@app.command()
def sweep(
    scenario: Annotated[str, typer.Argument(help="Scenario file or preset name.")],
    grid: Annotated[
        list[str],
        typer.Option(
            help="PATH=V1,V2,... : the field and its values (repeat for a full factorial grid).",
            show_default=False,
        ),
    ],
    replications: ReplicationsOption = 5,
    kpi: Annotated[
        str, typer.Option(help="KPI to print and plot (dotted path, as in kpis.csv).")
    ] = "checkout_latency_ms.p99",
    seed: SeedOption = None,
    set_: SetOption = None,
    out: OutOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    progress: ProgressOption = None,
) -> None:
    """Run every combination of the grid's values, replicated.

    Writes OUT/results.parquet and .csv (one row per point x replication x KPI),
    OUT/summary.parquet and .csv (per point and KPI: mean and 95% CI), OUT/sweep.png and
    OUT/report.html (the KPIs against the grid, every point's figures).
    """
    from simulator.experiment import parse_grid, run_sweep
    from simulator.present.report import write_sweep_report

    try:
        axes = parse_grid(grid)
    except ValueError as exc:
        _say(_err, str(exc))
        raise typer.Exit(2) from None
    loaded = _load(scenario, set_)
    folder = out or Path("runs") / f"sweep-{loaded.name}"
    with _experiment(scheduler, f"the sweep of {scenario}"):
        swept = run_sweep(
            resolve(scenario),
            axes,
            replications,
            seed=seed,
            overrides=set_ or [],
            workers=workers,
            scheduler=scheduler,
            out=folder,
            progress=progress,
            invocation=invocation(set_),
        )
    table = swept.table()
    chosen = table[table["kpi"] == kpi]
    if chosen.empty:
        swept.write(folder, kpi=None)
        write_sweep_report(swept, folder / "report.html")
        close = difflib.get_close_matches(kpi, table["kpi"].unique(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        _say(_err, f"--kpi {kpi}: no such KPI{hint} (results are in {folder}/)")
        raise typer.Exit(2)
    swept.write(folder, kpi=kpi)
    write_sweep_report(swept, folder / "report.html", kpi)
    _say(_out, loaded.description.strip().partition("\n")[0], "bold")
    _out.print(sweep_table(swept, kpi, replications))
    _say(
        _out,
        f"{len(swept.points)} points x {replications} replications; differences are paired "
        f"against point 0 (the same replications' streams at every point); results in "
        f"{folder}/ (differences.csv: every KPI)",
    )


def sweep_table(swept: Any, kpi: str, replications: int) -> Table:
    """A KPI per point: mean [95% CI], and its paired difference from point 0."""
    from simulator.experiment.estimates import table_estimate
    from simulator.present.kpis import difference_cells, fmt_grid_value, fmt_kpi
    from simulator.results.registry import kpi as kpi_info

    info = kpi_info(kpi)
    table = swept.table()
    chosen = {r["point"]: r for r in table[table["kpi"] == kpi].to_dict("records")}
    differences = swept.differences()
    changes = {r["point"]: r for r in differences[differences["kpi"] == kpi].to_dict("records")}
    out = Table(
        title=Text(f"{info.heading} ({kpi}): mean [95% CI] over {replications} replications")
    )
    for path in swept.grid:
        out.add_column(Text(path), justify="right", overflow="fold")
    out.add_column(Text(info.heading), justify="right", overflow="fold")
    out.add_column(Text("- point 0 [paired 95% CI]"), justify="right", overflow="fold")
    for point, values in enumerate(swept.points):
        row, change = chosen.get(point), changes.get(point)
        mean = "-" if row is None else fmt_kpi(table_estimate(row), info.kind)
        if point == 0:
            diff = "reference"
        elif change is None or not math.isfinite(change["difference"]):
            diff = "-"
        else:
            diff = " ".join(difference_cells(change, info.kind)[2:])
            diff += " (real)" if change["significant"] else ""
        cells = [Text(fmt_grid_value(values[p])) for p in swept.grid]
        out.add_row(*cells, Text(mean), Text(diff))
    return out


@app.command()
def optimize(
    scenario: Annotated[str, typer.Argument(help="Scenario file or preset name.")],
    vary: Annotated[
        list[str],
        typer.Option(
            help="A decision variable: PATH=LOW:HIGH (integers if both are; :log for a log "
            "scale, :STEP for a grid), PATH=A,B,C (choices), or PATH1+PATH2=TOTAL (shares of "
            "a total, e.g. a budget split). Repeatable.",
            show_default=False,
        ),
    ],
    minimize: Annotated[
        list[str] | None,
        typer.Option(
            help="KPI expression to minimise, e.g. profit_and_loss.operations_total.",
            show_default=False,
        ),
    ] = None,
    maximize: Annotated[
        list[str] | None,
        typer.Option(
            help="KPI expression to maximise, e.g. net_profit. Two objectives in all "
            "(minimised first) give a Pareto front.",
            show_default=False,
        ),
    ] = None,
    subject_to: Annotated[
        list[str] | None,
        typer.Option(
            "--subject-to",
            help="A constraint, e.g. 'checkout_latency_ms.p99<=1000' or "
            "'lost_gmv_total<=0.01*gmv' (repeatable); met when its confidence bound is.",
            show_default=False,
        ),
    ] = None,
    trials: Annotated[int, typer.Option(min=1, help="Trials in all (resumed ones count).")] = 30,
    replications: Annotated[
        int, typer.Option("-r", "--replications", min=2, help="Replications a trial starts with.")
    ] = 3,
    max_replications: Annotated[
        int, typer.Option(min=2, help="Most replications racing gives an undecided trial.")
    ] = 12,
    confirm: Annotated[int, typer.Option(min=1, help="Best plans re-run to confirm.")] = 3,
    confirm_replications: Annotated[
        int, typer.Option(min=2, help="Replications of each confirmed plan.")
    ] = 20,
    seed: SeedOption = None,
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/optimize-SCENARIO-NAME).")
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    progress: ProgressOption = None,
) -> None:
    """Search for the cheapest (or best) plan that meets the constraints, then confirm it.

    Optuna (TPE; NSGA-II for two objectives) proposes plans; each runs a few replications
    on common random numbers, more while undecided (racing); the best few are re-run
    with --confirm-replications and compared pairwise. Writes OUT/trials.parquet and
    .csv, OUT/confirmation.csv, OUT/best.yaml (the chosen plan, extending the scenario),
    OUT/answer.txt and OUT/report.html. Running the same command again resumes.

    Exit status: 0 a plan meets every constraint; 2 bad input, or no plan meets them
    (the least violating one is shown); 130 interrupted (finished trials are kept).
    """
    loaded = _load(scenario, set_)
    from simulator.experiment import SearchError, run_optimization

    folder = out or Path("runs") / f"optimize-{loaded.name}"
    started = time.perf_counter()
    try:
        with _experiment(scheduler, scenario):
            result = run_optimization(
                resolve(scenario),
                vary,
                minimize=minimize or [],
                maximize=maximize or [],
                subject_to=subject_to or [],
                trials=trials,
                replications=replications,
                max_replications=max_replications,
                confirm=confirm,
                confirm_replications=confirm_replications,
                seed=seed,
                overrides=set_ or [],
                workers=workers,
                scheduler=scheduler,
                out=folder,
                progress=progress,
                invocation=invocation(set_),
            )
    except SearchError as exc:
        _say(_err, str(exc))
        raise typer.Exit(2) from None
    from simulator.present.search_report import write_optimization_report

    if result.chosen is None:
        result.write(folder)
        _say(_err, f"{result.answer()} Every trial: {folder}/trials.csv", "bold red")
        raise typer.Exit(2)
    result.write(folder)
    write_optimization_report(result, folder / "report.html")
    wall_s = time.perf_counter() - started
    _out.print(_confirmation_table(result))
    _say(_out, result.answer())
    _say(
        _out,
        f"{len(result.trials)} trials, {result.trials['plan'].nunique()} distinct plans; "
        f"{result.replications_spent} replications run now, {result.replications_total} behind "
        f"the answer; {wall_s:.1f} s. The chosen plan: {folder}/best.yaml; every trial: "
        f"{folder}/trials.csv; the report: {folder}/report.html",
    )
    if not result.feasible:
        _say(_err, "no plan met every constraint: the least violating one is shown", "bold red")
        raise typer.Exit(2)


def _confirmation_table(result: Any) -> Table:
    """The confirmed plans: values, objective [95% CI], constraints with bounds, difference."""
    from simulator.present.kpis import fmt_grid_value

    problem = result.problem
    table = Table(
        title=Text(
            f"Confirmation: {len(result.plans)} plans, {result.confirm_replications} "
            f"replications each on a fresh block (common random numbers)"
        )
    )
    paths = [p for v in problem.variables for p in v.paths]
    names = [str(o.expression) for o in problem.objectives]
    constraints = [str(c) for c in problem.constraints]
    versus = f"{names[0]} vs chosen [paired 95% CI]"
    columns = ["", *paths, *names, *(f"{c}: mean (bound)" for c in constraints)]
    for column in [*columns, "meets all", versus]:
        table.add_column(Text(column), justify="right", overflow="fold")
    for row in result.confirmation.to_dict("records"):
        cells = ["chosen" if row["chosen"] else ""]
        cells += [fmt_grid_value(row[p]) for p in paths]
        cells += [
            f"{_num(row[n])} [{_num(row[f'{n} ci_low'])}, {_num(row[f'{n} ci_high'])}]"
            for n in names
        ]
        cells += [f"{_num(row[f'{c}: value'])} ({_num(row[f'{c}: bound'])})" for c in constraints]
        cells.append("yes" if row["meets every constraint"] else "no")
        cells.append(
            ""
            if row["chosen"]
            else f"{_num(row[f'{names[0]} difference'])} "
            f"[{_num(row[f'{names[0]} difference ci_low'])}, "
            f"{_num(row[f'{names[0]} difference ci_high'])}]"
        )
        table.add_row(*(Text(c) for c in cells))
    return table


def _num(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


@app.command()
def validate(
    scenario: Annotated[
        str | None, typer.Argument(help="Scenario file or preset name to check.")
    ] = None,
    set_: SetOption = None,
    theory: Annotated[
        bool, typer.Option("--theory", help="Run the queueing-theory validation suite.")
    ] = False,
    replications: Annotated[
        int, typer.Option("-r", "--replications", min=2, help="Replications per case.")
    ] = 10,
) -> None:
    """Check a scenario file (exit 0 valid, 2 not), or with --theory validate the model."""
    if theory:
        _theory_table(replications)
        return
    if scenario is None:
        _err.print("give a SCENARIO to check, or --theory to run the validation suite")
        raise typer.Exit(2)
    loaded = _load(scenario, set_)
    _say(_out, f"{scenario}: valid scenario '{loaded.name}'")


def _theory_table(replications: int) -> None:
    from rich.progress import Progress

    from simulator.validation.suite import run_validation

    with Progress(transient=True, console=_err) as bar:
        task = bar.add_task("validating", total=None)
        table = run_validation(
            replications, progress=lambda text: bar.update(task, description=escape(text))
        )
    level = table["ci_level"].iloc[0]
    out = Table(title=f"Model vs queueing theory ({replications} replications, CI {level:.2%})")
    for column in ("case", "theory", "simulated", "CI", "result"):
        out.add_column(column, justify="left" if column == "case" else "right")
    for row in table.itertuples():
        out.add_row(
            str(row.case),
            f"{row.theory:.4f}",
            f"{row.simulated:.4f}",
            f"[{row.ci_low:.4f}, {row.ci_high:.4f}]",
            "pass" if row.passed else Text("FAIL", style="bold red"),
        )
    _out.print(out)
    failed = int((~table["passed"]).sum())
    _out.print(
        f"{len(table) - failed}/{len(table)} checks inside their confidence intervals; a "
        f"correct model passes all of them with probability >= 95% (Bonferroni)."
    )
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_presets() -> None:
    """List the shipped presets and the question each answers (exit 2 if none is found)."""
    # One block per preset rather than a table: names are what users type, so they are
    # never cut, and questions stay readable in a narrow terminal.
    found = presets()
    if not found:
        _say(
            _err,
            f"no presets in {preset_dir()}: this installation lacks the scenarios it ships "
            "with; reinstall campaign-sim",
            "bold red",
        )
        raise typer.Exit(2)
    for name, path, question in found:
        _out.print(Text.assemble((name, "bold"), "  ", (str(path), "dim")))
        _out.print(Padding(Text(question), (0, 0, 0, 2)))


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files as written (for editor completion and checks).

    It accepts what the loader reads before validating: extends (a file or a preset's
    name), fields a file inherits left out, and scale written as a fraction (1/10).
    """
    sys.stdout.write(schema_json() + "\n")


def schema_json() -> str:
    """The JSON Schema of files as written, as committed in scenarios/scenario.schema.json."""
    from simulator.scenario.file_schema import file_schema

    return json.dumps(file_schema(), indent=2)


_QS = ("p50", "p95", "p99")


def _print_answer(
    scenario: Scenario,
    runs: list[dict[str, float]],
    folder: Path,
    table: pd.DataFrame | None = None,
    title: str = "",
) -> list[SloCheck]:
    """The question, its answer KPIs and the SLO lines, printed before any table.

    A KPI named in ``answers:`` or ``slo:`` that the run does not report is bad input
    (exit 2), told after the results are written, so nothing computed is lost.
    """
    from simulator.experiment.answer import answer_lines, check_slos, unknown_kpis

    problems = unknown_kpis(scenario, list(runs[0]))
    if problems:
        for problem in problems:
            _say(_err, f"{scenario.name}: {problem}", "bold red")
        _say(_err, f"the results are in {folder}/ all the same")
        raise typer.Exit(2)
    if table is None:
        values, intervals = runs[0], None
    else:
        values = {str(k): float(v) for k, v in table["mean"].items()}
        intervals = {str(k): (r["ci_low"], r["ci_high"]) for k, r in table.iterrows()}
    lines = answer_lines(scenario, values, intervals)
    _say(_out, title or lines[0], "bold")
    for line in lines[1:]:
        _say(_out, line)
    checks = check_slos(scenario, runs)
    for check in checks:
        _say(_out, f"  {check.line()}", "green" if check.passed else "bold red")
    return checks


def _print_verdict(comparison: Any, table: pd.DataFrame, folder: Path) -> list[SloCheck]:
    """B's question, the verdict on each answer KPI, and each side's SLO lines.

    Returns B's SLO checks: a comparison gates on the plan under test, B.
    """
    from simulator.experiment.answer import answer_kpis, check_slos, unknown_kpis, verdict
    from simulator.experiment.estimates import flatten

    a, b = comparison.a, comparison.b
    runs = {side: [flatten(r) for r in reps.summaries] for side, reps in (("A", a), ("B", b))}
    for side, reps in (("A", a), ("B", b)):
        problems = unknown_kpis(reps.scenario, list(runs[side][0]))
        for problem in problems:
            _say(_err, f"{side} = {reps.scenario.name}: {problem}", "bold red")
        if problems:
            _say(_err, f"the results are in {folder}/ all the same")
            raise typer.Exit(2)
    question = b.scenario.description.strip().partition("\n")[0]
    _say(_out, question, "bold")
    _say(_out, f"A = {a.scenario.name}, B = {b.scenario.name}")
    scenario = b.scenario if b.scenario.answers else a.scenario
    n = len(b.summaries)
    for path in answer_kpis(scenario):
        if path in table.index:
            row = table.loc[path].to_dict()
            _say(_out, f"  {verdict(path, row, n)}")
    checks: list[SloCheck] = []
    for side, reps in (("A", a), ("B", b)):
        side_checks = check_slos(reps.scenario, runs[side])
        for check in side_checks:
            _say(_out, f"  {side}: {check.line()}", "green" if check.passed else "bold red")
        if side == "B":
            checks = side_checks
    return checks


def _exit_on_slo(checks: list[SloCheck]) -> None:
    """Exit status 1 when a service-level threshold is not met (after every output)."""
    failed = [c for c in checks if not c.passed]
    if failed:
        _say(
            _err,
            f"{len(failed)} of {len(checks)} service-level thresholds not met: "
            + "; ".join(c.text for c in failed),
            "bold red",
        )
        raise typer.Exit(1)


def kpi_table(result: SimulationResult) -> Table:
    """The headline KPIs of a run (or the means and CIs of replications) as a rich table."""
    from simulator.present.kpis import (
        business_rows,
        delivery_rows,
        fmt_kpi,
        money_rows,
        protection_rows,
    )

    s = result.summary
    runs = f", {s['replications']} replications: mean [95% CI]" if "replications" in s else ""
    table = Table(title=f"{s['scenario']} (seed {s['seed']}{runs})", show_header=True)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [("sessions", fmt_kpi(s["sessions"]))]
    rows += [(f"  {k}", fmt_kpi(v)) for k, v in s["outcomes"].items()]
    lat = s["checkout_latency_ms"]
    rows += [
        ("orders", fmt_kpi(s["orders"])),
        ("GMV (CNY)", fmt_kpi(s["gmv"], "cny")),
        ("AOV (CNY)", fmt_kpi(s["aov"], "cny")),
        ("conversion rate", fmt_kpi(s["conversion_rate"], "pct")),
        *((name, fmt_kpi(value, kind)) for name, value, kind in business_rows(s)),
        *((name, fmt_kpi(value, kind)) for name, value, kind in money_rows(s)),
        ("checkout latency p50 / p95 / p99 (ms)", " / ".join(fmt_kpi(lat[q]) for q in _QS)),
        ("page latency p95 (ms)", fmt_kpi(s["page_latency_ms"]["p95"])),
        ("cache hit ratio", fmt_kpi(s["cache_hit_ratio"], "pct")),
        ("DB peak QPS", fmt_kpi(s["db_peak_qps"])),
        ("DB pool timeouts", fmt_kpi(s["db_pool_timeouts"])),
        ("payment success rate", fmt_kpi(s["payment_success_rate"], "pct")),
        *((name, fmt_kpi(value, kind)) for name, value, kind in delivery_rows(s)),
    ]
    rows += [(name, fmt_kpi(value)) for name, value in protection_rows(s)]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _print_channels(result: SimulationResult) -> None:
    """The per-channel table, when the sale buys traffic."""
    from simulator.present.kpis import channel_rows

    if len(result.summary["traffic_channels"]) < 2:
        return
    header, *rows = channel_rows(result.summary)
    table = Table(title="Traffic channels ('base': the traffic curve)", show_header=True)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # channel names printed literally
    _out.print(table)


def main() -> None:
    """Console-script entry point."""
    app()
