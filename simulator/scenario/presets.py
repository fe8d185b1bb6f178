"""Shipped presets: the scenarios in ``scenarios/``, found by file or by name."""

from __future__ import annotations

from pathlib import Path

from simulator.scenario.loader import ScenarioError, load_scenario

__all__ = ["preset_dir", "presets", "question", "resolve"]


def preset_dir() -> Path:
    """The ``scenarios/`` folder: the working directory's, else the one beside the package."""
    here = Path("scenarios")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "scenarios"


def resolve(name_or_path: str) -> Path:
    """A scenario file from a path, or from a preset name such as ``baseline``."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    root = preset_dir()
    for candidate in (root / f"{name_or_path}.yaml", *root.glob(f"*/{name_or_path}.yaml")):
        if candidate.exists():
            return candidate
    return path


def question(description: str) -> str:
    """The first line of a description: the question the scenario answers."""
    return description.strip().splitlines()[0] if description.strip() else ""


def presets() -> list[tuple[str, Path, str]]:
    """``(name, path, question)`` of every preset: the sales first, then subfolders."""
    found = []
    root = preset_dir()
    paths = sorted(root.glob("*.yaml")) + sorted(root.glob("*/*.yaml"))
    for path in paths:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            found.append((path.stem, path, f"INVALID: {exc.problems[0]}"))
            continue
        found.append((scenario.name, path, question(scenario.description)))
    return found
