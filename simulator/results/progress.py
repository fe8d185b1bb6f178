"""A progress bar for one run: the simulated clock against the sale's length.

A single replication of a big sale computes for minutes with nothing to show, like a
download without a byte count. The model can report its clock every so often (a SimPy
process beside the shop that ticks a fixed number of times over ``duration_s``, never a
hook on each event, :func:`simulator.model.run`); this module shows those reports as a
bar of simulated seconds against ``duration_s``, on stderr. Nothing in the run reads
the bar, so a run gives the same results with or without it. After ``duration_s`` no
user arrives any more and the sessions still under way end: the bar stays full until
they have.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from simulator.model import RunRecord, run
from simulator.scenario.schema import Scenario

__all__ = ["clock_bar", "run_with_progress"]


def run_with_progress(
    scenario: Scenario, seed: int, replication: int, keep_orders: bool, progress: bool | None
) -> RunRecord:
    """Run one replication (:func:`simulator.model.run`) with a bar of its clock.

    Args:
        scenario: the scenario as declared.
        seed: the run's seed.
        replication: replication index.
        keep_orders: keep one row per paid order.
        progress: True shows the bar, False does not, None shows it on a terminal (or in
            a notebook) only.
    """
    with clock_bar(scenario, progress) as report:
        return run(scenario, seed, replication, keep_orders, progress=report)


@contextmanager
def clock_bar(scenario: Scenario, enabled: bool | None) -> Iterator[Callable[[float], None] | None]:
    """A bar of the simulated clock; yields the function the model reports to, or None.

    None when the bar is off (``enabled`` False, or None away from a terminal): the model
    then runs without its clock process at all.
    """
    if enabled is False:
        yield None
        return
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        monitor_interval = 0  # no monitor thread: worker processes can still be forked later

    total = max(1, math.ceil(scenario.duration_s))
    bar = Bar(
        total=total,
        desc=scenario.name,
        unit="s",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} s simulated "
        "[{elapsed}<{remaining}]",
        disable=None if enabled is None else not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
    )
    if bar.disable:
        bar.close()
        yield None
        return

    def report(now_s: float) -> None:
        bar.update(min(total, math.floor(now_s)) - bar.n)

    try:
        yield report
    finally:
        bar.close()
