"""Probability distributions as they are written in scenario files.

A scenario never says "5 ms"; it says how service times *vary*: exponential with a
mean of 5 ms, lognormal with a mean of 80 ms and a coefficient of variation of 0.5, or
exactly 2 ms. The unit is the one in the field's name (``service_time_ms``,
``patience_s``); the distribution's parameters are in that unit.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Deterministic",
    "Distribution",
    "Exponential",
    "Gamma",
    "LogNormal",
    "Uniform",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def average(self) -> float:  # pragma: no cover - every subclass overrides it
        """Return the distribution's mean, in the field's unit."""
        raise NotImplementedError


class Exponential(_Spec):
    """Memoryless times: the textbook service and inter-arrival distribution."""

    dist: Literal["exponential"] = Field(description="Distribution family.")
    mean: float = Field(gt=0, description="Mean, in the unit of the field that holds it.")

    def average(self) -> float:
        """Return the mean."""
        return self.mean


class Deterministic(_Spec):
    """Always the same value (M/D/1 service, fixed delays)."""

    dist: Literal["deterministic"] = Field(description="Distribution family.")
    value: float = Field(ge=0, description="The value, in the unit of the field that holds it.")

    def average(self) -> float:
        """Return the value."""
        return self.value


class Uniform(_Spec):
    """Any value between ``low`` and ``high`` equally likely."""

    dist: Literal["uniform"] = Field(description="Distribution family.")
    low: float = Field(ge=0, description="Smallest value, in the unit of the field.")
    high: float = Field(ge=0, description="Largest value, in the unit of the field.")

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must not be below low ({self.low})")
        return self

    def average(self) -> float:
        """Return the midpoint."""
        return (self.low + self.high) / 2


class LogNormal(_Spec):
    """Right-skewed positive values (latencies, basket values), set by mean and CV."""

    dist: Literal["lognormal"] = Field(description="Distribution family.")
    mean: float = Field(gt=0, description="Mean, in the unit of the field that holds it.")
    cv: float = Field(gt=0, description="Coefficient of variation: standard deviation / mean.")

    def average(self) -> float:
        """Return the mean."""
        return self.mean


class Gamma(_Spec):
    """Positive values with tunable spread (cv < 1 is more regular than exponential)."""

    dist: Literal["gamma"] = Field(description="Distribution family.")
    mean: float = Field(gt=0, description="Mean, in the unit of the field that holds it.")
    cv: float = Field(gt=0, description="Coefficient of variation: standard deviation / mean.")

    def average(self) -> float:
        """Return the mean."""
        return self.mean


Distribution = Annotated[
    Exponential | Deterministic | Uniform | LogNormal | Gamma,
    Field(discriminator="dist"),
]
