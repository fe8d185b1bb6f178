"""The performance reference: the shop's session flow written by hand on bare SimPy.

This is what a competent SimPy author writes directly for the flow of ``simulator/``
on the ``sale-start-spike`` preset, when all they want is the outcome counts: one
process per session and nothing else per session. ``simpy.Resource`` for the gateway
workers, the database pool and each payment channel (SimPy's resource semantics are
part of what is measured: "what does SimPy cost"); a plain dict of expiry times as the
cache, a list as the stock, a heap of picker free times per warehouse; statistics kept
as counters and one list of checkout latencies.

How it stays lean, like a bank-teller example that has been profiled once:

- Users are drawn **in blocks** with numpy, straight from the full model's named
  streams and in its order (``users.choices``: seven uniforms per user for segment,
  bounce, pages, cart, checkout, payment channel and region; ``users.items`` through
  the catalogue's Zipf law; ``users.SEGMENT.think`` one per pause, ``.basket`` and
  ``.patience`` one per user). A user is a plain tuple, handed to the session process
  as its arguments: no object and no Python-level draw per user.
- Component draws (service, latency, pick and transit times, payment outcomes) come
  from the same named streams, fetched ``BLOCK`` at a time and handed out by a C-level
  iterator. numpy's ``Generator`` gives the same sequence whatever the block size, so
  with the same seed both models see the same numbers (common random numbers) and,
  the flow being the same, the same outcomes.
- A visit is one generator, and the only one: page views, add-to-cart, checkout and
  payment are inline. A free resource grants a request inside ``request()``, so a
  granted request is used at once; only a request that has to queue is raced against
  the user's patience, in the helper generator ``wait``. ``race="always"`` races
  every request (the textbook form, SimPy's bank-renege example) for comparison.

It imports from ``simulator`` only what is not being measured: the ``Scenario`` and
``apply_scale`` for the parameters, ``arrival_times`` (already drawn in numpy blocks)
for the NHPP arrival times, and ``Streams`` to seed the named generators.

It models the subset of scenarios the preset uses and refuses others (see
:func:`unsupported`). Run ``python benchmarks/bare_simpy.py`` to compare its outcome
shares with the full model's.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from simulator.measure.streams import Streams
from simulator.model.campaign import collector_paused
from simulator.model.scale import apply_scale
from simulator.model.traffic import arrival_times

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

# A user's plan, in the full model's order (simulator.model.users).
BOUNCE, BROWSE, LEAVE_CART, BUY = range(4)

BLOCK = 4096
"""Values (users) fetched from numpy per call."""
PRESET = Path(__file__).resolve().parent.parent / "scenarios" / "sale-start-spike.yaml"


def vectorised(spec: Any, rng: np.random.Generator, scale: float = 1.0) -> Callable[[int], Any]:
    """``draw(n)``: n values of a scenario distribution from ``rng``, times ``scale``.

    The parameters are computed exactly as the full model computes them, so that the
    same stream gives the same floats.
    """
    kind = spec.dist
    if kind == "deterministic":
        value = spec.value * scale
        return lambda n: np.full(n, value)
    if kind == "exponential":
        mean = spec.mean * scale
        return lambda n: rng.exponential(mean, n)
    if kind == "uniform":
        low, high = spec.low * scale, spec.high * scale
        return lambda n: rng.uniform(low, high, n)
    if kind == "lognormal":
        sigma2 = math.log1p(spec.cv**2)
        mu, sigma = math.log(spec.mean * scale) - sigma2 / 2, math.sqrt(sigma2)
        return lambda n: rng.lognormal(mu, sigma, n)
    if kind == "gamma":
        shape = 1 / spec.cv**2
        theta = spec.mean * scale / shape
        return lambda n: rng.gamma(shape, theta, n)
    raise ValueError(f"unknown distribution {kind!r}")


def one_by_one(draw: Callable[[int], Any]) -> Callable[[], float]:
    """A zero-argument sampler over ``draw``: BLOCK values per numpy call, then C-level ``next``."""
    return itertools.chain.from_iterable(iter(lambda: draw(BLOCK).tolist(), None)).__next__


def _cumulative(shares: list[float]) -> np.ndarray:
    """Cumulative shares with the last set to 1.0, summed as the full model sums them."""
    cumulative = list(itertools.accumulate(shares))
    cumulative[-1] = 1.0
    return np.array(cumulative)


def users(sc: Any, streams: Streams) -> Iterator[tuple]:
    """The arriving users in order, drawn BLOCK at a time, each as the session's arguments.

    A user is ``(pages, pauses, plan, patience_s, item, basket_cny, channel, region)``:
    the items whose pages are viewed, the think time before each later page and before
    add-to-cart, what the user intends (BOUNCE .. BUY), the patience per request, the
    item carted, the basket value, the payment channel and the destination region.
    """
    segments = sc.segments
    segment_cdf = _cumulative([s.share for s in segments])
    channel_cdf = _cumulative([c.share for c in sc.payment.channels])
    region_cdf = _cumulative([r.share for r in sc.fulfilment.regions])
    choices = streams.generator("users.choices")
    # The catalogue's Zipf law (no hot items, no missing keys: see unsupported()).
    catalogue = sc.catalogue
    zipf = np.cumsum(np.arange(1, catalogue.items + 1, dtype=float) ** -catalogue.zipf_exponent)
    zipf /= zipf[-1]
    last_item = catalogue.items - 1
    items_rng = streams.generator("users.items")
    # Per segment, indexed by the users' segment numbers.
    skip = np.array([s.skip_browsing for s in segments])
    bounce = np.array([s.bounce_rate for s in segments])
    cart = np.array([s.add_to_cart_rate for s in segments])
    checkout = np.array([s.checkout_rate for s in segments])
    # log of the chance of one more page (geometric >= 1); -inf when pages_mean is 1,
    # where log(1 - u) / -inf is 0, i.e. exactly one page.
    log_more = np.array(
        [math.log(1 - 1 / s.pages_mean) if s.pages_mean > 1 else -math.inf for s in segments]
    )
    think, basket, patience = [], [], []
    for s in segments:
        think.append(vectorised(s.think_time_s, streams.generator(f"users.{s.name}.think")))
        basket.append(vectorised(s.basket_value_cny, streams.generator(f"users.{s.name}.basket")))
        patience.append(vectorised(s.patience_s, streams.generator(f"users.{s.name}.patience")))
    by_segment = range(len(segments))

    while True:
        n = BLOCK
        u = choices.random(7 * n).reshape(n, 7)
        segment = np.searchsorted(segment_cdf, u[:, 0], side="right")
        u_bounce, u_pages, u_cart, u_checkout = u[:, 1], u[:, 2], u[:, 3], u[:, 4]
        skips = skip[segment]
        buys = u_checkout < checkout[segment]
        plan = np.where(u_cart >= cart[segment], BROWSE, np.where(buys, BUY, LEAVE_CART))
        more = np.log(1.0 - u_pages) / log_more[segment]
        pages = 1 + more.astype(np.int64)
        # The full model truncates math.log(1 - u) / log_more; np.log may differ from
        # math.log in the last bit, which matters only for a quotient within a hair of
        # an integer: redo those few in Python.
        close = (more > 0.5) & (np.abs(more - np.rint(more)) < 1e-9)
        for i in np.flatnonzero(close).tolist():
            pages[i] = 1 + int(math.log(1.0 - float(u_pages[i])) / float(log_more[segment[i]]))
        bounced = ~skips & (u_bounce < bounce[segment])
        plan[bounced] = BOUNCE
        pages[bounced] = 1
        plan[skips] = np.where(buys[skips], BUY, LEAVE_CART)
        pages[skips] = 0
        # Items: one per page; a user who skips browsing draws the carted item instead.
        # The carted item is the last one drawn either way.
        item_end = np.cumsum(np.maximum(pages, 1))
        item_start = item_end - np.maximum(pages, 1)
        keys = np.minimum(
            np.searchsorted(zipf, items_rng.random(int(item_end[-1])), side="right"), last_item
        ).tolist()
        # Pauses before each later page and before add-to-cart, from each segment's
        # stream in arrival order.
        steps = np.maximum(pages - 1, 0) + ((plan >= LEAVE_CART) & (pages > 0))
        pause_end = np.cumsum(steps)
        pause_segment = np.repeat(segment, steps)
        pauses = np.empty(len(pause_segment))
        baskets, patiences = np.empty(n), np.empty(n)
        for s in by_segment:
            mine = pause_segment == s
            pauses[mine] = think[s](int(mine.sum()))
            mine = segment == s
            count = int(mine.sum())
            baskets[mine] = basket[s](count)
            patiences[mine] = patience[s](count)
        pauses = pauses.tolist()
        channel = np.searchsorted(channel_cdf, u[:, 5], side="right")
        region = np.searchsorted(region_cdf, u[:, 6], side="right")
        yield from (
            (keys[a : a + p], pauses[c - k : c], plan_, wait, keys[b - 1], value, ch, rg)
            for a, b, p, c, k, plan_, wait, value, ch, rg in zip(
                item_start.tolist(),
                item_end.tolist(),
                pages.tolist(),
                pause_end.tolist(),
                steps.tolist(),
                plan.tolist(),
                patiences.tolist(),
                baskets.tolist(),
                channel.tolist(),
                region.tolist(),
                strict=True,
            )
        )


def unsupported(sc: Any) -> list[str]:
    """What the scenario uses that this reference does not model (empty: it can run it)."""
    out = []
    p, inv, db, f = sc.promotions, sc.inventory, sc.database, sc.fulfilment
    promotions = (
        sc.event_starts()
        or p.discount
        or p.ladder
        or p.member_discount
        or p.coupon_holders
        or p.time_of_day
        or inv.purchase_limit_per_user is not None
        or any(s.units.dist != "deterministic" or s.units.value != 1 for s in sc.segments)
    )
    checks = {
        "a gateway and a cache": sc.gateway is None or sc.cache is None,
        "promotions": bool(promotions),
        "traffic channels, datacenters, experience, faults, recommendations, customer "
        "service": bool(
            sc.channels
            or sc.datacenters
            or sc.experience
            or sc.faults
            or sc.recommendations
            or sc.customer_service
        ),
        "refreshes, priority lanes": any(s.retry or s.priority_lane for s in sc.segments),
        "resilience guards, a warm-up period": bool(
            sc.resilience.database or sc.resilience.recommendations or sc.warmup_s
        ),
        "hot items, missing keys": bool(sc.catalogue.hot_items or sc.catalogue.missing_key_share),
        "gateway protections": sc.gateway is not None
        and bool(
            sc.gateway.rate_limit
            or sc.gateway.peak_shaving
            or sc.gateway.autoscaling
            or sc.gateway.serve_abandoned
        ),
        "one plain cache level": sc.cache is not None
        and (
            len(sc.cache.levels) != 1
            or sc.cache.levels[0].nodes != 1
            or bool(sc.cache.levels[0].capacity or sc.cache.levels[0].ttl_jitter)
            or sc.cache.levels[0].hot_items_only
            or sc.cache.rebuild != "none"
            or sc.cache.xfetch_beta is not None
            or sc.cache.bloom_filter_false_positive_rate is not None
            or bool(sc.cache.warm_items)
        ),
        "one database instance, no contention, async replication": (
            db.shards != 1
            or db.read_replicas
            or db.contention_knee is not None
            or db.replication.mode != "async"
        ),
        "atomic, unsplit stock": inv.deduction != "atomic" or inv.split_across_warehouses,
        "plain payment channels": bool(
            sc.payment.failover or sc.payment.user_retry or sc.payment.async_confirmation_s
        ),
        "warehouses without shifts, cut-offs or diversion": (
            f.divert_over_backlog_h is not None
            or f.tracking is not None
            or any(w.shifts or w.surge or w.cutoffs_h for w in f.warehouses)
        ),
    }
    out += [name for name, used in checks.items() if used]
    return out


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
    missing = unsupported(sc)
    if missing:
        raise ValueError("the reference does not model: " + "; ".join(missing))
    seed = sc.seed if seed is None else seed

    env = simpy.Environment()
    timeout, process = env.timeout, env.process
    streams = Streams(seed)
    times = arrival_times(sc.arrival_traffic(), sc.duration_s, streams.generator("arrivals"))
    next_user = users(sc, streams).__next__

    # Gateway: workers; a request that finds them busy and the queue full is rejected.
    g = sc.gateway
    workers = simpy.Resource(env, capacity=g.workers)
    n_workers, busy, queued = g.workers, workers.users, workers.queue
    queue_limit = math.inf if g.queue_limit is None else g.queue_limit
    enter, leave = workers.request, workers.release
    service = one_by_one(vectorised(g.service_time_ms, streams.generator("gateway.service"), 1e-3))
    # Cache: item -> expiry time.
    level = sc.cache.levels[0]
    ttl = level.ttl_s
    cache_latency = one_by_one(
        vectorised(level.latency_ms, streams.generator(f"cache.{level.name}.latency"), 1e-3)
    )
    expires: dict[int, float] = {}
    # Database: one connection pool.
    d = sc.database
    pool = simpy.Resource(env, capacity=d.pool_size)
    connect, disconnect = pool.request, pool.release
    pool_timeout = d.pool_timeout_ms / 1000
    read_time = one_by_one(vectorised(d.read_time_ms, streams.generator("database.read"), 1e-3))
    write_time = one_by_one(vectorised(d.write_time_ms, streams.generator("database.write"), 1e-3))
    # Inventory: units left per item (None: unlimited).
    per_item = sc.inventory.stock_per_item
    stock = None if per_item is None else [per_item] * sc.catalogue.items
    deduct = one_by_one(
        vectorised(sc.inventory.deduct_time_ms, streams.generator("inventory.deduct"), 1e-3)
    )
    # Payment channels: (slots, timeout, success probability, latency, uniform).
    channels = [
        (
            simpy.Resource(env, capacity=ch.capacity),
            ch.timeout_ms / 1000,
            ch.success_probability,
            one_by_one(
                vectorised(ch.latency_ms, streams.generator(f"payment.{ch.name}.latency"), 1e-3)
            ),
            one_by_one(streams.generator(f"payment.{ch.name}.outcome").random),
        )
        for ch in sc.payment.channels
    ]
    # Fulfilment: each region's own warehouse, whose pickers (a heap of free times)
    # pack first come first served; then the carrier's transit per (warehouse, region).
    f = sc.fulfilment
    regions = [r.name for r in f.regions]
    nearest = [next(i for i, w in enumerate(f.warehouses) if w.region == r) for r in regions]
    pickers = [[0.0] * w.pickers for w in f.warehouses]
    pick = [
        one_by_one(vectorised(w.pick_time_s, streams.generator(f"warehouse.{w.name}.pick")))
        for w in f.warehouses
    ]
    transit = [
        [
            one_by_one(
                vectorised(
                    w.transit_time_h.get(r, f.transit_time_h),
                    streams.generator(f"carrier.{w.name}.{r}"),
                    3600.0,
                )
            )
            for r in regions
        ]
        for w in f.warehouses
    ]
    promise = f.promised_delivery_h * 3600.0

    # Statistics.
    counts = [0] * len(OUTCOMES)
    checkout_ms: list[float] = []
    answered = checkout_ms.append
    gmv = 0.0
    hits = on_time = 0

    def wait(request: Any, until: float) -> Any:
        """Wait for a request that was not granted at once, no later than ``until``.

        Returns the granted request, or None (the request withdrawn) when time ran out.
        """
        got = yield request | timeout(max(until - env.now, 0.0))
        if request not in got:
            request.cancel()
            return None
        return request

    def session(
        pages: list[int],
        pauses: list[float],
        plan: int,
        patience: float,
        item: int,
        basket: float,
        channel: int,
        region: int,
    ) -> Any:
        """One visit: product pages, add-to-cart, checkout, payment. Returns its outcome."""
        nonlocal hits, gmv, on_time
        # Product pages: a worker, a cache lookup, a database read on a miss.
        for i, key in enumerate(pages):
            if i:
                yield timeout(pauses[i - 1])
            now = env.now
            deadline = now + patience
            if len(queued) >= queue_limit and len(busy) >= n_workers:
                return REJECTED
            worker = enter()
            if race_always or not worker.triggered:
                worker = yield from wait(worker, deadline)
                if worker is None:
                    return ABANDONED
                now = env.now
            hit = expires.get(key, -1.0) > now
            yield timeout(service() + cache_latency())
            if hit:
                hits += 1
            else:
                read_s = read_time()
                give_up = env.now + pool_timeout
                connection = connect()
                if race_always or not connection.triggered:
                    connection = yield from wait(connection, min(give_up, deadline))
                    if connection is None:
                        leave(worker)
                        return ABANDONED if deadline < give_up else ERROR
                yield timeout(read_s)
                disconnect(connection)
                expires[key] = env.now + ttl
            leave(worker)
            if env.now > deadline:
                return ABANDONED
        if plan == BOUNCE:
            return BOUNCED
        if plan == BROWSE:
            return BROWSED
        # Add to cart (a user who skipped browsing arrives with the cart filled).
        if pages:
            yield timeout(pauses[-1])
            deadline = env.now + patience
            if len(queued) >= queue_limit and len(busy) >= n_workers:
                return REJECTED
            worker = enter()
            if race_always or not worker.triggered:
                worker = yield from wait(worker, deadline)
                if worker is None:
                    return ABANDONED
            yield timeout(service())
            leave(worker)
            if env.now > deadline:
                return ABANDONED
        if plan == LEAVE_CART:
            return CART_ABANDONED
        # Checkout: take a unit (atomically), write the order.
        started = env.now
        deadline = started + patience
        if len(queued) >= queue_limit and len(busy) >= n_workers:
            return REJECTED
        worker = enter()
        if race_always or not worker.triggered:
            worker = yield from wait(worker, deadline)
            if worker is None:
                return ABANDONED
        taken = stock is None or stock[item] > 0
        if taken and stock is not None:
            stock[item] -= 1
        yield timeout(service() + deduct())
        if not taken:
            leave(worker)
            answered((env.now - started) * 1000.0)
            return SOLD_OUT
        write_s = write_time()
        give_up = env.now + pool_timeout
        connection = connect()
        failed = None
        if race_always or not connection.triggered:
            connection = yield from wait(connection, min(give_up, deadline))
            if connection is None:
                failed = ABANDONED if deadline < give_up else ERROR
        if failed is None:
            yield timeout(write_s)
            disconnect(connection)
        leave(worker)
        if failed is None and env.now > deadline:
            failed = ABANDONED
        # Payment, on the user's channel: a worker, then a slot of the channel.
        if failed is None:
            deadline = env.now + patience
            if len(queued) >= queue_limit and len(busy) >= n_workers:
                failed = REJECTED
            else:
                worker = enter()
                if race_always or not worker.triggered:
                    worker = yield from wait(worker, deadline)
                    if worker is None:
                        failed = ABANDONED
        if failed is None:
            yield timeout(service())
            slots, timeout_s, success, latency, uniform = channels[channel]
            give_up = env.now + timeout_s
            limit = min(give_up, deadline)
            slot = slots.request()
            if race_always or not slot.triggered:
                slot = yield from wait(slot, limit)
            if slot is None:
                failed = ABANDONED if limit < give_up else PAYMENT_FAILED
            else:
                start = env.now
                done = start + latency()
                if done > limit:
                    # The shop stops waiting; the channel keeps the slot until it is done.
                    yield timeout(max(limit - start, 0.0))
                    timeout(done - env.now).callbacks.append(lambda _: slots.release(slot))
                    failed = ABANDONED if limit < give_up else PAYMENT_FAILED
                else:
                    yield timeout(done - start)
                    slots.release(slot)
                    if uniform() >= success:
                        failed = PAYMENT_FAILED
            leave(worker)
        if failed is not None:
            if stock is not None:
                stock[item] += 1
            if failed != ABANDONED:  # as the full model: a refused payment is an answer
                answered((env.now - started) * 1000.0)
            return failed
        now = env.now
        answered((now - started) * 1000.0)
        gmv += basket
        # Fulfilment: the first free picker of the region's warehouse, then the carrier.
        warehouse = nearest[region]
        free = pickers[warehouse]
        start = free[0] if free[0] > now else now
        finish = start + pick[warehouse]()
        heapq.heapreplace(free, finish)
        if finish + transit[warehouse][region]() - now <= promise:
            on_time += 1
        return ORDERED

    def ended(visit: simpy.Process) -> None:
        counts[visit.value] += 1

    def arrivals() -> Any:
        for t in times:
            yield timeout(t - env.now)
            process(session(*next_user())).callbacks.append(ended)

    process(arrivals())
    with collector_paused():  # as the full model's run: the ratio compares the models
        env.run()

    sessions = sum(counts)
    orders = counts[ORDERED]
    q = np.percentile(checkout_ms, [50, 95, 99]) if checkout_ms else [math.nan] * 3
    return {
        "sessions": sessions,
        "outcomes": dict(zip(OUTCOMES, counts, strict=True)),
        "orders": orders,
        "gmv": gmv * (1 / declared.scale),  # as the full model's books scale money back
        "checkout_latency_ms": {
            "p50": float(q[0]),
            "p95": float(q[1]),
            "p99": float(q[2]),
            "mean": float(np.mean(checkout_ms)) if checkout_ms else math.nan,
            "count": len(checkout_ms),
        },
        "cache_hits": hits,
        "on_time_delivery_rate": on_time / orders if orders else math.nan,
        "events": next(env._eid),  # SimPy's private event counter: events scheduled
        "ended_at_s": env.now,
    }


def _shares(outcomes: dict[str, int]) -> dict[str, float]:
    total = sum(outcomes.values())
    return {k: v / total for k, v in outcomes.items()}


def main(argv: list[str] | None = None) -> int:
    """Compare outcome shares of the full model and the reference on the preset."""
    import simulator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--race", choices=("queued", "always"), default="queued")
    parser.add_argument("--set", nargs="+", default=[], metavar="PATH=VALUE")
    args = parser.parse_args(argv)
    scenario = simulator.load_scenario(PRESET, [f"scale={args.scale}", *args.set])

    t, c = time.perf_counter(), time.process_time()
    ref = run(scenario, args.seed, args.race)
    ref_s, ref_cpu = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    full = simulator.simulate(scenario, args.seed).summary
    full_s, full_cpu = time.perf_counter() - t, time.process_time() - c

    fs, rs = _shares(full["outcomes"]), _shares(ref["outcomes"])
    print(f"sale-start-spike at scale {args.scale}, race={args.race}")
    print(f"{'outcome':<16}{'full':>10}{'share':>9}{'reference':>11}{'share':>9}")
    for name in OUTCOMES:
        print(
            f"{name:<16}{full['outcomes'][name]:>10}{fs[name]:>9.4f}"
            f"{ref['outcomes'][name]:>11}{rs[name]:>9.4f}"
        )
    print(f"{'sessions':<16}{full['sessions']:>10}{'':>9}{ref['sessions']:>11}")
    fc, rc = full["checkout_latency_ms"], ref["checkout_latency_ms"]
    print(
        f"checkout ms p50/p99: full {fc['p50']:.1f}/{fc['p99']:.1f}  "
        f"reference {rc['p50']:.1f}/{rc['p99']:.1f}"
    )
    print(
        f"cache hits: full {full['cache_hits']}  reference {ref['cache_hits']};  "
        f"on-time: full {full['on_time_delivery_rate']:.4f}  "
        f"reference {ref['on_time_delivery_rate']:.4f};  "
        f"GMV: full {full['gmv']:.2f}  reference {ref['gmv']:.2f}"
    )
    print(
        f"events/session: full {full['run']['events'] / full['sessions']:.2f}  "
        f"reference {ref['events'] / ref['sessions']:.2f}"
    )
    print(
        f"full {full_s:.2f} s wall, {1e6 * full_cpu / full['sessions']:.1f} µs CPU/session;  "
        f"reference {ref_s:.2f} s wall, {1e6 * ref_cpu / ref['sessions']:.1f} µs CPU/session"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
