"""The rooms of the package import one way: downward, and the model through its door.

``ARCHITECTURE.md`` draws the house from the ground up: the scenario (configuration),
measurement, the model of one replication, the results of one run, experiments,
presentation, validation, and the interfaces on top. A room may import its own modules
and the rooms below it, never one above; and above the model, only the model's door
(``simulator.model``: ``run`` and the ``RunRecord``) may be imported, never a
component. These tests read every module's imports with :mod:`ast` (function-level and
``TYPE_CHECKING`` imports included) and fail on the first import against the order.
"""

from __future__ import annotations

import ast

from tests.conftest import ROOT

PACKAGE = ROOT / "simulator"

ROOMS = (
    "scenario",
    "measure",
    "model",
    "results",
    "experiment",
    "present",
    "validation",
    "interface",
)
"""The rooms from the ground up; a room may import those before it."""

TOP = len(ROOMS)
"""``simulator/__init__.py`` and ``__main__.py``: the public API, above every room."""

MODEL_DOORS = ("simulator.model", "simulator.model.record")
"""What the rooms above the model may import of it."""


def room_of(module: str) -> int | None:
    """A dotted module's rank in :data:`ROOMS` (the top for ``simulator`` itself)."""
    parts = module.split(".")
    if parts[0] != "simulator":
        return None
    if len(parts) == 1:
        return TOP
    return ROOMS.index(parts[1]) if parts[1] in ROOMS else TOP


def imported(source: str, module: str) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every import of the package in a module's source."""
    found = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upward
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "simulator":  # from simulator import experiment: the submodule
                found += [(node.lineno, f"simulator.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return [(line, name) for line, name in found if name.split(".")[0] == "simulator"]


def violations(source: str, module: str) -> list[str]:
    """The imports of one module against the order, as ``module:line imports name: why``."""
    own = room_of(module)
    assert own is not None
    problems = []
    for line, name in imported(source, module):
        target = room_of(name)
        assert target is not None
        where = f"{module}:{line} imports {name}"
        if target > own:
            problems.append(f"{where}: {ROOMS[own]} is below {_room_name(target)}")
        elif target == ROOMS.index("model") < own and name not in MODEL_DOORS:
            problems.append(f"{where}: above the model, use its door ({', '.join(MODEL_DOORS)})")
    return problems


def _room_name(rank: int) -> str:
    return ROOMS[rank] if rank < TOP else "the public API"


def modules() -> dict[str, str]:
    """Every module of the package by dotted name, with its source."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if parts[-1] == "__init__":
            name += ".__init__"  # its relative imports resolve from the package itself
        found[name] = path.read_text(encoding="utf-8")
    return found


def test_every_module_lives_in_a_room():
    """No module sits loose at the top of the package, but the API and ``__main__``."""
    loose = [
        name
        for name in modules()
        if name.count(".") == 1 and name not in ("simulator.__init__", "simulator.__main__")
    ]
    assert loose == []
    rooms = {name.split(".")[1] for name in modules() if name.count(".") >= 2}
    assert rooms == set(ROOMS)


def test_imports_run_downward_and_the_model_only_through_its_door():
    """The whole package keeps the order of ``ROOMS`` and the model's door."""
    problems = [p for name, source in modules().items() for p in violations(source, name)]
    assert problems == [], "\n".join(problems)


def test_a_back_import_is_caught():
    """The check is not vacuous: each kind of wrong import is reported, right ones are not."""
    assert violations("from simulator.present.report import write_report\n", "simulator.results.x")
    assert violations("from simulator import experiment\n", "simulator.model.x")
    assert violations("import simulator.interface.cli\n", "simulator.scenario.x")
    assert violations("from ...results import summarise\n", "simulator.model.components.x")
    inner = "def f():\n    from simulator.model.campaign import build\n"
    assert violations(inner, "simulator.results.x") == [
        "simulator.results.x:2 imports simulator.model.campaign: above the model, use its "
        "door (simulator.model, simulator.model.record)"
    ]
    fine = "from simulator.model import run\nfrom simulator.measure.metrics import ratio\n"
    assert violations(fine, "simulator.results.x") == []
    assert violations("from .station import wait_for\n", "simulator.model.components.x") == []
