"""Claude Code, seen and priced: transcripts into the ledger, ccusage-compatible reports, the ccboard API."""
