"""A Redis pub/sub subscription that survives Redis restarts: one loop, shared by every
component that listens across replicas (the event bus, key and project invalidation)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RETRY_S = 1.0


async def subscribe_forever(
    client: aioredis.Redis,
    channel: str,
    on_message: Callable[[Any], None],
    ready: asyncio.Event,
) -> None:
    """Call ``on_message(data)`` for every message on ``channel`` until cancelled.

    ``ready`` is set once subscribed (again after each reconnect), so a starter can wait
    until no message can be missed.
    """
    while True:
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        on_message(message["data"])
        except RedisError:
            log.warning("subscription to %s lost; retrying in %.0f s", channel, RETRY_S)
            await asyncio.sleep(RETRY_S)
