"""What the fault timeline can do to a component: take it down, slow it, make it fail.

Components check one flag, ``impaired``, per call; only when it is set do they look
at which fault it is. Capacity faults change the component's resource instead (see
:func:`resize`), so they cost nothing per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy

from simulator.model.components.servers import Servers
from simulator.model.components.station import StationStats

__all__ = ["Impairable", "resize"]


def _never() -> float:
    return 1.0


class Impairable:
    """Mixin of a component that faults can impair.

    ``down``: every call fails at once (connection refused). ``error_probability``:
    each call fails at once with this chance. ``slowdown``: service times are
    multiplied by it. A capacity fault keeps a fraction of ``resource``'s
    ``nominal_capacity`` servers, which the component sets.
    """

    env: simpy.Environment
    stats: StationStats
    resource: Servers
    nominal_capacity: int

    impaired = False
    capacity_factor = 1.0
    down = False
    slowdown = 1.0
    error_probability = 0.0
    error_draw: Callable[[], float] = staticmethod(_never)

    def set_fault(self, name: str, value: Any) -> None:
        """Set ``down``, ``slowdown`` or ``error_probability`` (and refresh ``impaired``)."""
        setattr(self, name, value)
        self.impaired = self.down or self.slowdown != 1.0 or self.error_probability > 0

    def set_capacity_factor(self, factor: float) -> None:
        """Keep this fraction of the servers (a capacity fault), at least one."""
        self.capacity_factor = factor
        servers = max(1, round(self.nominal_capacity * factor))
        resize(self.resource, self.stats, servers, self.env.now)

    def fails(self) -> bool:
        """Whether a call that arrives now fails at once."""
        return self.down or (
            self.error_probability > 0 and self.error_draw() < self.error_probability
        )


def resize(resource: Servers, stats: StationStats, capacity: int, now: float) -> None:
    """Give ``resource`` a new number of servers; waiting requests take any new ones at once.

    Requests in service keep their server when capacity shrinks: the resource serves no
    one new until it is below the new capacity.
    """
    resource.resize(capacity)
    stats.resize(now, capacity)
