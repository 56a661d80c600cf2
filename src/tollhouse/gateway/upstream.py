"""The one pooled upstream HTTP client, with retries before the first byte.

Retries cover what a retry can fix: connection failures, 429 and 5xx answers. They stop at the
first byte of a successful answer, so a streamed reply is never sent twice. A read timeout is
not retried (the provider may still be working, and another wait would double the delay).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
import orjson

from tollhouse.errors import UpstreamError, UpstreamRejected, UpstreamTimeout
from tollhouse.settings import ProviderSettings

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_MAX_RETRY_AFTER_S = 10.0
_PASSED_BACK = ("request-id", "x-request-id", "retry-after", "openai-processing-ms", "openai-version")
_PASSED_BACK_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "openai-")


@dataclass(slots=True)
class UpstreamResponse:
    """A successful (2xx) upstream answer whose body has not been read yet."""

    status: int
    headers: Mapping[str, str]
    _response: aiohttp.ClientResponse

    @property
    def request_id(self) -> str | None:
        return self.headers.get("request-id") or self.headers.get("x-request-id")

    def passed_back_headers(self) -> dict[str, str]:
        """Provider headers a client may rely on (request ids, rate limits)."""
        out = {}
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in _PASSED_BACK or lower.startswith(_PASSED_BACK_PREFIXES):
                out[lower] = value
        return out

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError as exc:
            raise UpstreamTimeout("the provider did not finish its answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the provider's answer was cut off: {exc}") from exc
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Raises UpstreamError/UpstreamTimeout if the stream breaks."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout("the provider stopped sending mid-stream") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the provider's stream broke: {exc}") from exc

    def close(self) -> None:
        """Drop the connection (used when the client went away mid-stream)."""
        self._response.close()

    def release(self) -> None:
        self._response.release()


class UpstreamClient:
    def __init__(self, *, pool_connections: int, retry_backoff_s: float) -> None:
        self._connector = aiohttp.TCPConnector(limit=pool_connections, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=self._connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )
        self._backoff = retry_backoff_s

    async def close(self) -> None:
        await self._session.close()

    async def send(
        self,
        provider: ProviderSettings,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> UpstreamResponse:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=provider.connect_timeout_s, sock_read=provider.timeout_s
        )
        attempt = 0
        while True:
            try:
                response = await self._session.post(url, data=body, headers=headers, timeout=timeout)
            except TimeoutError as exc:
                # A connect timeout may be retried; a read timeout before headers may not.
                if isinstance(exc, aiohttp.ConnectionTimeoutError) and attempt < provider.max_retries:
                    attempt += 1
                    await asyncio.sleep(self._delay(attempt, None))
                    continue
                raise UpstreamTimeout(
                    f"provider {provider.name!r} did not answer in time",
                    details={"provider": provider.name},
                ) from exc
            except aiohttp.ClientError as exc:
                if attempt < provider.max_retries:
                    attempt += 1
                    await asyncio.sleep(self._delay(attempt, None))
                    continue
                raise UpstreamError(
                    f"provider {provider.name!r} could not be reached: {type(exc).__name__}",
                    details={"provider": provider.name},
                ) from exc
            if response.status < 400:
                return UpstreamResponse(response.status, response.headers, response)
            if response.status in RETRY_STATUSES and attempt < provider.max_retries:
                retry_after = response.headers.get("retry-after")
                response.release()
                attempt += 1
                await asyncio.sleep(self._delay(attempt, retry_after))
                continue
            raise await _error_from(provider, response)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay: float = self._backoff * 2.0 ** (attempt - 1)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER_S))
        return delay


async def _error_from(provider: ProviderSettings, response: aiohttp.ClientResponse) -> UpstreamError:
    """Turn a provider's error answer into ours, keeping its message and (for 4xx) its status."""
    status = response.status
    try:
        raw = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        raw = b""
    finally:
        response.release()
    message, kind = _provider_message(raw)
    details = {"provider": provider.name, "upstream_status": status}
    if message is None:
        message = f"provider {provider.name!r} answered {status}"
    if 400 <= status < 500:
        headers = {}
        if "retry-after" in response.headers:
            headers["retry-after"] = response.headers["retry-after"]
        return UpstreamRejected(
            message, upstream_status=status, upstream_type=kind, details=details, headers=headers
        )
    return UpstreamError(f"provider {provider.name!r} failed ({status}): {message}", details=details)


def _provider_message(raw: bytes) -> tuple[str | None, str | None]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()
        return (text[:500] or None), None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type") or error.get("code")
        return (str(message) if message else None), (str(kind) if kind else None)
    if isinstance(error, str):
        return error, None
    return None, None
