"""From a finished replication's record to its KPIs and time series.

:func:`summarise` turns the :class:`~simulator.model.record.RunRecord` a replication
hands over into ``summary.json``'s figures and the per-interval table; it reads the
record and nothing else of the model. :func:`simulate` is the public entry point: a
scenario in, a :class:`~simulator.results.result.SimulationResult` out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.measure.metrics import ratio
from simulator.measure.outcomes import Outcome
from simulator.measure.recovery import fault_label, recovery
from simulator.model import RunRecord, scale_notes
from simulator.model.record import Level
from simulator.results.aftersale import fulfilment_figures, logistics_table
from simulator.results.money import money_figures
from simulator.results.progress import run_with_progress
from simulator.results.provenance import Invocation, run_provenance, stamp
from simulator.results.result import SimulationResult
from simulator.scenario.loader import load_scenario
from simulator.scenario.schema import Scenario

__all__ = ["simulate", "summarise"]


def simulate(
    scenario: Scenario | str | Path | Mapping[str, Any],
    seed: int | None = None,
    replication: int = 0,
    keep_orders: bool = False,
    *,
    invocation: Invocation | None = None,
    progress: bool | None = False,
) -> SimulationResult:
    """Run one replication of a scenario.

    Args:
        scenario: a Scenario, or anything :func:`~simulator.load_scenario` accepts.
        seed: the run's seed; defaults to the scenario's ``seed``.
        replication: replication index; streams are keyed by it.
        keep_orders: keep one row per paid order in the result's ``orders`` table.
        progress: show a bar of the simulated clock against ``duration_s`` on stderr
            (None: on a terminal or in a notebook only); it does not change the results.
        invocation: the command that asked for the run, for its provenance (default:
            this call, as ``Python API: simulator.simulate(...)``).

    Returns:
        The result, with ``.summary`` (dict) and ``.timeseries`` (DataFrame).
    """
    if invocation is None:
        invocation = Invocation.python(
            "simulator.simulate",
            scenario,
            seed=seed,
            replication=replication or None,
            keep_orders=keep_orders or None,
        )
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    seed = scenario.seed if seed is None else seed
    result = summarise(run_with_progress(scenario, seed, replication, keep_orders, progress))
    stamp(result.summary, invocation, scenario)
    return result


def summarise(record: RunRecord) -> SimulationResult:
    """Collect a finished replication's figures into a :class:`SimulationResult`."""
    scenario, declared, sessions = record.scenario, record.declared, record.sessions
    money = record.money  # money totals are reported at the declared size
    interval = scenario.timeseries_interval_s
    outcomes = sessions.outcomes
    total = sum(outcomes)
    orders = outcomes[Outcome.ORDERED]
    cache, database, payments = record.cache, record.database, record.payments
    hits, misses = cache.hit_count, cache.miss_count
    attempts = sum(sum(c.attempts.values) for c in payments.channels)
    successes = sum(sum(c.successes.values) for c in payments.channels)
    timeseries = _timeseries(record)
    gmv = record.sales.gmv

    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": record.seed,
        "replication": record.replication,
        "sessions": total,
        "outcomes": {o.label: outcomes[o] for o in Outcome},
        "orders": orders,
        "scale": declared.scale,
        "scale_notes": [{"field": n.field, "note": n.note} for n in scale_notes(declared)],
        "gmv": gmv * money,
        "aov": ratio(gmv, orders),
        "conversion_rate": ratio(orders, total),
        **_business(record),
        **money_figures(record, record.sales.figures),
        "checkout_latency_ms": sessions.checkout_latency.summary(0.5, 0.95, 0.99),
        "page_latency_ms": {
            k: (v * 1000 if k != "count" else v)
            for k, v in sessions.page_latency.summary(0.5, 0.95, 0.99).items()
        },
        "cache_hit_ratio": ratio(hits, hits + misses),
        "cache_hit_ratio_by_level": {level.name: _hit_ratio(level) for level in cache.levels},
        "cache_hits": hits,
        "cache_misses": misses,
        "cache_stale_hits": cache.stale_hits,
        "cache_early_recomputes": cache.early_recomputes,
        "cache_coalesced_waits": cache.coalesced_waits,
        "cache_blocked_by_bloom_filter": cache.blocked_by_bloom_filter,
        "missing_key_lookups": cache.missing_key_lookups,
        "missing_key_db_reads": cache.missing_key_db_reads,
        "max_concurrent_rebuilds": cache.max_concurrent_rebuilds,
        "max_concurrent_rebuilds_key": cache.max_rebuilds_key,
        "max_concurrent_rebuilds_at_s": cache.max_rebuilds_at_s,
        "cache_stampede_at_s": cache.stampede_at_s,
        "db_peak_qps": max(database.queries.values, default=0) / interval,
        "db_queries": int(sum(database.queries.values)),
        "db_reads": database.reads,
        "db_writes": database.writes,
        "db_pool_timeouts": int(sum(database.pool_timeouts.values)),
        "db_pool_wait_ms": _pool_wait_ms(record),
        "payment_success_rate": ratio(successes, attempts),
        "payment_attempts": int(attempts),
        "payment_success_by_channel": {
            c.name: ratio(sum(c.successes.values), sum(c.attempts.values))
            for c in payments.channels
        },
        "payment_timeouts": sum(c.timeouts for c in payments.channels),
        "payment_declined": sum(c.declined for c in payments.channels),
        "payment_unavailable": sum(c.unavailable for c in payments.channels),
        **fulfilment_figures(record.logistics),
        "peak_arrivals_per_s": max(sessions.arrivals.values, default=0) / interval,
        "items_sold_out": record.sales.items_sold_out,
        "stock_units_sold": record.sales.stock_units_sold,
        **_resilience(record, timeseries),
        "stations": record.stations,
        "run": {
            "sessions_ended_at_s": record.sessions_ended_at_s,
            "stations_idle_at_s": record.end_s,
            "last_delivery_at_s": record.last_delivery_s,
            "events": record.events,
        },
        "provenance": run_provenance(declared, record.seed, record.replication),
    }
    return SimulationResult(
        declared, summary, timeseries, record.sales.orders, logistics_table(record.logistics)
    )


def _hit_ratio(level: Level) -> float | None:
    """A cache level's hits over the lookups that reached it."""
    hits, misses = sum(level.hits.values), sum(level.misses.values)
    return ratio(hits, hits + misses)


def _business(record: RunRecord) -> dict[str, Any]:
    """Promotions, stock correctness, coupons, payment failover, and the funnel."""
    sales, payments, sessions = record.sales, record.payments, record.sessions
    figures = sales.figures
    lost_to_outage = {c.name: c.lost_to_outage for c in payments.channels}
    return {
        **figures,
        "lost_gmv_total": sum(figures["lost_gmv"].values()),
        "sold_out_at_s": sales.sold_out_at_s,
        "deduction": sales.deduction.figures(),
        "coupon_deduction": {q.event: q.deduction.figures() for q in sales.quotas},
        "coupon_claims": sessions.claims,
        "coupon_claim_failures": sessions.claim_failures,
        "coupons_issued": sum(q.issued for q in sales.quotas),
        "coupon_quota": sum(q.quota for q in sales.quotas),
        "coupons_over_issued": sum(q.over_issued for q in sales.quotas),
        "payments_lost_to_outage": sum(lost_to_outage.values()),
        "payments_lost_to_outage_by_channel": lost_to_outage,
        "payments_rerouted": payments.rerouted,
        "payments_confirmed_late": sum(c.confirmed_late for c in payments.channels),
        "payment_failovers": [
            {"channel": name, "breaker_opened_at_s": opened, "switched_at_s": switched}
            for name, opened, switched in payments.switches
        ],
        "funnel": _funnel(sales.funnel, [s.name for s in record.scenario.segments]),
    }


def _funnel(counts: list[list[int]], names: list[str]) -> dict[str, Any]:
    """Browse -> cart -> order -> paid, overall and per segment, with stage conversions.

    ``buyers`` are the users who came meaning to buy (their plan ends in payment), and
    ``purchase_success`` the share of them who paid: what the shop's failures took
    from willing buyers, free of the funnel's own choices.
    """

    def stages(c: list[int]) -> dict[str, Any]:
        browse, cart, order, paid, buyers = c
        return {
            "browse": browse,
            "cart": cart,
            "order": order,
            "paid": paid,
            "buyers": buyers,
            "browse_to_cart": ratio(cart, browse),
            "cart_to_paid": ratio(paid, cart),
            "browse_to_paid": ratio(paid, browse),
            "purchase_success": ratio(paid, buyers),
        }

    total = [sum(c[i] for c in counts) for i in range(5)]
    return {"all": stages(total), **{n: stages(c) for n, c in zip(names, counts, strict=True)}}


def _resilience(record: RunRecord, timeseries: pd.DataFrame) -> dict[str, Any]:
    """The protections' and the faults' figures."""
    scenario, gateway, calls = record.scenario, record.gateway, record.calls
    spike = scenario.traffic.spike
    first_shed = gateway.first_shed_s
    breakers = {c.name: c.breaker for c in calls if c.breaker is not None}
    user_retries = int(sum(record.sessions.refreshes.values))
    retries = {c.name: c.retry_count for c in calls} | {"users": user_retries}
    sessions = record.sessions
    faults = []
    for fault in scenario.faults:
        faults.append(
            {
                "label": fault_label(fault),
                "kind": fault.kind,
                "at_s": fault.at_s,
                "duration_s": getattr(fault, "duration_s", None),
                "recovery_time_s": recovery(
                    timeseries,
                    sessions.checkout_windows,
                    fault,
                    scenario.duration_s,
                    sessions.window_s,
                ),
            }
        )
    return {
        "requests_shed": gateway.shed_count,
        "time_to_limit_s": (
            None if first_shed is None or spike is None else first_shed - spike.start_s
        ),
        "recovery_time_s": {f["label"]: f["recovery_time_s"] for f in faults},
        "lost_writes": record.database.lost_writes,
        "breaker_open_s": sum(b.open_s for b in breakers.values()),
        "breaker_open_s_by_call": {name: b.open_s for name, b in breakers.items()},
        "breaker_opened": {name: b.times_opened for name, b in breakers.items()},
        "retries": sum(retries.values()),
        "retries_by_source": retries,
        "calls_failed_fast": {c.name: c.failed_fast for c in calls},
        "call_timeouts": {c.name: c.timeouts for c in calls},
        "calls_degraded": {c.name: c.degraded for c in calls},
        "peak_instances": gateway.peak_instances,
        "stranded_requests": record.stranded_count,
        "stranded_until_s": record.stranded_until_s,
        "failovers": [
            {"died_at_s": died, "standby_serving_at_s": serving}
            for died, serving in record.database.failures
        ],
        "faults": faults,
    }


def _pool_wait_ms(record: RunRecord) -> dict[str, float | None]:
    """Mean wait for a connection over all queries, and in the worst interval."""
    database = record.database
    n = len(database.started.values)
    waited, started = database.pool_wait_s.padded(n), database.started.padded(n)
    worst = max((w / c for w, c in zip(waited, started, strict=True) if c), default=0.0)
    return {"mean": ratio(waited.sum() * 1000, started.sum()), "worst_interval": worst * 1000}


LATENCY_WINDOW_S = 60.0
"""Longest trailing window of the ``checkout_pXX_ms_trailing`` columns."""


def _timeseries(record: RunRecord) -> pd.DataFrame:
    scenario, sessions = record.scenario, record.sessions
    interval = scenario.timeseries_interval_s
    n = record.intervals
    columns: dict[str, Any] = {"t_s": np.arange(n) * interval}
    arrivals = sessions.arrivals.padded(n)
    columns["arrivals"] = arrivals.astype(np.int64)
    columns["arrival_rate_per_s"] = arrivals / interval
    for o in Outcome:
        columns[f"outcome_{o.label}"] = sessions.outcome_series[o].padded(n).astype(np.int64)
    quantiles = sessions.checkout_series.table(n)
    for j, q in enumerate(sessions.checkout_series.quantiles):
        columns[f"checkout_p{round(q * 100)}_ms"] = quantiles[:, j]
    window = sessions.checkout_series.window_table(n, max(1, round(LATENCY_WINDOW_S / interval)))
    for j, q in enumerate(sessions.checkout_series.quantiles):
        columns[f"checkout_p{round(q * 100)}_ms_trailing"] = window[:, j]
    cache, database, gateway = record.cache, record.database, record.gateway
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
        busy = database.utilisation
        columns["db_utilisation"] = np.mean(busy, axis=0)
        columns["db_utilisation_busiest"] = np.max(busy, axis=0)  # one hot shard shows
        columns["gateway_utilisation"] = (
            gateway.utilisation if gateway.utilisation is not None else np.full(n, np.nan)
        )
        channels = record.payments.channels
        attempts = np.sum([c.attempts.padded(n) for c in channels], axis=0)
        successes = np.sum([c.successes.padded(n) for c in channels], axis=0)
        columns["payment_attempts"] = attempts.astype(np.int64)
        columns["payment_successes"] = successes.astype(np.int64)
        columns["payment_success_rate"] = successes / attempts
        for channel in channels:
            columns[f"payment_attempts_{channel.name}"] = channel.attempts.padded(n).astype(int)
            columns[f"payment_successes_{channel.name}"] = channel.successes.padded(n).astype(int)
            columns[f"payment_queued_{channel.name}"] = channel.queued.padded(n).astype(int)
    if gateway.workers is not None:
        columns["gateway_workers"] = gateway.workers
        columns["gateway_instances"] = gateway.workers / gateway.workers_per_instance
    columns["requests_shed"] = (
        gateway.shed.padded(n).astype(np.int64)
        if gateway.shed is not None
        else np.zeros(n, np.int64)
    )
    retries = sessions.refreshes.padded(n)
    for call in record.calls:
        retries = retries + call.retries.padded(n)
        if call.breaker is not None:
            open_s = call.breaker.open_by_interval[:n]
            columns[f"breaker_open_{call.name}"] = np.pad(open_s, (0, n - len(open_s))) / interval
    columns["retries"] = retries.astype(np.int64)
    if record.stranded is not None:
        columns["stranded_requests"] = record.stranded.padded(n).astype(np.int64)
    columns["orders"] = sessions.outcome_series[Outcome.ORDERED].padded(n).astype(np.int64)
    columns["gmv_cny"] = record.sales.gmv_series.padded(n) * record.money
    return pd.DataFrame(columns)
