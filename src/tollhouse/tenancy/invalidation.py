"""Telling every process that a key was revoked or a project changed.

With Redis, a pub/sub message reaches every replica within milliseconds. Without it (or if the
subscription drops), caches expire after ``tenancy.cache_ttl_s``: that is the documented bound
on how long another process may still accept a revoked key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tollhouse.events.subscription import subscribe_forever

log = logging.getLogger(__name__)

Handler = Callable[[str, str], None]  # (kind, value): ("key", hash) or ("project", id)


class Invalidator:
    def __init__(self, client: aioredis.Redis | None, prefix: str, handler: Handler) -> None:
        self._redis = client
        self._channel = f"{prefix}invalidate"
        self._handler = handler
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        if self._redis is not None:
            self._task = asyncio.create_task(self._listen(), name="tenancy-invalidation")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), 5)

    async def publish(self, kind: str, value: str) -> None:
        """Forget locally at once, then tell the other processes."""
        self._handler(kind, value)
        if self._redis is not None:
            try:
                await self._redis.publish(self._channel, f"{kind}:{value}")
            except RedisError:
                log.warning(
                    "could not publish an invalidation; other processes catch up within the cache TTL"
                )

    async def _listen(self) -> None:
        assert self._redis is not None
        await subscribe_forever(self._redis, self._channel, self._receive, self._ready)

    def _receive(self, data: Any) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        kind, _, value = text.partition(":")
        self._handler(kind, value)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
