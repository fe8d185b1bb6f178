"""Demand in the scenario schema: how users arrive, who they are, and what they look at.

The traffic curve (a baseline with pulses: pre-heat, the sale's spike, bursts; or a
curve replayed from an analytics export, pulses on top), the user segments with their
funnel, patience and refresh habits, and the catalogue with its hot items and the share
of requests for items that do not exist.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Annotated

from pydantic import Field, model_validator

from simulator.scenario.base import Fraction, Name
from simulator.scenario.base import Model as _Model
from simulator.scenario.base import unique_names as _unique_names
from simulator.scenario.commerce import (
    BasketBuilding,
    Response,
)
from simulator.scenario.distributions import (
    Deterministic,
    Distribution,
    Exponential,
    Milliseconds,
    Seconds,
)
from simulator.scenario.protections import (
    UserRetry,
)

__all__ = ["MAX_REPLAY_POINTS", "Catalogue", "HotItem", "Pulse", "Replay", "Segment", "Traffic"]

MAX_REPLAY_POINTS = 100_000
"""Most points a replayed curve may have: a day at one-second resolution fits."""

_Count = Annotated[float, Field(ge=0)]


class Pulse(_Model):
    """A trapezoid in the arrival rate: ramp up, hold at the peak, decay back."""

    start_s: float = Field(ge=0, description="Time the ramp begins, seconds from run start.")
    ramp_s: float = Field(ge=0, description="Seconds from baseline to the peak rate.")
    hold_s: float = Field(ge=0, description="Seconds the peak rate is held.")
    decay_s: float = Field(ge=0, description="Seconds from the peak back to baseline.")
    multiplier: float = Field(
        gt=0,
        description=(
            "Peak rate as a multiple of the baseline (15 means 15x normal traffic). "
            "Overlapping pulses add their excess over the baseline."
        ),
    )

    def level(self, t: float) -> float:
        """How far up its trapezoid the pulse is at ``t``: 0 outside, 1 at the peak."""
        rise = self.start_s + self.ramp_s
        top = rise + self.hold_s
        fall = top + self.decay_s
        if t < self.start_s or t >= fall:
            return 0.0
        if t < rise:
            return (t - self.start_s) / self.ramp_s
        if t < top:
            return 1.0
        return (fall - t) / self.decay_s


class Replay(_Model):
    """A traffic curve replayed from data: last year's sessions, as an analytics export gives them.

    The curve is ``time_s`` with either ``rate_per_s`` (sessions per second at each time,
    linear in between) or ``sessions`` (the count in the interval from each time to the
    next, the last interval as long as the one before it; the rate is constant inside an
    interval, so each interval expects exactly its count). The scenario loader reads
    them from ``file`` (docs/how-to/replay-traffic.md gives the CSV's columns).
    """

    file: str | None = Field(
        default=None,
        min_length=1,
        description="CSV file with the curve, relative to the scenario file that names it "
        "(to the working directory in --set). The loader reads it into time_s and "
        "rate_per_s or sessions, so the run, its provenance and its hash carry the curve "
        "itself; columns given next to file in the same place (a resolved scenario, as in "
        "summary.json) are used as they are. Columns: time_s (seconds from the run's "
        "start) or clock (HH:MM[:SS], the time of day, placed by clock_at_start_h), and "
        "rate_per_s or sessions.",
    )
    multiplier: float = Field(
        default=1.0,
        gt=0,
        description="Factor on the replayed values: 1.3 replays last year's curve 30% "
        "higher. The scenario's scale multiplies it too.",
    )
    shift_s: float = Field(
        default=0.0,
        description="Seconds added to every time of the curve (negative: earlier). The "
        "curve before t = 0 and after duration_s is not used.",
    )
    time_s: list[float] = Field(
        default_factory=list,
        max_length=MAX_REPLAY_POINTS,
        description="The curve's times, seconds from the run's start before shift_s, "
        "increasing; read from file.",
    )
    rate_per_s: list[_Count] | None = Field(
        default=None,
        max_length=MAX_REPLAY_POINTS,
        description="Sessions per second at each time, linear in between; read from file. "
        "null when the curve is given as sessions.",
    )
    sessions: list[_Count] | None = Field(
        default=None,
        max_length=MAX_REPLAY_POINTS,
        description="Sessions starting in the interval from each time to the next (the "
        "last interval as long as the one before it), spread evenly over the interval; "
        "read from file. null when the curve is given as rate_per_s.",
    )

    def span(self) -> tuple[float, float]:
        """Where the curve is defined, in run seconds: ``[start, end]``."""
        times = self.time_s
        end = times[-1] + (times[-1] - times[-2] if self.sessions is not None else 0.0)
        return times[0] + self.shift_s, end + self.shift_s

    def corners(self) -> list[float]:
        """The run times at which the curve's slope may change."""
        corners = [t + self.shift_s for t in self.time_s]
        if self.sessions is not None:
            corners.append(self.span()[1])
        return corners

    def rate_at(self, t: float) -> float | None:
        """The replayed rate at run time ``t``, sessions per second; None outside the curve."""
        start, end = self.span()
        if not start <= t <= end or (t == end and self.sessions is not None):
            return None
        u, times = t - self.shift_s, self.time_s
        # times[i - 1] <= u < times[i]; at least 1 where rounding puts u just before the start
        i = max(1, bisect_right(times, u))
        if self.sessions is not None:
            right = times[i] if i < len(times) else end - self.shift_s
            return self.multiplier * self.sessions[i - 1] / (right - times[i - 1])
        assert self.rate_per_s is not None
        i = min(i, len(times) - 1)
        a, b, ra, rb = times[i - 1], times[i], self.rate_per_s[i - 1], self.rate_per_s[i]
        return self.multiplier * (ra + (rb - ra) * (u - a) / (b - a))

    @model_validator(mode="after")
    def _one_curve(self) -> Replay:
        if not self.time_s and self.rate_per_s is None and self.sessions is None:
            if self.file is None:
                raise ValueError(
                    "no curve: give file (a CSV the scenario loader reads) or time_s with "
                    "rate_per_s or sessions"
                )
            raise ValueError(
                f"{self.file} has not been read: load the scenario with load_scenario, "
                "which reads the file into time_s and rate_per_s or sessions"
            )
        if self.rate_per_s is not None and self.sessions is not None:
            raise ValueError("give rate_per_s or sessions, not both")
        values, name = (
            (self.rate_per_s, "rate_per_s")
            if self.rate_per_s is not None
            else (self.sessions, "sessions")
        )
        if values is None:
            raise ValueError("time_s needs rate_per_s or sessions")
        if len(values) != len(self.time_s):
            raise ValueError(
                f"time_s has {len(self.time_s)} values and {name} {len(values)}: one each a point"
            )
        if len(values) < 2:
            raise ValueError(f"a curve needs at least two points, got {len(values)}")
        for i, (a, b) in enumerate(zip(self.time_s, self.time_s[1:], strict=False)):
            if b <= a:
                raise ValueError(f"time_s[{i + 1}]: must increase, got {b:g} after {a:g}")
        return self


class Traffic(_Model):
    """Users arriving as a non-homogeneous Poisson process over a piecewise-linear curve.

    Where a replayed curve is defined it replaces the baseline; pulses add their excess
    over the baseline, ``(multiplier - 1) * baseline_per_s`` at their peak, on top of
    either.
    """

    baseline_per_s: float = Field(
        gt=0,
        description="Sessions starting per second on an ordinary day; outside a replayed "
        "curve, the rate the pulses rise from.",
    )
    preheat: Pulse | None = Field(
        default=None, description="Optional gentle rise before the sale (warm-up marketing)."
    )
    spike: Pulse | None = Field(default=None, description="Optional launch spike at sale start.")
    bursts: list[Pulse] = Field(
        default_factory=list, description="Extra bursts: flash-sale slots, live streams."
    )
    replay: Replay | None = Field(
        default=None,
        description="Optional curve replayed from data (an analytics export in CSV): it "
        "replaces the baseline where it is defined, and the pulses add on top of it.",
    )

    def pulses(self) -> list[Pulse]:
        """All pulses of the curve, in the order they are written."""
        return [p for p in (self.preheat, self.spike) if p is not None] + list(self.bursts)

    def pieces(self, until_s: float) -> list[tuple[float, float, float, float]]:
        """The curve on [0, until_s) as linear pieces ``(start_s, end_s, rate_start, rate_end)``.

        Rates are per second. A pulse with a zero ramp or decay is a step, so the rate at
        each end of a piece is its limit from inside the piece.
        """
        times = {0.0, until_s}
        for p in self.pulses():
            t = p.start_s
            for step in (0.0, p.ramp_s, p.hold_s, p.decay_s):
                t += step
                times.add(t)
        if self.replay is not None:
            times.update(self.replay.corners())
        ordered = sorted(t for t in times if 0.0 <= t <= until_s)
        pieces = []
        for a, b in zip(ordered, ordered[1:], strict=False):
            # Linear inside (a, b): two interior points give the exact end limits.
            q1, q3 = self.rate_at(a + (b - a) / 4), self.rate_at(a + 3 * (b - a) / 4)
            pieces.append((a, b, max(0.0, 1.5 * q1 - 0.5 * q3), max(0.0, 1.5 * q3 - 0.5 * q1)))
        return pieces

    def rate_at(self, t: float) -> float:
        """Arrival rate at time ``t``, sessions per second (right-continuous at steps)."""
        excess = sum((p.multiplier - 1.0) * p.level(t) for p in self.pulses())
        replayed = self.replay.rate_at(t) if self.replay is not None else None
        if replayed is None:
            return self.baseline_per_s * (1.0 + excess)
        return replayed + self.baseline_per_s * excess

    @model_validator(mode="after")
    def _rate_never_negative(self) -> Traffic:
        # Only a pulse below the baseline (multiplier < 1) takes rate away.
        if all(p.multiplier >= 1.0 for p in self.pulses()):
            return self
        # A piecewise-linear curve is lowest at one of its corners.
        ends = [p.start_s + p.ramp_s + p.hold_s + p.decay_s for p in self.pulses()]
        if self.replay is not None:
            ends.append(self.replay.span()[1])
        for a, *_ in self.pieces(max(ends, default=0.0) + 1.0):
            if self.rate_at(a) < -1e-9:
                raise ValueError(f"overlapping pulses make the arrival rate negative at t={a:g} s")
        return self


class Segment(_Model):
    """A kind of user with its own funnel, basket and patience."""

    name: Name = Field(description="Segment name, e.g. new, returning, member.")
    share: Fraction = Field(description="Fraction of arriving users in this segment.")
    bounce_rate: Fraction = Field(description="Fraction who leave after the landing page.")
    skip_browsing: bool = Field(
        default=False,
        description="The user arrives with the item already in the cart and goes straight "
        "to checkout (a presale balance payment, a pre-loaded flash-sale cart): no pages, "
        "no add-to-cart request; bounce_rate and add_to_cart_rate are not used.",
    )
    pages_mean: float = Field(
        default=3.0,
        ge=1,
        le=1000,
        description="Mean product pages viewed by a user who does not bounce (geometric, >= 1).",
    )
    think_time_s: Seconds = Field(
        default=Exponential(dist="exponential", mean=8.0),
        description="User's pause between two page views, seconds.",
    )
    add_to_cart_rate: Fraction = Field(
        description="Fraction of non-bouncing users who add the last viewed item to the cart."
    )
    checkout_rate: Fraction = Field(
        description="Fraction of users with a cart who go on to check out and pay."
    )
    basket_value_cny: Distribution = Field(description="Order value in CNY before discounts.")
    patience_s: Distribution = Field(
        description=(
            "How long the user waits for one response (a page, the checkout, the payment) "
            "before giving up, seconds."
        )
    )
    retry: UserRetry | None = Field(
        default=None,
        description="Whether users refresh a failed or slow request; null: they never do.",
    )
    priority_lane: bool = Field(
        default=False,
        description="A members-only lane: the segment's requests go ahead of everyone "
        "else's where requests queue (the application servers and the payment channels' "
        "slots), and a full queue does not turn them away. Others wait behind them.",
    )
    units: Distribution = Field(
        default=Deterministic(dist="deterministic", value=1.0),
        description="Units of the carted item a buyer wants (rounded, at least 1); "
        "inventory.purchase_limit_per_user caps it. Stock is deducted by units.",
    )
    member: bool = Field(
        default=False, description="Members pay promotions.member_discount off list prices."
    )
    response: Response = Field(
        default_factory=Response, description="Conversion uplift by price mechanic."
    )
    basket_building: BasketBuilding | None = Field(
        default=None,
        description="Whether users short of a ladder step add items to reach it; null: never.",
    )


class HotItem(_Model):
    """A hero item of the sale, with its own share of the page views."""

    name: Name = Field(description="Item name, e.g. mate60-pro.")
    share: Fraction = Field(
        description="Fraction of all page views that go to this item (taken before the "
        "Zipf law shares out the rest)."
    )
    stock: int | None = Field(
        default=None, ge=0, description="Units in stock; null: inventory.stock_per_item."
    )
    rebuild_time_ms: Milliseconds | None = Field(
        default=None,
        description="Database time to rebuild this item's page on a cache miss, ms (a "
        "hero item's detail page often aggregates price, stock and promotions). null: "
        "database.read_time_ms like any item.",
    )


class Catalogue(_Model):
    """The items on sale, how popular they are, and requests for items that do not exist.

    Keys are numbered: the catalogue's items by popularity rank (0 is the most viewed),
    then the hot items, then the keys that do not exist.
    """

    items: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Number of distinct items (cache keys); the Zipf law keeps a table of them.",
    )
    zipf_exponent: float = Field(
        default=1.0,
        ge=0,
        description="Exponent s of the Zipf law: item of rank k is viewed in proportion to k^-s.",
    )
    hot_items: list[HotItem] = Field(
        default=[],
        description="Named hero items, each carrying its share of the page views; the "
        "catalogue's Zipf law shares out the views that remain.",
    )
    missing_key_share: Fraction = Field(
        default=0.0,
        lt=1,
        description="Fraction of page views for keys that do not exist (stale links, "
        "scrapers, attacks): they miss every cache level and reach the database.",
    )
    missing_keys: int = Field(
        default=1_000_000,
        ge=1,
        description="Distinct nonexistent keys those views are drawn from, uniformly. Few "
        "keys repeat often (empty-result caching helps); many rarely repeat (it does not).",
    )

    @model_validator(mode="after")
    def _views_add_up(self) -> Catalogue:
        _unique_names(self.hot_items, "hot item")
        taken = sum(h.share for h in self.hot_items) + self.missing_key_share
        if taken > 1 + 1e-9:
            raise ValueError(
                f"hot item shares plus missing_key_share add up to {taken:g}, more than 1"
            )
        return self


class Experience(_Model):
    """Demand that feels latency: a slow landing page puts off users who would have stayed.

    A user who would continue past the landing page stays with probability
    ``(1 - conversion_loss_per_100ms) ** (excess / 100 ms)``, where ``excess`` is how far
    the landing page's latency went past ``threshold_ms``; the rest leave as bounces.
    Their browse-to-pay conversion falls by the same factor. The default loss, 2.7% per
    100 ms, is fitted to the seeds' two measurements (page load 3.2 s to 1.5 s cut bounce
    by 18% [002 §09], 2.3 s to 0.8 s cut it by 40% [002 §11]) at the seeds' 65%
    landing-page bounce rate [002 §07]: they give 1.7% and 3.6% per 100 ms, and 2.7%
    is their geometric mean.
    The often-quoted "100 ms costs 7% of conversion" is steeper; set it here to use it.
    """

    threshold_ms: float = Field(
        default=800.0, ge=0, description="Landing-page latency users do not notice, ms."
    )
    conversion_loss_per_100ms: float = Field(
        default=0.027,
        ge=0,
        lt=1,
        description="Fraction of the users who would stay that leave per 100 ms above "
        "the threshold.",
    )

    def stay(self, latency_s: float) -> float:
        """The chance that a user who would continue stays after a landing page this slow."""
        excess_ms = latency_s * 1000.0 - self.threshold_ms
        if excess_ms <= 0:
            return 1.0
        return (1.0 - self.conversion_loss_per_100ms) ** (excess_ms / 100.0)
