"""Validation: the model against queueing theory.

Closed forms (:mod:`.theory`: Erlang B and C, M/D/1, tandem queues) and the suite that
replicates validation scenarios and checks each figure against them within its
confidence interval (:mod:`.suite`, ``campaign-sim validate --theory``).
"""
