"""The cache presets show what they claim, on their own seed.

Each preset is cut to two minutes of the peak (the expiry, the avalanche and the node
loss all fall in it) to keep the suite quick; the full presets are in the README.
"""

from __future__ import annotations

import simulator
from tests.conftest import SCENARIOS

PEAK = ["duration_s=720"]  # 10 minutes of everyday traffic, then 2 of the peak


def run(name: str, *overrides: str) -> dict:
    scenario = simulator.load_scenario(SCENARIOS / f"{name}.yaml", [*PEAK, *overrides])
    return simulator.simulate(scenario).summary


def test_hot_key_breakdown_unmitigated_is_clearly_worse_than_each_defence():
    """Same seed: the stampede raises the database peak and checkout p99 and costs orders."""
    plain = run("hot-key-cache-breakdown")
    assert plain["max_concurrent_rebuilds_key"] == "hero-phone"
    assert plain["max_concurrent_rebuilds"] >= 20
    assert plain["db_pool_timeouts"] > 0
    for defence in ("mutex", "xfetch", "logical-expiry", "local"):
        guarded = run(f"hot-key-cache-breakdown-{defence}")
        assert guarded["db_pool_timeouts"] == 0, defence
        assert plain["db_peak_qps"] > 1.2 * guarded["db_peak_qps"], defence
        p99, guarded_p99 = (
            plain["checkout_latency_ms"]["p99"],
            guarded["checkout_latency_ms"]["p99"],
        )
        assert p99 > 1.2 * guarded_p99, defence
        assert plain["orders"] < guarded["orders"], defence
        if defence == "mutex":
            assert guarded["max_concurrent_rebuilds"] == 1


def test_avalanche_saturates_the_database_and_jitter_does_not():
    """The warm-up job's entries expire together at 605 s; jittered, they do not."""
    same = simulator.simulate(
        simulator.load_scenario(SCENARIOS / "cache-avalanche.yaml", PEAK)
    ).timeseries.set_index("t_s")
    spread = simulator.simulate(
        simulator.load_scenario(SCENARIOS / "cache-avalanche-jitter.yaml", PEAK)
    ).timeseries.set_index("t_s")
    assert same.loc[604, "cache_hit_ratio"] == 1.0  # everything warm just before
    assert same.loc[605, "cache_hit_ratio"] < 0.5  # everything expired at once
    assert same.loc[605:609, "db_utilisation"].min() > 0.95
    assert spread.loc[600:719, "db_utilisation"].max() < 0.8
    assert same["db_qps"].max() > spread["db_qps"].max()


def test_penetration_reaches_the_database_unless_the_bloom_filter_is_on():
    plain = run("cache-penetration")
    guarded = run("cache-penetration-bloom")
    assert plain["missing_key_db_reads"] == plain["missing_key_lookups"] > 0
    assert guarded["missing_key_db_reads"] < 0.02 * guarded["missing_key_lookups"]
    assert plain["db_pool_wait_ms"]["mean"] > 10 * guarded["db_pool_wait_ms"]["mean"]
