"""Interfaces: the ``campaign-sim`` command and the reference pages generated from it.

:mod:`.cli` is the command line; :mod:`.docgen` writes ``docs/reference/`` from the
command's help and the scenario schema. The top of the house: it may import every room,
and no room imports it.
"""
