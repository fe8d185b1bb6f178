"""The cache tier's failure modes and mitigations, each shown on the mechanics.

Scenarios here are small and single-purpose: users who view one page and leave (so
every session is one cache lookup), no gateway, and a database large enough never to
refuse, so the cache's behaviour is all that differs between runs. Tolerances come
from the Poisson or binomial spread of the counts involved, at 99.9%.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import simpy
from scipy import stats

import simulator
from simulator.measure.streams import Streams
from simulator.model.components.cache import CacheLevel, CacheTier, xfetch_due
from simulator.model.keys import KeySpace, bloom_passes, bucket
from simulator.scenario.schema import Cache, Catalogue
from simulator.scenario.schema import CacheLevel as LevelConfig
from tests.conftest import SMALL, fixed, small

READ_S = 0.05  # database read time in these scenarios
HOT_SHARE = 0.9


def one_page_users() -> list[dict[str, Any]]:
    """Every visitor views one page and leaves; patient enough never to give up."""
    segment = dict(SMALL["segments"][0], bounce_rate=1.0, pages_mean=1, patience_s=fixed(60))
    return [segment]


def big_database(read_s: float = READ_S) -> dict[str, Any]:
    """A database that never makes anyone wait for a connection."""
    return {
        "pool_size": 5000,
        "pool_timeout_ms": 60_000,
        "read_time_ms": fixed(read_s * 1000),
        "write_time_ms": fixed(10),
    }


def hot_key(rate: float, duration_s: float = 32, **cache: Any) -> dict[str, Any]:
    """One hero item with 90% of the views and a 5 s TTL: it expires six times."""
    levels = cache.pop("levels", [{"name": "redis", "ttl_s": 5, "latency_ms": fixed(0)}])
    return small(
        duration_s=duration_s,
        traffic={"baseline_per_s": rate},
        segments=one_page_users(),
        catalogue={"items": 100, "hot_items": [{"name": "hero", "share": HOT_SHARE}]},
        gateway=None,
        cache={"levels": levels, "warm_items": 100, **cache},
        database=big_database(),
    )


def run(scenario: dict[str, Any], seed: int = 5) -> simulator.SimulationResult:
    return simulator.simulate(scenario, seed=seed)


# ------------------------------------------------------------------------- breakdown


def test_stampede_on_an_expiring_hot_key_grows_with_the_arrival_rate():
    """Concurrent rebuilds of the hot key: about the reads arriving during one rebuild."""
    sizes = {}
    for rate in (100, 400, 1600):
        summary = run(hot_key(rate)).summary
        assert summary["max_concurrent_rebuilds_key"] == "hero"
        sizes[rate] = summary["max_concurrent_rebuilds"]
        # Reads of the hot key during a rebuild are Poisson with this mean; the largest
        # stampede of the run's six expiries is the first reader plus at least a
        # typical window's worth and not beyond a far tail.
        mean = HOT_SHARE * rate * READ_S
        assert stats.poisson.ppf(0.001, mean) <= sizes[rate] - 1
        assert sizes[rate] - 1 <= stats.poisson.ppf(1 - 0.001 / 6, mean)
    assert sizes[100] < sizes[400] < sizes[1600]


def test_mutex_keeps_rebuilds_of_the_hot_key_at_one():
    """With the per-key mutex the others wait for the one rebuild (coalesced)."""
    plain = run(hot_key(1600)).summary
    locked = run(hot_key(1600, rebuild="mutex")).summary
    assert plain["max_concurrent_rebuilds"] > 30
    assert locked["max_concurrent_rebuilds"] == 1
    assert locked["cache_coalesced_waits"] > 30
    # The waiters' reads never reached the database.
    assert locked["db_reads"] < plain["db_reads"] - locked["cache_coalesced_waits"] / 2
    assert locked["outcomes"]["error"] == plain["outcomes"]["error"] == 0


def test_logical_expiry_serves_stale_and_refreshes_once():
    """Past its TTL the entry is served stale while one background refresh runs."""
    summary = run(hot_key(1600, rebuild="logical_expiry")).summary
    assert summary["max_concurrent_rebuilds"] == 1
    assert summary["cache_stale_hits"] > 0
    assert summary["cache_misses"] == 0  # warmed, never physically expired
    assert summary["page_latency_ms"]["p99"] < READ_S * 1000 / 2  # nobody waited


def test_xfetch_recomputes_before_expiry_and_shrinks_the_stampede():
    """Early recomputation: the hot key is rebuilt ahead of its expiry by one reader."""
    plain = run(hot_key(1600)).summary
    early = run(hot_key(1600, xfetch_beta=1.0)).summary
    assert early["cache_early_recomputes"] > 0
    assert early["max_concurrent_rebuilds"] < plain["max_concurrent_rebuilds"] / 4


def test_local_hot_key_level_absorbs_most_of_the_stampede():
    """Per-server local copies of the hot item, expiring at their own times, keep answering."""
    levels = [
        {
            "name": "local",
            "kind": "local",
            "nodes": 8,
            "ttl_s": 2,
            "ttl_jitter": 0.5,  # copies that do not expire in step with redis's entry
            "latency_ms": fixed(0),
            "hot_items_only": True,
        },
        {"name": "redis", "ttl_s": 5, "latency_ms": fixed(0)},
    ]
    plain = run(hot_key(1600)).summary
    local = run(hot_key(1600, levels=levels)).summary
    assert set(local["cache_hit_ratio_by_level"]) == {"local", "redis"}
    assert local["cache_hit_ratio_by_level"]["local"] > 0.5
    assert local["max_concurrent_rebuilds"] < plain["max_concurrent_rebuilds"] / 3


# ------------------------------------------------------------------------- XFetch


@pytest.mark.parametrize("gap_over_delta", [0.1, 0.5, 1.0, 2.0, 4.0])
def test_xfetch_rule_fires_with_the_papers_probability(gap_over_delta):
    """P(recompute at a read a gap g before expiry) = exp(-g / (delta * beta))."""
    rng = np.random.default_rng(11)
    delta, beta, n = 0.05, 1.5, 20_000
    gap = gap_over_delta * delta
    fired = sum(xfetch_due(10.0 - gap, 10.0, delta, beta, u) for u in 1.0 - rng.random(n))
    p = math.exp(-gap / (delta * beta))
    low, high = stats.binom.interval(1 - 0.001 / 5, n, p)
    assert low <= fired <= high


def test_xfetch_in_the_cache_recomputes_before_expiry_as_often_as_the_rule_says():
    """Through CacheTier.lookup: reads every 10 ms before expiry; chance of an early one."""
    env = simpy.Environment()
    config = Cache(
        levels=[LevelConfig(name="redis", ttl_s=60, latency_ms=fixed(0))], xfetch_beta=1.0
    )
    keys = KeySpace(Catalogue(items=1))
    tier = CacheTier(env, config, keys, None, Streams(3), 1.0, rebuild_delta_s=0.02)
    store = tier.last.stores[0]
    assert store is not None
    expires, step, reads = 1.0, 0.01, 20
    times = [expires - step * (reads - i) for i in range(reads)]
    trials, early = 4000, 0
    for _ in range(trials):
        store[0] = expires
        early += any(tier.lookup(0, t)[0] is not None for t in times)
    p = 1 - math.prod(1 - math.exp(-(expires - t) / 0.02) for t in times)
    low, high = stats.binom.interval(0.999, trials, p)
    assert low <= early <= high
    assert tier.early_recomputes == early


# ------------------------------------------------------------------------- avalanche


def avalanche(jitter: float) -> dict[str, Any]:
    """5,000 items warmed at t=0 with one 60 s TTL, read at 300/s."""
    return small(
        duration_s=120,
        traffic={"baseline_per_s": 300},
        segments=one_page_users(),
        catalogue={"items": 5000, "zipf_exponent": 0.8},
        gateway=None,
        cache={
            "levels": [
                {"name": "redis", "ttl_s": 60, "ttl_jitter": jitter, "latency_ms": fixed(0)}
            ],
            "warm_items": 5000,
        },
        database=big_database(0.005),
    )


def test_jittered_ttls_flatten_the_database_peak_of_a_mass_expiry():
    """Same seed, same keys: identical TTLs expire together, jittered ones do not."""
    same = run(avalanche(0.0))
    spread = run(avalanche(0.5))
    peak_same = same.summary["db_peak_qps"]
    peak_spread = spread.summary["db_peak_qps"]
    series = same.timeseries.set_index("t_s")["db_qps"]
    assert series.idxmax() == 60  # the avalanche is at the shared expiry time
    assert peak_spread < 0.5 * peak_same


def node_loss() -> dict[str, Any]:
    scenario = avalanche(0.0)
    scenario["cache"]["levels"][0].update(nodes=4, ttl_s=10_000)
    scenario["faults"] = [
        {"kind": "cache_node_down", "at_s": 40, "duration_s": 30, "level": "redis", "node": 0}
    ]
    return scenario


def test_a_lost_cache_node_sends_its_keys_to_the_database_and_returns_cold():
    """While node 0 is down its keys miss; it comes back empty and refills."""
    series = run(node_loss()).timeseries.set_index("t_s")
    before = series.loc[20:39, "cache_hit_ratio"].mean()
    during = series.loc[41:69, "cache_hit_ratio"].mean()
    back = series.loc[70:72, "cache_hit_ratio"].mean()
    later = series.loc[100:119, "cache_hit_ratio"].mean()
    assert before > 0.99
    assert during < 0.9  # about a quarter of the views fall through
    assert series.loc[41:69, "db_qps"].mean() > 20 * max(series.loc[20:39, "db_qps"].mean(), 1)
    assert back < later  # cold on return, warming up again
    assert later > during


def test_fault_on_an_unknown_level_is_a_clear_error():
    """The schema checks that a fault names a level (and node) that exists."""
    scenario = node_loss()
    scenario["faults"][0]["level"] = "memcached"
    with pytest.raises(simulator.ScenarioError, match="no cache level named 'memcached'"):
        simulator.load_scenario(scenario)
    scenario["faults"][0].update(level="redis", node=4)
    with pytest.raises(simulator.ScenarioError, match="out of range"):
        simulator.load_scenario(scenario)


# ------------------------------------------------------------------------- penetration


def penetration(**cache: Any) -> dict[str, Any]:
    """30% of the views are for keys that do not exist, drawn from a million of them."""
    scenario = hot_key(300, duration_s=60, **cache)
    scenario["catalogue"] = {"items": 100, "missing_key_share": 0.3, "missing_keys": 1_000_000}
    return scenario


def test_missing_keys_reach_the_database_every_time_without_a_guard():
    summary = run(penetration()).summary
    lookups = summary["missing_key_lookups"]
    low, high = stats.binom.interval(0.999, summary["sessions"], 0.3)
    assert low <= lookups <= high
    assert summary["missing_key_db_reads"] == lookups


def test_bloom_filter_stops_all_but_its_false_positives():
    summary = run(penetration(bloom_filter_false_positive_rate=0.01)).summary
    lookups, passed = summary["missing_key_lookups"], summary["missing_key_db_reads"]
    low, high = stats.binom.interval(0.999, lookups, 0.01)
    assert low <= passed <= high
    assert summary["cache_blocked_by_bloom_filter"] == lookups - passed


def test_caching_empty_results_helps_only_when_missing_keys_repeat():
    """A few missing keys read again and again stop at the cache; a million do not."""
    many = run(penetration(empty_result_ttl_s=30)).summary
    assert many["missing_key_db_reads"] > 0.99 * many["missing_key_lookups"]
    few = penetration(empty_result_ttl_s=30)
    few["catalogue"]["missing_keys"] = 10
    few_summary = run(few).summary
    # at most one read per key per 30 s TTL, over 60 s
    assert few_summary["missing_key_db_reads"] <= 10 * 3
    assert few_summary["missing_key_lookups"] > 1000


# ------------------------------------------------------------------------- levels


def test_lru_level_evicts_the_least_recently_used():
    config = LevelConfig(name="local", capacity=2, ttl_s=100, latency_ms=fixed(0))
    level = CacheLevel(config, 0, Streams(1), 1.0)
    store = level.stores[0]
    assert store is not None
    level.write(store, 1, 100.0)
    level.write(store, 2, 100.0)
    store.move_to_end(1)  # type: ignore[attr-defined]  # 1 was read: 2 is now the oldest
    level.write(store, 3, 100.0)
    assert set(store) == {1, 3}
    assert level.evictions == 1


def test_bounded_local_level_never_holds_more_than_its_capacity():
    """Zipf reads through a 50-entry LRU in front of redis: its size and hit ratio."""
    levels = [
        {"name": "local", "kind": "local", "capacity": 50, "ttl_s": 30, "latency_ms": fixed(0)},
        {"name": "redis", "ttl_s": 30, "latency_ms": fixed(0)},
    ]
    scenario = avalanche(0.0)
    scenario["cache"] = {"levels": levels}
    campaign = simulator.model.campaign.build(simulator.load_scenario(scenario), seed=2)
    campaign.env.run(until=campaign.shop.all_done)
    local = campaign.cache.levels[0]
    assert local.entries() == 50
    assert local.evictions > 0
    ratios = campaign.cache.hit_ratio_by_level()
    assert 0 < ratios["local"] < ratios["redis"] < 1


def test_hot_items_take_their_share_of_the_views():
    catalogue = Catalogue(
        items=1000,
        hot_items=[{"name": "a", "share": 0.2}, {"name": "b", "share": 0.1}],
        missing_key_share=0.05,
        missing_keys=1000,
    )
    keys = KeySpace(catalogue)
    n = 100_000
    drawn = keys.sampler(np.random.default_rng(4))(n)
    for key, share in ((1000, 0.2), (1001, 0.1)):
        low, high = stats.binom.interval(0.999, n, share)
        assert low <= np.sum(drawn == key) <= high
    low, high = stats.binom.interval(0.999, n, 0.05)
    assert low <= np.sum(drawn >= keys.existing) <= high
    assert drawn.max() < keys.existing + 1000
    assert keys.label(1001) == "b" and keys.label(3) == "item 3"


def test_shares_above_one_are_rejected():
    with pytest.raises(ValueError, match="more than 1"):
        Catalogue(items=10, hot_items=[{"name": "a", "share": 0.8}], missing_key_share=0.3)


def test_timeseries_carry_hit_ratio_by_level_and_database_load():
    result = run(hot_key(100))
    frame = result.timeseries
    for column in ("cache_hit_ratio", "cache_hit_ratio_redis", "db_qps", "db_pool_wait_ms"):
        assert column in frame
    assert frame["cache_rebuilds"].sum() == result.summary["db_reads"]
    assert frame["db_queries"].sum() == result.summary["db_queries"]


def test_keys_spread_evenly_over_nodes_and_shards():
    """Consecutive keys (popularity ranks) fall evenly into buckets, whatever the count."""
    keys = range(20_000)
    for n in (2, 3, 4, 7):
        counts = np.bincount([bucket(k, n) for k in keys], minlength=n)
        low, high = stats.binom.interval(0.999, len(keys), 1 / n)
        assert low <= counts.min() and counts.max() <= high
    # the ten most popular items do not all land on one node
    assert len({bucket(k, 4) for k in range(10)}) > 1


def test_bloom_filter_false_positives_are_fixed_per_key():
    """About the stated fraction of missing keys pass, and a key always gets the same answer."""
    passed = [k for k in range(100_000) if bloom_passes(k, 0.01, salt=99)]
    low, high = stats.binom.interval(0.999, 100_000, 0.01)
    assert low <= len(passed) <= high
    assert all(bloom_passes(k, 0.01, salt=99) for k in passed)


def test_repeated_hot_item_or_level_names_are_rejected():
    with pytest.raises(ValueError, match="hot item names must be unique; repeated: a"):
        Catalogue(items=10, hot_items=[{"name": "a", "share": 0.1}, {"name": "a", "share": 0.1}])
    level = {"name": "redis", "ttl_s": 1}
    with pytest.raises(ValueError, match="cache level names must be unique"):
        Cache(levels=[level, level])


def test_losing_the_only_cache_node_sends_every_read_to_the_database():
    """The plain one-node cache, lost for 20 s: no hits then, and it comes back cold."""
    scenario = hot_key(200, duration_s=60)
    scenario["faults"] = [
        {"kind": "cache_node_down", "at_s": 20, "duration_s": 20, "level": "redis"}
    ]
    series = run(scenario).timeseries.set_index("t_s")
    assert series.loc[21:39, "cache_hits"].sum() == 0
    assert series.loc[21:39, "cache_misses"].sum() > 1000  # 90% of 200 views/s, and more
    assert series["cache_rebuilds"].sum() == series["cache_misses"].sum()
    assert series.loc[45:59, "cache_hit_ratio"].mean() > 0.8


def test_a_lone_hot_items_only_level_counts_the_keys_it_does_not_keep_as_misses():
    """Lookups of other keys pass it by, so overall they are misses that rebuild."""
    levels = [
        {
            "name": "local",
            "kind": "local",
            "ttl_s": 5,
            "latency_ms": fixed(0),
            "hot_items_only": True,
        }
    ]
    summary = run(hot_key(200, duration_s=30, levels=levels)).summary
    assert summary["cache_hits"] + summary["cache_misses"] == summary["sessions"]
    assert summary["cache_misses"] == summary["db_reads"]
    # The hot item misses only while a rebuild is out: about 1 + 180/s * 0.05 s of the
    # 180/s * 5.05 s reads of each TTL cycle, so a hit ratio near 0.989.
    assert 0.97 < summary["cache_hit_ratio_by_level"]["local"] < 0.995


def test_local_levels_must_agree_on_the_number_of_servers():
    levels = [
        {"name": "a", "kind": "local", "nodes": 2, "ttl_s": 1},
        {"name": "b", "kind": "local", "nodes": 3, "ttl_s": 1},
    ]
    with pytest.raises(ValueError, match="same number of nodes"):
        Cache(levels=levels)
