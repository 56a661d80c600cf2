"""The error hierarchy. Domain code raises these; one handler per surface renders them.

    TollhouseError (500 internal_error)
    ├── ConfigError               invalid settings; raised at start, never over HTTP
    ├── InvalidRequest            400 invalid_request
    │   ├── MalformedJSON         400 invalid_json
    │   ├── MissingField          400 missing_field
    │   └── InvalidParameter      400 invalid_parameter
    ├── Unauthorized              401 invalid_api_key
    ├── Forbidden                 403 forbidden
    ├── NotFound                  404 not_found
    ├── PayloadTooLarge           413 payload_too_large
    ├── RateLimited               429 rate_limit_exceeded
    ├── QuotaExceeded             429 quota_exceeded
    ├── BudgetExceeded            429 budget_exceeded
    ├── NoProvider                400 invalid_model      (no provider serves the model)
    ├── UpstreamError             502 provider_error     (provider down, 5xx, bad reply)
    │   ├── UpstreamTimeout       504 provider_timeout
    │   └── UpstreamRejected      the provider's own 4xx status, its message kept
    └── ServiceUnavailable        503 service_unavailable

The rendered shape is SPEC's:
``{"error": {"code", "message", "details"}, "request_id", "timestamp"}``; gateway routes add
OpenAI's ``type`` and ``param``, and the Anthropic route uses Anthropic's envelope.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TollhouseError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    # OpenAI's error.type for this class; Anthropic's is derived from the status.
    openai_type: ClassVar[str] = "server_error"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.param = param
        self.headers = headers or {}

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def error_code(self) -> str:
        return self.code


class ConfigError(TollhouseError):
    code = "invalid_config"


class InvalidRequest(TollhouseError):
    status = 400
    code = "invalid_request"
    openai_type = "invalid_request_error"


class MalformedJSON(InvalidRequest):
    code = "invalid_json"


class MissingField(InvalidRequest):
    code = "missing_field"


class InvalidParameter(InvalidRequest):
    code = "invalid_parameter"


class Unauthorized(TollhouseError):
    status = 401
    code = "invalid_api_key"
    openai_type = "authentication_error"


class Forbidden(TollhouseError):
    status = 403
    code = "forbidden"
    openai_type = "permission_error"


class NotFound(TollhouseError):
    status = 404
    code = "not_found"
    openai_type = "invalid_request_error"


class PayloadTooLarge(TollhouseError):
    status = 413
    code = "payload_too_large"
    openai_type = "invalid_request_error"


class RateLimited(TollhouseError):
    status = 429
    code = "rate_limit_exceeded"
    openai_type = "rate_limit_error"


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"
    openai_type = "insufficient_quota"


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"
    openai_type = "insufficient_quota"


class NoProvider(TollhouseError):
    status = 400
    code = "invalid_model"
    openai_type = "invalid_request_error"


class UpstreamError(TollhouseError):
    status = 502
    code = "provider_error"
    openai_type = "api_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "provider_timeout"
    openai_type = "timeout_error"


class UpstreamRejected(UpstreamError):
    """The provider refused the request with a 4xx: its status and message are passed on."""

    openai_type = "invalid_request_error"

    def __init__(
        self, message: str, *, upstream_status: int, upstream_type: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status
        self.upstream_type = upstream_type

    @property
    def status_code(self) -> int:
        return self.upstream_status

    @property
    def error_code(self) -> str:
        return self.upstream_type or self.code


class ServiceUnavailable(TollhouseError):
    status = 503
    code = "service_unavailable"
