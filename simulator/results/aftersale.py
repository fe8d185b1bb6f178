"""Figures of what follows payment: warehouses, delivery, tracking, customer service.

The sale's own time series is per second over the sale; these run for days after it,
so they come per hour, in their own table (``SimulationResult.logistics``, written as
``logistics.parquet``). Both read the record's :class:`~simulator.model.record.Logistics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from simulator.measure.metrics import ratio
from simulator.model.record import HOUR_S, Logistics

__all__ = ["fulfilment_figures", "logistics_table"]


def fulfilment_figures(logistics: Logistics) -> dict[str, Any]:
    """Delivery promises kept, warehouse backlogs, tracking lag and service KPIs."""
    delivery = logistics.delivery
    orders = delivery.delivery_h.count
    warehouses = logistics.warehouses
    figures: dict[str, Any] = {
        "on_time_delivery_rate": ratio(delivery.on_time, orders),
        "next_day_delivery_rate": ratio(delivery.next_day, orders),
        "ship_within_72h_rate": ratio(delivery.shipped_in_72h, orders),
        "delivery_time_h": delivery.delivery_h.summary(0.5, 0.95),
        "ship_time_h": delivery.ship_h.summary(0.5, 0.95),
        "shipped_from_other_region": delivery.shipped_from_other_region,
        "warehouse_peak_backlog": {w.name: w.peak_backlog for w in warehouses},
        "warehouse_orders": {w.name: w.orders for w in warehouses},
        "warehouse_capacity_per_h": {w.name: w.capacity_per_h for w in warehouses},
        "warehouse_backlog_cleared_at_s": {w.name: w.backlog_cleared_at_s for w in warehouses},
        "tracking_lag_h": logistics.tracking_lag_h,
    }
    if logistics.service is not None:
        figures.update(logistics.service)
    else:
        figures.update({"cs_wait_s": None, "cs_abandon_rate": None})
    return figures


def logistics_table(logistics: Logistics) -> pd.DataFrame:
    """One row per hour from t = 0 to the last delivery (or the last enquiry served).

    Per warehouse: orders received, packed and collected, the backlog (orders received
    and not yet packed) at the end of the hour, and pickers on duty at its start. Then
    parcels delivered, the tracking lag of the hour's updates and the messages queued
    at its end, and customer service: enquiries, those that reached an agent, answered,
    abandoned, the mean wait of those answered, and agents on duty.
    """
    n = logistics.hours
    columns: dict[str, Any] = {"t_s": np.arange(n) * HOUR_S}
    for w in logistics.warehouses:
        received, packed = w.received, w.packed
        columns[f"{w.name}_received"] = received.astype(np.int64)
        columns[f"{w.name}_packed"] = packed.astype(np.int64)
        columns[f"{w.name}_shipped"] = w.shipped.astype(np.int64)
        columns[f"{w.name}_backlog"] = np.cumsum(received - packed).astype(np.int64)
        columns[f"{w.name}_pickers"] = w.pickers
    columns["delivered"] = logistics.delivered.astype(np.int64)
    if logistics.tracking_bins is not None:
        counts, lag, backlog = logistics.tracking_bins
        per_hour = len(counts) // n
        hourly_counts = counts.reshape(n, per_hour).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns["tracking_lag_h"] = (
                (counts * lag).reshape(n, per_hour).sum(axis=1) / hourly_counts / HOUR_S
            )
        columns["tracking_updates"] = hourly_counts.astype(np.int64)
        columns["tracking_queue"] = backlog.reshape(n, per_hour)[:, -1]
    if logistics.service is not None:
        for name, counts in logistics.service_hourly.items():
            columns[name] = counts.astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns["cs_wait_mean_s"] = logistics.service_wait_s / columns["cs_answered"]
        columns["cs_agents"] = logistics.agents
    return pd.DataFrame(columns)
