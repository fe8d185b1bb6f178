"""Reading scenario files: YAML with positions, ``extends:``, ``--set`` overrides, clear errors.

A scenario is read the way a compiler reads source: every problem is reported at once,
each as ``FILE:LINE:COL: dotted.path[i].field: message``, and nothing is run until the
file is right. To make that possible the loader remembers where every key and list
item was written (which file, which line), through inheritance and overrides, and maps
each schema error back to that place.
"""

from __future__ import annotations

import difflib
import io
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from simulator.scenario.distributions import Distribution
from simulator.scenario.schema import Scenario

__all__ = ["Problem", "ScenarioError", "apply_override", "load_scenario", "parse_path"]

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
        where = f"{self.source}:{self.line}:{self.column}" if self.line else self.source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


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


def _plain(node: Any, path: PathKey, source: str, positions: dict[PathKey, _Where]) -> Any:
    """Copy a ruamel node into plain Python data, recording positions on the way."""
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            line, col = node.lc.key(key)
            positions[path + (str(key),)] = _Where(source, line + 1, col + 1)
            out[str(key)] = _plain(value, path + (str(key),), source, positions)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, value in enumerate(node):
            line, col = node.lc.item(i)
            positions[path + (i,)] = _Where(source, line + 1, col + 1)
            out_list.append(_plain(value, path + (i,), source, positions))
        return out_list
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _read_file(path: Path) -> _Document:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = Problem(source, 0, 0, "", f"cannot read file: {exc.strerror}")
        raise ScenarioError([problem]) from None
    try:
        root = _yaml().load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        raise ScenarioError([Problem(source, line, col, "", f"YAML error: {what}")]) from None
    except YAMLError as exc:
        raise ScenarioError([Problem(source, 0, 0, "", f"YAML error: {exc}")]) from None
    if not isinstance(root, CommentedMap):
        raise ScenarioError(
            [Problem(source, 1, 1, "", "a scenario must be a mapping of fields (key: value)")]
        )
    positions: dict[PathKey, _Where] = {(): _Where(source, 1, 1)}
    return _Document(_plain(root, (), source, positions), positions)


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
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p.name) for p in (*chain, resolved))
        raise ScenarioError([Problem(str(path), 0, 0, "extends", f"cycle: {cycle}")])
    document = _read_file(path)
    parent = document.data.pop("extends", None)
    if parent is None:
        return document
    where = document.positions.pop(("extends",))
    if not isinstance(parent, str):
        raise ScenarioError(
            [Problem(where.source, where.line, where.column, "extends", "must be a file name")]
        )
    parent_path = path.parent / parent
    if not parent_path.is_file():
        raise ScenarioError(
            [Problem(where.source, where.line, where.column, "extends", f"no file {parent_path}")]
        )
    base = _load_with_extends(parent_path, (*chain, resolved))
    return _merge(base, document)


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
    except YAMLError:
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
    try:
        scenario = Scenario.model_validate(document.data)
    except ValidationError as exc:
        problems += _problems(exc, document, name)
    if problems:
        raise ScenarioError(problems)
    return scenario


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value
