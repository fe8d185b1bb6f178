"""Running replications: one task per replication, serially, on local workers or on Dask.

A replication is a :class:`Task` (a scenario, a seed, a replication index and where its
files go) and comes back as a :class:`Record` (its summary, and its tables if kept). The
same task gives the same record wherever it runs, because its random streams are keyed
by ``(seed, replication)``. :func:`collect` is the one entry point the experiments use:
it skips the replications already finished in the output folder (see
:mod:`~simulator.experiment.store`), runs the rest, shows progress and turns Ctrl-C into
:class:`Interrupted` saying what was kept.

Local workers are like the tills of a shop that stays open between rushes: a command
that runs once forks its workers (instantly) and closes them when it is done; a notebook
kernel, which cannot fork safely, keeps one set of spawned workers (loky's reusable
executor, :func:`local_workers`) open between calls, so only its first experiment pays
the workers' start-up (importing the package, a second or two each).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.experiment.store import Store
from simulator.model import run
from simulator.results import summarise, to_json
from simulator.scenario.loader import load_scenario
from simulator.scenario.presets import resolve
from simulator.scenario.schema import Scenario

__all__ = [
    "ExperimentError",
    "Interrupted",
    "Record",
    "ScenarioLike",
    "Scheduler",
    "SchedulerError",
    "Summary",
    "Task",
    "collect",
    "execute",
    "load",
    "local_workers",
    "run_task",
    "workers_or_cores",
]

ScenarioLike = Scenario | str | Path | Mapping[str, Any]
Scheduler = Any  # a Dask scheduler address, or a distributed.Client
Summary = dict[str, Any]

IDLE_WORKERS_S = 600
"""How long kept (spawned) workers wait idle for the next experiment before they exit, s.

Long enough for a notebook's reader to read a table and change a slider; idle workers
hold only the imported package."""


class ExperimentError(ValueError):
    """An experiment asked for something the scenario cannot give (e.g. a warm-up series)."""


class SchedulerError(RuntimeError):
    """The Dask scheduler could not be used (extra not installed, or not reachable)."""


class Interrupted(KeyboardInterrupt):
    """An experiment stopped by Ctrl-C; the message says what was kept and where."""

    def __init__(
        self, finished: int, total: int, folder: Path | None, what: str = "replications"
    ) -> None:
        kept = (
            f"kept in {folder}/; run the same command again to resume"
            if folder is not None
            else "not kept (no output folder)"
        )
        super().__init__(f"interrupted: {finished} of {total} {what} finished, {kept}")


@dataclass(frozen=True)
class Task:
    """One replication to run, and where its files go within the output folder."""

    index: int
    scenario: Scenario
    seed: int
    replication: int
    folder: str
    keep_tables: bool


@dataclass
class Record:
    """A finished replication: its summary (JSON-clean) and, if kept, its tables."""

    task: Task
    summary: Summary
    timeseries: pd.DataFrame | None = field(default=None, repr=False)
    logistics: pd.DataFrame | None = field(default=None, repr=False)


def run_task(task: Task) -> Record:
    """Run one replication (in whichever process the executor chose).

    Its summary carries the run's own provenance; the command that asked for the
    experiment is stamped on the experiment's outputs, not on each replication's.
    """
    result = summarise(run(task.scenario, task.seed, task.replication, False))
    summary = json.loads(to_json(result.summary))  # the form it has on disk
    if not task.keep_tables:
        return Record(task, summary)
    return Record(task, summary, result.timeseries, result.logistics)


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def execute(
    tasks: Sequence[Task], workers: int, scheduler: Scheduler, done: Callable[[Record], None]
) -> None:
    """Run the tasks serially, on local worker processes, or on a Dask cluster."""
    if not tasks:
        return
    if scheduler is not None:
        _on_dask(tasks, scheduler, done)
    elif workers <= 1 or len(tasks) == 1:
        for task in tasks:
            done(run_task(task))
    elif _context().get_start_method() == "fork":
        _on_forked_workers(tasks, min(workers, len(tasks)), done)
    else:
        _on_kept_workers(tasks, workers, done)


def _context() -> multiprocessing.context.BaseContext:
    """How to start local workers: fork when it is safe, else spawn (and keep them).

    Forked workers start at once and need no ``if __name__ == "__main__"`` guard in a
    user's script; but forking a process that runs other threads (a notebook kernel, a
    Dask client, kept workers' own manager thread) can deadlock the child, and macOS's
    system libraries do not survive a fork, so otherwise workers are spawned: a fresh
    interpreter that imports the package (a second or two each), kept for the next call
    (:func:`local_workers`).
    """
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _on_forked_workers(tasks: Sequence[Task], workers: int, done: Callable[[Record], None]) -> None:
    """Run the tasks on a pool forked for this call; stop it on any error or Ctrl-C."""
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_interrupts)
    try:
        for record in pool.imap_unordered(run_task, tasks):
            done(record)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def local_workers(workers: int) -> Executor:
    """The kept worker processes, ``workers`` of them: started once, reused by every call.

    loky's reusable executor (the one joblib runs on): the same executor and the same
    processes come back on every call that asks for as many workers (a call asking for
    another number resizes it), until they sit idle for :data:`IDLE_WORKERS_S`, a worker
    dies, or Ctrl-C stops them; the next call then starts fresh ones. Workers ignore
    Ctrl-C: the caller stops them.
    """
    from loky import get_reusable_executor

    return get_reusable_executor(
        max_workers=workers, timeout=IDLE_WORKERS_S, initializer=_ignore_interrupts
    )


def _on_kept_workers(tasks: Sequence[Task], workers: int, done: Callable[[Record], None]) -> None:
    """Run the tasks on the kept workers (:func:`local_workers`).

    An error drops the tasks not yet started (those running finish, unread); Ctrl-C
    stops the workers too, as it stops a forked pool, and the next call starts new ones.
    """
    executor = local_workers(workers)
    futures = [executor.submit(run_task, task) for task in tasks]
    try:
        for future in as_completed(futures):
            done(future.result())
    except Exception:
        for future in futures:
            future.cancel()
        raise
    except BaseException:
        # the shutdown fails the futures not yet done itself (cancelling them first would
        # make loky's manager thread fail on them)
        executor.shutdown(wait=True, kill_workers=True)  # type: ignore[call-arg]
        raise


def _on_dask(tasks: Sequence[Task], scheduler: Scheduler, done: Callable[[Record], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SchedulerError(
            "a Dask scheduler needs the dask extra: pip install 'campaign-sim[dask]'"
        ) from None
    try:
        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    except (OSError, ValueError) as exc:
        raise SchedulerError(f"cannot use the Dask scheduler at {scheduler}: {exc}") from None
    futures = client.map(run_task, tasks, pure=False)
    try:
        for future in as_completed(futures):
            done(future.result())
            future.release()  # the cluster may drop the replication's tables now
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        if client is not scheduler:
            client.close()


def workers_or_cores(workers: int | None) -> int:
    """Local worker processes: as asked (at least 1), or one per core."""
    return (os.cpu_count() or 1) if workers is None else max(1, workers)


def _progress_bar(total: int, initial: int, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        monitor_interval = 0  # no monitor thread: local workers can then be forked

    # enabled=None: a bar on a terminal or in a notebook, none in a log file
    return Bar(
        total=total,
        initial=initial,
        unit="rep",
        desc="replications",
        disable=None if enabled is None else not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def collect(
    tasks: Sequence[Task],
    out: Path | None,
    workers: int | None,
    scheduler: Scheduler,
    progress: bool | None,
    announce: bool = True,
) -> list[Summary]:
    """Every task's summary, in task order: from disk when finished before, else run.

    ``announce`` says on stderr how many were already on disk (an optimisation, which
    reads plans back all the time, keeps quiet).

    Raises:
        Interrupted: on Ctrl-C, after stopping the workers; what finished is on disk.
    """
    store = Store(out)
    summaries: list[Summary | None] = [store.finished(t) for t in tasks]
    todo = [t for t, s in zip(tasks, summaries, strict=True) if s is None]
    if announce and len(todo) < len(tasks):
        rest = f"running the other {len(todo)}" if todo else "nothing left to run"
        kept = len(tasks) - len(todo)
        print(f"{kept} of {len(tasks)} replications already in {out}/; {rest}", file=sys.stderr)
    bar = _progress_bar(len(tasks), len(tasks) - len(todo), progress)

    def done(record: Record) -> None:
        store.save(record)
        summaries[record.task.index] = record.summary
        bar.update()

    try:
        execute(todo, workers_or_cores(workers), scheduler, done)
    except KeyboardInterrupt:
        finished = sum(s is not None for s in summaries)
        raise Interrupted(finished, len(tasks), out) from None
    finally:
        bar.close()
    return [s for s in summaries if s is not None]


def load(scenario: ScenarioLike, overrides: Iterable[str] = ()) -> Scenario:
    """A scenario from a file, a preset name, a mapping or a Scenario, with overrides."""
    if isinstance(scenario, str):
        scenario = resolve(scenario)
    return load_scenario(scenario, overrides)
