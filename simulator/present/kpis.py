"""KPIs as people read them: which to show first, their units, and rows for tables.

How a KPI prints comes from one place, :mod:`simulator.results.registry`, so the command
line's tables, the HTML reports and notebooks agree: fractions as percentages, money in
whole yuan, a replicated KPI as ``mean [low, high]``.
The row builders pick the figures a run had (a promotion's discount cost, a breaker's
open time) and label them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from simulator.experiment.estimates import format_estimate
from simulator.results import registry

__all__ = [
    "HEADLINE",
    "business_rows",
    "channel_rows",
    "delivery_rows",
    "difference_cells",
    "fmt_grid_value",
    "fmt_kpi",
    "kpi_kind",
    "money_rows",
    "protection_rows",
]

HEADLINE = (
    "sessions",
    "orders",
    "gmv",
    "conversion_rate",
    "checkout_latency_ms.p50",
    "checkout_latency_ms.p99",
    "page_latency_ms.p95",
    "cache_hit_ratio",
    "db_peak_qps",
    "db_pool_timeouts",
    "payment_success_rate",
    "gross_margin",
    "net_profit",
    "lost_gmv_total",
    "on_time_delivery_rate",
    "next_day_delivery_rate",
    "requests_shed",
    "cs_wait_s.mean",
)
"""KPIs the command line shows first; every KPI is in the full tables."""


def fmt_kpi(value: Any, kind: str = "") -> str:
    """A KPI as printed: "-" for none; kind "pct" as a percentage, "cny" whole yuan.

    A replicated KPI (an :class:`~simulator.experiment.estimates.Estimate`) prints as its mean
    followed by its confidence interval, ``mean [low, high]``.
    """
    return format_estimate(value, lambda v: _fmt(v, kind))


def kpi_kind(kpi: str) -> str:
    """How a KPI prints, from the registry: fractions as "pct", money as "cny", else ""."""
    return registry.kpi(kpi).kind


def fmt_grid_value(value: Any) -> str:
    """A swept field's value as printed: numbers short (``%g``), anything else as text."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def difference_cells(row: Mapping[Any, Any], kind: str) -> tuple[str, str, str, str]:
    """A comparison row (see ``estimates.difference``) as printed: A, B, B - A, [low, high].

    A share's difference is in percentage points (``2.10 pp``); missing values (NaN)
    print as "-".
    """

    def cell(key: str) -> str:
        value = row[key]
        return fmt_kpi(value if math.isfinite(value) else None, kind)

    def change(key: str) -> str:  # a share's change in percentage points
        value = row[key]
        if kind == "pct" and math.isfinite(value):
            return f"{value * 100:.2f} pp"
        return cell(key)

    return (
        cell("a_mean"),
        cell("b_mean"),
        change("difference"),
        f"[{change('ci_low')}, {change('ci_high')}]",
    )


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if kind == "pct":
        return f"{value:.2%}"
    if kind == "cny":
        return f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.1f}"


def business_rows(summary: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """KPI rows of the business figures: (name, value, kind) with kind "cny", "pct" or ""."""
    s = summary
    rows: list[tuple[str, Any, str]] = []
    if s["discount_cost"]:
        rows += [
            ("discount cost (CNY)", s["discount_cost"], "cny"),
            ("promotion ROI (GMV per CNY of discount)", s["promotion_roi"], ""),
        ]
    rows += [
        ("gross margin (CNY)", s["gross_margin"], "cny"),
        ("gross margin rate", s["gross_margin_rate"], "pct"),
    ]
    if s["refunds"]:
        rows.append(("refunds: returns and oversold (CNY)", s["refunds"], "cny"))
    rows.append(("lost GMV (CNY)", s["lost_gmv_total"], "cny"))
    rows += [(f"  {cause}", v, "cny") for cause, v in s["lost_gmv"].items() if v]
    if s["oversold_units"] or s["deduction"]["mode"] != "atomic":
        rows.append(("oversold units", s["oversold_units"], ""))
    if s["coupon_claims"]:
        rows += [
            ("coupons issued / quota", f"{s['coupons_issued']:,} / {s['coupon_quota']:,}", ""),
            ("coupons over-issued", s["coupons_over_issued"], ""),
        ]
    if s["payments_lost_to_outage"] or s["payment_failovers"]:
        rows.append(("payments lost to channel outages", s["payments_lost_to_outage"], ""))
    if s["deposits_forfeited"]:
        rows.append(("deposits forfeited (CNY)", s["deposits_forfeited"], "cny"))
    return rows


def money_rows(summary: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """KPI rows of the profit and loss: (name, value, kind); costs only where priced."""
    s = summary
    rows: list[tuple[str, Any, str]] = [("net profit (CNY)", s["net_profit"], "cny")]
    for key, name in (
        ("marketing_spend", "marketing spend"),
        ("infrastructure_cost", "infrastructure"),
        ("operations_cost", "operations: fulfilment and service"),
        ("failure_cost", "failures: refunds and compensation"),
        ("fixed_cost", "fixed costs"),
    ):
        if s[key]:
            rows.append((f"  {name} (CNY)", s[key], "cny"))
    if s["marketing_spend"]:
        rows.append(("marketing ROI (GMV of paid channels per CNY)", s["marketing_roi"], ""))
    if s["users_put_off_by_latency"]:
        rows.append(("users put off by slow pages", s["users_put_off_by_latency"], ""))
    return rows


def channel_rows(summary: dict[str, Any]) -> list[list[str]]:
    """The per-channel table as printed: a header row, then one row per traffic source."""
    header = [
        "channel",
        "spend",
        "visitors",
        "orders",
        "GMV",
        "ROI",
        "new customers",
        "CAC",
        "LTV/CAC",
        "planned / spent share",
    ]
    rows = [header]
    split = summary["budget_split"]
    for name, c in summary["traffic_channels"].items():
        shares = split.get(name)
        rows.append(
            [
                name,
                fmt_kpi(c["spend"], "cny"),
                fmt_kpi(c["visitors"]),
                fmt_kpi(c["orders"]),
                fmt_kpi(c["gmv"], "cny"),
                fmt_kpi(c["roi"]),
                fmt_kpi(c["new_customers"], "cny"),
                fmt_kpi(c["cac"], "cny"),
                fmt_kpi(c["ltv_to_cac"]),
                "-"
                if shares is None
                else f"{fmt_kpi(shares['planned_share'], 'pct')} / "
                f"{fmt_kpi(shares['spent_share'], 'pct')}",
            ]
        )
    return rows


def protection_rows(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """KPI rows of the protections and faults that a run had (none for a plain run)."""
    s = summary
    rows: list[tuple[str, Any]] = []
    if s["requests_shed"] or s["time_to_limit_s"] is not None:
        rows += [("requests shed", s["requests_shed"]), ("time to limit (s)", s["time_to_limit_s"])]
    if s["retries"]:
        rows.append(("retries (services + users)", s["retries"]))
    if s["breaker_open_s_by_call"]:
        rows.append(("circuit breakers open (s)", s["breaker_open_s"]))
    if s["peak_instances"] is not None and s["peak_instances"] > 1:
        rows.append(("peak instances", s["peak_instances"]))
    if s["stranded_requests"]:
        rows.append(("requests to a lost site", s["stranded_requests"]))
    if s["failovers"]:
        rows.append(("lost writes", s["lost_writes"]))
    for label, seconds in s["recovery_time_s"].items():
        rows.append((f"recovery {label} (s)", "not recovered" if seconds is None else seconds))
    return rows


def delivery_rows(summary: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """KPI rows of delivery and service: (name, value, kind) with kind "pct" or ""."""
    s = summary
    rows: list[tuple[str, Any, str]] = [
        ("on-time delivery rate", s["on_time_delivery_rate"], "pct"),
        ("next-day delivery rate", s["next_day_delivery_rate"], "pct"),
        ("shipped within 72 h", s["ship_within_72h_rate"], "pct"),
        ("delivery time p50 / p95 (h)", _pair(s["delivery_time_h"]), ""),
    ]
    peaks = " / ".join(
        format_estimate(n, "{:,.0f}".format) for n in s["warehouse_peak_backlog"].values()
    )
    rows.append(("warehouse peak backlog (orders)", peaks, ""))
    if s["shipped_from_other_region"]:
        rows.append(("orders shipped from another region", s["shipped_from_other_region"], ""))
    if s["tracking_lag_h"] is not None:
        rows.append(("tracking lag p50 / p95 (h)", _pair(s["tracking_lag_h"]), ""))
    wait = s["cs_wait_s"]
    if wait is not None:
        asked = " / ".join(
            format_estimate(s[k], "{:,.0f}".format) for k in ("cs_enquiries", "cs_deflected")
        )
        rows += [
            ("CS enquiries / answered by bot", asked, ""),
            ("CS wait mean / p95 (s)", _pair(wait, ("mean", "p95"), "{:,.0f}"), ""),
            ("CS wait in the busiest hour (s)", s["cs_busiest_hour_wait_s"], ""),
            ("CS abandon rate", s["cs_abandon_rate"], "pct"),
        ]
    return rows


def _pair(q: dict[str, Any], keys: tuple[str, str] = ("p50", "p95"), form: str = "{:,.1f}"):
    """Two figures of a quantile dict, as "a / b" ("-" for none)."""
    texts = []
    for k in keys:
        v = q[k]
        texts.append("-" if v is None or math.isnan(v) else format_estimate(v, form.format))
    return " / ".join(texts)
