"""Shared fixtures: small scenarios built as dicts, and paths to the shipped files."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# In CI the property tests replay the same examples every run, so a red build always
# means a change broke something; locally they explore new examples each time.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"

# The files that take longest (60-150 s each on two cores, most of it full-size runs),
# longest first. pytest-xdist hands whole files to its processes in collection order
# (--dist loadfile, --no-loadscope-reorder in pyproject.toml): started first, they
# cannot be the file one process is still running when the other has nothing left.
_LONGEST_FIRST = (
    "tests/test_validation.py",
    "tests/test_protection_presets.py",
    "tests/test_seed_presets.py",
    "tests/test_optimize.py",
    "tests/test_commerce_presets.py",
    "tests/test_experiment.py",
    "notebooks/",  # 15-80 s each
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest files first; the others keep their order."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        for i, prefix in enumerate(_LONGEST_FIRST):
            if path.startswith(prefix):
                return i
        return len(_LONGEST_FIRST)

    items.sort(key=rank)


def exp(mean: float) -> dict[str, Any]:
    """An exponential distribution spec."""
    return {"dist": "exponential", "mean": mean}


def fixed(value: float) -> dict[str, Any]:
    """A deterministic distribution spec."""
    return {"dist": "deterministic", "value": value}


SMALL: dict[str, Any] = {
    "name": "small",
    "description": "A small shop for tests.\nAssumed: everything.",
    "seed": 3,
    "duration_s": 60,
    "traffic": {"baseline_per_s": 20},
    "segments": [
        {
            "name": "all",
            "share": 1.0,
            "bounce_rate": 0.2,
            "pages_mean": 2,
            "think_time_s": exp(2),
            "add_to_cart_rate": 0.5,
            "checkout_rate": 0.8,
            "basket_value_cny": {"dist": "lognormal", "mean": 200, "cv": 0.5},
            "patience_s": fixed(5),
        }
    ],
    "catalogue": {"items": 100, "zipf_exponent": 1.0},
    "gateway": {"workers": 8, "queue_limit": 50, "service_time_ms": exp(5)},
    "cache": {"levels": [{"name": "redis", "ttl_s": 10, "latency_ms": fixed(1)}]},
    "database": {
        "pool_size": 4,
        "pool_timeout_ms": 500,
        "read_time_ms": exp(10),
        "write_time_ms": exp(20),
    },
    "inventory": {"stock_per_item": 50},
    "payment": {
        "channels": [
            {
                "name": "a",
                "share": 0.6,
                "capacity": 4,
                "latency_ms": exp(200),
                "success_probability": 0.95,
                "timeout_ms": 1000,
            },
            {
                "name": "b",
                "share": 0.4,
                "capacity": 4,
                "latency_ms": exp(300),
                "success_probability": 0.99,
                "timeout_ms": 1000,
            },
        ]
    },
    "fulfilment": {
        "regions": [{"name": "east", "share": 0.5}, {"name": "west", "share": 0.5}],
        "warehouses": [
            {"name": "east", "region": "east", "pickers": 2, "pick_time_s": exp(60)},
            {"name": "west", "region": "west", "pickers": 2, "pick_time_s": exp(60)},
        ],
        "transit_time_h": {"dist": "lognormal", "mean": 20, "cv": 0.3},
        "promised_delivery_h": 24,
    },
}


def small(**changes: Any) -> dict[str, Any]:
    """A copy of the small scenario with top-level fields replaced."""
    scenario = copy.deepcopy(SMALL)
    scenario.update(copy.deepcopy(changes))
    return scenario


@pytest.fixture
def small_scenario() -> dict[str, Any]:
    """A fresh copy of the small test scenario (a dict)."""
    return small()


def assert_books_balance(summary: dict[str, Any]) -> None:
    """Every session has one outcome, every station's arrivals are accounted for."""
    assert sum(summary["outcomes"].values()) == summary["sessions"]
    for name, station in summary["stations"].items():
        left = station["served"] + station["rejected"] + station["timed_out"] + station["abandoned"]
        assert station["arrivals"] == left, name
        if station["entered"]:
            rate = station["entered"] / station["observed_s"]
            stay = station["time_in_system_s"] / station["entered"]
            assert math.isclose(station["mean_in_system"], rate * stay, rel_tol=1e-6), name
