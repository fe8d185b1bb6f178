"""Routing users to datacenters, and what happens to them when a site is lost.

Each user is routed to a site at arrival (by share). When a site is lost, its users'
requests fail until routing takes them elsewhere. Health checks declare the site lost
after ``missed_heartbeats`` intervals. Then:

- dns: the record is changed, but resolvers (the client's, its ISP's) keep the cached
  answer until it expires. Each client's resolver refreshes every ``dns_ttl_s`` at its
  own phase, so a client of the lost site, old or newly arrived, is stranded until its
  first refresh after detection: a uniform time up to a TTL later. Stranded traffic
  therefore tails off over one TTL.
- anycast: the lost site's route is withdrawn ``anycast_switch_s`` after detection,
  for every client at once.

The lost site's application servers go with it: the gateway keeps the surviving
sites' share of its workers.
"""

from __future__ import annotations

import math

from simulator.measure.metrics import IntervalCounter
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

    def surviving_share(self) -> float:
        """Share of the users (and servers) at sites not lost."""
        return sum(s for s, t in zip(self.shares, self.lost_at, strict=True) if t == math.inf)

    def switch_at(self, site: int, phase: float) -> float:
        """When a client of ``site`` whose resolver has ``phase`` (in [0, 1)) is moved."""
        config, detected = self.config, self.detected_at[site]
        if config.routing == "anycast":
            return detected + config.anycast_switch_s
        return detected + phase * config.dns_ttl_s

    def strands(self, site: int, phase: float, now: float) -> bool:
        """Whether a request made now by a client of ``site`` goes to a lost site."""
        if now < self.lost_at[site] or now >= self.switch_at(site, phase):
            return False
        self.stranded.add(now)
        self.stranded_count += 1
        self.last_stranded_s[site] = now
        return True
