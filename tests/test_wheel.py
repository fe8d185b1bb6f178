"""Installed from its wheel, the package has its presets: `list` and a preset by name work.

The test builds the wheel (hatchling, without build isolation: it is in the test extra,
so no network is needed), installs it with ``--no-deps`` into a fresh virtual
environment that borrows this environment's packages for the dependencies, and runs the
installed command from an empty folder outside the checkout. The borrowed folders are
added after the environment's own, so the wheel's copy of ``simulator`` is the one
imported, not this checkout's editable install; the tests check that it is.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SCENARIOS


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


class Installed:
    """A virtual environment with the wheel installed, and an empty working folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "venv" / ("Scripts" if os.name == "nt" else "bin")
        self.work = root / "work"
        self.work.mkdir()

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the installed ``campaign-sim`` in the empty folder."""
        return _run([self.bin / "campaign-sim", *args], self.work)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run Python code with the environment's interpreter in the empty folder."""
        return _run([self.bin / "python", "-c", code], self.work)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The wheel built from this checkout, installed into a fresh virtual environment."""
    root = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    built = _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", "dist", ROOT], root)
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("campaign_sim-*.whl")
    made = _run([sys.executable, "-m", "venv", "venv"], root)
    assert made.returncode == 0, made.stderr
    env = Installed(root)
    # The dependencies: this environment's site folders, after the new environment's own.
    purelib = _run(
        [env.bin / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root
    )
    lines = [f"import site; site.addsitedir({folder!r})" for folder in site.getsitepackages()]
    (Path(purelib.stdout.strip()) / "borrowed-dependencies.pth").write_text("\n".join(lines) + "\n")
    done = _run(
        [env.bin / "python", "-m", "pip", "install", "--no-deps", "--no-index", wheel], root
    )
    assert done.returncode == 0, done.stderr
    return env


def test_the_wheel_copy_is_the_one_imported(installed):
    """`simulator` comes from the new environment, with the presets inside it."""
    found = installed.python(
        "import simulator; from simulator.scenario.presets import preset_dir; "
        "print(simulator.__file__); print(preset_dir())"
    )
    assert found.returncode == 0, found.stderr
    module, presets = (Path(line) for line in found.stdout.split())
    assert module.is_relative_to(installed.root / "venv")
    assert presets == module.parent / "presets"


def test_list_from_the_wheel(installed):
    """`campaign-sim list` names every shipped preset, read from the installed package."""
    listed = installed.command("list")
    assert listed.returncode == 0, listed.stderr
    for path in SCENARIOS.rglob("*.yaml"):
        assert f"{path.stem}  " in listed.stdout, path.stem
    assert str(installed.root / "venv") in listed.stdout


def test_a_preset_runs_by_name_from_the_wheel(installed):
    """`campaign-sim run baseline` runs the packaged preset and writes its outputs."""
    ran = installed.command("run", "baseline", "--set", "duration_s=60", "--out", "out")
    assert ran.returncode == 0, ran.stderr
    assert (installed.work / "out" / "summary.json").is_file()
    assert "sessions simulated" in ran.stdout
    # the report's templates ship in the package too
    assert '<dl id="provenance"' in (installed.work / "out" / "report.html").read_text()


def test_a_file_extends_a_preset_by_name_from_the_wheel(installed):
    """A user's file can extend a packaged preset (and a validation case) by name."""
    (installed.work / "mine.yaml").write_text("extends: baseline\nname: mine\n")
    checked = installed.command("validate", "mine.yaml")
    assert checked.returncode == 0, checked.stderr
    assert installed.command("validate", "mm1").returncode == 0


def test_version_from_the_wheel(installed):
    """`campaign-sim --version` names the installed version."""
    shown = installed.command("--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("campaign-sim ")
