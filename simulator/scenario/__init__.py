"""Scenario files: the schema, distributions and the loader."""
