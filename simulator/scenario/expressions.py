"""KPI expressions and comparisons: what a constraint, an objective or an SLO reads.

An expression is arithmetic over a run's KPIs (the dotted paths of ``kpis.csv``, e.g.
``checkout_latency_ms.p99``): numbers, KPI paths, ``+ - * /`` and brackets, e.g.
``lost_gmv_total + 0.5 * profit_and_loss.fixed_total``. A path holding characters other
than letters, digits, ``_`` and ``.`` (a channel named ``taobao-ads``) is written
between backquotes. A comparison is ``LEFT <= RIGHT`` or ``LEFT >= RIGHT`` of two
expressions, e.g. ``lost_gmv_total <= 0.01 * gmv``: the optimiser's ``--subject-to``
and a scenario's ``slo:`` lines. Parsed with :mod:`ast`; nothing is ``eval``-ed.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Constraint",
    "Expression",
    "ExpressionError",
    "parse_constraint",
    "parse_expression",
]


class ExpressionError(ValueError):
    """Text that is not an expression (or a comparison) over KPIs."""


_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_QUOTED = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Expression:
    """An arithmetic expression over KPI paths, evaluated on one run's flat KPIs."""

    text: str
    kpis: tuple[str, ...]
    _evaluate: Callable[[Mapping[str, float]], float] = field(repr=False, compare=False)

    def __call__(self, kpis: Mapping[str, float]) -> float:
        """The value on one run's KPIs (NaN when a KPI it reads is missing or None)."""
        try:
            return float(self._evaluate(kpis))
        except ZeroDivisionError:
            return math.nan

    def __str__(self) -> str:
        return self.text


def parse_expression(text: str, where: str) -> Expression:
    """An expression such as ``lost_gmv_total + 0.5 * profit_and_loss.fixed_total``.

    Raises:
        ExpressionError: naming ``where`` when it is not such an expression.
    """
    quoted: dict[str, str] = {}

    def hide(match: re.Match[str]) -> str:
        name = f"_kpi{len(quoted)}_"
        quoted[name] = match.group(1)
        return name

    source = _QUOTED.sub(hide, text.strip())
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        raise ExpressionError(f"{where}: {text!r} is not an expression over KPIs") from None
    kpis: list[str] = []

    def build(node: ast.AST) -> Callable[[Mapping[str, float]], float]:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            value = float(node.value)
            return lambda _: value
        if isinstance(node, ast.Name | ast.Attribute):
            path = _dotted(node)
            path = quoted.get(path, path)
            kpis.append(path)
            return lambda row: row.get(path, math.nan)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            op, left, right = _OPS[type(node.op)], build(node.left), build(node.right)
            return lambda row: op(left(row), right(row))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner, sign = build(node.operand), -1.0 if isinstance(node.op, ast.USub) else 1.0
            return lambda row: sign * inner(row)
        raise ExpressionError(
            f"{where}: {text!r}: only numbers, KPI paths, + - * / and brackets are allowed"
        )

    evaluate = build(tree)
    return Expression(text.strip(), tuple(dict.fromkeys(kpis)), evaluate)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise ExpressionError(f"not a KPI path: {ast.unparse(node)}")


_COMPARISON = re.compile(r"(<=|>=|<|>|==)")


@dataclass(frozen=True)
class Constraint:
    """``LEFT <= RIGHT`` (or ``>=``) on KPI expressions, evaluated per replication."""

    text: str
    left: Expression
    right: Expression
    at_most: bool

    @property
    def kpis(self) -> tuple[str, ...]:
        """The KPI paths both sides read."""
        return tuple(dict.fromkeys([*self.left.kpis, *self.right.kpis]))

    def slack(self, kpis: Mapping[str, float]) -> float:
        """How far past its limit a run is: <= 0 when the run meets the constraint."""
        left, right = self.left(kpis), self.right(kpis)
        return left - right if self.at_most else right - left

    def limit(self, kpis: Mapping[str, float]) -> float:
        """The right-hand side on a run (the limit; it may read KPIs too)."""
        return self.right(kpis)

    def __str__(self) -> str:
        return self.text


def parse_constraint(text: str, where: str | None = None) -> Constraint:
    """``'LEFT<=RIGHT'`` as a constraint (``<`` counts as ``<=``).

    Args:
        text: the comparison.
        where: what to name in an error (default: ``--subject-to 'TEXT'``).

    Raises:
        ExpressionError: naming ``where`` when it is not one comparison of expressions.
    """
    where = where or f"--subject-to {text!r}"
    pieces = _COMPARISON.split(text)
    if len(pieces) != 3:
        raise ExpressionError(f"{where}: expected one comparison LEFT <= RIGHT or LEFT >= RIGHT")
    left, op, right = (p.strip() for p in pieces)
    if op == "==":
        raise ExpressionError(f"{where}: an equality cannot be met by a noisy KPI; use <= or >=")
    if not left or not right:
        raise ExpressionError(f"{where}: both sides of {op} need an expression")
    return Constraint(
        text.strip(),
        parse_expression(left, where),
        parse_expression(right, where),
        at_most=op in ("<=", "<"),
    )
