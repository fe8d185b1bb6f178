"""Measurement: what the model counts as it runs, and how to read it afterwards.

The three kinds of metric (counts, tallies, time-weighted levels) and per-interval
series (:mod:`.metrics`), the terminal outcomes of a session (:mod:`.outcomes`), the
named random streams (:mod:`.streams`), and recovery times after a fault
(:mod:`.recovery`). It imports only the scenario schema, so every other room may use it.
"""
