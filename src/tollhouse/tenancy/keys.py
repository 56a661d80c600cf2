"""Project API keys: ``th_proj_…`` (real traffic) and ``th_test_…`` (sandbox), stored as hashes.

A key is 32 bytes from ``secrets`` (256 bits), so it cannot be guessed or brute-forced from its
hash: a fast, unsalted SHA-256 is the right hash here. Slow password hashes (bcrypt, argon2) exist
to stretch low-entropy human passwords; on a high-entropy key they would only add milliseconds
to every gateway request. Being unsalted, the hash is also the lookup index.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

KEY_PREFIX = "th_"


class KeyKind(StrEnum):
    PROJECT = "proj"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key: ``secret`` is shown once and never stored."""

    secret: str
    key_hash: str
    hint: str


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the hot path needs to know about a presented key."""

    id: str
    project_id: str
    kind: KeyKind

    @property
    def is_test(self) -> bool:
        return self.kind is KeyKind.TEST


def make_key(kind: KeyKind) -> NewKey:
    secret = f"{KEY_PREFIX}{kind.value}_{secrets.token_urlsafe(32)}"
    return NewKey(secret=secret, key_hash=hash_key(secret), hint=hint_of(secret))


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hint_of(secret: str) -> str:
    """Enough to tell keys apart in a listing (``th_proj_AbCd…``), far too little to use."""
    head = len(KEY_PREFIX) + len(KeyKind.PROJECT.value) + 1  # "th_proj_" and "th_test_" alike
    return f"{secret[: head + 4]}…"


def presented_key(headers: dict[str, str]) -> str | None:
    """A Tollhouse key from ``Authorization: Bearer`` or ``x-api-key``; other credentials are the
    provider's (forwarded when a provider has no key of its own), so they are not ours to judge."""
    value = headers.get("authorization")
    if value is not None:
        token = value[7:].strip() if value[:7].lower() == "bearer " else value.strip()
        if token.startswith(KEY_PREFIX):
            return token
    value = headers.get("x-api-key")
    if value is not None and value.startswith(KEY_PREFIX):
        return value.strip()
    return None
