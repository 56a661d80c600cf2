"""What the gateway hands the HTTP layer: a whole body or a stream, with headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True)
class BodyResult:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class StreamResult:
    status: int
    chunks: AsyncIterator[bytes]
    headers: dict[str, str]
