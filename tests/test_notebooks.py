"""The notebooks are committed clean and open by saying whom they are for (nbmake runs them)."""

from __future__ import annotations

import ast
import json
import re

import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("00_")
    assert all(path.name[:2].isdigit() and path.name[2] == "_" for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_says_who_it_is_for(path):
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and "**For**" in first and "**Question**" in first
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert any("import simulator" in "".join(c["source"]) for c in code)


HEAVY = re.compile(r"simulate|replicate|compare|sweep|optimize|run_\w+")
"""What simulates when called: a single run and the experiments."""


def calls_run_now(source: str) -> list[str]:
    """The functions a cell calls as it runs (not those only called inside a definition)."""
    called = []
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.FunctionDef | ast.ClassDef):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                func = node.func
                called.append(
                    func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                )
    return called


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_starts_quick_and_shows_progress(path):
    """The first code cell simulates nothing, and no cell switches progress bars off.

    The heavy runs come later, each with its cost stated where it runs.
    """
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert not [f for f in calls_run_now("".join(code[0]["source"])) if HEAVY.fullmatch(f)]
    assert not any("progress=False" in "".join(c["source"]) for c in code)
