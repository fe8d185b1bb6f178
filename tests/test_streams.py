"""Named random streams: keyed, independent, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.measure.streams import Streams, buffered


def test_same_key_gives_same_numbers():
    """(seed, replication, name) fixes the sequence."""
    a = Streams(7, 2).generator("database.read").random(5)
    b = Streams(7, 2).generator("database.read").random(5)
    assert np.array_equal(a, b)


def test_any_key_part_changes_the_numbers():
    """Seed, replication and name each select a different sequence."""
    base = Streams(7, 2).generator("x").random(5)
    for other in (
        Streams(8, 2).generator("x"),
        Streams(7, 3).generator("x"),
        Streams(7, 2).generator("y"),
    ):
        assert not np.array_equal(base, other.random(5))


def test_adding_a_stream_does_not_shift_another():
    """A stream's numbers do not depend on which other streams exist or were used first."""
    alone = Streams(1).generator("users.choices").random(3)
    crowded = Streams(1)
    crowded.generator("new.component").random(1000)
    assert np.array_equal(alone, crowded.generator("users.choices").random(3))


def test_a_stream_is_handed_out_once():
    """Two components cannot share a stream by accident."""
    streams = Streams(1)
    streams.generator("a")
    with pytest.raises(ValueError, match="already"):
        streams.generator("a")


def test_buffered_sampler_equals_one_by_one_draws():
    """Block drawing changes the cost, not the sequence."""
    sampler = buffered(Streams(5).generator("s").standard_exponential, block=7)
    direct = Streams(5).generator("s").standard_exponential(20)
    assert np.allclose([sampler() for _ in range(20)], direct, rtol=0, atol=0)
