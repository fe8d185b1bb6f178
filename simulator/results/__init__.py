"""The results of one run: its KPI summary, time series, after-sale tables and plots.

A replication of the model hands over a :class:`~simulator.model.record.RunRecord`;
:func:`summarise` turns it into a :class:`SimulationResult` (``summary.json``'s figures,
the per-interval and per-hour tables, the paid orders if kept), which writes its files
and draws its plots. This room reads the model only through that record (and
:func:`simulator.model.run`), never a component's attributes. How each KPI prints is
:mod:`~simulator.results.registry`'s, a notebook's KPI tables are
:mod:`~simulator.results.display`'s, and the HTML report is :mod:`simulator.present`'s.
"""

from simulator.results.result import SimulationResult, to_json
from simulator.results.summary import simulate, summarise

__all__ = ["SimulationResult", "simulate", "summarise", "to_json"]
