"""The hand-over at a replication's end: the components' books closed, copied to a record.

The one place that reads the components' attributes for the outputs. Everything it
copies is described in :mod:`simulator.model.record`; add a measurement there first.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.measure.metrics import ratio
from simulator.model.components.gateway import NoGateway
from simulator.model.components.roster import HOUR_S, Roster
from simulator.model.components.tracking import BIN_S
from simulator.model.record import (
    Breaker,
    Cache,
    Call,
    Channel,
    Database,
    Deduction,
    Delivery,
    Gateway,
    Level,
    Logistics,
    Payments,
    Quota,
    RunRecord,
    Sales,
    Sessions,
    Source,
    Usage,
    Warehouse,
)
from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from simulator.model.campaign import Campaign

__all__ = ["hand_over"]


def hand_over(campaign: Campaign, declared: Scenario, seed: int, replication: int) -> RunRecord:
    """Close a finished campaign's books and copy its measurements into a record."""
    scenario, shop, env = campaign.scenario, campaign.shop, campaign.env
    end_s = env.now
    interval = scenario.timeseries_interval_s
    n = max(math.ceil(end_s / interval), math.ceil(scenario.duration_s / interval))
    stations = {s.name: s.summary(end_s) for s in campaign.service_stations()}
    queues = [w.queue for w in campaign.fulfilment.warehouses]
    if campaign.service is not None:
        queues.append(campaign.service.queue)
    for queue in queues:
        stations[queue.stats.name] = queue.stats.summary(queue.closed_at)
    calls = []
    for guard in campaign.guards.values():
        breaker = guard.breaker
        if breaker is not None:
            breaker.close_books(end_s)
        calls.append(
            Call(
                guard.name,
                guard.retries,
                guard.retry_count,
                guard.failed_fast,
                guard.timeouts,
                guard.skipped,
                None
                if breaker is None
                else Breaker(breaker.open_s, breaker.times_opened, breaker.open_by_interval),
            )
        )
    routing = campaign.routing
    return RunRecord(
        scenario=scenario,
        declared=declared,
        seed=seed,
        replication=replication,
        money=1 / declared.scale,
        intervals=n,
        end_s=end_s,
        sessions_ended_at_s=campaign.sessions_ended_at_s,
        last_delivery_s=campaign.fulfilment.last_delivery_s,
        events=_events_scheduled(env, campaign.clock_events),
        stations=stations,
        sessions=Sessions(
            outcomes=list(shop.outcomes),
            outcome_series=shop.outcome_series,
            arrivals=campaign.arrivals,
            checkout_latency=shop.checkout_latency,
            page_latency=shop.page_latency,
            checkout_series=shop.checkout_series,
            refreshes=shop.refreshes,
            checkout_windows=shop.checkout_windows or [],
            window_s=shop.window_s,
            claims=shop.claims,
            claim_failures=shop.claim_failures,
        ),
        cache=_cache(campaign),
        database=_database(campaign, end_s, n),
        gateway=_gateway(campaign, end_s, n),
        calls=calls,
        payments=Payments(
            channels=[
                Channel(
                    c.name,
                    c.attempts,
                    c.successes,
                    c.queued,
                    c.timeouts,
                    c.declined,
                    c.unavailable,
                    len(c.lost_to_outage),
                    c.confirmed_late,
                )
                for c in campaign.payment
            ],
            rerouted=campaign.payments.rerouted,
            switches=list(campaign.payments.switches),
        ),
        sales=_sales(campaign, 1 / declared.scale),
        logistics=_logistics(campaign),
        stranded=None if routing is None else routing.stranded,
        stranded_count=0 if routing is None else routing.stranded_count,
        sources=_sources(campaign),
        usage=_usage(campaign, declared, end_s),
        stranded_until_s={}
        if routing is None
        else {
            name: t
            for name, t in zip(routing.names, routing.last_stranded_s, strict=True)
            if not math.isnan(t)
        },
    )


def _sources(campaign: Campaign) -> list[Source]:
    """What the traffic curve and each channel brought."""
    shop, ledger = campaign.shop, campaign.shop.ledger
    sources = [
        Source(
            "base",
            list(shop.source_outcomes[0]),
            ledger.source_orders[0],
            ledger.source_gmv[0],
            ledger.source_lost[0],
            None,
            0.0,
            0.0,
        )
    ]
    money = 1 / campaign.scale
    for i, arrivals in enumerate(campaign.channels, start=1):
        _, planned = arrivals.channel.plan()
        sources.append(
            Source(
                arrivals.channel.name,
                list(shop.source_outcomes[i]),
                ledger.source_orders[i],
                ledger.source_gmv[i],
                ledger.source_lost[i],
                arrivals.expected,
                planned,
                arrivals.spend_cny(money),
            )
        )
    return sources


def staff_seconds(roster: Roster, end_s: float) -> float:
    """People on duty integrated over [0, end_s), from the roster's timeline."""
    timeline = [*roster.changes(0.0, end_s), (end_s, 0)]
    return sum(staff * (t_next - t) for (t, staff), (t_next, _) in itertools.pairwise(timeline))


def _surge_seconds(surge: list, end_s: float) -> float:
    return sum(s.staff * max(0.0, min(s.to_s, end_s) - min(s.from_s, end_s)) for s in surge)


def _usage(campaign: Campaign, declared: Scenario, end_s: float) -> Usage:
    """What the run used, for the bill: instance, node and staff time, parcels, payments."""
    clock = declared.clock_at_start_h
    app = 0.0
    if campaign.autoscaler is not None:
        scaler = campaign.autoscaler
        timeline = [(0.0, scaler.initial), *scaler.decisions, (end_s, 0)]
        app = sum(n * (t_next - t) for (t, n), (t_next, _) in itertools.pairwise(timeline))
    elif declared.gateway is not None:
        per = declared.costs.workers_per_app_instance
        app = math.ceil(declared.gateway.workers / per) * end_s
    cache = declared.cache
    nodes = 0 if cache is None else sum(lv.nodes for lv in cache.levels if lv.kind == "distributed")
    database = declared.database
    instances = database.shards * (2 + database.read_replicas)  # primary, standby, replicas
    duration = declared.duration_s
    picker = surge = 0.0
    for config, warehouse in zip(
        declared.fulfilment.warehouses, campaign.fulfilment.warehouses, strict=True
    ):
        horizon = max(duration, warehouse.queue.closed_at)
        roster = Roster(config.pickers, config.shifts, config.surge, (), clock)
        on_surge = _surge_seconds(config.surge, horizon)
        picker += staff_seconds(roster, horizon) - on_surge
        surge += on_surge
    agent, bot = 0.0, 0
    service = campaign.service
    if service is not None and declared.customer_service is not None:
        desk = declared.customer_service
        horizon = max(duration, service.queue.closed_at)
        agent = staff_seconds(Roster(desk.agents, desk.shifts, desk.surge, (), clock), horizon)
        bot = service.deflected
    fulfilment = campaign.fulfilment
    return Usage(
        app_instance_s=app,
        cache_node_s=nodes * end_s,
        database_instance_s=instances * end_s,
        picker_s=picker,
        surge_picker_s=surge,
        agent_s=agent,
        bot_enquiries=bot,
        parcels=list(fulfilment.parcels),
        late_parcels=sum(fulfilment.parcels) - fulfilment.on_time,
        payments=[int(sum(c.successes.values)) for c in campaign.payment],
        paid_by_payment=list(campaign.shop.ledger.paid_by_payment),
        end_s=end_s,
        put_off=campaign.shop.put_off,
    )


def _events_scheduled(env: Any, not_the_shops: int) -> int | None:
    """Events SimPy scheduled in the run (its private event-id counter; None if absent).

    Less ``not_the_shops``, the progress clock's: a run counts the same with it or without.
    """
    counter = getattr(env, "_eid", None)
    return next(counter) - not_the_shops if counter is not None else None


def _cache(campaign: Campaign) -> Cache:
    cache, keys = campaign.cache, campaign.keys
    stampeded = cache.max_rebuilds_key
    return Cache(
        hits=cache.hits,
        misses=cache.misses,
        rebuilds=cache.rebuilds,
        levels=[Level(level.name, level.hits, level.misses) for level in cache.levels],
        hit_count=cache.hit_count,
        miss_count=cache.miss_count,
        stale_hits=cache.stale_hits,
        early_recomputes=cache.early_recomputes,
        coalesced_waits=cache.coalesced,
        blocked_by_bloom_filter=cache.blocked,
        missing_key_lookups=cache.missing_lookups,
        missing_key_db_reads=cache.missing_rebuilds,
        max_concurrent_rebuilds=cache.max_concurrent_rebuilds,
        max_rebuilds_key=None if stampeded is None else keys.label(stampeded),
        max_rebuilds_at_s=cache.max_rebuilds_at_s,
        stampede_at_s=cache.stampede_at_s,
    )


def _database(campaign: Campaign, end_s: float, n: int) -> Database:
    database = campaign.database
    return Database(
        queries=database.queries,
        started=database.started,
        pool_wait_s=database.pool_wait_s,
        pool_timeouts=database.pool_timeouts,
        reads=database.reads,
        writes=database.writes,
        lost_writes=database.lost_writes,
        failures=list(database.failures),
        utilisation=[
            np.array(i.stats.utilisation_by_interval(end_s, n)) for i in database.instances
        ],
    )


def _gateway(campaign: Campaign, end_s: float, n: int) -> Gateway:
    gateway = campaign.gateway
    if isinstance(gateway, NoGateway):
        return Gateway(None, 0, None, None, None, None, 1)
    stats = gateway.stats
    return Gateway(
        shed=gateway.shed,
        shed_count=gateway.shed_count,
        first_shed_s=gateway.first_shed_s,
        peak_instances=None if campaign.autoscaler is None else gateway.peak_instances,
        utilisation=np.array(stats.utilisation_by_interval(end_s, n)),
        workers=np.array(stats.servers_by_interval(n)),
        workers_per_instance=gateway.workers_per_instance,
    )


def _deduction(stock: Any) -> Deduction:
    return Deduction(
        mode=stock.mode,
        refused=stock.refused,
        leases_expired=stock.leases_expired,
        grants_not_exclusive=stock.grants_not_exclusive,
        lock_timeouts=stock.lock_timeouts,
        queue_peak=stock.queue_peak,
        shortfalls_found=stock.shortfalls,
    )


def _sales(campaign: Campaign, money: float) -> Sales:
    scenario, shop, stock = campaign.scenario, campaign.shop, campaign.stock
    ledger, commerce = shop.ledger, shop.commerce
    events = scenario.event_starts()
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
    counted = [t for n, t in zip(stock.initial, stock.taken, strict=True) if n is not None]
    return Sales(
        gmv=ledger.gmv,
        gmv_series=ledger.gmv_series,
        figures=ledger.figures(
            stock.oversold(), scenario.inventory.oversell_compensation_cny, money
        ),
        funnel=ledger.funnel,
        orders=ledger.order_table(),
        sold_out_at_s=sold_out_at,
        items_sold_out=stock.sold_out_keys(),
        stock_units_sold=sum(counted) if counted else None,
        deduction=_deduction(stock),
        quotas=[
            Quota(
                event.name,
                sum(quota.taken),
                sum(units or 0 for units in quota.initial),
                sum(quota.oversold()),
                _deduction(quota),
            )
            for (event, _), quota in zip(events, commerce.quotas, strict=True)
            if quota is not None
        ],
    )


def _logistics(campaign: Campaign) -> Logistics:
    fulfilment, service = campaign.fulfilment, campaign.service
    end = max(fulfilment.last_delivery_s, campaign.env.now)
    if service is not None:
        end = max(end, service.queue.closed_at)
    n = max(1, math.ceil(end / HOUR_S))
    t = np.arange(n) * HOUR_S
    tracking = fulfilment.tracking
    bins = None
    lag = None
    if tracking is not None:
        lag = {
            "p50": tracking.lag_quantile(0.5) / HOUR_S,
            "p95": tracking.lag_quantile(0.95) / HOUR_S,
            "mean": tracking.lag_mean() / HOUR_S,
            "max": float(tracking.lag_s.max(initial=0.0)) / HOUR_S,
        }
        size = n * int(HOUR_S / BIN_S)
        counts, lags, backlog = np.zeros(size), np.zeros(size), np.zeros(size)
        k = min(size, len(tracking.counts))
        counts[:k], lags[:k], backlog[:k] = (
            tracking.counts[:k],
            tracking.lag_s[:k],
            tracking.backlog[:k],
        )
        bins = (counts, lags, backlog)
    return Logistics(
        hours=n,
        warehouses=[
            Warehouse(
                name=w.name,
                peak_backlog=w.stats.peak_inside,
                orders=w.stats.arrivals,
                capacity_per_h=ratio(w.roster.most, w.hours_per_order),
                backlog_cleared_at_s=w.queue.closed_at,
                received=w.received.padded(n),
                packed=w.packed.padded(n),
                shipped=w.shipped.padded(n),
                pickers=[w.roster.on_duty(x) for x in t],
            )
            for w in fulfilment.warehouses
        ],
        delivery=Delivery(
            on_time=fulfilment.on_time,
            next_day=fulfilment.next_day,
            shipped_in_72h=fulfilment.shipped_in_72h,
            delivery_h=fulfilment.delivery_h,
            ship_h=fulfilment.ship_h,
            shipped_from_other_region=fulfilment.away,
        ),
        delivered=fulfilment.delivered.padded(n),
        tracking_lag_h=lag,
        tracking_bins=bins,
        service=None if service is None else service.figures(),
        service_hourly={}
        if service is None
        else {name: counter.padded(n) for name, counter in service.hourly.items()},
        service_wait_s=None if service is None else service.hourly_wait.padded(n),
        agents=None if service is None else [service.queue.roster.on_duty(x) for x in t],
    )
