"""Bad input never crashes, hangs or shows a traceback: a fuzzer over the shipped presets.

The rule: a scenario with a mistake in it gets a clear message naming the file (or the
``--set`` override) and the field, exit status 2, no Python traceback and no hang; user
text is printed literally; and a file that ``validate`` accepts runs. The fuzzer takes
the presets in ``scenarios/`` and breaks them the ways people and editors do: wrong
types, signs, zeros, NaN and infinities, huge numbers, deleted and misspelt keys,
``extends:`` cycles and missing parents, YAML garbage, rich markup in names, and bad
``--set`` overrides. Each mutant goes through ``campaign-sim validate`` and, when valid,
a short ``campaign-sim run``.

The command line runs in a fork server: one child process imports the package once and
forks a fresh process per command, with its standard output and error in files, a
memory limit and a timeout (a timeout counts as a hang). That is the real command
(``python -m simulator`` calls the same ``app``) at a fraction of the start-up cost.

``FUZZ_EXAMPLES=2000 pytest -n 0 tests/test_fuzz_scenarios.py`` explores further;
``tools/fuzz_scenarios.py`` runs the same generator and counts the outcomes instead of
stopping at the first failure.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from simulator.interface.cli import OUT_OF_MEMORY
from simulator.scenario.loader import ScenarioError, load_scenario, render_path
from tests.conftest import SCENARIOS, small

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
RUN_DURATION_S = 60  # arrivals for the first minute of the sale ...
RUN_SCALE = "1/10"  # ... at a tenth of its size: some hundreds of sessions and a few orders
RUN_MAX_SESSIONS = 20_000  # a valid mutant expecting more is a big run, not a brief one
VALIDATE_TIMEOUT_S = 20.0
RUN_TIMEOUT_S = 30.0
# Bytes a command may map beyond the imported package; a valid run that needs more exits 2
# with OUT_OF_MEMORY, as `run` documents.
MEMORY_HEADROOM = 3 << 30
TRACEBACK = "Traceback (most recent call last)"

PRESETS = sorted(SCENARIOS.glob("*.yaml")) + sorted((SCENARIOS / "validation").glob("*.yaml"))


# ----------------------------------------------------------------------- the fork server

_SERVER = r"""
import importlib, json, os, resource, sys, time, traceback

from simulator.interface.cli import app

# The command line imports what a command needs inside the command (a quick start-up),
# so without this each forked command would import pandas, the model and the report
# again (about 1.2 s of CPU per `run`). Imported here once, every child starts with them.
for name in (
    "simulator.scenario.loader",
    "simulator.results",
    "simulator.experiment",
    "simulator.present.report",
    "simulator.present.kpis",
    "matplotlib.backends.backend_svg",
    "pyarrow.parquet",
    "pyarrow.pandas_compat",
):
    try:
        importlib.import_module(name)
    except ImportError:  # a module moved: the commands still work, only slower
        pass

protocol_in, protocol_out = sys.stdin, os.fdopen(os.dup(1), "w")


def child(request):
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    try:  # Linux: a memory bomb fails here instead of swapping the machine to a halt
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + request["memory_headroom"]
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError):
        pass
    code = 1
    try:
        try:
            app(request["args"], prog_name="campaign-sim")
            code = 0
        except SystemExit as exc:  # what the interpreter does with it
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


for line in protocol_in:
    request = json.loads(line)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(request)
    code = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() - started > request["timeout"]:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            break
        time.sleep(0.002)
    reply = {"exit": code, "seconds": time.monotonic() - started}
    protocol_out.write(json.dumps(reply) + "\n")
    protocol_out.flush()
"""


@dataclass(frozen=True)
class Outcome:
    """What one command did: exit status (None when it was killed at its timeout)."""

    args: tuple[str, ...]
    exit: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def hung(self) -> bool:
        """The command did not finish within its timeout."""
        return self.exit is None

    @property
    def traceback(self) -> bool:
        """A Python traceback reached the user."""
        return TRACEBACK in self.stdout + self.stderr


class Cli:
    """``campaign-sim`` commands, each in a fresh forked process with a timeout."""

    def __init__(self, cwd: Path) -> None:
        self._cwd = cwd
        self._server = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )

    def __call__(self, args: list[str], timeout: float) -> Outcome:
        """Run ``campaign-sim ARGS``; kill it after ``timeout`` seconds."""
        out, err = self._cwd / "stdout.txt", self._cwd / "stderr.txt"
        request = {
            "args": args,
            "timeout": timeout,
            "stdout": str(out),
            "stderr": str(err),
            "memory_headroom": MEMORY_HEADROOM,
        }
        assert self._server.stdin and self._server.stdout
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        line = self._server.stdout.readline()
        if not line:
            raise RuntimeError("the fork server stopped; its error is above")
        reply = json.loads(line)
        read = functools.partial(Path.read_text, encoding="utf-8", errors="replace")
        return Outcome(tuple(args), reply["exit"], read(out), read(err), reply["seconds"])

    def close(self) -> None:
        """Stop the server."""
        if self._server.stdin:
            self._server.stdin.close()
        self._server.wait(timeout=30)


# ---------------------------------------------------------------------------- mutants


@dataclass(frozen=True)
class Mutant:
    """Files to write side by side, the one to check, overrides, and what was done."""

    label: str
    files: tuple[tuple[str, bytes], ...]
    main: str
    sets: tuple[str, ...] = ()

    def write(self, folder: Path) -> Path:
        """Write the files into ``folder``; return the path of the one to check."""
        for name, content in self.files:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        return folder / self.main


def _yaml_bytes(data: Any) -> bytes:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    stream = StringIO()
    yaml.dump(data, stream)
    return stream.getvalue().encode("utf-8")


def _parent_of(data: Any) -> str | None:
    parent = data.get("extends") if isinstance(data, dict) else None
    return parent if isinstance(parent, str) else None


@functools.cache
def _raw(path: Path) -> Any:
    """A preset file's own data (``extends:`` kept)."""
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@functools.cache
def _resolved(path: Path) -> dict:
    """A preset with its parents merged and every default written out."""
    return load_scenario(path).model_dump(mode="json")


def _chain(path: Path) -> list[Path]:
    """The files ``path`` extends, nearest first, excluding itself."""
    out = []
    parent = _parent_of(_raw(path))
    while parent is not None:
        path = path.parent / parent
        out.append(path)
        parent = _parent_of(_raw(path))
    return out


def _copies(preset: Path) -> list[tuple[str, bytes]]:
    """The preset's parents, under the names its ``extends:`` uses."""
    return [(p.name, p.read_bytes()) for p in _chain(preset)]


def _paths(data: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path to a node below the root, parents before children."""
    if not isinstance(data, dict | list):
        return
    items: Any = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _leaves(data: Any, kind: type | tuple[type, ...]) -> list[Any]:
    found = []
    for path in _paths(data):
        value = _get(data, path)
        if isinstance(value, kind) and not isinstance(value, bool):
            found.append(value)
    return found


MARKUP = ["[/]", "[bold red]x[/bold red]", ":smile:", "[link=file:///etc]x[/link]", "\x1b[31mred"]
BAD_VALUES: list[Any] = [
    "abc",
    "",
    [1, 2],
    {"x": 1},
    [],
    {},
    True,
    False,
    None,
    0,
    -1,
    0.0,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    10**30,
    -(10**30),
    1e-308,
    "1/0",
    *MARKUP,
]


@st.composite
def _bad_value(draw: st.DrawFn, old: Any, document: Any) -> Any:
    """A wrong value for a node that holds ``old``."""
    choices: list[Any] = list(BAD_VALUES)
    if isinstance(old, int | float) and not isinstance(old, bool):
        choices += [-old, old * 1e6, old * 10**30 if isinstance(old, int) else old * 1e300]
    if isinstance(old, str):
        choices += [old + mark for mark in MARKUP] + [old.upper(), old + "x"]
    strategies = [st.sampled_from(choices)]
    numbers = _leaves(document, (int, float))
    strings = _leaves(document, str)
    if numbers:
        strategies.append(st.sampled_from(numbers))  # a value that fits elsewhere
    if strings:
        strategies.append(st.sampled_from(strings))
    # A copy: a list or mapping drawn here may be mutated by the next mutation, and the
    # pool must stay the same for every example (or hypothesis cannot replay them).
    return copy.deepcopy(draw(st.one_of(strategies)))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bad_number(old: float) -> st.SearchStrategy[float]:
    """An extreme, negated, zero or non-finite number in place of ``old``."""
    big = 10**30 if isinstance(old, int) else 1e300
    return st.sampled_from(
        [0, -old, -1, math.nan, math.inf, -math.inf, 1e308, 10**30, 1e-308, 1e-9, old * big]
        + [old * 1000, old + 1, old - 1, 2**63, 2**31]
    )


def _typo(key: str, how: int) -> str:
    if len(key) < 2:
        return key + "_"
    i = how % (len(key) - 1)
    return [
        key[:i] + key[i + 1] + key[i] + key[i + 2 :],  # swap two letters
        key[:i] + key[i + 1 :],  # drop one
        key[:i] + key[i] + key[i:],  # double one
        key.upper(),
        key.replace("_", "-"),
    ][how % 5]


@st.composite
def _mutate(draw: st.DrawFn, data: Any) -> tuple[Any, str]:
    """``data`` with one to three nodes broken; the label says which and how."""
    labels = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        paths = list(_paths(data))
        numbers = [p for p in paths if _is_number(_get(data, p))]
        if not paths:
            break
        op = draw(
            st.sampled_from(["number", "number", "set", "set", "delete", "rename", "duplicate"])
        )
        path = draw(st.sampled_from(numbers if op == "number" and numbers else paths))
        parent, key = _get(data, path[:-1]), path[-1]
        where = render_path(path)
        if op == "delete":
            del parent[key]
            labels.append(f"delete {where}")
        elif op == "rename" and isinstance(parent, dict):
            new = _typo(str(key), draw(st.integers(0, 20)))
            parent[new] = parent.pop(key)
            labels.append(f"rename {where} -> {new}")
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key])))
            labels.append(f"duplicate {where}")
        elif op == "number" and _is_number(parent[key]):
            value = draw(_bad_number(parent[key]))
            parent[key] = value
            labels.append(f"set {where} = {value!r}")
        else:
            value = draw(_bad_value(parent[key], data))
            parent[key] = value
            labels.append(f"set {where} = {value!r}")
    return data, "; ".join(labels)


FILE_NAMES = [*["mutant.yaml"] * 6, "m [red]x.yaml", ":smile:.yaml"]


@st.composite
def field_mutants(draw: st.DrawFn) -> Mutant:
    """A preset with broken fields: written out whole, or as its own file over its parents."""
    preset = draw(st.sampled_from(PRESETS))
    name = draw(st.sampled_from(FILE_NAMES))
    if draw(st.booleans()):
        data = json.loads(json.dumps(_resolved(preset)))
        data, label = draw(_mutate(data))
        return Mutant(f"{preset.name} (merged): {label}", ((name, _yaml_bytes(data)),), name)
    data = json.loads(json.dumps(_raw(preset)))
    data, label = draw(_mutate(data))
    files = (*_copies(preset), (name, _yaml_bytes(data)))
    return Mutant(f"{preset.name}: {label}", files, name)


@st.composite
def extends_mutants(draw: st.DrawFn) -> Mutant:
    """``extends:`` to itself, in a cycle, to nothing, to the wrong kind of thing."""
    preset = draw(st.sampled_from(PRESETS))
    data = json.loads(json.dumps(_raw(preset)))
    kind = draw(
        st.sampled_from(["self", "pair", "triangle", "missing", "odd", "garbage", "nested"])
    )
    name = "mutant.yaml"
    if kind == "self":
        data["extends"] = name
        return Mutant(f"{preset.name}: extends itself", ((name, _yaml_bytes(data)),), name)
    if kind in ("pair", "triangle"):
        other = {**json.loads(json.dumps(_resolved(preset))), "extends": name}
        data["extends"] = "b.yaml"
        files = [(name, _yaml_bytes(data)), ("b.yaml", _yaml_bytes(other))]
        if kind == "triangle":
            other["extends"] = "c.yaml"
            third = {"extends": "b.yaml", "name": "c"}
            files = [(name, _yaml_bytes(data)), ("b.yaml", _yaml_bytes(other))]
            files.append(("c.yaml", _yaml_bytes(third)))
        label = "A -> B -> A" if kind == "pair" else "A -> B -> C -> B"
        return Mutant(f"{preset.name}: extends {label}", tuple(files), name)
    if kind in ("missing", "odd"):
        targets: list[Any] = (
            ["nothere.yaml", "../nothere.yaml", "sub/nothere.yaml", "nothere [red].yaml"]
            if kind == "missing"
            else ["", ".", "..", "/", "/dev/null", 5, 1.5, True, None, [], ["a.yaml"], {"a": 1}]
        )
        data["extends"] = draw(st.sampled_from(targets))
        label = f"{preset.name}: extends {data['extends']!r}"
        return Mutant(label, (*_copies(preset), (name, _yaml_bytes(data))), name)
    if kind == "garbage":
        data["extends"] = "parent.yaml"
        parent = draw(garbage_bytes(preset))
        files = ((name, _yaml_bytes(data)), ("parent.yaml", parent))
        return Mutant(f"{preset.name}: extends a garbage file {parent[:40]!r}", files, name)
    # nested: the parent itself is broken, the child is fine
    parent_data = json.loads(json.dumps(_resolved(preset)))
    parent_data, label = draw(_mutate(parent_data))
    child = {"extends": "parent.yaml", "name": "child"}
    files = ((name, _yaml_bytes(child)), ("parent.yaml", _yaml_bytes(parent_data)))
    return Mutant(f"{preset.name}: extends a parent with {label}", files, name)


_BILLION_LAUGHS = b"a: &a ['lol', 'lol']\n" + b"".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 8)}]\n".encode()
    for p, c in zip("abcdefghi", "bcdefghij", strict=True)
)  # nine levels of eight aliases each: 8**9 strings once expanded

WHOLE_FILES = [
    b"",
    b"\n\n",
    b"# only a comment\n",
    b"42\n",
    b"hello\n",
    b"- a\n- b\n",
    b"null\n",
    b"~\n",
    b"[]\n",
    b"{}\n",
    b"name: a\n---\nname: b\n",
    b"\x00" * 16,
    b"\xff\xfe\xfd",
    b"name: caf\xe9\n",  # latin-1, not UTF-8
    b"a: &a [*a]\n",  # a list that holds itself
    _BILLION_LAUGHS,
    b"[" * 3000,
    b"- " * 3000 + b"x\n",
    b"? [a, b]\n: 1\n",
    b"? {a: 1}\n: 1\n",
    b"1: x\n2.5: y\nnull: z\n",
    b"name: !!python/object/apply:os.system ['true']\n",
    b"duration_s: !!binary AAAA\n",
    b"duration_s: 2024-01-01\n",
    b"<<: {name: x}\n",
]


@st.composite
def garbage_bytes(draw: st.DrawFn, preset: Path) -> bytes:
    """The bytes of a file that is not a scenario, or a damaged copy of ``preset``."""
    text = preset.read_bytes()
    kind = draw(st.sampled_from(["whole", "truncate", "insert", "tab", "binary", "encoding"]))
    if kind == "whole":
        return draw(st.sampled_from(WHOLE_FILES))
    at = draw(st.integers(0, len(text)))
    if kind == "truncate":
        return text[:at]
    if kind == "insert":
        junk = draw(
            st.sampled_from([b"[", b"{", b"]", b"}", b": :", b"- ", b"&", b"*x", b"'", b'"'])
        )
        return text[:at] + junk + text[at:]
    if kind == "tab":
        lines = text.split(b"\n")
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = b"\t" + lines[i]
        return b"\n".join(lines)
    if kind == "binary":
        return text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    return draw(
        st.sampled_from(
            [b"\xef\xbb\xbf" + text, text.decode().encode("utf-16"), text.replace(b"a", b"\xe4")]
        )
    )


@st.composite
def yaml_mutants(draw: st.DrawFn) -> Mutant:
    """A file that is not a scenario: broken YAML, a scalar, a list, binary bytes."""
    preset = draw(st.sampled_from(PRESETS))
    content = draw(garbage_bytes(preset))
    files = (*_copies(preset), ("mutant.yaml", content))
    return Mutant(f"{preset.name}: garbage {content[:60]!r}", files, "mutant.yaml")


SET_EXAMPLES = [
    "nonexistent.path=1",
    "cache.levels[9].ttl_s=3",
    "duration_s=abc",
    "=5",
    "scale=1/0",
    "name=[unclosed",
    "scale=0/0",
    "scale=-1/200",
    "scale=1/-0",
    "scale=1e308",
    "scale=1/1e-308",
    "duration_s=1e308",
    "duration_s=.nan",
    "noequals",
    "x=y=z",
    " = ",
    "a..b=1",
    "a[=1",
    "a[-1]=1",
    "a[x]=1",
    "[0]=1",
    "cache.levels[0]]=1",
    "cache.levels[0][0]=1",
    "cache.levels.ttl_s=1",
    "name.x=1",
    "segments[0].share.x=1",
    "traffic.spike.start_s=5",
    "faults[0].at_s=5",
    "description=[/]",
    "description=:smile:",
    "name=[/]",
    "duration_s=[/]",
    "duration_s=:smile:",
    "cache=[1, 2]",
    "cache={levels: 5}",
    "segments={}",
    "traffic=null",
]
SET_VALUES = [
    "abc",
    "",
    ".nan",
    ".inf",
    "-.inf",
    "1e308",
    "1e309",
    str(10**30),
    "-1",
    "0",
    "[unclosed",
    "{unclosed",
    "{a: 1}",
    "[1, 2]",
    "null",
    "1/0",
    "'quoted",
    "[/]",
    ":smile:",
    "0x10",
    "1e-400",
    "true",
]


@st.composite
def set_mutants(draw: st.DrawFn) -> Mutant:
    """An unchanged preset with a bad ``--set`` override or two."""
    preset = draw(st.sampled_from(PRESETS))
    resolved = _resolved(preset)
    sets = []
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            sets.append(draw(st.sampled_from(SET_EXAMPLES)))
        else:
            path = render_path(draw(st.sampled_from(list(_paths(resolved)))))
            sets.append(f"{path}={draw(st.sampled_from(SET_VALUES))}")
    files = (*_copies(preset), (preset.name, preset.read_bytes()))
    return Mutant(f"{preset.name} with --set {sets}", files, preset.name, tuple(sets))


def mutants() -> st.SearchStrategy[Mutant]:
    """Every kind of mutant, fields (the largest space) most often."""
    return st.one_of(
        field_mutants(), field_mutants(), extends_mutants(), yaml_mutants(), set_mutants()
    )


SWEEP_VALUES: list[Any] = [0, -1, math.nan, math.inf, 1e308, 10**30, 2**63, 2**31, 1e-9]


def field_sweep() -> list[Mutant]:
    """Every numeric field set to every extreme value, one change per mutant.

    Each field is taken from the first preset that writes it; list items count once.
    """
    out = []
    seen = set()
    for preset in PRESETS:
        data = _resolved(preset)
        for path in _paths(data):
            old = _get(data, path)
            shape = tuple("[]" if isinstance(p, int) else p for p in path)
            if not _is_number(old) or shape in seen:
                continue
            seen.add(shape)
            for value in [*SWEEP_VALUES, -old, old * 1e6]:
                copy = json.loads(json.dumps(data))
                _get(copy, path[:-1])[path[-1]] = value
                label = f"{preset.name} (merged): set {render_path(path)} = {value!r}"
                out.append(Mutant(label, (("mutant.yaml", _yaml_bytes(copy)),), "mutant.yaml"))
    return out


# ------------------------------------------------------------------------------ checks


@dataclass
class Verdict:
    """A mutant's commands and every way they broke the rule (empty: all well)."""

    mutant: Mutant
    outcomes: list[Outcome] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    skipped: str = ""
    """Why a valid mutant was not run (too big for a brief run), if it was not."""

    @property
    def accepted(self) -> bool:
        """``validate`` accepted the mutant."""
        return bool(self.outcomes) and self.outcomes[0].exit == 0

    def __str__(self) -> str:
        lines = [self.mutant.label, *self.violations]
        for outcome in self.outcomes:
            lines.append(f"$ campaign-sim {' '.join(outcome.args)} -> exit {outcome.exit}")
            lines.append((outcome.stdout + outcome.stderr)[-3000:])
        return "\n".join(lines)


POSITION = re.compile(r"^:\d+:\d+: ")
ROW = re.compile(r"^:\d+: [\w-]+: ")  # a replayed curve's CSV: FILE:LINE: column: problem
FIELD = re.compile(r"^: [A-Za-z_][\w-]*(\[\d+\]|\.[\w-]+)*: ")
WHOLE_FILE = ("cannot read file", "not a text file")


def _problem_violations(outcome: Outcome, main: Path, folder: Path) -> list[str]:
    """What is wrong with the error report of a command that exited 2."""
    found = []
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if not lines or not lines[-1].endswith(f" in {main}"):
        found.append(f"the report does not end naming the file literally ({main})")
    for line in lines[:-1]:
        if line.startswith("--set "):
            continue
        if not line.startswith(str(folder)):
            found.append(f"a problem that names no file or --set: {line!r}")
            continue
        # the source is the longest file name of the folder the line starts with
        rest = line[len(str(folder)) :].partition(".yaml")[2]
        matched = POSITION.match(rest) or ROW.match(rest) or FIELD.match(rest)
        if not (matched or rest[2:].startswith(WHOLE_FILE)):
            found.append(f"a problem with neither a field path nor a position: {line!r}")
    return found


def _out_of_memory(outcome: Outcome) -> bool:
    """``run`` documents exit 2 for a valid run that ran out of memory, with this message."""
    return outcome.exit == 2 and outcome.args[0] == "run" and OUT_OF_MEMORY in outcome.stderr


def _command_violations(outcome: Outcome, what: str) -> list[str]:
    found = []
    if outcome.hung:
        found.append(f"{what}: hang (no answer within {outcome.seconds:.0f} s)")
    elif outcome.exit not in (0, 2):
        found.append(f"{what}: exit status {outcome.exit}")
    if outcome.traceback:
        found.append(f"{what}: traceback")
    return found


def _expected_sessions(main: Path, sets: list[str]) -> float:
    """Sessions a run of ``main`` with ``sets`` expects (0 when it does not load)."""
    try:
        scenario = load_scenario(main, sets)
    except ScenarioError:
        return 0.0
    pieces = scenario.arrival_traffic().pieces(scenario.duration_s)
    return scenario.scale * sum((ra + rb) / 2 * (b - a) for a, b, ra, rb in pieces)


def check(cli: Cli, mutant: Mutant, folder: Path) -> Verdict:
    """Validate ``mutant`` and, when valid, run it briefly; collect every rule broken."""
    main = mutant.write(folder)
    sets = [arg for text in mutant.sets for arg in ("--set", text)]
    verdict = Verdict(mutant)
    validate = cli(["validate", str(main), *sets], VALIDATE_TIMEOUT_S)
    verdict.outcomes.append(validate)
    verdict.violations += _command_violations(validate, "validate")
    if validate.exit == 2:
        verdict.violations += _problem_violations(validate, main, folder)
    if validate.exit != 0 or verdict.violations:
        return verdict
    small = ["--set", f"duration_s={RUN_DURATION_S}", "--set", f"scale={RUN_SCALE}"]
    sessions = _expected_sessions(main, [*mutant.sets, *small[1::2]])
    if sessions > RUN_MAX_SESSIONS:
        # Valid, and the schema let it through as simulable: just not in a second or two.
        verdict.skipped = f"about {sessions:.3g} sessions even at scale {RUN_SCALE}"
        return verdict
    out = folder / "out"
    run = cli(["run", str(main), *sets, *small, "--no-progress", "--out", str(out)], RUN_TIMEOUT_S)
    verdict.outcomes.append(run)
    verdict.violations += _command_violations(run, "run")
    if run.exit == 2 and not _out_of_memory(run):
        verdict.violations += _problem_violations(run, main, folder)
    elif run.exit == 0 and not (out / "summary.json").is_file():
        verdict.violations.append("run: exit 0 without summary.json")
    return verdict


# ------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """The fork server, started once for the file."""
    if not hasattr(os, "fork"):
        pytest.skip("the fork server needs os.fork (POSIX)")
    server = Cli(tmp_path_factory.mktemp("cli"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each mutant gets its own folder."""
    return tmp_path_factory.mktemp("mutants")


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutant=mutants())
def test_no_mutant_crashes_hangs_or_shows_a_traceback(cli: Cli, workdir: Path, mutant: Mutant):
    """A broken scenario exits 2 naming file and field; one that validates runs."""
    folder = Path(tempfile.mkdtemp(dir=workdir))
    try:
        verdict = check(cli, mutant, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert not verdict.violations, str(verdict)


def test_the_fork_server_answers_like_the_console_script(cli: Cli, tmp_path: Path):
    """The harness gives the exit status and messages ``python -m simulator`` gives."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCENARIOS.joinpath("baseline.yaml").read_text() + "gateway: 5\n")
    for path in (SCENARIOS / "baseline.yaml", bad):
        args = ["validate", str(path)]
        real = subprocess.run(
            [sys.executable, "-m", "simulator", *args], capture_output=True, text=True
        )
        forked = cli(args, VALIDATE_TIMEOUT_S)
        assert (forked.exit, forked.stdout, forked.stderr) == (
            real.returncode,
            real.stdout,
            real.stderr,
        )


# ----------------------------------------------------- regressions: what the fuzzer found


def _validate(cli: Cli, path: Path, *sets: str) -> Outcome:
    args = ["validate", str(path), *(arg for text in sets for arg in ("--set", text))]
    outcome = cli(args, VALIDATE_TIMEOUT_S)
    assert not outcome.hung, f"validate hung on {path}"
    assert not outcome.traceback, outcome.stderr
    return outcome


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name: x\n\xff\xfe junk\n", ":2:1: not UTF-8 text (byte 0xff)"),
        (b"name: caf\xe9\n", ":1:10: not UTF-8 text (byte 0xe9)"),
        ("name: x\n".encode("utf-16"), ":1:1: not UTF-8 text (byte 0xff)"),
        (b"[" * 3000, ":1:1: YAML error: brackets or lists nested too deeply"),
        (b"- " * 3000 + b"x\n", ":1:1: YAML error: brackets or lists nested too deeply"),
        (_BILLION_LAUGHS, "more than 100,000 values: aliases (*name) repeat each other"),
        (b"name: a\x18b\n", ":1:8: YAML error: character '\\x18' is not allowed in YAML"),
        (b"<<: {name: x}\n", ":1:1: description: required field is missing"),
        (b"name: !!python/object/apply:os.system [x]\n", ":1:1: name: Input should be a valid"),
    ],
    ids=[
        "binary",
        "latin-1",
        "utf-16",
        "brackets",
        "dashes",
        "aliases",
        "control",
        "merge",
        "python-tag",
    ],
)
def test_a_file_that_is_not_yaml_text_is_a_problem_at_its_place(
    cli: Cli, tmp_path: Path, content: bytes, expected: str
):
    """A file that is not YAML text exits 2 with FILE:LINE:COL and what is wrong.

    Binary bytes, another encoding, deep nesting, an alias bomb, a control character or
    a merge key each showed a traceback, hung or printed a line naming no place before.
    """
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    outcome = _validate(cli, path)
    assert outcome.exit == 2
    assert f"{path}{expected}" in outcome.stderr or expected in outcome.stderr, outcome.stderr
    assert all(line.startswith(str(path)) for line in outcome.stderr.splitlines()[:-1])


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"s.yaml": "extends: s.yaml\n"}, "s.yaml:1:1: extends: cycle: s.yaml -> s.yaml"),
        (
            {"s.yaml": "extends: b.yaml\n", "b.yaml": "name: b\nextends: s.yaml\n"},
            "b.yaml:2:1: extends: cycle: s.yaml -> b.yaml -> s.yaml",
        ),
        ({"s.yaml": "extends: nothere.yaml\n"}, "s.yaml:1:1: extends: no file "),
        ({"s.yaml": f"extends: {'x' * 300}.yaml\n"}, "s.yaml:1:1: extends: cannot read "),
        (
            {"s.yaml": "extends: [a.yaml]\n"},
            "s.yaml:1:1: extends: must be a file name or a preset's name (got",
        ),
        ({"s.yaml": "extends: |\n  two\n  lines\n"}, "s.yaml:1:1: extends: no file "),
    ],
    ids=["itself", "a-b-a", "missing", "name-too-long", "a-list", "two-lines"],
)
def test_extends_problems_point_at_the_extends_line(
    cli: Cli, tmp_path: Path, files: dict[str, str], expected: str
):
    """A bad ``extends:`` is reported at the line that says it, exit 2.

    It loops, names no file or a name the system refuses (too long: a traceback before;
    a loop was reported with no line).
    """
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    outcome = _validate(cli, tmp_path / "s.yaml")
    assert outcome.exit == 2
    assert f"{tmp_path}/{expected}" in outcome.stderr, outcome.stderr
    assert len(outcome.stderr.splitlines()) == 2, "one line per problem, then the count"


@pytest.mark.parametrize("name", ["m [red]x.yaml", "[/]x.yaml", ":smile:.yaml", "[bold]:100:.yaml"])
def test_file_names_are_printed_as_written(cli: Cli, tmp_path: Path, name: str):
    """A file name is printed as written, valid or not.

    Rich markup in it was eaten or raised a markup error; emoji codes became emoji.
    """
    path = tmp_path / name  # "[/]x.yaml" is the file "]x.yaml" in the folder "["
    path.parent.mkdir(exist_ok=True)
    shutil.copy(SCENARIOS / "baseline.yaml", path)
    valid = _validate(cli, path)
    assert valid.exit == 0 and valid.stdout.startswith(f"{path}: valid scenario"), valid.stdout
    invalid = _validate(cli, path, "duration_s=-1")
    assert invalid.exit == 2
    assert invalid.stderr.splitlines()[-1] == f"1 problem in {path}", invalid.stderr


def test_positions_and_values_are_not_turned_into_emoji(cli: Cli, tmp_path: Path):
    """Positions and values are printed as written, emoji codes and all.

    A problem at line 100 read FILE💯COL (':100:' is rich's hundred-points emoji).
    """
    path = tmp_path / "s.yaml"
    lines = [f"{key}: {json.dumps(value)}" for key, value in small().items()]  # YAML reads JSON
    lines += ["#"] * (99 - len(lines)) + ["unknown_key: 1"]
    path.write_text("\n".join(lines) + "\n")
    outcome = _validate(cli, path, "description=:smile:", "duration_s=:thumbs_up:x")
    assert f"{path}:100:1: unknown_key: unknown field" in outcome.stderr, outcome.stderr
    assert "--set duration_s=:thumbs_up:x: duration_s:" in outcome.stderr


@pytest.mark.parametrize(
    ("preset", "overrides", "message"),
    [
        (
            "baseline",
            ["segments[0].think_time_s={dist: exponential, mean: .inf}"],
            "segments[0].think_time_s.mean: Input should be a finite number",
        ),
        (
            "baseline",
            ["cache.levels[0].latency_ms={dist: deterministic, value: 1e30}"],
            "cache.levels[0].latency_ms: value 1e+30 ms is longer than a week",
        ),
        (
            "baseline",
            ["gateway.service_time_ms={dist: exponential, mean: 2147483648}"],
            "gateway.service_time_ms: mean 2.14748e+09 ms is longer than a week",
        ),
        (
            "baseline",
            ["fulfilment.transit_time_h={dist: deterministic, value: 2147483648}"],
            "fulfilment.transit_time_h: value 2.14748e+09 h is longer than a year",
        ),
        (
            "baseline",
            ["database.read_time_ms={dist: lognormal, mean: 8, cv: 1e308}"],
            "database.read_time_ms.cv: Input should be less than or equal to 100",
        ),
        ("baseline", ["catalogue.items=2147483648"], "catalogue.items: Input should be less"),
        ("baseline", ["cache.levels[0].nodes=2147483648"], "cache.levels[0].nodes: Input"),
        (
            "baseline",
            [f"fulfilment.warehouses[0].pickers={10**30}"],
            "fulfilment: warehouses[0].pickers: 1,000,000,000,000,000,000,000,000,000,000 at "
            "scale 1 is 1e+30 people on duty, more than 1,000,000 can be simulated",
        ),
        (
            "baseline",
            ["customer_service={agents: 3000000, handle_time_s: {dist: exponential, mean: 60}}"],
            "customer_service: agents: 3,000,000 at scale 1 is 3e+06 people on duty",
        ),
        ("baseline", ["database.read_replicas=2147483648"], "database.read_replicas: Input"),
        ("baseline", ["database.shards=2147483648"], "database.shards: Input should be"),
        (
            "baseline",
            ["cache.levels[0].ttl_s=1e308", "scale=1/200"],  # validated, then failed at scale
            "cache: levels[0].ttl_s: 1e+308 divided by scale (0.005), as the run does, is inf",
        ),
        (
            "late-peak-shaving",
            ["gateway.rate_limit.rate_per_s=1e308", "scale=2"],
            "gateway: rate_limit.rate_per_s: 1e+308 multiplied by scale (2), as the run does, "
            "is inf: out of range",
        ),
        (
            "baseline",
            ["timeseries_interval_s=1e-9"],
            "timeseries_interval_s: 1800 s in rows of timeseries_interval_s (1e-09 s) makes",
        ),
        (
            "validation/mm1",  # timeseries_interval_s not written: the default's rows
            ["duration_s=1e7", "scale=1e-6"],
            "duration_s: 1e+07 s in rows of timeseries_interval_s (1 s) makes 1e+07 rows",
        ),
        (
            "baseline",
            ["traffic.baseline_per_s=1e308"],
            "traffic: countless sessions would arrive in duration_s (1800 s) at scale 1",
        ),
        (
            "baseline",
            ["traffic.baseline_per_s=1e7"],
            "traffic: about 1.8e+10 sessions would arrive in duration_s (1800 s) at scale 1; "
            "at most 1e+08 can be simulated",
        ),
        (
            "hot-key-cache-breakdown",
            [f"database.contention_slope={10**30}"],
            "database: contention_slope: 1e+30 makes a query at a full pool 1.2e+31 times "
            "slower (pool_size 20, knee 8 at scale 1)",
        ),
        (
            "baseline",
            ["segments[0].pages_mean=9223372036854775808"],
            "segments[0].pages_mean: Input should be less than or equal to 1000",
        ),
        (
            "late-peak-shaving-dynamic",
            ["gateway.rate_limit.dynamic.evaluate_every_s=1e-9"],
            "gateway.rate_limit.dynamic.evaluate_every_s: Input should be greater than or equal",
        ),
    ],
)
def test_values_a_run_cannot_survive_are_rejected_by_validate(
    cli: Cli, preset: str, overrides: list[str], message: str
):
    """A value no run survives is a problem naming the field, exit 2.

    Each validated and then crashed the run (OverflowError, MemoryError), or hung the
    run or ``validate`` itself.
    """
    outcome = _validate(cli, SCENARIOS / f"{preset}.yaml", *overrides)
    assert outcome.exit == 2
    assert f": {message}" in outcome.stderr, outcome.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        ["traffic.baseline_per_s=100000", "scale=1/1000"],
        ["database.shards=1024", "database.read_replicas=64", "cache.levels[0].nodes=10000"],
        ["segments[0].patience_s={dist: deterministic, value: 1e9}"],
        ["catalogue.items=10000000", "fulfilment.warehouses[0].pickers=1000000"],
        ["fulfilment.warehouses[0].pickers=10000000", "scale=1/10"],  # a million at scale
        ["cache.levels[0].ttl_s=6e7", "scale=1/200"],  # passed validate, failed the run
        ["database.contention_knee=8", "database.contention_slope=0.5", "scale=1e-4"],
    ],
)
def test_the_limits_leave_room_for_big_sales(overrides: list[str]):
    """A big sale simulated at scale, a big estate and users who never give up stay valid."""
    load_scenario(SCENARIOS / "baseline.yaml", overrides)


def test_a_run_out_of_memory_says_so_and_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A valid run that exhausts memory prints what to change and exits 2, as documented.

    (md1 with a payment latency of 1e8 ms queues its payments for simulated weeks and
    needed more than 3 GB; the MemoryError came out as a traceback.)
    """
    from typer.testing import CliRunner

    from simulator.interface import cli as cli_module

    def exhausted(*args: Any, **kwargs: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(cli_module, "simulate", exhausted)
    args = ["run", str(SCENARIOS / "baseline.yaml"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli_module.app, args)
    assert result.exit_code == 2
    assert OUT_OF_MEMORY in result.output and TRACEBACK not in result.output
