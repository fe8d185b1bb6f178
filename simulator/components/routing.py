"""Routing users to datacenters, and what happens to them when a site is lost.

Each user is routed to a site at arrival (by share). When a site is lost, its users'
requests fail until routing takes them elsewhere. Health checks declare the site lost
after ``missed_heartbeats`` intervals. Then:

- dns: the record is changed, but a client keeps its cached answer until it expires:
  a client resolved on arrival and re-resolves every ``dns_ttl_s``, so it is stranded
  until its first re-resolution after detection (up to a TTL later). Clients that
  arrive after detection get the new record at once.
- anycast: the lost site's route is withdrawn ``anycast_switch_s`` after detection,
  for every client at once.

The lost site's application servers go with it: the gateway keeps the surviving
sites' share of its workers.
"""

from __future__ import annotations

import math

from simulator.metrics import IntervalCounter
from simulator.scenario.protections import Datacenters

__all__ = ["Routing"]


class Routing:
    """Which users a lost site strands, and until when.

    Args:
        config: the scenario's ``datacenters``.
        interval_s: time-series interval.
    """

    def __init__(self, config: Datacenters, interval_s: float) -> None:
        self.config = config
        self.names = [site.name for site in config.sites]
        self.shares = [site.share for site in config.sites]
        self.lost_at = [math.inf] * len(config.sites)
        self.detected_at = [math.inf] * len(config.sites)
        self.any_lost = False
        self.stranded = IntervalCounter(interval_s)
        """Requests that went to a lost site, per interval."""
        self.stranded_count = 0
        self.last_stranded_s = [math.nan] * len(config.sites)

    def lose(self, site: int, now: float) -> None:
        """Site ``site`` is lost at ``now``."""
        config = self.config
        self.lost_at[site] = now
        self.detected_at[site] = now + config.heartbeat_interval_s * config.missed_heartbeats
        self.any_lost = True

    def switch_at(self, site: int, arrived_s: float) -> float:
        """When a client of ``site`` who arrived at ``arrived_s`` stops being sent there."""
        config, detected = self.config, self.detected_at[site]
        if config.routing == "anycast":
            return detected + config.anycast_switch_s
        if arrived_s >= detected:
            return arrived_s  # resolved after the record changed
        ttl = config.dns_ttl_s
        if ttl == 0:
            return detected
        return arrived_s + math.ceil((detected - arrived_s) / ttl) * ttl

    def strands(self, site: int, arrived_s: float, now: float) -> bool:
        """Whether a request made now by a client of ``site`` goes to a lost site."""
        if now < self.lost_at[site] or now >= self.switch_at(site, arrived_s):
            return False
        self.stranded.add(now)
        self.stranded_count += 1
        self.last_stranded_s[site] = now
        return True
