"""The model of one replication: the shop, its users and its faults, on a SimPy clock.

The room's one door for the rest of the package is :func:`run` (a scenario and a seed
in, a :class:`RunRecord` out), with :func:`scale_notes` (what a ``scale`` makes
incomparable with the full size); nothing outside the model reads a component's
attributes. Inside: the wiring (:mod:`.campaign`), the session flow (:mod:`.session`),
users (:mod:`.users`), prices and the books (:mod:`.pricing`, :mod:`.ledger`), traffic
and the catalogue's keys (:mod:`.traffic`, :mod:`.keys`), the fault timeline
(:mod:`.faults`), scale (:mod:`.scale`), the resilience policies (:mod:`.resilience`)
and the components (:mod:`.components`). The model imports only the scenario schema
and the measurement room (:mod:`simulator.measure`).
"""

from simulator.model.campaign import run
from simulator.model.record import RunRecord
from simulator.model.scale import ScaleNote, scale_notes

__all__ = ["RunRecord", "ScaleNote", "run", "scale_notes"]
