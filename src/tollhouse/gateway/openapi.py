"""OpenAPI entries for the gateway routes, which are plain Starlette routes (no pydantic on the
hot path) and so invisible to FastAPI's generator. Bodies are the providers' own formats."""

from __future__ import annotations

from typing import Any

_OPENAI = "https://platform.openai.com/docs/api-reference"
_ANTHROPIC = "https://docs.anthropic.com/en/api/messages"


def _post(summary: str, description: str, required: list[str]) -> dict[str, Any]:
    return {
        "post": {
            "tags": ["gateway"],
            "summary": summary,
            "description": description,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": required,
                            "additionalProperties": True,
                            "properties": {
                                "model": {"type": "string"},
                                "stream": {"type": "boolean"},
                                "project_id": {
                                    "type": "string",
                                    "description": "Tollhouse project (not forwarded).",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {"description": "The provider's answer as it sent it (JSON or text/event-stream)."},
                "400": {"description": "invalid_json, missing_field, invalid_parameter or invalid_model."},
                "413": {"description": "payload_too_large."},
                "502": {"description": "provider_error."},
                "504": {"description": "provider_timeout."},
            },
        }
    }


def gateway_paths() -> dict[str, Any]:
    return {
        "/v1/chat/completions": _post(
            "OpenAI chat completions",
            f"OpenAI wire format ({_OPENAI}/chat). Streaming with `stream: true`. Without `model` "
            "(or with `auto`) the model is auto-routed.",
            ["messages"],
        ),
        "/v1/completions": _post(
            "OpenAI legacy completions", f"OpenAI wire format ({_OPENAI}/completions).", ["model", "prompt"]
        ),
        "/v1/embeddings": _post(
            "OpenAI embeddings", f"OpenAI wire format ({_OPENAI}/embeddings).", ["model", "input"]
        ),
        "/v1/messages": _post(
            "Anthropic messages",
            f"Anthropic wire format ({_ANTHROPIC}); `?beta=true` accepted.",
            ["messages"],
        ),
        "/v1/messages/count_tokens": _post(
            "Anthropic token count", "Anthropic wire format.", ["model", "messages"]
        ),
        "/v1/batch": _post(
            "Batch of prompts (seed 001)",
            "`{prompts: [{prompt, id}], model?, project_id?, timeout?}`: each prompt is a chat completion "
            "(auth, limits, budget, cache, one ledger row each), answered with per-item `status` and "
            "`error` plus `total_cost` and `total_tokens`; partial failure is still 200.",
            ["prompts"],
        ),
        "/v1/models": {
            "get": {
                "tags": ["gateway"],
                "summary": "Configured models",
                "description": "OpenAI's list shape, or Anthropic's when `anthropic-version` is sent.",
                "responses": {"200": {"description": "The model list."}},
            }
        },
    }
