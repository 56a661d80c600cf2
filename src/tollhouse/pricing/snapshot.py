"""Where the bundled price snapshot lives, and a cheap name for "these prices": the snapshot file's
identity plus the configured overrides. Light on purpose (no ``decimal``, no table): a Claude Code
report that finds rates it remembers under this name prices new lines without loading the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

SNAPSHOT = Path(__file__).with_name("data") / "prices.json"


def source_key(overrides: Mapping[str, Mapping[str, Any]] | None) -> str:
    """Changes whenever the table :func:`table.load_price_table` would build can: a new or
    rewritten snapshot file (size and modification time) or different overrides (in full)."""
    stat = SNAPSHOT.stat()
    laid_on = orjson.dumps(overrides or {}, option=orjson.OPT_SORT_KEYS).decode()
    return f"{stat.st_size}:{stat.st_mtime_ns}|{laid_on}"
