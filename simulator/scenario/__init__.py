"""Scenario files: the one door through which configuration enters the model.

The schema (:mod:`.schema`, with the whole :class:`~.schema.Scenario` and its
cross-field rules) is split by concern like the sale it describes: demand
(:mod:`.demand`), the architecture (:mod:`.architecture`), commerce (:mod:`.commerce`),
logistics (:mod:`.logistics`), protections and faults (:mod:`.protections`), and the
distributions of service times (:mod:`.distributions`). :mod:`.loader` reads YAML with
``extends:`` and ``--set`` overrides and reports every problem with its file, line and
field; :mod:`.presets` finds the shipped scenarios by name. This room imports nothing
else of the package: every other room may read a scenario.
"""
