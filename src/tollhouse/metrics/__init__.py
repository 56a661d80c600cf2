"""Prometheus metrics: one registry per app, fed by the pipeline and by ledger batches."""
