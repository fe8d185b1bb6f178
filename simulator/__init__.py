"""campaign-sim: a discrete-event simulation of an e-commerce sale.

The public API::

    import simulator
    scenario = simulator.load_scenario("scenarios/sale-start-spike.yaml")
    result = simulator.simulate(scenario, seed=7)
    result.summary["checkout_latency_ms"]["p99"]
    result.timeseries.plot(x="t_s", y="arrival_rate_per_s")
    search = simulator.optimize("cs-backlog-target",
                                ["customer_service.shifts[0].staff=10:40"],
                                minimize="stations.customer_service.servers",
                                subject_to=["cs_busiest_hour_wait_s<=30"])
    print(search.answer())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.experiment.optimization import Optimization
    from simulator.results import SimulationResult, simulate
    from simulator.scenario.loader import ScenarioError, load_scenario
    from simulator.scenario.schema import Scenario

__all__ = [
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "load_scenario",
    "optimize",
    "simulate",
]
__version__ = "0.1.0"


def optimize(scenario: Any, vary: Any, **options: Any) -> Optimization:
    """Search for the best plan meeting the constraints (see ``experiment.run_optimization``).

    The experiment room (and with it scipy and Optuna) is imported only when called, so
    ``import simulator`` stays quick.
    """
    from simulator.experiment.optimize import run_optimization

    return run_optimization(scenario, vary, **options)


# Every submodule import (the command line's included) runs this file first, so the
# public names load on first use (PEP 562): ``campaign-sim --help`` does not wait for
# pandas and scipy, and ``from simulator import simulate`` works as before.
_LAZY = {
    "Scenario": "simulator.scenario.schema",
    "ScenarioError": "simulator.scenario.loader",
    "SimulationResult": "simulator.results",
    "load_scenario": "simulator.scenario.loader",
    "simulate": "simulator.results",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first read."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
