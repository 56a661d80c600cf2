"""Read-side analytics over the ledger: every source together (gateway calls, Claude Code sessions)."""
