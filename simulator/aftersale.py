"""Figures of what follows payment: warehouses, delivery, tracking, customer service.

The sale's own time series is per second over the sale; these run for days after it,
so they come per hour, in their own table (``SimulationResult.logistics``, written as
``logistics.parquet``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.components.roster import HOUR_S
from simulator.components.tracking import BIN_S
from simulator.estimates import format_estimate
from simulator.metrics import ratio

if TYPE_CHECKING:
    from simulator.campaign import Campaign

__all__ = ["delivery_rows", "fulfilment_figures", "logistics_table"]


def fulfilment_figures(campaign: Campaign) -> dict[str, Any]:
    """Delivery promises kept, warehouse backlogs, tracking lag and service KPIs."""
    fulfilment = campaign.fulfilment
    delivered = fulfilment.delivery_h
    orders = delivered.count
    tracking = fulfilment.tracking
    figures: dict[str, Any] = {
        "on_time_delivery_rate": ratio(fulfilment.on_time, orders),
        "next_day_delivery_rate": ratio(fulfilment.next_day, orders),
        "ship_within_72h_rate": ratio(fulfilment.shipped_in_72h, orders),
        "delivery_time_h": delivered.summary(0.5, 0.95),
        "ship_time_h": fulfilment.ship_h.summary(0.5, 0.95),
        "shipped_from_other_region": fulfilment.away,
        "warehouse_peak_backlog": {w.name: w.stats.peak_inside for w in fulfilment.warehouses},
        "warehouse_orders": {w.name: w.stats.arrivals for w in fulfilment.warehouses},
        "warehouse_capacity_per_h": {
            w.name: ratio(w.roster.most, w.hours_per_order) for w in fulfilment.warehouses
        },
        "warehouse_backlog_cleared_at_s": {
            w.name: w.queue.closed_at for w in fulfilment.warehouses
        },
        "tracking_lag_h": None
        if tracking is None
        else {
            "p50": tracking.lag_quantile(0.5) / HOUR_S,
            "p95": tracking.lag_quantile(0.95) / HOUR_S,
            "mean": tracking.lag_mean() / HOUR_S,
            "max": float(tracking.lag_s.max(initial=0.0)) / HOUR_S,
        },
    }
    service = campaign.service
    if service is not None:
        figures.update(service.figures())
    else:
        figures.update({"cs_wait_s": None, "cs_abandon_rate": None})
    return figures


def logistics_table(campaign: Campaign) -> pd.DataFrame:
    """One row per hour from t = 0 to the last delivery (or the last enquiry served).

    Per warehouse: orders received, packed and collected, the backlog (orders received
    and not yet packed) at the end of the hour, and pickers on duty at its start. Then
    parcels delivered, the tracking lag of the hour's updates and the messages queued
    at its end, and customer service: enquiries, those that reached an agent, answered,
    abandoned, the mean wait of those answered, and agents on duty.
    """
    fulfilment, service = campaign.fulfilment, campaign.service
    end = max(fulfilment.last_delivery_s, campaign.env.now)
    if service is not None:
        end = max(end, service.queue.closed_at)
    n = max(1, math.ceil(end / HOUR_S))
    t = np.arange(n) * HOUR_S
    columns: dict[str, Any] = {"t_s": t}
    for w in fulfilment.warehouses:
        received, packed = w.received.padded(n), w.packed.padded(n)
        columns[f"{w.name}_received"] = received.astype(np.int64)
        columns[f"{w.name}_packed"] = packed.astype(np.int64)
        columns[f"{w.name}_shipped"] = w.shipped.padded(n).astype(np.int64)
        columns[f"{w.name}_backlog"] = np.cumsum(received - packed).astype(np.int64)
        columns[f"{w.name}_pickers"] = [w.roster.on_duty(x) for x in t]
    columns["delivered"] = fulfilment.delivered.padded(n).astype(np.int64)
    tracking = fulfilment.tracking
    if tracking is not None:
        per_hour = int(HOUR_S / BIN_S)
        bins = n * per_hour
        counts = np.zeros(bins)
        lag = np.zeros(bins)
        backlog = np.zeros(bins)
        k = min(bins, len(tracking.counts))
        counts[:k], lag[:k], backlog[:k] = (
            tracking.counts[:k],
            tracking.lag_s[:k],
            tracking.backlog[:k],
        )
        hourly_counts = counts.reshape(n, per_hour).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns["tracking_lag_h"] = (
                (counts * lag).reshape(n, per_hour).sum(axis=1) / hourly_counts / HOUR_S
            )
        columns["tracking_updates"] = hourly_counts.astype(np.int64)
        columns["tracking_queue"] = backlog.reshape(n, per_hour)[:, -1]
    if service is not None:
        for name, counter in service.hourly.items():
            columns[name] = counter.padded(n).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns["cs_wait_mean_s"] = service.hourly_wait.padded(n) / columns["cs_answered"]
        columns["cs_agents"] = [service.queue.roster.on_duty(x) for x in t]
    return pd.DataFrame(columns)


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
