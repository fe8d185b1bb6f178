"""Probability distributions as they are written in scenario files.

A scenario never says "5 ms"; it says how service times *vary*: exponential with a
mean of 5 ms, lognormal with a mean of 80 ms and a coefficient of variation of 0.5, or
exactly 2 ms. The unit is the one in the field's name (``service_time_ms``,
``patience_s``); the distribution's parameters are in that unit.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Deterministic",
    "Distribution",
    "Exponential",
    "Gamma",
    "Hours",
    "LogNormal",
    "Milliseconds",
    "Seconds",
    "Uniform",
    "typical",
]

MAX_CV = 100.0
"""Largest coefficient of variation: beyond it the lognormal and gamma parameters overflow
long before any system's times are that spread."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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
    cv: float = Field(
        gt=0, le=MAX_CV, description="Coefficient of variation: standard deviation / mean."
    )

    def average(self) -> float:
        """Return the mean."""
        return self.mean


class Gamma(_Spec):
    """Positive values with tunable spread (cv < 1 is more regular than exponential)."""

    dist: Literal["gamma"] = Field(description="Distribution family.")
    mean: float = Field(gt=0, description="Mean, in the unit of the field that holds it.")
    cv: float = Field(
        gt=0, le=MAX_CV, description="Coefficient of variation: standard deviation / mean."
    )

    def average(self) -> float:
        """Return the mean."""
        return self.mean


Distribution = Annotated[
    Exponential | Deterministic | Uniform | LogNormal | Gamma,
    Field(discriminator="dist"),
]


def typical(spec: _Spec) -> tuple[str, float]:
    """The parameter that sets how large a draw usually is, and its value."""
    if isinstance(spec, Deterministic):
        return "value", spec.value
    if isinstance(spec, Uniform):
        return "high", spec.high
    return "mean", spec.average()


def _at_most(limit: float, unit: str, span: str) -> AfterValidator:
    """Check that a time distribution's draws are at most ``limit`` (``span``) in ``unit``.

    The run's clock advances by these times, and every per-interval record grows with
    the clock, so one absurd time (1e30 ms) would exhaust memory instead of failing here.
    """

    def check(spec: _Spec) -> _Spec:
        name, value = typical(spec)
        if value > limit:
            raise ValueError(
                f"{name} {value:g} {unit} is longer than {span} ({limit:g} {unit}), the "
                "longest time one step may take"
            )
        return spec

    return AfterValidator(check)


WEEK_S = 7 * 24 * 3600.0
"""The longest time one step of a run may take (a service, a pause, a delay)."""

Milliseconds = Annotated[Distribution, _at_most(WEEK_S * 1000, "ms", "a week")]
"""A time in ms that the simulation spends (a service, a latency): at most a week."""
Seconds = Annotated[Distribution, _at_most(WEEK_S, "s", "a week")]
"""A time in s that the simulation spends (a pause, a delay, a task): at most a week."""
Hours = Annotated[Distribution, _at_most(365 * 24.0, "h", "a year")]
"""A time in h on the logistics clock (a carrier's transit): at most a year."""
