"""What an optimisation searches over and for: decision variables, objectives, constraints.

A plan is a set of ``--set`` overrides of the base scenario. The decision variables say
which overrides a plan may choose, and from where:

* ``PATH=LOW:HIGH`` an integer range when both ends are integers, else a float range;
  ``PATH=LOW:HIGH:log`` the same on a log scale, ``PATH=LOW:HIGH:STEP`` on a grid;
* ``PATH=A,B,C`` one of the choices (typed by the schema, as ``--set`` values are);
* ``PATH1+PATH2+...=TOTAL`` shares of a total (a budget split): the values are
  non-negative and sum to TOTAL. The optimiser sees k - 1 numbers in [0, 1], mapped
  onto the simplex by stick-breaking, so a uniform draw of them is a uniform split.

Objectives and constraints are expressions over a run's KPIs (the dotted paths of
``kpis.csv``, e.g. ``checkout_latency_ms.p99``): numbers, KPI paths, ``+ - * /`` and
brackets, e.g. ``lost_gmv_total <= 0.01 * gmv``. A path holding characters other than
letters, digits, ``_`` and ``.`` (a channel named ``taobao-ads``) is written between
backquotes. Each is evaluated on every replication, so a constraint's slack (how far
inside its limit a plan is) is a per-replication quantity with a confidence interval.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from simulator.scenario import expressions
from simulator.scenario.expressions import Constraint, Expression, ExpressionError

__all__ = [
    "Choice",
    "Constraint",
    "Expression",
    "Objective",
    "Range",
    "SearchError",
    "Split",
    "Variable",
    "check_kpis",
    "parse_constraint",
    "parse_objective",
    "parse_vary",
]


class SearchError(ValueError):
    """A search that cannot be run as asked (a bad --vary, objective or constraint)."""


class Suggests(Protocol):
    """What a variable needs from an optimiser's trial (Optuna's ``Trial`` has it)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False):
        """An integer in [low, high]."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ):
        """A float in [low, high]."""

    def suggest_categorical(self, name: str, choices: Any):
        """One of the choices."""


# --------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class Range:
    """A number in [low, high]: integer or float, optionally log-scaled or stepped."""

    path: str
    low: float
    high: float
    integer: bool
    log: bool = False
    step: float | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """The scenario fields this variable sets."""
        return (self.path,)

    def suggest(self, trial: Suggests) -> dict[str, Any]:
        """This variable's value(s) for a trial, by field path."""
        if self.integer:
            step = int(self.step or 1)
            value = trial.suggest_int(
                self.path, int(self.low), int(self.high), step=step, log=self.log
            )
        else:
            value = trial.suggest_float(
                self.path, self.low, self.high, step=self.step, log=self.log
            )
        return {self.path: value}

    def extremes(self) -> list[dict[str, Any]]:
        """Values to check against the schema before anything runs."""
        cast = int if self.integer else float
        return [{self.path: cast(self.low)}, {self.path: cast(self.high)}]

    def __str__(self) -> str:
        kind = "integer" if self.integer else "float"
        scale = ", log scale" if self.log else (f", step {self.step:g}" if self.step else "")
        return f"{self.path} in [{self.low:g}, {self.high:g}] ({kind}{scale})"


@dataclass(frozen=True)
class Choice:
    """One of a list of values (typed by the schema on load, as ``--set`` values)."""

    path: str
    options: tuple[str, ...]

    @property
    def paths(self) -> tuple[str, ...]:
        """The scenario fields this variable sets."""
        return (self.path,)

    def suggest(self, trial: Suggests) -> dict[str, Any]:
        """This variable's value for a trial."""
        return {self.path: trial.suggest_categorical(self.path, list(self.options))}

    def extremes(self) -> list[dict[str, Any]]:
        """Every option, checked against the schema before anything runs."""
        return [{self.path: option} for option in self.options]

    def __str__(self) -> str:
        return f"{self.path} one of {', '.join(self.options)}"


@dataclass(frozen=True)
class Split:
    """Non-negative shares of ``total`` over several fields (a budget split, a simplex)."""

    parts: tuple[str, ...]
    total: float

    @property
    def paths(self) -> tuple[str, ...]:
        """The scenario fields this variable sets."""
        return self.parts

    def suggest(self, trial: Suggests) -> dict[str, Any]:
        """Stick-breaking: k - 1 numbers in [0, 1] give a split, uniform when they are.

        Piece i takes ``1 - (1 - u) ** (1 / (k - 1 - i))`` of what is left, the inverse CDF of
        a Beta(1, k - 1 - i) variable, which makes uniform u's a uniform (Dirichlet(1))
        point of the simplex; with two parts it is simply ``u`` and ``1 - u``.
        """
        k = len(self.parts)
        shares, left = [], 1.0
        for i, part in enumerate(self.parts[:-1]):
            u = trial.suggest_float(f"{part} share", 0.0, 1.0)
            piece = left * (1 - (1 - u) ** (1 / (k - 1 - i)))
            shares.append(piece)
            left -= piece
        shares.append(max(left, 0.0))
        return {part: share * self.total for part, share in zip(self.parts, shares, strict=True)}

    def extremes(self) -> list[dict[str, Any]]:
        """An even split and an uneven one (1 : 2 : ...), checked before anything runs."""
        k = len(self.parts)
        weights = [(i + 1) / (k * (k + 1) / 2) for i in range(k)]
        return [
            {part: self.total / k for part in self.parts},
            {part: self.total * w for part, w in zip(self.parts, weights, strict=True)},
        ]

    def __str__(self) -> str:
        return f"{' + '.join(self.parts)} = {self.total:,.6g}"


Variable = Range | Choice | Split

_INT = re.compile(r"[+-]?\d+")


def parse_vary(spec: str) -> Variable:
    """A ``--vary`` option as a decision variable (see the module docstring).

    Raises:
        SearchError: naming the option and what is wrong with it.
    """
    where = f"--vary {spec!r}"
    left, sep, right = spec.partition("=")
    left, right = left.strip(), right.strip()
    if not sep or not left or not right:
        raise SearchError(f"{where}: expected PATH=LOW:HIGH, PATH=A,B,C or PATH1+PATH2=TOTAL")
    if "+" in left:
        parts = tuple(p.strip() for p in left.split("+"))
        if any(not p for p in parts) or len(set(parts)) != len(parts):
            raise SearchError(f"{where}: a split needs distinct field paths joined by +")
        total = _number(right, where, "the total")
        if not total > 0:
            raise SearchError(f"{where}: the total must be positive (got {right})")
        return Split(parts, total)
    if ":" in right:
        return _range(left, right, where)
    options = tuple(dict.fromkeys(o.strip() for o in right.split(",") if o.strip()))
    if len(options) < 2:
        raise SearchError(
            f"{where}: give a range LOW:HIGH or at least two choices A,B (a single value "
            f"is not a variable: use --set)"
        )
    return Choice(left, options)


def _range(path: str, text: str, where: str) -> Range:
    low_text, high_text, *rest = [p.strip() for p in text.split(":")]
    if len(rest) > 1:
        raise SearchError(f"{where}: expected LOW:HIGH, LOW:HIGH:log or LOW:HIGH:STEP")
    integer = bool(_INT.fullmatch(low_text) and _INT.fullmatch(high_text))
    low = _number(low_text, where, "LOW")
    high = _number(high_text, where, "HIGH")
    if not low < high:
        raise SearchError(f"{where}: empty range (LOW {low_text} must be below HIGH {high_text})")
    log, step = False, None
    if rest and rest[0] == "log":
        if low <= 0:
            raise SearchError(f"{where}: a log scale needs LOW > 0")
        log = True
    elif rest:
        step = _number(rest[0], where, "STEP (or 'log')")
        if not 0 < step <= high - low or (integer and step != int(step)):
            raise SearchError(
                f"{where}: STEP must be a positive {'integer ' if integer else ''}"
                f"no larger than HIGH - LOW"
            )
    return Range(path, low, high, integer, log, step)


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SearchError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SearchError(f"{where}: {what} must be finite")
    return value


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Objective:
    """A KPI expression to minimise or maximise."""

    expression: Expression
    maximize: bool

    @property
    def direction(self) -> str:
        """``"maximize"`` or ``"minimize"``, as Optuna names them."""
        return "maximize" if self.maximize else "minimize"

    def __str__(self) -> str:
        return f"{self.direction} {self.expression}"


def parse_objective(text: str, maximize: bool) -> Objective:
    """``--minimize EXPR`` / ``--maximize EXPR`` as an objective."""
    option = "--maximize" if maximize else "--minimize"
    return Objective(parse_expression(text, f"{option} {text!r}"), maximize)


def parse_constraint(text: str) -> Constraint:
    """``--subject-to 'LEFT<=RIGHT'`` as a constraint (``<`` counts as ``<=``).

    Raises:
        SearchError: naming the option when it is not one comparison of expressions.
    """
    try:
        return expressions.parse_constraint(text)
    except ExpressionError as exc:
        raise SearchError(str(exc)) from None


def parse_expression(text: str, where: str) -> Expression:
    """An expression over KPIs (see :mod:`simulator.scenario.expressions`).

    Raises:
        SearchError: naming ``where`` when it is not such an expression.
    """
    try:
        return expressions.parse_expression(text, where)
    except ExpressionError as exc:
        raise SearchError(str(exc)) from None


def check_kpis(
    objectives: Iterable[Objective], constraints: Iterable[Constraint], kpis: Iterable[str]
) -> None:
    """Every KPI the search reads is one the runs report.

    Raises:
        SearchError: naming the option and the unknown KPI, with close matches.
    """
    known = list(kpis)
    named = [(f"--{o.direction} {o.expression}", o.expression.kpis) for o in objectives]
    named += [(f"--subject-to {c.text!r}", c.kpis) for c in constraints]
    for option, paths in named:
        for path in paths:
            if path not in known:
                close = difflib.get_close_matches(path, known, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                quote = (
                    "; a path with characters other than letters, digits, _ and . goes "
                    "in backquotes"
                    if not re.fullmatch(r"[\w.]+", path)
                    else ""
                )
                raise SearchError(
                    f"{option}: the runs report no KPI {path!r}{hint} (every KPI is listed "
                    f"in a replicated run's kpis.csv{quote})"
                )
