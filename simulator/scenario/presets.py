"""Shipped presets: the scenarios in ``scenarios/``, found by file or by name.

The presets travel with the package. In a checkout (and an editable install) they are
the ``scenarios/`` folder beside ``simulator/``; an installed wheel carries the same
folder inside the package, as ``simulator/presets/`` (``pyproject.toml`` maps one onto
the other), so ``campaign-sim list`` and ``campaign-sim run baseline`` work wherever
the package is installed. A preset's name is its file name without ``.yaml``, also for
the validation cases in subfolders (``mm1``).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["find", "is_name", "preset_dir", "presets", "question", "resolve", "shown"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def preset_dir() -> Path:
    """The presets' folder: inside the installed package, else the checkout's ``scenarios/``."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "presets"
    if installed.is_dir():
        return installed
    return package.parent / "scenarios"


def is_name(text: str) -> bool:
    """Whether ``text`` reads as a preset's name (``baseline``) rather than a file path."""
    return bool(_NAME.match(text)) and Path(text).suffix not in (".yaml", ".yml")


def shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies inside it, as users type it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def find(name: str) -> Path | None:
    """The preset called ``name``, in the presets' folder or a subfolder of it; None if none."""
    if not is_name(name):
        return None
    root = preset_dir()
    for candidate in (root / f"{name}.yaml", *sorted(root.glob(f"*/{name}.yaml"))):
        if candidate.is_file():
            return shown(candidate)
    return None


def resolve(name_or_path: str) -> Path:
    """A scenario file from a path, or from a preset name such as ``baseline``."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return find(name_or_path) or path


def question(description: str) -> str:
    """The first line of a description: the question the scenario answers."""
    return description.strip().splitlines()[0] if description.strip() else ""


def presets() -> list[tuple[str, Path, str]]:
    """``(name, path, question)`` of every preset: the sales first, then subfolders.

    The name and the question come from each file's own ``name`` and ``description``,
    read by libyaml without validating the sale (``campaign-sim list`` answers at
    once); a file without them is loaded in full, and one that does not load is
    listed as INVALID with its first problem.
    """
    root = preset_dir()
    paths = [shown(p) for p in sorted(root.glob("*.yaml")) + sorted(root.glob("*/*.yaml"))]
    headings = [_heading(path) for path in paths]
    if all(headings):
        return [(h[0], path, question(h[1])) for h, path in zip(headings, paths, strict=True) if h]
    # Imported here: the loader finds the presets that files extend by name in this module.
    from simulator.scenario.loader import ScenarioError, load_scenario, reading_each_file_once

    found = []
    with reading_each_file_once():  # most presets extend baseline.yaml: parse it once
        for path, heading in zip(paths, headings, strict=True):
            if heading is not None:
                found.append((heading[0], path, question(heading[1])))
                continue
            try:
                scenario = load_scenario(path)
            except ScenarioError as exc:
                found.append((path.stem, path, f"INVALID: {exc.problems[0]}"))
                continue
            found.append((scenario.name, path, question(scenario.description)))
    return found


def _heading(path: Path) -> tuple[str, str] | None:
    """A file's own ``name`` and ``description``, or None when it lacks either."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(document, dict):
        return None
    name, description = document.get("name"), document.get("description")
    if isinstance(name, str) and isinstance(description, str):
        return name, description
    return None
