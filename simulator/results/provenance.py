"""Provenance: how an output was made, written into the output itself.

Like the label on a lab sample: which program (and its version) made it, the exact
command (or Python call), the ``--set`` overrides, the seed, the replications and the
scale, with the warning that at a scale other than 1 money is reported at full size
while counts are the simulated ones. It holds no wall-clock time and no host name, so
the same command on the same checkout writes the same bytes.

A run's own facts (version, seed, replication, scale, the scenario as resolved, the
package versions) are put in its summary by :func:`run_provenance`; the command that
asked for the output is added on top by :func:`stamp`, by whoever knows it: the command
line passes its argv (:meth:`Invocation.command_line`), the Python API describes its
call (:meth:`Invocation.python`). Experiments that write no ``summary.json`` of their
own (comparison, sweep, search) write :func:`experiment_provenance` to a
``provenance.json`` next to their tables (:func:`write_provenance`).
"""

from __future__ import annotations

import platform
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any

from simulator.results.result import to_json
from simulator.scenario.schema import Scenario

__all__ = [
    "PROGRAM",
    "SCALE_NOTE",
    "Invocation",
    "describe",
    "experiment_provenance",
    "run_provenance",
    "scale_text",
    "stamp",
    "version",
    "write_provenance",
]

PROGRAM = "campaign-sim"
"""The distribution's name, and the command's."""
SCALE_NOTE = "money at full size; counts simulated"
"""What a scale other than 1 means for the figures (see :mod:`simulator.model.scale`)."""
_PACKAGES = ("campaign-sim", "simpy", "numpy", "pandas", "pydantic", "scipy", "pyarrow")


@dataclass(frozen=True)
class Invocation:
    """What asked for an output: a command line as run, or a call of the Python API.

    Attributes:
        command: the command as one line (shell-quoted), or ``"Python API: ..."``.
        overrides: the ``PATH=VALUE`` overrides given (``--set``), in order.
    """

    command: str
    overrides: tuple[str, ...] = ()

    @classmethod
    def command_line(cls, args: Sequence[str], overrides: Iterable[str] = ()) -> Invocation:
        """A ``campaign-sim`` command: its arguments as run (the program's path left out)."""
        return cls(shlex.join([PROGRAM, *args]), tuple(overrides))

    @classmethod
    def python(
        cls, function: str, *args: Any, overrides: Iterable[str] = (), **options: Any
    ) -> Invocation:
        """A Python API call, e.g. ``Python API: simulate('sale-start-spike', seed=7)``.

        Options left at None or empty are left out; a scenario object or mapping is
        named by its name (the resolved scenario is in the provenance in full).
        """
        overrides = tuple(overrides)
        shown = [_argument(a) for a in args]
        if overrides:
            options = {**options, "overrides": list(overrides)}
        shown += [f"{k}={_argument(v)}" for k, v in options.items() if v not in (None, (), [])]
        return cls(f"Python API: {function}({', '.join(shown)})", overrides)

    def fields(self) -> dict[str, Any]:
        """As in ``provenance``: ``command`` and ``overrides``."""
        return {"command": self.command, "overrides": list(self.overrides)}


def _argument(value: Any) -> str:
    if isinstance(value, Scenario):
        return f"<scenario {value.name}>"
    if isinstance(value, Mapping):
        return f"<scenario {value.get('name', 'mapping')}>"
    if isinstance(value, Path):
        return repr(str(value))
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def version() -> str:
    """campaign-sim's version as installed (``pip install``, editable or not)."""
    try:
        return metadata.version(PROGRAM)
    except metadata.PackageNotFoundError:  # run from a source tree never installed
        return "unknown (not installed)"


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def scale_text(scale: float) -> str:
    """1/10 rather than 0.1; 1 for the full size."""
    return str(Fraction(float(scale)).limit_denominator(10_000))


def _scale_fields(scales: Iterable[tuple[str, float]]) -> dict[str, Any]:
    """``scale`` (one value, or each scenario's when they differ) and ``scale_note``."""
    pairs = list(scales)
    texts = list(dict.fromkeys(scale_text(s) for _, s in pairs))
    if len(texts) == 1:
        scale = texts[0]
    elif len({name for name, _ in pairs}) == len(pairs):
        scale = "; ".join(f"{name}: {scale_text(s)}" for name, s in pairs)
    else:  # the points of a sweep over the scale itself
        scale = ", ".join(texts)
    return {"scale": scale, "scale_note": None if texts == ["1"] else SCALE_NOTE}


def run_provenance(scenario: Scenario, seed: int, replication: int) -> dict[str, Any]:
    """A replication's own provenance, as its ``summary.json`` carries it.

    The command is added by :func:`stamp`, by the caller that knows it.
    """
    return {
        "version": version(),
        "seed": seed,
        "replication": replication,
        **_scale_fields([(scenario.name, scenario.scale)]),
        "scenario": scenario.model_dump(mode="json"),
        "versions": _versions(),
    }


def stamp(summary: dict[str, Any], invocation: Invocation, scenario: Scenario) -> dict[str, Any]:
    """Put the command (and version and scale) at the head of ``summary["provenance"]``.

    The rest of the provenance (seed, replication or replications, scenario, versions)
    is kept as it is. Returns the summary, changed in place.
    """
    kept = {k: v for k, v in summary.get("provenance", {}).items() if k not in _HEAD}
    summary["provenance"] = {
        "version": version(),
        **invocation.fields(),
        **{k: kept.pop(k) for k in ("seed", "replication", "replications") if k in kept},
        **_scale_fields([(scenario.name, scenario.scale)]),
        **kept,
    }
    return summary


_HEAD = ("version", "command", "overrides", "scale", "scale_note")


def experiment_provenance(
    invocation: Invocation,
    scenarios: Sequence[Scenario],
    seed: int,
    replications: int,
    replications_of: str,
) -> dict[str, Any]:
    """The provenance of a comparison, a sweep or a search (``provenance.json``).

    Args:
        invocation: the command or call.
        scenarios: the scenarios run (A and B; every grid point; the base of a search).
        seed: the experiment's seed.
        replications: replications of each of them.
        replications_of: what each ran that many replications, e.g. ``"each side"``.
    """
    return {
        "version": version(),
        **invocation.fields(),
        "seed": seed,
        "replications": replications,
        "replications_of": replications_of,
        **_scale_fields((s.name, s.scale) for s in scenarios),
        "scenarios": list(dict.fromkeys(s.name for s in scenarios)),
        "versions": _versions(),
    }


def write_provenance(folder: str | Path, provenance: Mapping[str, Any]) -> Path:
    """Write ``provenance.json`` into ``folder`` and return its path."""
    path = Path(folder) / "provenance.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(dict(provenance)) + "\n", encoding="utf-8")
    return path


def describe(provenance: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The provenance as ``(label, text)`` lines for people (reports, tables).

    Lines whose facts are missing (an output made before provenance was recorded) are
    left out.
    """
    p = provenance
    lines: list[tuple[str, str]] = []
    if "version" in p:
        lines.append(("made by", f"{PROGRAM} {p['version']}"))
    if p.get("command"):
        lines.append(("command", p["command"]))
    if "overrides" in p:
        lines.append(("overrides", ", ".join(p["overrides"]) or "none"))
    if "seed" in p:
        lines.append(("seed", str(p["seed"])))
    runs = p.get("replications", None)
    if isinstance(runs, list):
        lines.append(("replications", f"{len(runs)} (numbers {_numbers(runs)})"))
    elif runs is not None:
        lines.append(("replications", f"{runs} of {p.get('replications_of', 'each')}"))
    elif "replication" in p:
        lines.append(("replication", f"number {p['replication']} (one run)"))
    if "scale" in p:
        note = p.get("scale_note")
        lines.append(("scale", f"{p['scale']}: {note}" if note else str(p["scale"])))
    return lines


def _numbers(values: list[int]) -> str:
    """0-9 for a range, else the numbers themselves."""
    if len(values) > 2 and values == list(range(values[0], values[0] + len(values))):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)
