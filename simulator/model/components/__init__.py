"""The shop's components: each a small class owning its SimPy resources and metrics."""
