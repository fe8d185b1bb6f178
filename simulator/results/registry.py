"""One registry of KPIs: what each summary figure is, how it prints and which way is good.

Every place that shows a KPI (the command line's tables, the HTML reports, notebooks'
``_repr_html_``) asks :func:`kpi` for it, so a figure prints the same way everywhere:

* its **label** and **unit** (``"CNY"``, ``"%"``, ``"ms"``, ``"s"``, ``"h"``, a count's
  noun, or none);
* its **range**, which confidence intervals respect (a count or a duration is never
  below 0, a ratio stays within [0, 1]);
* its **direction**: whether more is better (orders), worse (lost GMV) or neither
  (sessions, database queries);
* whether it **scales**: at ``scale: 1/10`` counts are the simulated ones, while money
  is scaled back to the full-size sale.

A summary has some 400 leaves, most of them families (a station's waits, a channel's
spend), so the registry is a list of rules matched in order on the dotted path: exact
names first, then families by their leaf's name. :func:`kpi` always answers; a path no
rule knows gets a plain number with no range and no direction.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simulator.scenario.schema import Scenario

__all__ = ["DEFAULT_ANSWERS", "KPI", "KNOWN", "answer_kpis", "close_matches", "kpi"]

INF = math.inf
_MEASURES = ("CNY", "ms", "s", "h", "/s", "orders/h")  # units a heading names; not counts


@dataclass(frozen=True)
class KPI:
    """What one summary figure is.

    Attributes:
        path: the dotted path in ``summary.json`` (and in ``kpis.csv``).
        label: the figure in words, without its unit.
        unit: ``"CNY"``, ``"%"`` (a fraction printed as a percentage), ``"ms"``, ``"s"``,
            ``"h"``, ``"/s"``, a count's noun (``"orders"``), or ``""``.
        low, high: the range of its values (and of its mean): intervals are cut to it.
        better: +1 when more is better, -1 when less is, 0 when neither.
        scales: True for counts simulated at the run's scale; money and ratios are not.
    """

    path: str
    label: str
    unit: str = ""
    low: float = -INF
    high: float = INF
    better: int = 0
    scales: bool = False

    @property
    def kind(self) -> str:
        """How the value prints: ``"pct"``, ``"cny"`` or ``""`` (a number)."""
        return {"%": "pct", "CNY": "cny"}.get(self.unit, "")

    @property
    def heading(self) -> str:
        """The label with its unit, as a table's row name: ``GMV (CNY)``."""
        if self.unit in _MEASURES:
            return f"{self.label} ({self.unit})"
        return self.label

    def format(self, value: float | None) -> str:
        """The value in its unit's form: ``12.30%``, ``18,673,040``, ``1,817.2``; ``-`` for none.

        Whole yuan for money; a count as a whole number when it is one (a run's) and to
        one decimal when it is a mean; other numbers to one decimal from 10 up, else to
        three significant digits, never in scientific notation.
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if self.unit == "%":
            return f"{value:.2%}"
        if self.unit == "CNY":
            return f"{value:,.0f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        if abs(value) >= 10 or value == 0:
            return f"{value:,.1f}"
        return np.format_float_positional(value, precision=3, fractional=False, trim="-")

    def format_change(self, value: float | None) -> str:
        """A difference in the KPI: a share's in percentage points (``2.10 pp``).

        Anything else prints as :meth:`format` does.
        """
        if self.unit == "%" and value is not None and not math.isnan(value):
            return f"{value * 100:.2f} pp"
        return self.format(value)

    def clip(self, low: float, high: float) -> tuple[float, float]:
        """An interval cut to the KPI's range (the true value lies in it, so coverage holds)."""
        return max(low, self.low), min(high, self.high)

    def is_better(self, difference: float) -> bool | None:
        """Whether a change by ``difference`` is an improvement (None: no direction)."""
        if not self.better or difference == 0:
            return None
        return (difference > 0) == (self.better > 0)


# (pattern, label, unit, low, high, better, scales). Labels may use {0}, {1}: the
# pattern's wildcard parts, in order. First match wins.
_COUNT = (0.0, INF)
_RATIO = (0.0, 1.0)
_FREE = (-INF, INF)
_RULES: tuple[tuple[str, str, str, tuple[float, float], int, bool], ...] = (
    # the sale
    ("sessions", "sessions", "sessions", _COUNT, 0, True),
    ("orders", "orders", "orders", _COUNT, +1, True),
    ("gmv", "GMV", "CNY", _COUNT, +1, False),
    ("aov", "AOV", "CNY", _COUNT, +1, False),
    ("conversion_rate", "conversion rate", "%", _RATIO, +1, False),
    ("outcomes.ordered", "sessions that ordered", "sessions", _COUNT, +1, True),
    ("outcomes.*", "sessions ended: {0}", "sessions", _COUNT, 0, True),
    ("scale", "scale", "", (0.0, 1.0), 0, False),
    ("peak_arrivals_per_s", "peak arrivals", "/s", _COUNT, 0, True),
    # money
    ("net_profit", "net profit", "CNY", _FREE, +1, False),
    ("gross_margin", "gross margin", "CNY", _FREE, +1, False),
    ("gross_margin_rate", "gross margin rate", "%", (-INF, 1.0), +1, False),
    ("net_margin_rate", "net margin rate", "%", (-INF, 1.0), +1, False),
    ("net_sales", "net sales", "CNY", _COUNT, +1, False),
    ("lost_gmv_total", "lost GMV", "CNY", _COUNT, -1, False),
    ("lost_gmv.*", "GMV lost: {0}", "CNY", _COUNT, -1, False),
    ("promotion_roi", "promotion ROI (GMV per CNY of discount)", "", _COUNT, +1, False),
    ("marketing_roi", "marketing ROI (GMV of paid channels per CNY)", "", _COUNT, +1, False),
    ("discount_cost", "discount cost", "CNY", _COUNT, -1, False),
    ("refunds", "refunds: returns and oversold", "CNY", _COUNT, -1, False),
    ("cost_of_goods", "cost of goods", "CNY", _COUNT, 0, False),
    ("deposits_forfeited", "deposits forfeited", "CNY", _COUNT, 0, False),
    ("marketing_spend", "marketing spend", "CNY", _COUNT, -1, False),
    ("infrastructure_cost", "infrastructure", "CNY", _COUNT, -1, False),
    ("operations_cost", "operations: fulfilment and service", "CNY", _COUNT, -1, False),
    ("failure_cost", "failures: refunds and compensation", "CNY", _COUNT, -1, False),
    ("fixed_cost", "fixed costs", "CNY", _COUNT, -1, False),
    ("oversell_*", "oversell {0}", "CNY", _COUNT, -1, False),
    ("profit_and_loss.net_profit", "net profit", "CNY", _FREE, +1, False),
    ("profit_and_loss.gross_profit", "gross profit", "CNY", _FREE, +1, False),
    ("profit_and_loss.gmv", "GMV", "CNY", _COUNT, +1, False),
    ("profit_and_loss.*_total", "{0}", "CNY", _COUNT, -1, False),
    ("profit_and_loss.*.*", "{0}: {1}", "CNY", _COUNT, -1, False),
    ("profit_and_loss.*", "{0}", "CNY", _COUNT, 0, False),
    ("orders_by_mechanic.*.orders", "orders ({0})", "orders", _COUNT, +1, True),
    ("orders_by_mechanic.*.gmv", "GMV ({0})", "CNY", _COUNT, +1, False),
    ("orders_by_mechanic.*.aov", "AOV ({0})", "CNY", _COUNT, +1, False),
    ("traffic_channels.*.roi", "ROI of {0}", "", _COUNT, +1, False),
    ("traffic_channels.*.ltv_to_cac", "LTV/CAC of {0}", "", _COUNT, +1, False),
    ("traffic_channels.*.conversion_rate", "conversion rate of {0}", "%", _RATIO, +1, False),
    ("traffic_channels.*.visitors", "visitors from {0}", "visitors", _COUNT, +1, True),
    (
        "traffic_channels.*.expected_visitors",
        "visitors bought from {0}",
        "visitors",
        _COUNT,
        0,
        True,
    ),
    ("traffic_channels.*.orders", "orders from {0}", "orders", _COUNT, +1, True),
    ("traffic_channels.*.new_customers", "new customers from {0}", "customers", _COUNT, +1, True),
    ("traffic_channels.*.gmv", "GMV from {0}", "CNY", _COUNT, +1, False),
    ("traffic_channels.*.lost_gmv", "GMV lost from {0}", "CNY", _COUNT, -1, False),
    ("traffic_channels.*.ltv", "LTV of {0}", "CNY", _COUNT, +1, False),
    ("traffic_channels.*.*", "{1} of {0}", "CNY", _COUNT, -1, False),
    # the site
    ("checkout_latency_ms.count", "checkouts timed", "checkouts", _COUNT, 0, True),
    ("page_latency_ms.count", "pages timed", "pages", _COUNT, 0, True),
    ("checkout_latency_ms.*", "checkout latency {0}", "ms", _COUNT, -1, False),
    ("page_latency_ms.*", "page latency {0}", "ms", _COUNT, -1, False),
    ("db_pool_wait_ms.*", "DB pool wait ({0})", "ms", _COUNT, -1, False),
    ("cache_hit_ratio", "cache hit ratio", "%", _RATIO, +1, False),
    ("cache_hit_ratio_by_level.*", "cache hit ratio ({0})", "%", _RATIO, +1, False),
    ("cache_stampede_at_s", "cache stampede at", "s", _COUNT, 0, False),
    ("max_concurrent_rebuilds_at_s", "most concurrent rebuilds at", "s", _COUNT, 0, False),
    (
        "max_concurrent_rebuilds",
        "most concurrent rebuilds of one key",
        "rebuilds",
        _COUNT,
        -1,
        True,
    ),
    ("db_peak_qps", "DB peak QPS", "/s", _COUNT, 0, True),
    ("db_pool_timeouts", "DB pool timeouts", "timeouts", _COUNT, -1, True),
    ("payment_success_rate", "payment success rate", "%", _RATIO, +1, False),
    ("payment_success_by_channel.*", "payment success ({0})", "%", _RATIO, +1, False),
    ("payments_lost_to_outage", "payments lost to channel outages", "payments", _COUNT, -1, True),
    (
        "payments_lost_to_outage_by_channel.*",
        "payments lost to outages ({0})",
        "payments",
        _COUNT,
        -1,
        True,
    ),
    ("requests_shed", "requests shed", "requests", _COUNT, -1, True),
    ("retries", "retries (services + users)", "retries", _COUNT, -1, True),
    ("retries_by_source.*", "retries by {0}", "retries", _COUNT, -1, True),
    ("time_to_limit_s", "time to limit", "s", _COUNT, -1, False),
    ("breaker_open_s", "circuit breakers open", "s", _COUNT, 0, False),
    ("recovery_time_s.*", "recovery {0}", "s", _COUNT, -1, False),
    ("peak_instances", "peak instances", "instances", _COUNT, 0, False),
    ("lost_writes", "lost writes", "writes", _COUNT, -1, True),
    ("stranded_requests", "requests to a lost site", "requests", _COUNT, -1, True),
    ("stranded_until_s.*", "last request stranded at {0}", "s", _COUNT, -1, False),
    ("users_put_off_by_latency", "users put off by slow pages", "users", _COUNT, -1, True),
    ("oversold_units", "oversold units", "units", _COUNT, -1, True),
    ("coupons_over_issued", "coupons over-issued", "coupons", _COUNT, -1, True),
    ("sold_out_at_s.*", "{0} sold out at", "s", _COUNT, 0, False),
    ("cache_*", "cache {0}", "lookups", _COUNT, 0, True),
    ("missing_key_*", "missing-key {0}", "lookups", _COUNT, -1, True),
    ("db_*", "DB {0}", "queries", _COUNT, 0, True),
    ("deduction.*", "stock deduction: {0}", "", _COUNT, 0, True),
    ("coupon*", "coupon{0}", "coupons", _COUNT, 0, True),
    ("payment_attempts", "payment attempts", "payments", _COUNT, 0, True),
    ("payment*", "payment{0}", "payments", _COUNT, -1, True),
    ("stock_units_sold", "stock units sold", "units", _COUNT, +1, True),
    ("items_sold_out", "items sold out", "items", _COUNT, -1, False),
    ("returned_orders", "returned orders", "orders", _COUNT, -1, True),
    # fulfilment and service
    ("on_time_delivery_rate", "on-time delivery rate", "%", _RATIO, +1, False),
    ("next_day_delivery_rate", "next-day delivery rate", "%", _RATIO, +1, False),
    ("ship_within_72h_rate", "shipped within 72 h", "%", _RATIO, +1, False),
    ("delivery_time_h.count", "parcels delivered", "parcels", _COUNT, 0, True),
    ("ship_time_h.count", "parcels shipped", "parcels", _COUNT, 0, True),
    ("delivery_time_h.*", "delivery time {0}", "h", _COUNT, -1, False),
    ("ship_time_h.*", "time to ship {0}", "h", _COUNT, -1, False),
    ("tracking_lag_h.*", "tracking lag {0}", "h", _COUNT, -1, False),
    ("tracking_lag_h*", "tracking lag", "h", _COUNT, -1, False),
    ("warehouse_peak_backlog.*", "peak backlog ({0})", "orders", _COUNT, -1, True),
    ("warehouse_backlog_cleared_at_s.*", "backlog cleared ({0}) at", "s", _COUNT, -1, False),
    ("warehouse_orders.*", "orders shipped from {0}", "orders", _COUNT, 0, True),
    ("warehouse_capacity_per_h.*", "capacity ({0})", "orders/h", _COUNT, 0, True),
    ("shipped_from_other_region", "orders shipped from another region", "orders", _COUNT, -1, True),
    ("cs_wait_s.count", "enquiries waited", "enquiries", _COUNT, 0, True),
    ("cs_wait_s.*", "CS wait {0}", "s", _COUNT, -1, False),
    ("cs_busiest_hour_wait_s", "CS wait in the busiest hour", "s", _COUNT, -1, False),
    ("cs_target_wait_s", "CS wait target", "s", _COUNT, 0, False),
    ("cs_abandon_rate", "CS abandon rate", "%", _RATIO, -1, False),
    ("cs_answered_within_target_rate", "CS answered within target", "%", _RATIO, +1, False),
    ("cs_abandoned", "CS enquiries abandoned", "enquiries", _COUNT, -1, True),
    ("cs_enquiries_by_reason.*", "CS enquiries: {0}", "enquiries", _COUNT, -1, True),
    ("cs_*", "CS {0}", "enquiries", _COUNT, 0, True),
    # the funnel, per segment
    ("funnel.*.purchase_success", "purchase success ({0})", "%", _RATIO, +1, False),
    ("funnel.*.*_to_*", "{1} to {2} ({0})", "%", _RATIO, +1, False),
    ("funnel.*.*", "{1} ({0})", "sessions", _COUNT, 0, True),
    # stations: every queue the model measures
    ("stations.*.utilisation", "utilisation of {0}", "%", _RATIO, 0, False),
    ("stations.*.waited_fraction", "share who waited at {0}", "%", _RATIO, -1, False),
    ("stations.*.*_s", "{1} at {0}", "s", _COUNT, -1, False),
    ("stations.*.mean_in_system", "mean number at {0}", "", _COUNT, 0, False),
    ("stations.*.servers", "servers of {0}", "servers", _COUNT, 0, False),
    ("stations.*.*", "{1} at {0}", "", _COUNT, 0, True),
    ("run.*_s", "{0}", "s", _COUNT, 0, False),
    ("run.events", "events simulated", "events", _COUNT, 0, True),
)

KNOWN = tuple(rule[0] for rule in _RULES)
"""The registry's patterns (exact paths and families)."""


@lru_cache(maxsize=4096)
def kpi(path: str) -> KPI:
    """The registry's entry for a dotted KPI path (a plain number when no rule knows it)."""
    for pattern, label, unit, (low, high), better, scales in _RULES:
        if fnmatchcase(path, pattern):
            parts = _wildcards(pattern, path)
            return KPI(path, label.format(*parts), unit, low, high, better, scales)
    leaf = path.rsplit(".", 1)[-1]
    if leaf.endswith(("_rate", "_ratio", "_share", "_fraction")):
        return KPI(path, leaf.replace("_", " "), "%", 0.0, 1.0)
    if isinstance(leaf, str) and leaf.endswith(("_count", "_units")):
        return KPI(path, leaf.replace("_", " "), "", 0.0, INF, scales=True)
    return KPI(path, path)


DEFAULT_ANSWERS = ("net_profit", "orders", "lost_gmv_total", "checkout_latency_ms.p99")
"""The answer KPIs of a scenario that names none: what every sale is judged on."""


def answer_kpis(scenario: Scenario) -> list[str]:
    """The KPIs that answer the scenario's question, its own or :data:`DEFAULT_ANSWERS`.

    Every table and report opens with them (see :mod:`simulator.experiment.answer`).
    """
    return list(scenario.answers) or list(DEFAULT_ANSWERS)


def _wildcards(pattern: str, path: str) -> list[str]:
    """The parts of ``path`` that ``pattern``'s ``*`` matched, in order, as words."""
    import re

    regex = "^" + "(.+?)".join(re.escape(p) for p in pattern.split("*")) + "$"
    match = re.match(regex, path)
    return [g.replace("_", " ") for g in match.groups()] if match else []


def close_matches(path: str, known: list[str]) -> list[str]:
    """KPI paths like ``path`` among ``known`` ones, for an error message."""
    return difflib.get_close_matches(path, known, n=3, cutoff=0.6)
