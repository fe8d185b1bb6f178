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
    experiment.optimize("cs-backlog-target", ["customer_service.shifts[0].staff=10:40"],
                        minimize="stations.customer_service.servers",
                        subject_to=["cs_busiest_hour_wait_s<=30"])

The ``run_*`` functions return the objects behind them, which also write their tables
to a folder (the HTML reports are written by :mod:`simulator.present`) and show in a
notebook as a compact table, the answer first (``_repr_html_``, ``.html(kpis)``). Given ``out``,
every finished replication is written to its own folder as it finishes
(``summary.json`` last, so a half-written one is never taken as finished), and a later
call with the same folder skips the replications already there whose scenario, seed and
replication match. An interrupted experiment raises :class:`Interrupted` (a
``KeyboardInterrupt``) saying how much is kept.

The room: :mod:`.runner` (one task per replication, wherever it runs), :mod:`.store`
(the output folder), :mod:`.replications`, :mod:`.comparison`, :mod:`.sweep`,
:mod:`.estimates` (the statistics: intervals, paired differences, MSER-5), and the
optimiser: :mod:`.search` (variables, objectives, constraints), :mod:`.racing` (a plan's
replications and when to stop), :mod:`.optimize` (the search with Optuna) and
:mod:`.optimization` (the confirmation stage and the answer).
"""

from simulator.experiment.comparison import Comparison, compare, run_comparison
from simulator.experiment.optimization import Optimization
from simulator.experiment.optimize import optimize, run_optimization
from simulator.experiment.replications import (
    Replications,
    choose_warmup,
    replicate,
    run_replications,
)
from simulator.experiment.runner import (
    ExperimentError,
    Interrupted,
    SchedulerError,
    load,
)
from simulator.experiment.search import SearchError
from simulator.experiment.sweep import Sweep, parse_grid, run_sweep, sweep

__all__ = [
    "Comparison",
    "ExperimentError",
    "Interrupted",
    "Optimization",
    "Replications",
    "SchedulerError",
    "Sweep",
    "choose_warmup",
    "compare",
    "SearchError",
    "load",
    "optimize",
    "parse_grid",
    "replicate",
    "run_comparison",
    "run_optimization",
    "run_replications",
    "run_sweep",
    "sweep",
]
