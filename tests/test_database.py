"""The database: the contention knee, the pool timeout, replicas and shards."""

from __future__ import annotations

import simpy

import simulator
from simulator.measure.outcomes import Outcome
from simulator.measure.streams import Streams
from simulator.model.components.database import Database
from simulator.scenario.schema import Database as DatabaseConfig
from tests.conftest import fixed, small


def cluster(**changes) -> tuple[simpy.Environment, Database]:
    fields = {
        "pool_size": 4,
        "pool_timeout_ms": 1000,
        "read_time_ms": fixed(10),
        "write_time_ms": fixed(10),
        **changes,
    }
    config = DatabaseConfig.model_validate(fields)
    env = simpy.Environment()
    return env, Database(env, config, Streams(1), 1.0)


def finish_times(env: simpy.Environment, database: Database, n: int) -> list[float]:
    """Start ``n`` reads at t=0 and return when each ended."""
    ended: list[float] = []

    def one(key: int):
        failed = yield from database.read(key, deadline=10.0)
        assert failed is None
        ended.append(env.now)

    for key in range(n):
        env.process(one(key))
    env.run()
    return ended


def test_queries_slow_beyond_the_contention_knee():
    """Knee 2, slope 0.5: the third and fourth concurrent queries take 1.5x and 2x."""
    env, database = cluster(contention_knee=2, contention_slope=0.5)
    ended = finish_times(env, database, 4)
    assert ended == [0.010, 0.010, 0.015, 0.020]


def test_no_knee_means_no_contention():
    env, database = cluster()
    assert finish_times(env, database, 4) == [0.010] * 4


def test_pool_timeout_fails_the_request_and_is_counted():
    """One connection, 10 ms queries, 15 ms pool timeout: the third waiter fails."""
    env, database = cluster(pool_size=1, pool_timeout_ms=15)
    results = {}

    def one(key: int):
        results[key] = yield from database.read(key, deadline=10.0)

    for key in range(3):
        env.process(one(key))
    env.run()
    assert results == {0: None, 1: None, 2: Outcome.ERROR}
    assert sum(database.pool_timeouts.values) == 1
    assert sum(database.pool_wait_s.values) == 0.010  # the second waited one query


def test_reads_go_to_replicas_in_turn_and_writes_to_the_primary():
    scenario = small(
        database={
            "pool_size": 8,
            "pool_timeout_ms": 1000,
            "read_time_ms": fixed(5),
            "write_time_ms": fixed(5),
            "shards": 2,
            "read_replicas": 2,
        }
    )
    summary = simulator.simulate(scenario).summary
    names = [n for n in summary["stations"] if n.startswith("database")]
    assert names == [
        "database.shard0.primary",
        "database.shard0.replica1",
        "database.shard0.replica2",
        "database.shard1.primary",
        "database.shard1.replica1",
        "database.shard1.replica2",
    ]
    arrivals = {n: summary["stations"][n]["arrivals"] for n in names}
    primaries = arrivals["database.shard0.primary"] + arrivals["database.shard1.primary"]
    assert primaries == summary["db_writes"] > 0
    assert sum(arrivals.values()) - primaries == summary["db_reads"] > 0
    for shard in (0, 1):  # round robin: the two replicas differ by at most one read
        one, two = (arrivals[f"database.shard{shard}.replica{r}"] for r in (1, 2))
        assert abs(one - two) <= 1
    # both shards take a share of the keys
    assert min(arrivals["database.shard0.replica1"], arrivals["database.shard1.replica1"]) > 0
