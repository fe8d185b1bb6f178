"""The output contract of a run's folder, checked by the tests themselves.

``DESIGN.md`` and the README promise what a run writes: ``summary.json`` with the keys
other tools read, outcomes that add up to the sessions, ordered latency quantiles,
rates that are fractions, and the tables beside it. The team's shared checker
(``../shared/tools/check_summary.py``) checks the same promises in CI; this module lets
the suite check them on any clone, where the shared folder is not there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["ISSUE_KEYS", "PROVENANCE_KEYS", "REQUIRED_KEYS", "contract_problems"]

REQUIRED_KEYS = (
    "sessions",
    "outcomes",
    "orders",
    "gmv",
    "conversion_rate",
    "checkout_latency_ms",
    "cache_hit_ratio",
    "db_peak_qps",
    "payment_success_rate",
    "on_time_delivery_rate",
    "provenance",
)
"""Keys every run's ``summary.json`` has (``DESIGN.md``)."""

ISSUE_KEYS = (
    "cache_hit_ratio_by_level",
    "db_pool_timeouts",
    "max_concurrent_rebuilds",
    "requests_shed",
    "time_to_limit_s",
    "recovery_time_s",
    "lost_writes",
    "breaker_open_s",
    "retries",
    "peak_instances",
    "aov",
    "discount_cost",
    "gross_margin",
    "promotion_roi",
    "lost_gmv",
    "oversold_units",
    "coupons_over_issued",
    "payment_success_by_channel",
    "funnel",
)
"""Keys the issues added to the contract (the ones ``.ci/run`` asks the shared checker for)."""

PROVENANCE_KEYS = ("version", "command", "overrides", "seed", "scale", "scale_note", "scenario")
"""Keys of ``provenance``: how the file was made (README, "Provenance")."""

_FRACTIONS = ("conversion_rate", "cache_hit_ratio", "payment_success_rate", "on_time_delivery_rate")


def _mean(value: Any) -> Any:
    """A replicated KPI is ``{"mean", "ci_low", ...}``; a single run's is the number."""
    return value["mean"] if isinstance(value, dict) and "mean" in value else value


def contract_problems(run_dir: Path, keys: Iterable[str] = ISSUE_KEYS) -> list[str]:
    """What a run's folder breaks of the contract (empty when it keeps it).

    Args:
        run_dir: the folder ``campaign-sim run`` wrote (single or replicated).
        keys: keys the summary must have besides :data:`REQUIRED_KEYS`.
    """
    path = run_dir / "summary.json"
    if not path.exists():
        return [f"no {path.name} in {run_dir}"]
    summary = json.loads(path.read_text(encoding="utf-8"))
    problems = [f"missing key {k}" for k in (*REQUIRED_KEYS, *keys) if k not in summary]
    for table in ("timeseries.parquet", "report.html"):
        if not (run_dir / table).exists():
            problems.append(f"no {table}")
    problems += [
        f"missing key provenance.{k}"
        for k in PROVENANCE_KEYS
        if "provenance" in summary and k not in summary["provenance"]
    ]
    if any(p.startswith("missing key") for p in problems):
        return problems
    sessions = _mean(summary["sessions"])
    counted = sum(_mean(v) for v in summary["outcomes"].values())
    if not math.isclose(counted, sessions, rel_tol=1e-9):
        problems.append(f"outcomes add up to {counted}, not to the {sessions} sessions")
    latency = summary["checkout_latency_ms"]
    quantiles = [_mean(latency.get(q)) for q in ("p50", "p95", "p99")]
    if None not in quantiles and not quantiles[0] <= quantiles[1] <= quantiles[2]:
        problems.append(f"checkout latency quantiles out of order: {quantiles}")
    for key in _FRACTIONS:
        value = _mean(summary[key])
        if value is not None and not 0 <= value <= 1:
            problems.append(f"{key} = {value} is not a fraction")
    return problems
