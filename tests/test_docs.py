"""The README's Python examples run as written (from the project root)."""

from __future__ import annotations

import os
import re

from tests.conftest import ROOT


def test_readme_python_examples_run(capsys):
    """Every ```python block of README.md executes without error and prints something."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert "arrival_rate_per_s" in capsys.readouterr().out
