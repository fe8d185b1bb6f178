"""The output folder's finished replications: what to skip on a rerun, and how to save.

Each replication is written to its own folder as it finishes, ``summary.json`` last and
atomically, so a half-written replication is never taken as finished; a later run with
the same folder skips every replication whose scenario, seed and replication match
(the scenario's words, :data:`WORDS`, aside: a reworded description reruns nothing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.results import to_json
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from simulator.experiment.runner import Record, Summary, Task

__all__ = ["Store", "TABLES", "WORDS"]

TABLES = ("timeseries", "logistics")
"""The per-interval tables a replication keeps (besides its summary)."""

WORDS: set[str] = {"name", "description", "answers", "slo"}
"""Scenario fields that say what a run means, not what it simulates: editing them keeps
the finished replications (and an optimiser's trials)."""


class Store:
    """The output folder's finished replications: what to skip, where to write."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._plain: dict[int, Any] = {}

    def _scenario(self, scenario: Scenario) -> Any:
        key = id(scenario)
        if key not in self._plain:
            self._plain[key] = json.loads(to_json(scenario.model_dump(mode="json")))
        return self._plain[key]

    def _same_sale(self, stored: Any, scenario: Scenario) -> bool:
        """The stored replication simulated this scenario, words aside.

        Equal when the resolved scenarios are; or when they differ only in what does not
        change a run (:data:`WORDS`: its name, description, answer KPIs and service
        levels) and in fields added since, at their defaults (the stored one is read
        through today's schema, which fills them in).
        """
        if stored == self._scenario(scenario):
            return True
        if not isinstance(stored, dict):
            return False
        try:
            then = Scenario.model_validate(stored)
        except ValueError:  # written by a version whose fields this one does not read
            return False
        return then.model_dump(mode="json", exclude=WORDS) == scenario.model_dump(
            mode="json", exclude=WORDS
        )

    def finished(self, task: Task) -> Summary | None:
        """The task's summary if the folder holds this very replication, else None."""
        if self.root is None:
            return None
        folder = self.root / task.folder
        path = folder / "summary.json"
        tables = [folder / f"{name}.parquet" for name in TABLES] if task.keep_tables else []
        if not path.exists() or not all(t.exists() for t in tables):
            return None
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:  # cut short by a crash: run it again
            return None
        made = summary.get("provenance", {})
        same = (
            made.get("seed") == task.seed
            and made.get("replication") == task.replication
            and self._same_sale(made.get("scenario"), task.scenario)
        )
        if not same:
            return None
        made["scenario"] = self._scenario(task.scenario)  # today's words in the provenance
        return summary

    def save(self, record: Record) -> None:
        """Write a finished replication; ``summary.json`` last, atomically."""
        if self.root is None:
            return
        folder = self.root / record.task.folder
        folder.mkdir(parents=True, exist_ok=True)
        # another scenario's replication may be here: it stops counting as finished
        # before its tables are replaced
        (folder / "summary.json").unlink(missing_ok=True)
        if record.timeseries is not None:
            record.timeseries.to_parquet(folder / "timeseries.parquet", index=False)
        if record.logistics is not None:
            record.logistics.to_parquet(folder / "logistics.parquet", index=False)
        part = folder / "summary.json.part"
        part.write_text(to_json(record.summary) + "\n", encoding="utf-8")
        os.replace(part, folder / "summary.json")
