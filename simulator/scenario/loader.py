"""Reading scenario files: YAML with positions, ``extends:``, ``--set`` overrides, clear errors.

A scenario is read the way a compiler reads source: every problem is reported at once,
each as ``FILE:LINE:COL: dotted.path[i].field: message``, and nothing is run until the
file is right. To make that possible the loader remembers where every key and list
item was written (which file, which line), through inheritance and overrides, and maps
each schema error back to that place.

A file may ``extends:`` another, named by its path relative to the file
(``baseline.yaml``) or, for a shipped preset, by its name (``baseline``): the child is
merged over its parent.
"""

from __future__ import annotations

import copy
import difflib
import io
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from simulator.scenario.curves import VALUE_COLUMNS, CurveError, read_curve_file
from simulator.scenario.distributions import Distribution
from simulator.scenario.presets import find as find_preset
from simulator.scenario.presets import is_name
from simulator.scenario.schema import Scenario

__all__ = [
    "Problem",
    "ScenarioError",
    "apply_override",
    "extension",
    "field_type",
    "load_scenario",
    "parse_path",
    "reading_each_file_once",
]

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario, and where it was written."""

    source: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = self.source
        if self.line:  # a CSV problem has a line and a column name, not a column number
            where += f":{self.line}:{self.column}" if self.column else f":{self.line}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return text.translate(_ONE_LINE)  # a name written over lines stays one problem a line


_ONE_LINE = str.maketrans({"\n": "\\n", "\r": "\\r"})


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.source, p.line, p.column, p.path))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class _Where:
    source: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based


class _Document:
    """Plain data (dicts, lists, scalars) plus where each path was written."""

    def __init__(self, data: dict, positions: dict[PathKey, _Where]) -> None:
        self.data = data
        self.positions = positions

    def where(self, path: PathKey, fallback: str) -> _Where:
        """The place of ``path``, or of its nearest written parent."""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.positions:
                return self.positions[path[:cut]]
        return _Where(fallback, 0, 0)


def render_path(path: PathKey) -> str:
    """``("cache", "levels", 0, "ttl_s")`` -> ``cache.levels[0].ttl_s``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_path(text: str) -> PathKey:
    """``cache.levels[0].ttl_s`` -> ``("cache", "levels", 0, "ttl_s")``."""
    parts: list[str | int] = []
    for piece in text.split("."):
        name, *indices = piece.split("[")
        if name:
            parts.append(name)
        elif not indices or not parts:
            raise ValueError(f"empty name in path {text!r}")
        for index in indices:
            if not index.endswith("]") or not index[:-1].isdigit():
                raise ValueError(f"bad index [{index} in path {text!r}")
            parts.append(int(index[:-1]))
    return tuple(parts)


# --------------------------------------------------------------------------- YAML


def _yaml() -> YAML:
    yaml = YAML(typ="rt")  # round-trip mode keeps line and column of every node
    yaml.allow_duplicate_keys = False
    return yaml


# A scenario has a few hundred values; aliases that repeat aliases (``*a`` eight times,
# each an ``*b`` eight times, ...) can spell billions in a few lines.
_MAX_VALUES = 100_000


class _BadData(ValueError):
    """YAML that reads but cannot become plain data: where (a path) and why."""

    def __init__(self, path: PathKey, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{render_path(path)}: {message}" if path else message)


def _plain(node: Any, path: PathKey, source: str, positions: dict[PathKey, _Where]) -> Any:
    """Copy a ruamel node into plain Python data, recording positions on the way.

    Raises:
        _BadData: when an alias refers to a value that contains it, or aliases expand
            the data beyond ``_MAX_VALUES`` values.
    """
    copied = 0
    inside: set[int] = set()  # the containers being copied: meeting one again is a loop

    def copy(node: Any, path: PathKey) -> Any:
        nonlocal copied
        copied += 1
        if copied > _MAX_VALUES:
            raise _BadData(
                path, f"more than {_MAX_VALUES:,} values: aliases (*name) repeat each other"
            )
        if not isinstance(node, CommentedMap | CommentedSeq):
            return _scalar(node)
        if id(node) in inside:
            raise _BadData(path, "an alias (*name) refers to a value that contains it")
        inside.add(id(node))
        try:
            if isinstance(node, CommentedMap):
                out = {}
                for key, value in node.items():
                    line, col = _place(node, node.lc.key(key))
                    positions[path + (str(key),)] = _Where(source, line + 1, col + 1)
                    out[str(key)] = copy(value, path + (str(key),))
                return out
            out_list = []
            for i, value in enumerate(node):
                line, col = _place(node, node.lc.item(i))
                positions[path + (i,)] = _Where(source, line + 1, col + 1)
                out_list.append(copy(value, path + (i,)))
            return out_list
        finally:
            inside.discard(id(node))

    return copy(node, path)


def _place(node: CommentedMap | CommentedSeq, found: Any) -> tuple[int, int]:
    """0-based line and column of an item, or of its container when ruamel has none.

    A key merged in from another mapping (``<<: *base``) and the items of a value with
    an unknown tag (``!!python/object``) have no place of their own.
    """
    if found:
        return found
    return node.lc.line or 0, node.lc.col or 0


def _scalar(node: Any) -> Any:
    """A ruamel scalar as the plain Python value it stands for."""
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


_PARSED: ContextVar[dict[Path, _Document] | None] = ContextVar("parsed_files", default=None)
"""The files parsed so far, while :func:`reading_each_file_once` is in force."""


@contextmanager
def reading_each_file_once() -> Iterator[None]:
    """Within the block, a scenario file is parsed once however many files extend it.

    Reading YAML with the place of every key is most of the time a load takes (about
    10 ms a file), and loading many scenarios reads their parents over and over:
    ``campaign-sim list`` loads every preset, and most extend ``baseline.yaml``. Each
    load gets its own copy of a file's data; the files must not change inside the block.
    """
    token = _PARSED.set({})
    try:
        yield
    finally:
        _PARSED.reset(token)


def _read_file(path: Path) -> _Document:
    parsed = _PARSED.get()
    if parsed is None:
        return _parse_file(path)
    if path not in parsed:
        parsed[path] = _parse_file(path)
    kept = parsed[path]  # the caller changes its document: it gets a copy
    return _Document(copy.deepcopy(kept.data), dict(kept.positions))


def _parse_file(path: Path) -> _Document:
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = Problem(source, 0, 0, "", f"cannot read file: {exc.strerror}")
        raise ScenarioError([problem]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([_not_utf8(source, raw, exc.start)]) from None
    try:
        root = _yaml().load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        raise ScenarioError([Problem(source, line, col, "", f"YAML error: {what}")]) from None
    except ReaderError as exc:  # a control character, say: point at it
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        character = text[exc.position] if exc.position < len(text) else exc.character
        what = f"character {character!r} is not allowed in YAML ({exc.reason})"
        raise ScenarioError([Problem(source, line, column, "", f"YAML error: {what}")]) from None
    except YAMLError as exc:
        what = " ".join(str(exc).split())  # one line, like every other problem
        raise ScenarioError([Problem(source, 0, 0, "", f"YAML error: {what}")]) from None
    except RecursionError:
        message = "YAML error: brackets or lists nested too deeply to read"
        raise ScenarioError([Problem(source, 1, 1, "", message)]) from None
    if not isinstance(root, CommentedMap):
        raise ScenarioError(
            [Problem(source, 1, 1, "", "a scenario must be a mapping of fields (key: value)")]
        )
    positions: dict[PathKey, _Where] = {(): _Where(source, 1, 1)}
    try:
        data = _plain(root, (), source, positions)
    except _BadData as exc:
        where = _Document({}, positions).where(exc.path, source)
        problem = Problem(source, where.line, where.column, render_path(exc.path), exc.message)
        raise ScenarioError([problem]) from None
    return _Document(data, positions)


def _not_utf8(source: str, raw: bytes, at: int) -> Problem:
    """The problem of a file that is not UTF-8 text, at the first byte that is not."""
    start = raw.rfind(b"\n", 0, at) + 1
    line = raw.count(b"\n", 0, at) + 1
    column = len(raw[start:at].decode("utf-8", errors="replace")) + 1
    message = f"not UTF-8 text (byte 0x{raw[at]:02x}); save the file as UTF-8"
    return Problem(source, line, column, "", message)


# --------------------------------------------------------------------------- extends


def _merge(base: _Document, child: _Document) -> _Document:
    """Deep-merge ``child`` over ``base``: mappings merge, anything else is replaced.

    A distribution (a mapping with a ``dist`` key) is one value, not a mapping of fields:
    a child that gives ``dist`` replaces the parent's whole distribution, so that
    ``{dist: exponential, mean: 5}`` over ``{dist: deterministic, value: 0}`` does not
    leave a stray ``value`` behind.
    """
    positions = dict(base.positions)

    def merge(a: Any, b: Any, path: PathKey) -> Any:
        if isinstance(a, dict) and isinstance(b, dict) and "dist" not in b:
            out = dict(a)
            for key, value in b.items():
                out[key] = merge(a[key], value, path + (key,)) if key in a else value
                if key not in a:
                    _drop_under(positions, path + (key,))
            return out
        _drop_under(positions, path)
        return b

    data = merge(base.data, child.data, ())
    positions.update(child.positions)
    return _Document(data, positions)


def _drop_under(positions: dict[PathKey, _Where], path: PathKey) -> None:
    for key in [k for k in positions if len(k) > len(path) and k[: len(path)] == path]:
        del positions[key]


def _load_with_extends(path: Path, chain: tuple[Path, ...] = ()) -> _Document:
    chain = (*chain, path.resolve())
    document = _read_file(path)
    parent = document.data.pop("extends", None)
    if parent is None:
        return document
    where = document.positions.pop(("extends",))

    def problem(message: str) -> ScenarioError:
        return ScenarioError([Problem(where.source, where.line, where.column, "extends", message)])

    if not isinstance(parent, str):
        raise problem(f"must be a file name or a preset's name (got {parent!r})")
    parent_path = path.parent / parent
    try:
        found = parent_path.is_file()
        if not found and (preset := find_preset(parent)) is not None:
            parent_path, found = preset, True  # a name, such as baseline: the shipped preset
        resolved = parent_path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a name too long, a symlink loop
        reason = getattr(exc, "strerror", None) or exc
        raise problem(f"cannot read {parent_path}: {reason}") from None
    if not found:
        named = f", and no preset named {parent!r} (campaign-sim list names them)"
        raise problem(f"no file {parent_path}{named if is_name(parent) else ''}")
    if resolved in chain:
        cycle = " -> ".join(p.name for p in (*chain, resolved))
        raise problem(f"cycle: {cycle}")
    return _merge(_load_with_extends(parent_path, chain), document)


# --------------------------------------------------------------------------- --set


def _field_type(path: PathKey) -> Any:
    """The annotation the schema expects at ``path``, or None when it cannot be told."""
    annotation: Any = Scenario
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            if typing.get_origin(annotation) is not list or not args:
                return None
            annotation = args[0]
        else:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return None
            field = annotation.model_fields.get(part)
            if field is None:
                return None
            annotation = field.annotation
    return _unwrap(annotation)


def field_type(path: str) -> Any:
    """The type the schema expects at a dotted path (``gateway.workers``: int), or None."""
    try:
        return _field_type(parse_path(path))
    except ValueError:
        return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _parse_value(path: PathKey, text: str) -> Any:
    """Type an override's value by the schema: strings stay strings, the rest is YAML."""
    if _field_type(path) is str:
        return text
    try:
        value = _yaml().load(io.StringIO(text))
    except (YAMLError, RecursionError):
        return text  # let the schema say what it expected
    return _plain(value, path, "", {})


def apply_override(document_data: dict, path: PathKey, value: Any) -> None:
    """Set ``value`` at ``path`` in nested plain data, creating mappings on the way.

    Raises:
        ValueError: when the path runs through a list index that does not exist, or
            through a value that is not a mapping or list.
    """
    node: Any = document_data
    for depth, part in enumerate(path[:-1]):
        following = path[depth + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise ValueError(f"{render_path(path[: depth + 1])}: no item {part} (has {size})")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ValueError(f"{render_path(path[:depth])} is not a mapping")
        if part not in node or node[part] is None:
            node[part] = [] if isinstance(following, int) else {}
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            size = len(node) if isinstance(node, list) else 0
            raise ValueError(f"{render_path(path)}: no item {last} (has {size})")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ValueError(f"{render_path(path[:-1])} is not a mapping")


def _apply_overrides(document: _Document, overrides: Iterable[str]) -> list[Problem]:
    """Apply ``PATH=VALUE`` overrides; return the ones that could not be applied."""
    problems = []
    for text in overrides:
        source = f"--set {text}"
        path_text, sep, value_text = text.partition("=")
        try:
            if not sep:
                raise ValueError("expected PATH=VALUE, e.g. cache.levels[0].ttl_s=30")
            path = parse_path(path_text.strip())
            apply_override(document.data, path, _parse_value(path, value_text.strip()))
        except ValueError as exc:
            problems.append(Problem(source, 0, 0, "", str(exc)))
            continue
        _drop_under(document.positions, path)
        document.positions[path] = _Where(source, 0, 0)
    return problems


# --------------------------------------------------------------------------- replayed curves

_REPLAY: PathKey = ("traffic", "replay")
_CURVE_COLUMNS = ("time_s", *VALUE_COLUMNS)


def _read_replay(document: _Document, fallback: str) -> list[Problem]:
    """Read ``traffic.replay.file`` into the replay's columns; return what went wrong.

    The file is relative to the scenario file that names it (to the working directory
    when a ``--set`` or a mapping names it). Columns written in the same place as the
    file (a resolved scenario, which carries the curve it was read from) are kept; any
    others (a parent's, or those of a scenario whose file a ``--set`` changes) are
    replaced by the file's.
    """
    traffic = document.data.get("traffic")
    replay = traffic.get("replay") if isinstance(traffic, dict) else None
    if (
        not isinstance(replay, dict)
        or not isinstance(replay.get("file"), str)
        or not replay["file"]
    ):
        return []  # the schema says what is wrong with it
    named = document.where((*_REPLAY, "file"), fallback)
    written = [document.where((*_REPLAY, c), fallback) for c in _CURVE_COLUMNS if c in replay]
    if any(where.source == named.source for where in written):
        return []
    base = Path(named.source).parent if named.line else Path()
    path = base / replay["file"]

    def problem(message: str) -> list[Problem]:
        field = render_path((*_REPLAY, "file"))
        return [Problem(named.source, named.line, named.column, field, message)]

    for column in _CURVE_COLUMNS:
        replay.pop(column, None)
        _drop_under(document.positions, (*_REPLAY, column))
        document.positions.pop((*_REPLAY, column), None)
    # Until the file is read, a flat stand-in lets the schema check the rest of the
    # scenario without a second problem for the curve; the problems stop the load anyway.
    replay.update({"time_s": [0.0, 1.0], "rate_per_s": [0.0, 0.0], "sessions": None})

    clock = document.data.get("clock_at_start_h", 0.0)
    if isinstance(clock, bool) or not isinstance(clock, int | float):
        clock = 0.0  # the schema reports it
    try:
        if not path.is_file():
            return problem(f"no file {path}")
        curve = read_curve_file(path, float(clock))
    except OSError as exc:
        return problem(f"cannot read {path}: {exc.strerror or exc}")
    except CurveError as exc:
        return [Problem(str(path), p.line, 0, p.column, p.message) for p in exc.problems]
    replay.update({"rate_per_s": None, "sessions": None, **curve})
    return []


# --------------------------------------------------------------------------- schema errors


def _locate(data: Any, loc: tuple) -> PathKey:
    """Map a pydantic error location onto the data, dropping the tags pydantic inserts."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif part in _TAGS or (isinstance(part, str) and "[" in part):
            continue  # a union member's tag such as 'exponential', not a field
        elif isinstance(node, dict) and isinstance(part, str):
            path.append(part)  # a missing field: its name ends the path
            break
    return tuple(path)


_TAGS = {
    typing.get_args(member.model_fields["dist"].annotation)[0]
    for member in typing.get_args(typing.get_args(Distribution)[0])
}


def _message(error: Mapping[str, Any], path: PathKey) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _field_type(path[:-1])
        is_model = isinstance(parent, type) and issubclass(parent, BaseModel)
        known = list(parent.model_fields) if is_model else []
        guess = difflib.get_close_matches(str(path[-1]), known, n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        return f"unknown field{hint}"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    if kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    elif "input" in error and not isinstance(error["input"], dict | list):
        message += f" (got {error['input']!r})"
    return message


def _problems(error: ValidationError, document: _Document, fallback: str) -> list[Problem]:
    problems = []
    for item in error.errors():
        path = _locate(document.data, item["loc"])
        where = document.where(path, fallback)
        problems.append(
            Problem(where.source, where.line, where.column, render_path(path), _message(item, path))
        )
    return problems


# --------------------------------------------------------------------------- entry point


def load_scenario(
    source: str | Path | Mapping[str, Any] | Scenario, overrides: Iterable[str] = ()
) -> Scenario:
    """Load, merge, override and validate a scenario.

    Args:
        source: a YAML file path, a mapping with the scenario's fields, or a Scenario.
        overrides: ``PATH=VALUE`` strings, e.g. ``cache.levels[0].ttl_s=30`` or
            ``payment.channels[0].timeout_ms=800``; values are typed by the schema.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: listing every problem with its file, line, column and field path.
    """
    overrides = list(overrides)
    if isinstance(source, Scenario):
        if not overrides:
            return source
        source = source.model_dump(mode="json", by_alias=True)
    if isinstance(source, Mapping):
        name = "<dict>"
        document = _Document(_deep_copy(source), {(): _Where(name, 0, 0)})
        if "extends" in document.data:
            raise ScenarioError([Problem(name, 0, 0, "extends", "only files can extend")])
    else:
        name = str(source)
        document = _load_with_extends(Path(source))
    problems = _apply_overrides(document, overrides)
    problems += _read_replay(document, name)
    try:
        scenario = Scenario.model_validate(document.data)
    except ValidationError as exc:
        problems += _problems(exc, document, name)
    if problems:
        raise ScenarioError(problems)
    return scenario


def extension(source: Path, overrides: Iterable[str]) -> dict[str, Any]:
    """What a file that ``extends:`` ``source`` must say to apply ``overrides``.

    ``extends`` merges mappings but replaces lists, so an override inside a list
    (``customer_service.shifts[0].staff=20``) is written as the whole list, overridden.

    Raises:
        ScenarioError: when an override cannot be applied.
    """
    overrides = list(overrides)
    document = _load_with_extends(source)
    problems = _apply_overrides(document, overrides)
    if problems:
        raise ScenarioError(problems)
    child: dict[str, Any] = {}
    for text in overrides:
        path = parse_path(text.partition("=")[0].strip())
        cut = next((i for i, part in enumerate(path) if isinstance(part, int)), len(path))
        node: Any = document.data
        for part in path[:cut]:
            node = node[part]
        target = child
        for part in path[: cut - 1]:  # names only: the first index is at cut
            target = target.setdefault(str(part), {})
        target[str(path[cut - 1])] = _deep_copy(node)
    return child


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value
