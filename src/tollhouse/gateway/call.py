"""One gateway call as the pipeline sees it: the parsed request and what is learnt on the way."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.errors import InvalidParameter, MalformedJSON, MissingField
from tollhouse.ids import new_id

AUTO_MODEL = "auto"

if TYPE_CHECKING:
    from tollhouse.tenancy.counters import Hold

_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# Fields that belong to Tollhouse (seed 001), never forwarded to a provider.
OWN_FIELDS = ("project_id", "timeout")


class Protocol(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class Endpoint(StrEnum):
    """A gateway route: its client protocol and the path it is served at."""

    CHAT = "/v1/chat/completions"
    COMPLETIONS = "/v1/completions"
    EMBEDDINGS = "/v1/embeddings"
    MESSAGES = "/v1/messages"
    COUNT_TOKENS = "/v1/messages/count_tokens"

    @property
    def protocol(self) -> Protocol:
        return Protocol.ANTHROPIC if self in (Endpoint.MESSAGES, Endpoint.COUNT_TOKENS) else Protocol.OPENAI

    @property
    def streams(self) -> bool:
        return self in (Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.MESSAGES)


@dataclass(slots=True)
class Call:
    endpoint: Endpoint
    body: dict[str, Any]
    raw_body: bytes
    headers: dict[str, str]
    query: str
    project_id: str
    model: str
    stream: bool
    client_wants_usage: bool
    body_changed: bool
    # Whether the caller named the project (body `project_id` or `x-tollhouse-project`).
    project_explicit: bool = False
    # Set by tenancy admission: the key used, sandbox (th_test_) or not, the project's own
    # provider keys, the budget reservation to settle, and the X-RateLimit-* headers.
    api_key_id: str | None = None
    sandbox: bool = False
    provider_keys: Mapping[str, str] = field(default_factory=dict)
    hold: Hold | None = None
    rate_headers: dict[str, str] | None = None
    # Set by model resolution: what the client asked for (``model`` becomes the served model),
    # the override rule that applied, and whether auto-routing chose.
    requested_model: str | None = None
    rule_id: str | None = None
    auto_routed: bool = False
    # Seconds spent waiting on the provider, so metrics can tell Tollhouse's own time apart.
    upstream_s: float = 0.0
    request_id: str = field(default_factory=lambda: new_id("req"))
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)


def parse_call(endpoint: Endpoint, raw: bytes, headers: dict[str, str], query: str) -> Call:
    """Validate what every route needs; everything else is the provider's to judge."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedJSON("request body must be a JSON object")
    model = body.get("model")
    if model is None or model == "":
        model = AUTO_MODEL  # seed 001: a call that names no model is auto-routed
    if not isinstance(model, str):
        raise InvalidParameter("'model' must be a string", param="model")
    if endpoint is Endpoint.MESSAGES and "messages" not in body:
        raise MissingField("'messages' is required", param="messages")
    if endpoint is Endpoint.CHAT and not isinstance(body.get("messages"), list):
        raise MissingField("'messages' is required and must be an array", param="messages")
    if endpoint is Endpoint.EMBEDDINGS and "input" not in body:
        raise MissingField("'input' is required", param="input")
    if endpoint is Endpoint.COMPLETIONS and "prompt" not in body:
        raise MissingField("'prompt' is required", param="prompt")
    stream = body.get("stream") is True and endpoint.streams
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    named = body.get("project_id") or headers.get("x-tollhouse-project")
    project = named or "default"
    if not isinstance(project, str) or not _PROJECT_ID.match(project):
        raise InvalidParameter(
            "'project_id' must be 1-64 letters, digits, '_', '.', ':' or '-'", param="project_id"
        )
    changed = False
    for own in OWN_FIELDS:
        if own in body:
            del body[own]
            changed = True
    return Call(
        endpoint=endpoint,
        body=body,
        raw_body=raw,
        headers=headers,
        query=query,
        project_id=project,
        model=model,
        stream=stream,
        client_wants_usage=wants_usage,
        body_changed=changed,
        project_explicit=bool(named),
    )
