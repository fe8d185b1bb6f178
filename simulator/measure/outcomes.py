"""The ways a session can end: every session ends in exactly one of them.

The counts of a run therefore always add up: the sum over outcomes equals the number
of sessions, which the tests check on random scenarios.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Outcome"]


class Outcome(IntEnum):
    """Terminal state of a session (ordered roughly by how far the user got)."""

    BOUNCED = 0
    """Left after the landing page."""
    BROWSED = 1
    """Viewed pages, added nothing to the cart."""
    CART_ABANDONED = 2
    """Added to the cart but chose not to check out."""
    ABANDONED = 3
    """Gave up because a response took longer than the user's patience."""
    REJECTED = 4
    """Turned away by the gateway (queue full)."""
    RATE_LIMITED = 5
    """Shed by the gateway's rate limiter or waiting room."""
    ERROR = 6
    """A component failed, e.g. no database connection within the pool timeout."""
    SOLD_OUT = 7
    """The item was out of stock at checkout."""
    PAYMENT_FAILED = 8
    """The payment was declined or timed out."""
    DEPOSIT_FORFEITED = 9
    """Paid a presale deposit, never paid the balance."""
    ORDERED = 10
    """Paid: the order goes to fulfilment."""

    @property
    def label(self) -> str:
        """Lower-case name used in output files, e.g. ``payment_failed``."""
        return self.name.lower()
