"""campaign-sim: a discrete-event simulation of an e-commerce sale.

The public API::

    import simulator
    scenario = simulator.load_scenario("scenarios/sale-start-spike.yaml")
    result = simulator.simulate(scenario, seed=7)
    result.summary["checkout_latency_ms"]["p99"]
    result.timeseries.plot(x="t_s", y="arrival_rate_per_s")
"""

from simulator.results import SimulationResult, simulate
from simulator.scenario.loader import ScenarioError, load_scenario
from simulator.scenario.schema import Scenario

__all__ = ["Scenario", "ScenarioError", "SimulationResult", "load_scenario", "simulate"]
__version__ = "0.1.0"
