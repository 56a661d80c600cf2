"""The typed shape of a transcript line for msgspec (see :mod:`line_rows`): just the fields the
import reads, so the rest (message content, tool results: most of the bytes) is skipped without
building Python objects, and token counts arrive as checked integers. Its own module: importing
msgspec costs ~8 ms, which only a read of more than a few hundred kilobytes earns back.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from tollhouse.pricing.tiers import MAX_TOKEN_COUNT

_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKEN_COUNT)]


class Split(msgspec.Struct):
    ephemeral_1h_input_tokens: _Count = 0
    ephemeral_5m_input_tokens: _Count = 0


class Usage(msgspec.Struct):
    input_tokens: _Count = 0
    output_tokens: _Count = 0
    cache_read_input_tokens: _Count = 0
    cache_creation_input_tokens: _Count = 0
    cache_creation: Split | None = None
    service_tier: str | None = None
    speed: str | None = None


class Message(msgspec.Struct):
    id: Any = None
    model: Any = None
    usage: Usage | None = None


class Line(msgspec.Struct):
    """Values other than ``usage``'s keep JSON's own types and are checked as on a dict."""

    type: Any = None
    message: Message | None = None
    timestamp: Any = None
    request_id: Any = msgspec.field(default=None, name="requestId")
    session_id: Any = msgspec.field(default=None, name="sessionId")
    cwd: Any = None
    cost_usd: Any = msgspec.field(default=None, name="costUSD")
    is_sidechain: Any = msgspec.field(default=None, name="isSidechain")
    is_api_error: Any = msgspec.field(default=None, name="isApiErrorMessage")
    api_error_status: Any = msgspec.field(default=None, name="apiErrorStatus")


decode = msgspec.json.Decoder(Line).decode
DecodeError = msgspec.DecodeError
