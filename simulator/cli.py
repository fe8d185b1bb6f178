"""The ``campaign-sim`` command line.

Bad input never shows a traceback: scenario problems are printed one per line as
``FILE:LINE:COL: path: message`` and the command exits with status 2.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from simulator.aftersale import delivery_rows
from simulator.campaign import simulate
from simulator.presets import presets, resolve
from simulator.result import SimulationResult, business_rows, fmt_kpi, protection_rows
from simulator.scenario.loader import ScenarioError, load_scenario
from simulator.scenario.schema import Scenario

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate an e-commerce sale: traffic spike, cache, database, payment, fulfilment.",
)
_out = Console()
_err = Console(stderr=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a field: PATH=VALUE, e.g. --set cache.levels[0].ttl_s=30 (repeatable).",
        show_default=False,
    ),
]


def _load(scenario: str, overrides: list[str] | None) -> Scenario:
    try:
        return load_scenario(resolve(scenario), overrides or [])
    except ScenarioError as exc:
        for problem in exc.problems:
            _err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        count = len(exc.problems)
        _err.print(f"{count} problem{'s' if count != 1 else ''} in {scenario}", style="bold red")
        raise typer.Exit(2) from None


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Scenario file or preset name.")],
    seed: Annotated[int | None, typer.Option(help="Seed (default: the scenario's).")] = None,
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/SCENARIO-NAME).")
    ] = None,
) -> None:
    """Run a scenario, print its KPIs and write summary.json and timeseries.parquet."""
    loaded = _load(scenario, set_)
    started = time.perf_counter()
    result = simulate(loaded, seed=seed)
    wall_s = time.perf_counter() - started
    folder = result.write(out or Path("runs") / loaded.name)
    _out.print(kpi_table(result))
    sessions = result.summary["sessions"]
    _out.print(
        f"{sessions:,} sessions simulated in {wall_s:.1f} s "
        f"({sessions / wall_s:,.0f} sessions/s); results in {folder}/"
    )


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
    _out.print(f"{scenario}: valid scenario '{loaded.name}'")


def _theory_table(replications: int) -> None:
    from rich.progress import Progress

    from simulator.validation import run_validation

    with Progress(transient=True, console=_err) as bar:
        task = bar.add_task("validating", total=None)
        table = run_validation(
            replications, progress=lambda text: bar.update(task, description=text)
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
            "pass" if row.passed else "[bold red]FAIL[/]",
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
    """List the shipped presets and the question each answers."""
    # One block per preset rather than a table: names are what users type, so they are
    # never cut, and questions stay readable in a narrow terminal.
    for name, path, question in presets():
        _out.print(f"[bold]{escape(name)}[/bold]  [dim]{escape(str(path))}[/dim]")
        _out.print(Padding(Text(question), (0, 0, 0, 2)))


@app.command()
def schema() -> None:
    """Print the scenario JSON Schema (for editor completion)."""
    sys.stdout.write(schema_json() + "\n")


def schema_json() -> str:
    """The scenario JSON Schema as text, as committed in scenarios/scenario.schema.json."""
    return json.dumps(Scenario.model_json_schema(), indent=2)


_QS = ("p50", "p95", "p99")


def kpi_table(result: SimulationResult) -> Table:
    """The headline KPIs of a run as a rich table."""
    s = result.summary
    table = Table(title=f"{s['scenario']} (seed {s['seed']})", show_header=True)
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


def main() -> None:
    """Console-script entry point."""
    app()
