"""The result of a run: the KPI summary, the time series, and how they are written.

``summary.json`` is the contract other tools read (see ``DESIGN.md``): session counts
by outcome, the business figures, the system figures, per-station statistics and the
provenance (the scenario as resolved, the seed, the package versions). It holds no
wall-clock time, so the same scenario and seed give the same file, byte for byte.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.aftersale import fulfilment_figures, logistics_table
from simulator.estimates import format_estimate
from simulator.metrics import ratio
from simulator.outcomes import Outcome
from simulator.recovery import fault_label, recovery
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.campaign import Campaign

__all__ = [
    "SimulationResult",
    "business_rows",
    "difference_cells",
    "fmt_grid_value",
    "fmt_kpi",
    "kpi_kind",
    "protection_rows",
    "summarise",
    "to_json",
]

_PACKAGES = ("campaign-sim", "simpy", "numpy", "pandas", "pydantic", "scipy", "pyarrow")


@dataclass
class SimulationResult:
    """One replication's figures.

    Attributes:
        scenario: the scenario as run.
        summary: KPIs and provenance, as written to ``summary.json``.
        timeseries: one row per interval, as written to ``timeseries.parquet``.
        orders: one row per paid order (``orders.parquet``), or None.
    """

    scenario: Scenario
    summary: dict[str, Any]
    timeseries: pd.DataFrame = field(repr=False)
    orders: pd.DataFrame | None = field(default=None, repr=False)
    """One row per paid order, when the run was asked to keep them (``keep_orders``)."""
    logistics: pd.DataFrame | None = field(default=None, repr=False)
    """One row per hour to the last delivery: warehouses, tracking, customer service."""

    def plot_traffic(self, ax: Axes | None = None) -> Axes:
        """Sessions arriving per second and requests shed, faults shaded."""
        from simulator.plots import plot_traffic

        return plot_traffic(self, ax)

    def plot_latency(self, ax: Axes | None = None) -> Axes:
        """Checkout latency p50 / p95 / p99 per interval, faults shaded."""
        from simulator.plots import plot_latency

        return plot_latency(self, ax)

    def plot_cache(self, ax: Axes | None = None) -> Axes:
        """Cache hit ratio and database queries per second, faults shaded."""
        from simulator.plots import plot_cache

        return plot_cache(self, ax)

    def plot_payments(self, ax: Axes | None = None) -> Axes:
        """Payment success rate, overall and per channel, faults shaded."""
        from simulator.plots import plot_payments

        return plot_payments(self, ax)

    def plot_logistics(self, ax: Axes | None = None) -> Axes:
        """Warehouse backlogs, deliveries and tracking lag per hour."""
        from simulator.plots import plot_logistics

        return plot_logistics(self, ax)

    def write(self, out_dir: str | Path, report: bool = True) -> Path:
        """Write the summary, the tables and the report; return the folder.

        Files: ``summary.json``, ``timeseries.parquet``, ``logistics.parquet``,
        ``orders.parquet`` (when kept) and ``report.html``.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(to_json(self.summary) + "\n", encoding="utf-8")
        self.timeseries.to_parquet(out / "timeseries.parquet", index=False)
        if self.logistics is not None:
            self.logistics.to_parquet(out / "logistics.parquet", index=False)
        if self.orders is not None:
            self.orders.to_parquet(out / "orders.parquet", index=False)
        if report:
            from simulator.report import write_report  # matplotlib only when needed

            write_report(self, out / "report.html")
        return out


def to_json(value: Any) -> str:
    """Serialise a summary: NaN and infinities become null, numpy scalars plain numbers."""
    return json.dumps(_clean(value), indent=2, allow_nan=False)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def summarise(
    campaign: Campaign, declared: Scenario, seed: int, replication: int
) -> SimulationResult:
    """Collect a finished campaign's figures into a :class:`SimulationResult`.

    Args:
        campaign: the finished campaign (its scenario is the one simulated).
        declared: the scenario as given, before ``scale`` was applied.
        seed: the run's seed.
        replication: the replication index.
    """
    scenario, shop, env = campaign.scenario, campaign.shop, campaign.env
    money = 1 / declared.scale  # money totals are reported at the declared size
    interval = scenario.timeseries_interval_s
    end_s = env.now
    stations = {s.name: s.summary(end_s) for s in campaign.service_stations()}
    queues = [w.queue for w in campaign.fulfilment.warehouses]
    if campaign.service is not None:
        queues.append(campaign.service.queue)
    for queue in queues:
        stations[queue.stats.name] = queue.stats.summary(queue.closed_at)

    sessions = sum(shop.outcomes)
    orders = shop.outcomes[Outcome.ORDERED]
    cache, database, keys = campaign.cache, campaign.database, campaign.keys
    hits, misses = cache.hit_count, cache.miss_count
    attempts = sum(sum(c.attempts.values) for c in campaign.payment)
    successes = sum(sum(c.successes.values) for c in campaign.payment)
    for guard in campaign.guards.values():
        if guard.breaker is not None:
            guard.breaker.close_books(end_s)
    timeseries = _timeseries(campaign, end_s, money)

    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": seed,
        "replication": replication,
        "sessions": sessions,
        "outcomes": {o.label: shop.outcomes[o] for o in Outcome},
        "orders": orders,
        "scale": declared.scale,
        "gmv": shop.ledger.gmv * money,
        "aov": ratio(shop.ledger.gmv, orders),
        "conversion_rate": ratio(orders, sessions),
        **_business(campaign, money),
        "checkout_latency_ms": shop.checkout_latency.summary(0.5, 0.95, 0.99),
        "page_latency_ms": {
            k: (v * 1000 if k != "count" else v)
            for k, v in shop.page_latency.summary(0.5, 0.95, 0.99).items()
        },
        "cache_hit_ratio": ratio(hits, hits + misses),
        "cache_hit_ratio_by_level": cache.hit_ratio_by_level(),
        "cache_hits": hits,
        "cache_misses": misses,
        "cache_stale_hits": cache.stale_hits,
        "cache_early_recomputes": cache.early_recomputes,
        "cache_coalesced_waits": cache.coalesced,
        "cache_blocked_by_bloom_filter": cache.blocked,
        "missing_key_lookups": cache.missing_lookups,
        "missing_key_db_reads": cache.missing_rebuilds,
        "max_concurrent_rebuilds": cache.max_concurrent_rebuilds,
        "max_concurrent_rebuilds_key": (
            None if cache.max_rebuilds_key is None else keys.label(cache.max_rebuilds_key)
        ),
        "max_concurrent_rebuilds_at_s": cache.max_rebuilds_at_s,
        "db_peak_qps": max(database.queries.values, default=0) / interval,
        "db_queries": int(sum(database.queries.values)),
        "db_reads": database.reads,
        "db_writes": database.writes,
        "db_pool_timeouts": int(sum(database.pool_timeouts.values)),
        "db_pool_wait_ms": _pool_wait_ms(database),
        "payment_success_rate": ratio(successes, attempts),
        "payment_attempts": int(attempts),
        "payment_success_by_channel": {
            c.name: ratio(sum(c.successes.values), sum(c.attempts.values)) for c in campaign.payment
        },
        "payment_timeouts": sum(c.timeouts for c in campaign.payment),
        "payment_declined": sum(c.declined for c in campaign.payment),
        "payment_unavailable": sum(c.unavailable for c in campaign.payment),
        **fulfilment_figures(campaign),
        "peak_arrivals_per_s": max(campaign.arrivals.values, default=0) / interval,
        "items_sold_out": campaign.stock.sold_out_keys(),
        "stock_units_sold": _units_sold(campaign.stock),
        **_resilience(campaign, timeseries),
        "stations": stations,
        "run": {
            "sessions_ended_at_s": campaign.sessions_ended_at_s,
            "stations_idle_at_s": end_s,
            "last_delivery_at_s": campaign.fulfilment.last_delivery_s,
            "events": _events_scheduled(env),
        },
        "provenance": {
            "scenario": declared.model_dump(mode="json"),
            "seed": seed,
            "replication": replication,
            "versions": _versions(),
        },
    }
    return SimulationResult(
        declared, summary, timeseries, shop.ledger.order_table(), logistics_table(campaign)
    )


def _units_sold(stock: Any) -> int | None:
    """Units handed out of counted stock (None when every key is unlimited)."""
    counted = [t for n, t in zip(stock.initial, stock.taken, strict=True) if n is not None]
    return sum(counted) if counted else None


def _business(campaign: Campaign, money: float) -> dict[str, Any]:
    """Promotions, stock correctness, coupons, payment failover, and the funnel."""
    scenario, shop = campaign.scenario, campaign.shop
    stock, ledger, payments = campaign.stock, shop.ledger, campaign.payments
    quotas = [q for q in shop.commerce.quotas if q is not None]
    issued = sum(sum(q.taken) for q in quotas)
    quota = sum(n or 0 for q in quotas for n in q.initial)
    figures = ledger.figures(stock.oversold(), scenario.inventory.oversell_compensation_cny, money)
    events = scenario.event_starts()
    commerce = shop.commerce
    sold_out_at = {
        event.name: stock.sold_out_at.get(key)
        for (event, _), key in zip(events, commerce.event_keys, strict=True)
        if key >= 0
    }
    split = commerce.warehouses
    for h, hot in enumerate(campaign.keys.hot_names):
        first = (campaign.keys.hot_start + h) * split
        keys = range(first, first + split)
        if stock.initial[first] is not None:  # counted in every warehouse or in none
            times = [stock.sold_out_at.get(k) for k in keys]
            sold_out_at[hot] = None if None in times else max(t for t in times if t is not None)
    lost_to_outage = {c.name: len(c.lost_to_outage) for c in payments.channels}
    return {
        **figures,
        "lost_gmv_total": sum(figures["lost_gmv"].values()),
        "sold_out_at_s": sold_out_at,
        "deduction": _deduction(stock),
        "coupon_deduction": {
            e.name: _deduction(q)
            for (e, _), q in zip(events, commerce.quotas, strict=True)
            if q is not None
        },
        "coupon_claims": shop.claims,
        "coupon_claim_failures": shop.claim_failures,
        "coupons_issued": issued,
        "coupon_quota": quota,
        "coupons_over_issued": sum(sum(q.oversold()) for q in quotas),
        "payments_lost_to_outage": sum(lost_to_outage.values()),
        "payments_lost_to_outage_by_channel": lost_to_outage,
        "payments_rerouted": payments.rerouted,
        "payments_confirmed_late": sum(c.confirmed_late for c in payments.channels),
        "payment_failovers": [
            {"channel": name, "breaker_opened_at_s": opened, "switched_at_s": switched}
            for name, opened, switched in payments.switches
        ],
        "funnel": _funnel(ledger.funnel, [s.name for s in scenario.segments]),
    }


def _deduction(stock: Any) -> dict[str, Any]:
    """How a counted resource's takes went: refusals, lock trouble, queue lag."""
    return {
        "mode": stock.mode,
        "refused": stock.refused,
        "leases_expired": stock.leases_expired,
        "grants_not_exclusive": stock.grants_not_exclusive,
        "lock_timeouts": stock.lock_timeouts,
        "queue_peak": stock.queue_peak,
        "shortfalls_found": stock.shortfalls,
    }


def _funnel(counts: list[list[int]], names: list[str]) -> dict[str, Any]:
    """Browse -> cart -> order -> paid, overall and per segment, with stage conversions."""

    def stages(c: list[int]) -> dict[str, Any]:
        browse, cart, order, paid = c
        return {
            "browse": browse,
            "cart": cart,
            "order": order,
            "paid": paid,
            "browse_to_cart": ratio(cart, browse),
            "cart_to_paid": ratio(paid, cart),
            "browse_to_paid": ratio(paid, browse),
        }

    total = [sum(c[i] for c in counts) for i in range(4)]
    return {"all": stages(total), **{n: stages(c) for n, c in zip(names, counts, strict=True)}}


def _resilience(campaign: Campaign, timeseries: pd.DataFrame) -> dict[str, Any]:
    """The protections' and the faults' figures."""
    scenario, gateway, guards = campaign.scenario, campaign.gateway, campaign.guards
    spike = scenario.traffic.spike
    first_shed = gateway.first_shed_s
    breakers = {name: g.breaker for name, g in guards.items() if g.breaker is not None}
    user_retries = int(sum(campaign.shop.refreshes.values))
    retries = {name: g.retry_count for name, g in guards.items()} | {"users": user_retries}
    routing = campaign.routing
    shop = campaign.shop
    checkouts = shop.checkout_windows or []
    faults = []
    for fault in scenario.faults:
        faults.append(
            {
                "label": fault_label(fault),
                "kind": fault.kind,
                "at_s": fault.at_s,
                "duration_s": getattr(fault, "duration_s", None),
                "recovery_time_s": recovery(
                    timeseries, checkouts, fault, scenario.duration_s, shop.window_s
                ),
            }
        )
    return {
        "requests_shed": gateway.shed_count,
        "time_to_limit_s": (
            None if first_shed is None or spike is None else first_shed - spike.start_s
        ),
        "recovery_time_s": {f["label"]: f["recovery_time_s"] for f in faults},
        "lost_writes": campaign.database.lost_writes,
        "breaker_open_s": sum(b.open_s for b in breakers.values()),
        "breaker_open_s_by_call": {name: b.open_s for name, b in breakers.items()},
        "breaker_opened": {name: b.times_opened for name, b in breakers.items()},
        "retries": sum(retries.values()),
        "retries_by_source": retries,
        "calls_failed_fast": {name: g.failed_fast for name, g in guards.items()},
        "call_timeouts": {name: g.timeouts for name, g in guards.items()},
        "calls_degraded": {name: g.skipped for name, g in guards.items()},
        "peak_instances": None if campaign.autoscaler is None else gateway.peak_instances,
        "stranded_requests": 0 if routing is None else routing.stranded_count,
        "stranded_until_s": (
            {}
            if routing is None
            else {
                name: t
                for name, t in zip(routing.names, routing.last_stranded_s, strict=True)
                if not math.isnan(t)
            }
        ),
        "failovers": [
            {"died_at_s": died, "standby_serving_at_s": serving}
            for died, serving in campaign.database.failures
        ],
        "faults": faults,
    }


def fmt_kpi(value: Any, kind: str = "") -> str:
    """A KPI as printed: "-" for none; kind "pct" as a percentage, "cny" whole yuan.

    A replicated KPI (an :class:`~simulator.estimates.Estimate`) prints as its mean
    followed by its confidence interval, ``mean [low, high]``.
    """
    return format_estimate(value, lambda v: _fmt(v, kind))


_FRACTIONS = ("rate", "ratio", "fraction", "utilisation")
_SHARES = ("payment_success_by_channel.", "cache_hit_ratio_by_level.")
_MONEY = (
    "gmv",
    "margin",
    "cost",
    "cny",
    "refunds",
    "aov",
    "net_sales",
    "deposits_forfeited",
    "compensation",
)


def kpi_kind(kpi: str) -> str:
    """How a KPI prints, from its dotted name: fractions as "pct", money as "cny"."""
    leaf = kpi.rsplit(".", 1)[-1]
    funnel_ratio = kpi.startswith("funnel.") and "_to_" in leaf  # e.g. browse_to_paid
    if leaf.endswith(_FRACTIONS) or funnel_ratio or kpi.startswith(_SHARES):
        return "pct"
    if any(word in kpi for word in _MONEY):
        return "cny"
    return ""


def fmt_grid_value(value: Any) -> str:
    """A swept field's value as printed: numbers short (``%g``), anything else as text."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def difference_cells(row: Mapping[Any, Any], kind: str) -> tuple[str, str, str, str]:
    """A comparison row (see ``estimates.difference``) as printed: A, B, B - A, [low, high].

    Missing values (NaN) print as "-".
    """

    def cell(key: str) -> str:
        value = row[key]
        return fmt_kpi(value if math.isfinite(value) else None, kind)

    return (
        cell("a_mean"),
        cell("b_mean"),
        cell("difference"),
        f"[{cell('ci_low')}, {cell('ci_high')}]",
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


def _pool_wait_ms(database: Any) -> dict[str, float | None]:
    """Mean wait for a connection over all queries, and in the worst interval."""
    n = len(database.started.values)
    waited, started = database.pool_wait_s.padded(n), database.started.padded(n)
    worst = max((w / c for w, c in zip(waited, started, strict=True) if c), default=0.0)
    return {"mean": ratio(waited.sum() * 1000, started.sum()), "worst_interval": worst * 1000}


def _events_scheduled(env: Any) -> int | None:
    """Events SimPy scheduled in the run (its private event-id counter; None if absent)."""
    counter = getattr(env, "_eid", None)
    return next(counter) if counter is not None else None


def _timeseries(campaign: Campaign, end_s: float, money: float) -> pd.DataFrame:
    scenario, shop = campaign.scenario, campaign.shop
    interval = scenario.timeseries_interval_s
    n = max(math.ceil(end_s / interval), math.ceil(scenario.duration_s / interval))
    columns: dict[str, Any] = {"t_s": np.arange(n) * interval}
    arrivals = campaign.arrivals.padded(n)
    columns["arrivals"] = arrivals.astype(np.int64)
    columns["arrival_rate_per_s"] = arrivals / interval
    for o in Outcome:
        columns[f"outcome_{o.label}"] = shop.outcome_series[o].padded(n).astype(np.int64)
    quantiles = shop.checkout_series.table(n)
    for j, q in enumerate(shop.checkout_series.quantiles):
        columns[f"checkout_p{round(q * 100)}_ms"] = quantiles[:, j]
    cache, database = campaign.cache, campaign.database
    hits, misses = cache.hits.padded(n), cache.misses.padded(n)
    columns["cache_hits"] = hits.astype(np.int64)
    columns["cache_misses"] = misses.astype(np.int64)
    columns["cache_rebuilds"] = cache.rebuilds.padded(n).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        columns["cache_hit_ratio"] = hits / (hits + misses)
        for level in cache.levels:
            level_hits = level.hits.padded(n)
            level_misses = level.misses.padded(n)
            columns[f"cache_hit_ratio_{level.name}"] = level_hits / (level_hits + level_misses)
        queries = database.queries.padded(n)
        columns["db_queries"] = queries.astype(np.int64)
        columns["db_qps"] = queries / interval
        columns["db_pool_timeouts"] = database.pool_timeouts.padded(n).astype(np.int64)
        columns["db_pool_wait_ms"] = (
            database.pool_wait_s.padded(n) * 1000 / database.started.padded(n)
        )
        busy = [_utilisation(i.stats, n, end_s) for i in database.instances]
        columns["db_utilisation"] = np.mean(busy, axis=0)
        columns["db_utilisation_busiest"] = np.max(busy, axis=0)  # one hot shard shows
        columns["gateway_utilisation"] = (
            _utilisation(campaign.gateway.stats, n, end_s)
            if campaign.gateway.stats
            else np.full(n, np.nan)
        )
        attempts = np.sum([c.attempts.padded(n) for c in campaign.payment], axis=0)
        successes = np.sum([c.successes.padded(n) for c in campaign.payment], axis=0)
        columns["payment_attempts"] = attempts.astype(np.int64)
        columns["payment_successes"] = successes.astype(np.int64)
        columns["payment_success_rate"] = successes / attempts
        for channel in campaign.payment:
            columns[f"payment_attempts_{channel.name}"] = channel.attempts.padded(n).astype(int)
            columns[f"payment_successes_{channel.name}"] = channel.successes.padded(n).astype(int)
    gateway = campaign.gateway
    if gateway.stats is not None:
        workers = np.array(gateway.stats.servers_by_interval(n))
        columns["gateway_workers"] = workers
        columns["gateway_instances"] = workers / gateway.workers_per_instance
    columns["requests_shed"] = (
        gateway.shed.padded(n).astype(np.int64) if gateway.stats else np.zeros(n, np.int64)
    )
    retries = shop.refreshes.padded(n)
    for guard in campaign.guards.values():
        retries = retries + guard.retries.padded(n)
        if guard.breaker is not None:
            open_s = guard.breaker.open_by_interval[:n]
            columns[f"breaker_open_{guard.name}"] = np.pad(open_s, (0, n - len(open_s))) / interval
    columns["retries"] = retries.astype(np.int64)
    if campaign.routing is not None:
        columns["stranded_requests"] = campaign.routing.stranded.padded(n).astype(np.int64)
    columns["orders"] = shop.outcome_series[Outcome.ORDERED].padded(n).astype(np.int64)
    columns["gmv_cny"] = shop.ledger.gmv_series.padded(n) * money
    return pd.DataFrame(columns)


def _utilisation(stats: Any, n: int, end_s: float) -> np.ndarray:
    return np.array(stats.utilisation_by_interval(end_s, n))
