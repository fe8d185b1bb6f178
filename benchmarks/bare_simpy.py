"""A hand-written, bare-SimPy model of the same session flow, as a performance reference.

This is what a competent engineer would write directly on SimPy for the shop of
``simulator/``, with no framework around it: one process per session, ``simpy.Resource``
for the gateway workers, the database pool and each payment channel, a plain dict as
the TTL cache, a plain list as the stock, a heap of picker free times per warehouse,
and only the statistics such a script keeps (outcome counts, a list of checkout
latencies, GMV, cache hits, on-time deliveries). It imports nothing from
``simulator.model.components``, ``simulator.measure.metrics`` or ``simulator.model.session``.

What it reuses from ``simulator`` (not what is being measured): the ``Scenario``
object and ``apply_scale`` for the parameters, ``arrival_times`` for the NHPP arrival
times, ``Population`` for the users' attributes, and ``Streams`` for seeding.

Random numbers: every distribution is a numpy ``Generator`` sampled in **blocks**
(``BLOCK`` values per numpy call, handed out one at a time from a Python list). The
component streams use the same stream names as the full model (common random
numbers), so with the same seed both models see the same service times; since the
flow and the draw order are the same too, the outcome counts come out equal or
nearly so. That is a check that the two models are the same model, not a
requirement.

Racing a queue against the user's patience: by default (``race="queued"``) a request
is raced with ``req | env.timeout(...)`` only when it actually has to queue (a granted
request needs no race), which is what the full model does too, so both schedule the
same kinds of events. ``race="always"`` is the textbook form (every request raced,
the bank-renege example of SimPy's documentation), for reference.

Run ``python benchmarks/bare_simpy.py`` to compare its outcome shares with the full
model's on the ``sale-start-spike`` preset.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from simulator.measure.streams import Streams
from simulator.model.scale import apply_scale
from simulator.model.traffic import arrival_times
from simulator.model.users import BOUNCE, BROWSE, LEAVE_CART, Population

OUTCOMES = (
    "bounced",
    "browsed",
    "cart_abandoned",
    "abandoned",
    "rejected",
    "error",
    "sold_out",
    "payment_failed",
    "ordered",
)
(
    BOUNCED,
    BROWSED,
    CART_ABANDONED,
    ABANDONED,
    REJECTED,
    ERROR,
    SOLD_OUT,
    PAYMENT_FAILED,
    ORDERED,
) = range(len(OUTCOMES))

BLOCK = 4096
PRESET = Path(__file__).resolve().parent.parent / "scenarios" / "sale-start-spike.yaml"


def sampler(spec: Any, rng: np.random.Generator, scale: float = 1.0):
    """A zero-argument sampler for a scenario distribution, drawn in blocks of BLOCK."""
    kind = spec.dist
    if kind == "deterministic":
        value = spec.value * scale
        return lambda: value
    if kind == "exponential":
        mean = spec.mean * scale

        def draw(n):
            return rng.exponential(mean, n)
    elif kind == "uniform":
        low, high = spec.low * scale, spec.high * scale

        def draw(n):
            return rng.uniform(low, high, n)
    elif kind == "lognormal":
        sigma2 = math.log1p(spec.cv**2)
        mu, sigma = math.log(spec.mean * scale) - sigma2 / 2, math.sqrt(sigma2)

        def draw(n):
            return rng.lognormal(mu, sigma, n)
    elif kind == "gamma":
        shape = 1 / spec.cv**2
        theta = spec.mean * scale / shape

        def draw(n):
            return rng.gamma(shape, theta, n)
    else:
        raise ValueError(f"unknown distribution {kind!r}")
    # An endless iterator over successive blocks; its __next__ is the sampler.
    return itertools.chain.from_iterable(iter(lambda: draw(BLOCK).tolist(), None)).__next__


def run(scenario: Any, seed: int | None = None, race: str = "queued") -> dict[str, Any]:
    """Simulate one replication; return outcome counts and a few figures.

    Args:
        scenario: a ``simulator.Scenario`` (its ``scale`` is applied here).
        seed: the seed; defaults to the scenario's.
        race: ``"queued"`` races a request against patience only if it queues;
            ``"always"`` races every request (textbook SimPy).
    """
    if race not in ("queued", "always"):
        raise ValueError(race)
    race_always = race == "always"
    declared = scenario
    sc = apply_scale(scenario)
    seed = sc.seed if seed is None else seed
    if sc.gateway is None or sc.cache is None:
        raise ValueError("the bare model needs a gateway and a cache")

    env = simpy.Environment()
    timeout, process = env.timeout, env.process
    streams = Streams(seed)
    population = Population(sc, streams)
    next_user = population.next_user
    times = arrival_times(sc.traffic, sc.duration_s, streams.generator("arrivals"))

    # Gateway
    g = sc.gateway
    workers = simpy.Resource(env, capacity=g.workers)
    n_workers = g.workers
    queue_limit = math.inf if g.queue_limit is None else g.queue_limit
    service = sampler(g.service_time_ms, streams.generator("gateway.service"), 1e-3)
    # Cache: item -> expiry time
    level = sc.cache.levels[0]
    ttl = level.ttl_s
    cache_latency = sampler(
        level.latency_ms, streams.generator(f"cache.{level.name}.latency"), 1e-3
    )
    expires: dict[int, float] = {}
    # Database
    d = sc.database
    pool = simpy.Resource(env, capacity=d.pool_size)
    pool_timeout = d.pool_timeout_ms / 1000
    read_time = sampler(d.read_time_ms, streams.generator("database.read"), 1e-3)
    write_time = sampler(d.write_time_ms, streams.generator("database.write"), 1e-3)
    # Inventory
    unlimited = sc.inventory.stock_per_item is None
    stock = [] if unlimited else [sc.inventory.stock_per_item] * sc.catalogue.items
    deduct = sampler(sc.inventory.deduct_time_ms, streams.generator("inventory.deduct"), 1e-3)
    # Payment channels: (slots, timeout, success probability, latency, uniform)
    channels = []
    for ch in sc.payment.channels:
        uniform_rng = streams.generator(f"payment.{ch.name}.outcome")
        channels.append(
            (
                simpy.Resource(env, capacity=ch.capacity),
                ch.timeout_ms / 1000,
                ch.success_probability,
                sampler(ch.latency_ms, streams.generator(f"payment.{ch.name}.latency"), 1e-3),
                itertools.chain.from_iterable(
                    iter(lambda r=uniform_rng: r.random(BLOCK).tolist(), None)
                ).__next__,
            )
        )
    # Fulfilment: per warehouse a heap of picker free times and a pick-time sampler
    f = sc.fulfilment
    warehouses = [
        ([0.0] * w.pickers, sampler(w.pick_time_s, streams.generator(f"warehouse.{w.name}.pick")))
        for w in f.warehouses
    ]
    regions = [r.name for r in f.regions]
    # each region's own warehouse, and a transit sampler per (warehouse, region) pair
    nearest = [next(i for i, w in enumerate(f.warehouses) if w.region == r) for r in regions]
    transit = [
        [
            sampler(
                w.transit_time_h.get(r, f.transit_time_h),
                streams.generator(f"carrier.{w.name}.{r}"),
                3600.0,
            )
            for r in regions
        ]
        for w in f.warehouses
    ]
    promise = f.promised_delivery_h * 3600.0

    # Statistics
    counts = [0] * len(OUTCOMES)
    checkout_ms: list[float] = []
    gmv = 0.0
    hits = 0
    on_time = 0

    def acquire(resource, until):
        """Get one unit of resource, or None if `until` comes first (request withdrawn)."""
        req = resource.request()
        if race_always or not req.triggered:
            got = yield req | timeout(max(until - env.now, 0.0))
            if req not in got:
                req.cancel()
                return None
        return req

    def query(service_s, deadline):
        give_up = env.now + pool_timeout
        req = yield from acquire(pool, min(give_up, deadline))
        if req is None:
            return ABANDONED if deadline < give_up else ERROR
        yield timeout(service_s)
        pool.release(req)
        return None

    def enter(deadline):
        """A gateway worker, or an outcome (rejected, abandoned)."""
        if workers.count >= n_workers and len(workers.queue) >= queue_limit:
            return REJECTED
        req = yield from acquire(workers, deadline)
        return ABANDONED if req is None else req

    def page(item, deadline):
        nonlocal hits
        req = yield from enter(deadline)
        if req.__class__ is int:
            return req
        now = env.now
        hit = expires.get(item, -1.0) > now
        yield timeout(service() + cache_latency())
        failed = None
        if hit:
            hits += 1
        else:
            failed = yield from query(read_time(), deadline)
            if failed is None:
                expires[item] = env.now + ttl
        workers.release(req)
        if failed is None and env.now > deadline:
            return ABANDONED
        return failed

    def add_to_cart(deadline):
        req = yield from enter(deadline)
        if req.__class__ is int:
            return req
        yield timeout(service())
        workers.release(req)
        return ABANDONED if env.now > deadline else None

    def pay(channel, deadline):
        slots, timeout_s, p_success, latency, uniform = channel
        give_up = env.now + timeout_s
        limit = min(give_up, deadline)
        req = yield from acquire(slots, limit)
        if req is None:
            return ABANDONED if limit < give_up else PAYMENT_FAILED
        start = env.now
        done = start + latency()
        if done > limit:
            # the shop stops waiting; the channel keeps the slot until it is done
            yield timeout(max(limit - start, 0.0))
            timeout(done - env.now).callbacks.append(lambda _: slots.release(req))
            return ABANDONED if limit < give_up else PAYMENT_FAILED
        yield timeout(done - start)
        slots.release(req)
        return None if uniform() < p_success else PAYMENT_FAILED

    def answered(started):
        checkout_ms.append((env.now - started) * 1000.0)

    def checkout(user):
        nonlocal gmv, on_time
        item, patience = user.item, user.patience_s
        started = env.now
        deadline = started + patience
        req = yield from enter(deadline)
        if req.__class__ is int:
            return req
        if unlimited:
            in_stock = True
        elif stock[item] > 0:
            stock[item] -= 1
            in_stock = True
        else:
            in_stock = False
        yield timeout(service() + deduct())
        if not in_stock:
            workers.release(req)
            answered(started)
            return SOLD_OUT
        failed = yield from query(write_time(), deadline)
        workers.release(req)
        if failed is None and env.now > deadline:
            failed = ABANDONED
        if failed is not None:
            if not unlimited:
                stock[item] += 1
            if failed != ABANDONED:
                answered(started)
            return failed
        # payment
        deadline = env.now + patience
        req = yield from enter(deadline)
        if req.__class__ is int:
            if not unlimited:
                stock[item] += 1
            return req
        yield timeout(service())
        failed = yield from pay(channels[user.channel], deadline)
        workers.release(req)
        if failed is not None:
            if not unlimited:
                stock[item] += 1
            if failed != ABANDONED:
                answered(started)
            return failed
        now = env.now
        answered(started)
        gmv += user.basket_cny
        # fulfilment: FCFS pickers (Kiefer-Wolfowitz), then the carrier
        region = user.region
        warehouse = nearest[region]
        free, pick = warehouses[warehouse]
        start = free[0] if free[0] > now else now
        finish = start + pick()
        heapq.heapreplace(free, finish)
        if finish + transit[warehouse][region]() - now <= promise:
            on_time += 1
        return ORDERED

    def visit(user):
        pages, pauses = user.pages, user.pauses_s
        patience = user.patience_s
        for i, item in enumerate(pages):
            if i:
                yield timeout(pauses[i - 1])
            failed = yield from page(item, env.now + patience)
            if failed is not None:
                return failed
        plan = user.plan
        if plan == BOUNCE:
            return BOUNCED
        if plan == BROWSE:
            return BROWSED
        if pages:  # a user who skipped browsing arrives with the cart filled
            yield timeout(pauses[-1])
            failed = yield from add_to_cart(env.now + patience)
            if failed is not None:
                return failed
        if plan == LEAVE_CART:
            return CART_ABANDONED
        return (yield from checkout(user))

    def session(user):
        counts[(yield from visit(user))] += 1

    def arrivals():
        for t in times:
            yield timeout(t - env.now)
            process(session(next_user()))

    process(arrivals())
    env.run()

    sessions = sum(counts)
    orders = counts[ORDERED]
    q = np.percentile(checkout_ms, [50, 95, 99]) if checkout_ms else [math.nan] * 3
    return {
        "sessions": sessions,
        "outcomes": dict(zip(OUTCOMES, counts, strict=False)),
        "orders": orders,
        "gmv": gmv / declared.scale,
        "checkout_latency_ms": {
            "p50": float(q[0]),
            "p95": float(q[1]),
            "p99": float(q[2]),
            "mean": float(np.mean(checkout_ms)) if checkout_ms else math.nan,
            "count": len(checkout_ms),
        },
        "cache_hits": hits,
        "on_time_delivery_rate": on_time / orders if orders else math.nan,
        "events": next(env._eid),
        "ended_at_s": env.now,
    }


def _shares(outcomes: dict[str, int]) -> dict[str, float]:
    total = sum(outcomes.values())
    return {k: v / total for k, v in outcomes.items()}


def main(argv: list[str] | None = None) -> int:
    """Compare outcome shares of the full and the bare model on the preset."""
    import simulator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--race", choices=("queued", "always"), default="queued")
    parser.add_argument("--set", nargs="+", default=[], metavar="PATH=VALUE")
    args = parser.parse_args(argv)
    scenario = simulator.load_scenario(PRESET, [f"scale={args.scale}", *args.set])

    t = time.perf_counter()
    bare = run(scenario, args.seed, args.race)
    bare_s = time.perf_counter() - t
    t = time.perf_counter()
    full = simulator.simulate(scenario, args.seed).summary
    full_s = time.perf_counter() - t

    fs, bs = _shares(full["outcomes"]), _shares(bare["outcomes"])
    print(f"sale-start-spike at scale {args.scale}, race={args.race}")
    print(f"{'outcome':<16}{'full':>10}{'share':>9}{'bare':>10}{'share':>9}")
    for name in OUTCOMES:
        print(
            f"{name:<16}{full['outcomes'][name]:>10}{fs[name]:>9.4f}"
            f"{bare['outcomes'][name]:>10}{bs[name]:>9.4f}"
        )
    print(f"{'sessions':<16}{full['sessions']:>10}{'':>9}{bare['sessions']:>10}")
    fc, bc = full["checkout_latency_ms"], bare["checkout_latency_ms"]
    print(
        f"checkout ms p50/p99: full {fc['p50']:.1f}/{fc['p99']:.1f}  "
        f"bare {bc['p50']:.1f}/{bc['p99']:.1f}"
    )
    print(
        f"cache hits: full {full['cache_hits']}  bare {bare['cache_hits']};  "
        f"on-time: full {full['on_time_delivery_rate']:.4f}  "
        f"bare {bare['on_time_delivery_rate']:.4f}"
    )
    print(f"events: full {full['run']['events']}  bare {bare['events']}")
    print(
        f"wall: full {full_s:.2f} s ({full['sessions'] / full_s:,.0f} sessions/s)  "
        f"bare {bare_s:.2f} s ({bare['sessions'] / bare_s:,.0f} sessions/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
