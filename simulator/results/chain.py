"""The chain of causes: which part of the shop gave way first, when, and what it cost.

A sale's failures rarely come alone. The launch spike finds a hot key expired, the
rebuilds pile onto the database, checkouts slow and users refresh, a payment channel
queues, and the orders that got through pile into one warehouse, which misses the
next-day promise and fills the customer-service queue. This module reads one run's
figures and tells that story as a timeline: each link is a part of the shop, the first
time its own measurement crossed a threshold (never the scenario's configuration), and
what that link cost in orders and money.

The thresholds: traffic twice its opening minute's rate; a stampede, rebuilds of one
key at once as many as the database has connections; a station busy 95% of an interval
(``SATURATED``) or turning work away; a payment finding every slot busy; a warehouse
backlog it cannot pack within the hour; customers waiting longer than the service
target. Each link's cost counts only what its own component decided: orders lost to
database errors, to a full or slow front end, to payment timeouts; parcels that miss
next-day delivery; enquiries abandoned unanswered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simulator.model.record import HOUR_S

__all__ = ["SATURATED", "Link", "chain_of_causes", "chain_table"]

SATURATED = 0.95
"""Busy share of an interval at which a station counts as saturated."""

_FRONT = ("rejected", "abandoned", "rate_limited", "slow_pages")


@dataclass(frozen=True, slots=True)
class Link:
    """One part of the shop giving way."""

    component: str
    at_s: float
    what: str  # the measured evidence, in words
    orders_lost: float | None = None  # orders (or parcels, enquiries: see ``unit``)
    unit: str = "orders"
    cny: float | None = None  # money it cost, CNY at full size


def chain_of_causes(
    summary: dict[str, Any], timeseries: pd.DataFrame, logistics: pd.DataFrame | None
) -> list[Link]:
    """The links of one run's chain that happened, in the order they first happened.

    Args:
        summary: a single run's summary (not a replicated one).
        timeseries: its per-interval table.
        logistics: its hourly after-sale table, if it has one.
    """
    t = timeseries["t_s"].to_numpy()
    links = [
        _traffic(t, timeseries),
        _cache(summary),
        _database(t, timeseries, summary),
        _front_end(t, timeseries, summary),
        *_payments(t, timeseries, summary),
    ]
    if logistics is not None and len(logistics):
        links += [_warehouses(logistics, summary), _service(logistics, summary)]
    return sorted((link for link in links if link is not None), key=lambda link: link.at_s)


def chain_table(links: list[Link]) -> pd.DataFrame:
    """The chain as a table: one row per link, in time order."""
    return pd.DataFrame(
        [
            {
                "component": link.component,
                "first_at_s": link.at_s,
                "what": link.what,
                "lost": link.orders_lost,
                "lost_unit": link.unit,
                "cny": link.cny,
            }
            for link in links
        ],
        columns=["component", "first_at_s", "what", "lost", "lost_unit", "cny"],
    )


def _first(t: np.ndarray, when: pd.Series) -> float | None:
    hits = np.flatnonzero(when.to_numpy())
    return float(t[hits[0]]) if len(hits) else None


def _traffic(t: np.ndarray, ts: pd.DataFrame) -> Link | None:
    rate = ts["arrival_rate_per_s"]
    opening = float(rate[ts["t_s"] < 60].mean())
    at = _first(t, rate >= 2 * opening) if opening > 0 else None
    if at is None:
        return None
    return Link(
        "traffic",
        at,
        f"arrivals rose from {opening:,.0f}/s to a peak of {rate.max():,.0f}/s",
    )


def _cache(s: dict[str, Any]) -> Link | None:
    at = s.get("cache_stampede_at_s")
    if at is None:
        return None
    return Link(
        "cache",
        at,
        "a key's rebuilds at once filled the database pool; the largest stampede, "
        f"{s['max_concurrent_rebuilds']:,} rebuilds of {s['max_concurrent_rebuilds_key']}, "
        f"came at {s['max_concurrent_rebuilds_at_s']:,.0f} s",
    )


def _database(t: np.ndarray, ts: pd.DataFrame, s: dict[str, Any]) -> Link | None:
    busy = ts["db_utilisation_busiest"] >= SATURATED
    at = _first(t, busy | (ts["db_pool_timeouts"] > 0))
    if at is None:
        return None
    errors = s["outcomes"].get("error", 0)
    return Link(
        "database",
        at,
        f"connections busy {SATURATED:.0%}+ in {int(busy.sum()):,} intervals; "
        f"{s['db_pool_timeouts']:,} queries timed out waiting for one",
        errors,
        cny=s["lost_gmv"].get("error", 0.0),
    )


def _front_end(t: np.ndarray, ts: pd.DataFrame, s: dict[str, Any]) -> Link | None:
    busy = ts["gateway_utilisation"] >= SATURATED
    turned_away = ts["outcome_rejected"] + ts["outcome_rate_limited"] > 0
    at = _first(t, busy | turned_away)
    if at is None:
        return None
    lost = sum(s["outcomes"].get(k, 0) for k in _FRONT)
    refreshes = int(ts["retries"].sum())
    return Link(
        "application servers",
        at,
        f"workers busy {SATURATED:.0%}+ in {int(busy.sum()):,} intervals; checkout p99 "
        f"peaked at {ts['checkout_p99_ms'].max():,.0f} ms; {refreshes:,} refreshes and "
        "retries",
        lost,
        cny=sum(s["lost_gmv"].get(k, 0.0) for k in _FRONT),
    )


def _payments(t: np.ndarray, ts: pd.DataFrame, s: dict[str, Any]) -> list[Link]:
    links = []
    aov = s["aov"] or 0.0
    for name in s["payment_success_by_channel"]:
        queued = ts.get(f"payment_queued_{name}")
        if queued is None:
            continue
        at = _first(t, queued > 0)
        if at is None:
            continue
        timeouts = s["stations"][f"payment.{name}"]["timed_out"]
        links.append(
            Link(
                f"payment: {name}",
                at,
                f"{int(queued.sum()):,} payments found every slot busy and queued; "
                f"{timeouts:,} timed out",
                timeouts,
                cny=timeouts * aov,
            )
        )
    return links


def _warehouses(hourly: pd.DataFrame, s: dict[str, Any]) -> Link | None:
    """Backlogs beyond an hour's packing, and the parcels that then miss next-day delivery.

    The hourly table gives backlogs at the end of each hour, so the link's time is the
    end of the first hour in which a warehouse held more than it packs in an hour.
    """
    ends = hourly["t_s"].to_numpy() + HOUR_S
    first: dict[str, float] = {}
    for name, per_h in s["warehouse_capacity_per_h"].items():
        backlog = hourly.get(f"{name}_backlog")
        if backlog is not None and per_h:
            at = _first(ends, backlog > per_h)
            if at is not None:
                first[name] = at
    if not first:
        return None
    hours = {n: s["warehouse_peak_backlog"][n] / s["warehouse_capacity_per_h"][n] for n in first}
    worst = max(hours, key=hours.__getitem__)
    missed = (1 - (s["next_day_delivery_rate"] or 1.0)) * s["orders"]
    return Link(
        "warehouses",
        min(first.values()),
        f"{worst}'s backlog peaked at {s['warehouse_peak_backlog'][worst]:,} orders, "
        f"{hours[worst]:,.1f} h of its packing; {1 - (s['next_day_delivery_rate'] or 1):.1%} "
        "of parcels missed next-day delivery",
        missed,
        "parcels late for next day",
        s["profit_and_loss"]["failures"]["late_parcel_compensation"],
    )


def _service(hourly: pd.DataFrame, s: dict[str, Any]) -> Link | None:
    waits = hourly.get("cs_wait_mean_s")
    target = s.get("cs_target_wait_s")
    if waits is None or target is None:
        return None
    at = _first(hourly["t_s"].to_numpy() + HOUR_S, waits.fillna(0) > target)
    if at is None:
        return None
    abandoned = int(hourly["cs_abandoned"].sum()) if "cs_abandoned" in hourly else math.nan
    return Link(
        "customer service",
        at,
        f"mean wait {waits.max():,.0f} s in the busiest hour against a {target:,.0f} s target",
        abandoned,
        "enquiries abandoned",
        s["profit_and_loss"]["operations"].get("agents", 0.0),
    )
