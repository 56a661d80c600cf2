"""In-process event fan-out: one bounded asyncio queue per subscriber.

Publishing never waits: a slow subscriber (a stalled browser tab) loses its oldest events
instead of holding up the file watcher or the gateway that publishes. Cluster mode can put
Redis pub/sub behind the same two calls, ``publish`` and ``subscribe``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    data: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Subscription:
    """A subscriber's queue; iterate it, or ``await get(timeout)`` to interleave keep-alives."""

    def __init__(self, broadcaster: EventBroadcaster, types: frozenset[str] | None, size: int) -> None:
        self._broadcaster = broadcaster
        self.types = types
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if self.types is not None and event.type not in self.types:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self, wait_s: float | None = None) -> Event | None:
        """The next event, or None when ``wait_s`` seconds pass without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), wait_s)
        except TimeoutError:
            return None

    def close(self) -> None:
        self._broadcaster.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventBroadcaster:
    """Fan one stream of events out to every current subscriber."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self.published = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, types: frozenset[str] | None = None) -> Subscription:
        """Start receiving events (only ``types`` when given); use as a context manager."""
        subscription = Subscription(self, types, self._queue_size)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, type: str, data: dict[str, Any]) -> Event:
        event = Event(type, data)
        self.published += 1
        for subscription in tuple(self._subscribers):
            subscription.offer(event)
        return event
