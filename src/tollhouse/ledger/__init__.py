"""The ledger: one row per priced call, written in batches off the request path."""
