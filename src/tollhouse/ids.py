"""Prefixed, opaque identifiers (``proj_…``, ``key_…``, ``log_…``, ``req_…``)."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id(prefix: str) -> str:
    """A time-ordered id: 9 base-36 chars of milliseconds, then 16 random hex digits.

    Time-ordered so ledger rows cluster on insert; random enough never to collide.
    """
    millis = int(time.time() * 1000)
    head = ""
    for _ in range(9):
        millis, rem = divmod(millis, 36)
        head = _ALPHABET[rem] + head
    return f"{prefix}_{head}{secrets.token_hex(8)}"
