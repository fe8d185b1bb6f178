"""Named random streams: one independent generator per source of randomness.

Think of a casino where every table has its own shuffled deck. Opening a new table
does not reorder the cards at the others, and two evenings with the same decks deal
the same hands. Here every stochastic quantity of the model (arrival times, the
users' choices, database service times, each payment channel's latency, ...) draws
from its own numpy generator, keyed by ``(seed, replication, stream name)`` through
:class:`numpy.random.SeedSequence`. Adding a component therefore never shifts another
component's draws, and two scenarios that differ in one component see the same users
(common random numbers).

Draws on the simulation's hot path go through :func:`buffered`, which fetches values
from numpy in blocks and hands them out one by one at C speed; :func:`make_sampler`
turns a distribution as written in a scenario into such a draw from a named stream.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np

from simulator.scenario.distributions import (
    Deterministic,
    Exponential,
    Gamma,
    LogNormal,
    Uniform,
)

__all__ = ["Streams", "buffered", "make_sampler", "stream_key"]

_BLOCK = 2048


def stream_key(name: str) -> int:
    """Return a stable 64-bit integer for a stream name (independent of Python's hash seed)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


class Streams:
    """The random streams of one replication of one run.

    Args:
        seed: the run's seed.
        replication: the replication index (0 for a single run).
    """

    def __init__(self, seed: int, replication: int = 0) -> None:
        self.seed = int(seed)
        self.replication = int(replication)
        self._made: dict[str, np.random.Generator] = {}

    def generator(self, name: str) -> np.random.Generator:
        """Return the generator of stream ``name``; each name gets exactly one generator."""
        if name in self._made:
            raise ValueError(f"random stream {name!r} was already handed out")
        sequence = np.random.SeedSequence(
            entropy=self.seed, spawn_key=(self.replication, stream_key(name))
        )
        rng = np.random.Generator(np.random.PCG64(sequence))
        self._made[name] = rng
        return rng

    @property
    def names(self) -> list[str]:
        """Names of the streams handed out so far, in order."""
        return list(self._made)


def buffered(draw: Callable[[int], np.ndarray], block: int = _BLOCK) -> Callable[[], Any]:
    """Turn a vectorised ``draw(n)`` into a cheap zero-argument sampler.

    Values are drawn ``block`` at a time and handed out in order, so the sequence is the
    same as drawing them one by one, at a fraction of the per-call cost.
    """

    def blocks() -> Iterator[list]:
        while True:
            yield draw(block).tolist()

    return partial(next, itertools.chain.from_iterable(blocks()))


def make_sampler(
    spec: Exponential | Deterministic | Uniform | LogNormal | Gamma,
    rng: np.random.Generator,
    scale: float = 1.0,
) -> Callable[[], float]:
    """Return a zero-argument sampler drawing from ``spec`` with ``rng``.

    Args:
        spec: the distribution as written in the scenario.
        rng: the named stream to draw from.
        scale: factor applied to every value, e.g. 0.001 to turn ``_ms`` into seconds.
    """
    if isinstance(spec, Deterministic):
        value = spec.value * scale
        return lambda: value
    if isinstance(spec, Exponential):
        mean = spec.mean * scale
        return buffered(lambda n: rng.exponential(mean, n))
    if isinstance(spec, Uniform):
        low, high = spec.low * scale, spec.high * scale
        return buffered(lambda n: rng.uniform(low, high, n))
    if isinstance(spec, LogNormal):
        sigma2 = math.log1p(spec.cv**2)
        mu = math.log(spec.mean * scale) - sigma2 / 2
        sigma = math.sqrt(sigma2)
        return buffered(lambda n: rng.lognormal(mu, sigma, n))
    if isinstance(spec, Gamma):
        shape = 1 / spec.cv**2
        theta = spec.mean * scale / shape
        return buffered(lambda n: rng.gamma(shape, theta, n))
    raise TypeError(f"unknown distribution {spec!r}")  # pragma: no cover
