"""Both sides of the ledger: the run's bill, its profit and loss, and each channel's return.

The model hands over what the run used (:class:`~simulator.model.record.Usage`) and
what each traffic source brought (:class:`~simulator.model.record.Source`); this module
prices the use at the scenario's price list (``costs``) and lays out the profit and loss.
Every line is a positive amount, added or taken away as its section says::

    gmv            = list_value - discounts
    gross_profit   = gmv + deposits_forfeited - cost_of_goods
    net_profit     = gross_profit - marketing - infrastructure - operations
                     - failures - fixed

``failures`` are refunds (returns and oversold units, at what was paid), oversell
compensation and late-parcel compensation, so the summary's ``gross_margin`` (net of
refunds and oversell compensation, as before) is ``gross_profit - refunds -
oversell_compensation``. Money is at the declared size (``scale`` undone); counts
(visitors, orders, new customers, parcels) are the simulated ones.
"""

from __future__ import annotations

import math
from typing import Any

from simulator.measure.metrics import ratio
from simulator.model import RunRecord

__all__ = ["BRIDGE", "bridge", "money_figures"]

BRIDGE = ("marketing", "infrastructure", "operations", "failures", "fixed")
"""The cost sections of the profit and loss, in the order the bridge takes them away."""

_HOUR_S = 3600.0


def money_figures(record: RunRecord, business: dict[str, Any]) -> dict[str, Any]:
    """The bill, the profit and loss and the channels' figures, for ``summary.json``.

    ``business`` is the ledger's figures (``record.sales.figures``).
    """
    declared, usage, money = record.declared, record.usage, record.money
    costs = declared.costs
    gmv = record.sales.gmv * money
    payment_names = [c.name for c in declared.payment.channels]
    fees = 0.0
    for i, name in enumerate(payment_names):
        fee = costs.payment_fees.get(name)
        if fee is not None:
            fees += (
                fee.rate * usage.paid_by_payment[i] + fee.fixed_cny * usage.payments[i]
            ) * money
    regions = [r.name for r in declared.fulfilment.regions]
    parcels = sum(
        n * costs.parcel_cny_by_region.get(name, costs.parcel_cny)
        for name, n in zip(regions, usage.parcels, strict=True)
    )
    sections: dict[str, dict[str, float]] = {
        "marketing": {s.name: s.spend_cny for s in record.sources[1:]},
        "infrastructure": {
            "app_instances": usage.app_instance_s / _HOUR_S * costs.app_instance_hour_cny,
            "cache_nodes": usage.cache_node_s / _HOUR_S * costs.cache_node_hour_cny,
            "database_instances": usage.database_instance_s
            / _HOUR_S
            * costs.database_instance_hour_cny,
            "payment_fees": fees,
        },
        "operations": {
            "pickers": usage.picker_s / _HOUR_S * costs.picker_hour_cny,
            "surge_pickers": usage.surge_picker_s / _HOUR_S * costs.surge_picker_price(),
            "parcels": parcels * money,
            "agents": usage.agent_s / _HOUR_S * costs.agent_hour_cny,
            "bot_enquiries": usage.bot_enquiries * costs.bot_enquiry_cny * money,
        },
        "failures": {
            "refunds": business["refunds"],
            "oversell_compensation": business["oversell_compensation"],
            "late_parcel_compensation": usage.late_parcels
            * costs.late_parcel_compensation_cny
            * money,
        },
        "fixed": dict(costs.fixed_cny),
    }
    discounts = business["discount_cost"]
    revenue = {
        "list_value": gmv + discounts,
        "discounts": discounts,
        "deposits_forfeited": business["deposits_forfeited"],
        "cost_of_goods": business["cost_of_goods"],
    }
    gross_profit = math.fsum(
        [
            revenue["list_value"],
            -revenue["discounts"],
            revenue["deposits_forfeited"],
            -revenue["cost_of_goods"],
        ]
    )
    totals = {name: math.fsum(lines.values()) for name, lines in sections.items()}
    net_profit = math.fsum(
        [
            revenue["list_value"],
            -revenue["discounts"],
            revenue["deposits_forfeited"],
            -revenue["cost_of_goods"],
            *(-v for lines in sections.values() for v in lines.values()),
        ]
    )
    pnl: dict[str, Any] = {
        **revenue,
        "gmv": gmv,
        "gross_profit": gross_profit,
        **{
            key: value
            for name, lines in sections.items()
            for key, value in ((name, lines), (f"{name}_total", totals[name]))
        },
        "net_profit": net_profit,
    }
    return {
        "net_profit": net_profit,
        "net_margin_rate": ratio(net_profit, gmv),
        "marketing_spend": totals["marketing"],
        "infrastructure_cost": totals["infrastructure"],
        "operations_cost": totals["operations"],
        "failure_cost": totals["failures"],
        "fixed_cost": totals["fixed"],
        "marketing_roi": ratio(
            math.fsum(s.gmv for s in record.sources[1:]) * money, totals["marketing"]
        ),
        "profit_and_loss": pnl,
        "users_put_off_by_latency": usage.put_off,
        "traffic_channels": _channels(record),
        "budget_split": _budget_split(record),
    }


def _channels(record: RunRecord) -> dict[str, dict[str, Any]]:
    """Per traffic source: what it cost and what it brought (the curve as ``base``)."""
    money = record.money
    configs = {c.name: c for c in record.declared.channels}
    out = {}
    for source in record.sources:
        visitors = sum(source.outcomes)
        config = configs.get(source.name)
        spend = source.spend_cny
        gmv = source.gmv * money
        new = None if config is None else source.orders * config.new_customer_share
        ltv = None if config is None else config.lifetime.value_cny()
        cac = None if new is None or spend == 0 else ratio(spend, new * money)
        out[source.name] = {
            "visitors": visitors,
            "expected_visitors": source.expected_visitors,
            "orders": source.orders,
            "conversion_rate": ratio(source.orders, visitors),
            "gmv": gmv,
            "lost_gmv": source.lost_gmv * money,
            "planned_spend": source.planned_spend_cny,
            "spend": spend,
            "roi": ratio(gmv, spend),
            "cost_per_visitor": ratio(spend, visitors * money) if spend else None,
            "cost_per_order": ratio(spend, source.orders * money) if spend else None,
            "new_customers": new,
            "cac": cac,
            "ltv": ltv,
            "ltv_to_cac": None if cac is None or ltv is None else ratio(ltv, cac),
        }
    return out


def _budget_split(record: RunRecord) -> dict[str, dict[str, float | None]]:
    """Each paid channel's share of the plan against its share of what was spent."""
    paid = [s for s in record.sources[1:] if s.planned_spend_cny > 0 or s.spend_cny > 0]
    planned = math.fsum(s.planned_spend_cny for s in paid)
    spent = math.fsum(s.spend_cny for s in paid)
    return {
        s.name: {
            "planned_share": ratio(s.planned_spend_cny, planned),
            "spent_share": ratio(s.spend_cny, spent),
        }
        for s in paid
    }


def bridge(pnl: dict[str, Any]) -> list[tuple[str, float, str]]:
    """The profit and loss as a bridge: (label, amount, kind) from list value to net profit.

    ``kind`` is "total" for the bars that stand on the axis (list value, gross profit,
    net profit) and "step" for the signed changes between them; zero steps are left out.
    """
    steps: list[tuple[str, float, str]] = [("list value", pnl["list_value"], "total")]
    for label, amount in (
        ("discounts", -pnl["discounts"]),
        ("deposits forfeited", pnl["deposits_forfeited"]),
        ("cost of goods", -pnl["cost_of_goods"]),
    ):
        if amount:
            steps.append((label, amount, "step"))
    steps.append(("gross profit", pnl["gross_profit"], "total"))
    for section in BRIDGE:
        total = pnl[f"{section}_total"]
        if total:
            steps.append((section, -total, "step"))
    steps.append(("net profit", pnl["net_profit"], "total"))
    return steps
