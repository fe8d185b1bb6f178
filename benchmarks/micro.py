"""Per-component micro-benchmarks of the full model, in ns per call.

Each figure is the best of ``--repeat`` timings of a loop of ``--number`` calls
(``timeit`` style: the minimum is the least disturbed run), divided by the number of
calls, minus the cost of an empty loop of the same shape. The components are built
from the ``sale-start-spike`` preset exactly as ``simulator.model.campaign.build`` does.

The SimPy-based ones (``Database.query``, ``PaymentChannel.pay``) run one process that
makes the calls back to back in a tiny environment, with a free pool/channel, so each
call includes SimPy's own events (request, timeout, release); the same loop written
with bare ``simpy.Resource`` calls is reported next to it, so the difference is the
component's own overhead (statistics, counters).

Usage::

    python benchmarks/micro.py [--number 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import simpy

import simulator
from simulator.measure.metrics import IntervalCounter, Level, Tally
from simulator.measure.streams import Streams, make_sampler
from simulator.model.components.cache import Cache
from simulator.model.components.database import Database
from simulator.model.components.payment import PaymentChannel
from simulator.model.components.station import StationStats
from simulator.model.scale import apply_scale
from simulator.model.users import Population

PRESET = Path(__file__).resolve().parent.parent / "scenarios" / "sale-start-spike.yaml"


def best_ns(loop: Callable[[int], None], number: int, repeat: int) -> float:
    """Best-of-`repeat` time of loop(number), in ns per iteration (GC off, as timeit)."""
    times = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter_ns()
            loop(number)
            times.append(time.perf_counter_ns() - t)
    finally:
        if enabled:
            gc.enable()
    return min(times) / number


def main(argv: list[str] | None = None) -> int:
    """Run every micro-benchmark and print ns per call."""
    parser = argparse.ArgumentParser(description="micro-benchmarks, ns per call")
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    number, repeat = args.number, args.repeat
    sc = apply_scale(simulator.load_scenario(PRESET, ["scale=0.3"]))
    streams = Streams(1)
    rng = np.random.default_rng(1)
    results: list[tuple[str, float, str]] = []

    def record(name: str, loop: Callable[[int], None], note: str = "", n: int = number) -> None:
        results.append((name, best_ns(loop, n, repeat), note))
        print(f"  {name}", file=sys.stderr)

    def empty(n: int) -> None:
        for _ in itertools.repeat(None, n):
            pass

    overhead = best_ns(empty, number, repeat)

    # --- Cache
    cache = Cache(sc.cache, streams, sc.timeseries_interval_s)
    keys = (rng.zipf(1.5, number) % sc.catalogue.items).tolist()
    nows = np.sort(rng.uniform(0, 3600, number)).tolist()

    def cache_get(n: int) -> None:
        get = cache.get
        for k, t in zip(keys[:n], nows[:n], strict=False):
            get(k, t)

    def cache_put(n: int) -> None:
        put = cache.put
        for k, t in zip(keys[:n], nows[:n], strict=False):
            put(k, t)

    def zip_loop(n: int) -> None:
        for _k, _t in zip(keys[:n], nows[:n], strict=False):
            pass

    zip_overhead = best_ns(zip_loop, number, repeat)
    for k, t in zip(keys, nows, strict=False):  # warm the dict: mostly hits afterwards
        cache.put(k, t)
    cache.hits.values.clear()
    cache.misses.values.clear()
    results.append(
        (
            "Cache.get (mixed hit/miss)",
            best_ns(cache_get, number, repeat) - zip_overhead,
            "+IntervalCounter.add",
        )
    )
    results.append(("Cache.put", best_ns(cache_put, number, repeat) - zip_overhead, ""))
    expires: dict[int, float] = {}

    def dict_get(n: int) -> None:
        for k, t in zip(keys[:n], nows[:n], strict=False):
            e = expires.get(k)
            if e is not None and e > t:
                pass

    results.append(
        (
            "  bare: dict.get + compare",
            best_ns(dict_get, number, repeat) - zip_overhead,
            "reference",
        )
    )

    # --- metrics
    tally = Tally()
    values = rng.lognormal(-1, 1, number).tolist()

    def tally_add(n: int) -> None:
        add = tally.add
        for x in values[:n]:
            add(x)

    def list_loop(n: int) -> None:
        for _x in values[:n]:
            pass

    list_overhead = best_ns(list_loop, number, repeat)
    results.append(
        (
            "Tally.add (positive value)",
            best_ns(tally_add, number, repeat) - list_overhead,
            "Welford + DDSketch bucket",
        )
    )
    if hasattr(tally, "add_zero"):  # present since commit a3f3b84

        def tally_zero(n: int) -> None:
            add_zero = tally.add_zero
            for _ in itertools.repeat(None, n):
                add_zero()

        results.append(
            ("Tally.add_zero", best_ns(tally_zero, number, repeat) - overhead, "zero waits")
        )
    sink: list[float] = []

    def list_append(n: int) -> None:
        append = sink.append
        for x in values[:n]:
            append(x)

    results.append(
        ("  bare: list.append", best_ns(list_append, number, repeat) - list_overhead, "reference")
    )
    sink.clear()

    level_plain = Level()
    level_iv = Level(1.0)
    times_ = np.cumsum(rng.exponential(0.01, number)).tolist()  # ~100 changes per second

    def level_add(lvl: Level) -> Callable[[int], None]:
        def loop(n: int) -> None:
            add = lvl.add
            i = 0
            for t in times_[:n]:
                add(t, 1 if i & 1 == 0 else -1)
                i += 1

        return loop

    def level_base(n: int) -> None:
        i = 0
        for _t in times_[:n]:
            (1 if i & 1 == 0 else -1)
            i += 1

    lvl_overhead = best_ns(level_base, number, repeat)
    results.append(
        (
            "Level.add (no intervals)",
            best_ns(level_add(level_plain), number, repeat) - lvl_overhead,
            "",
        )
    )
    results.append(
        (
            "Level.add (interval_s=1)",
            best_ns(level_add(level_iv), number, repeat) - lvl_overhead,
            "as in StationStats.busy",
        )
    )
    counter = IntervalCounter(1.0)

    def counter_add(n: int) -> None:
        add = counter.add
        for t in times_[:n]:
            add(t)

    results.append(
        ("IntervalCounter.add", best_ns(counter_add, number, repeat) - list_overhead, "")
    )
    stats = StationStats("s", 10, 1.0)

    def station_cycle(n: int) -> None:
        arrive, begin, finish = stats.arrive, stats.begin, stats.finish
        for t in times_[:n]:
            arrive(t)
            begin(t, t)
            finish(t, t + 0.001)

    results.append(
        (
            "StationStats arrive+begin+finish",
            best_ns(station_cycle, number, repeat) - list_overhead,
            "per request served at once (zero wait)",
        )
    )

    # --- samplers
    spec = sc.database.read_time_ms
    sample = make_sampler(spec, streams.generator("micro.sampler"), 1e-3)

    def sampler_loop(n: int) -> None:
        for _ in itertools.repeat(None, n):
            sample()

    results.append(
        (
            "make_sampler() call (buffered)",
            best_ns(sampler_loop, number, repeat) - overhead,
            "lognormal, block 2048",
        )
    )
    g = np.random.default_rng(2)

    def scalar_draw(n: int) -> None:
        ln = g.lognormal
        for _ in itertools.repeat(None, n):
            ln(-5.0, 0.7)

    results.append(
        (
            "  bare: rng.lognormal() per call",
            best_ns(scalar_draw, number // 4, repeat) - overhead,
            "reference (unbuffered)",
        )
    )

    # --- users
    population = Population(sc, Streams(3))

    def next_user(n: int) -> None:
        nu = population.next_user
        for _ in itertools.repeat(None, n):
            nu()

    results.append(
        (
            "Population.next_user",
            best_ns(next_user, number, repeat) - overhead,
            "user dataclass + ~10-20 draws",
        )
    )

    # --- SimPy-based components: N calls back to back in one process
    sim_n = max(number // 4, 1000)
    db_cfg = sc.database
    pay_cfg = sc.payment.channels[0]

    def db_query(n: int) -> None:
        env = simpy.Environment()
        db = Database(env, db_cfg, Streams(4), 1.0)

        def proc():
            query = db.query
            for _ in itertools.repeat(None, n):
                yield from query(0.001, 1e18)

        env.process(proc())
        env.run()

    def bare_query(n: int) -> None:
        env = simpy.Environment()
        pool = simpy.Resource(env, db_cfg.pool_size)

        def proc():
            timeout = env.timeout
            for _ in itertools.repeat(None, n):
                req = pool.request()
                if not req.triggered:
                    yield req | timeout(1.0)
                yield timeout(0.001)
                pool.release(req)

        env.process(proc())
        env.run()

    def pay(n: int) -> None:
        env = simpy.Environment()
        channel = PaymentChannel(env, pay_cfg, Streams(5), 1.0)

        def proc():
            p = channel.pay
            for _ in itertools.repeat(None, n):
                yield from p(env.now + 1e9)

        env.process(proc())
        env.run()

    def bare_pay(n: int) -> None:
        env = simpy.Environment()
        slots = simpy.Resource(env, pay_cfg.capacity)
        latency = make_sampler(pay_cfg.latency_ms, Streams(5).generator("l"), 1e-3)
        uniform = make_sampler(
            simulator.scenario.distributions.Uniform(dist="uniform", low=0, high=1),
            Streams(5).generator("u"),
        )

        def proc():
            timeout = env.timeout
            for _ in itertools.repeat(None, n):
                req = slots.request()
                if not req.triggered:
                    yield req | timeout(3.0)
                yield timeout(latency())
                slots.release(req)
                _ = uniform() < 0.98

        env.process(proc())
        env.run()

    def timeouts_only(n: int) -> None:
        env = simpy.Environment()

        def proc():
            timeout = env.timeout
            for _ in itertools.repeat(None, n):
                yield timeout(0.001)

        env.process(proc())
        env.run()

    results.append(
        (
            "Database.query (free pool)",
            best_ns(db_query, sim_n, repeat),
            "request+timeout+release events",
        )
    )
    results.append(
        (
            "  bare: Resource request/timeout/release",
            best_ns(bare_query, sim_n, repeat),
            "reference",
        )
    )
    results.append(
        (
            "PaymentChannel.pay (free slot)",
            best_ns(pay, sim_n, repeat),
            "incl. latency + outcome draws",
        )
    )
    results.append(("  bare: Resource + 2 draws", best_ns(bare_pay, sim_n, repeat), "reference"))
    results.append(
        ("SimPy: yield env.timeout() alone", best_ns(timeouts_only, sim_n, repeat), "one event")
    )

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import code_version

    print(f"# {code_version()}")
    print(
        f"# ns per call, best of {repeat}, {number:,} calls (SimPy ones: {sim_n:,});"
        f" empty-loop overhead subtracted where marked"
    )
    width = max(len(r[0]) for r in results)
    print(f"{'benchmark':<{width}}  {'ns/call':>9}  note")
    for name, ns, note in results:
        print(f"{name:<{width}}  {ns:>9.0f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
