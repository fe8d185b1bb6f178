"""What every part of the scenario schema shares: strict, frozen models and common types."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Fraction", "Model", "Name", "shares_sum_to_one", "unique_names"]

Fraction = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]


class Model(BaseModel):
    """A schema section: unknown keys and non-finite numbers are errors; it never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def unique_names(items: list, what: str) -> list:
    """``items`` unchanged, or a ValueError naming the repeated ``.name`` values."""
    names = [item.name for item in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} names must be unique; repeated: {', '.join(repeated)}")
    return items


def shares_sum_to_one(items: list, what: str) -> list:
    """``items`` unchanged, or a ValueError when their ``.share`` values do not sum to 1."""
    total = sum(item.share for item in items)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"{what} shares must sum to 1, they sum to {total:g}")
    return unique_names(items, what)
