"""The one event bus: in-process fan-out, plus Redis pub/sub between replicas in cluster mode.

Publishing never waits: a slow subscriber (a stalled browser tab) loses its oldest events
instead of holding up the file watcher or the gateway that publishes. With Redis, ``publish``
delivers to local subscribers at once and drops the event into an outbox that one task sends
to the shared channel; a listener task delivers the other replicas' events here. So a request
never awaits the network to publish, and every replica's ``/api/stream`` sees every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tollhouse.events.subscription import subscribe_forever

log = logging.getLogger(__name__)

_OUTBOX_LIMIT = 10_000  # events waiting for Redis; past this the oldest are dropped


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
    """Fan one stream of events out to every current subscriber (of every replica, with Redis)."""

    def __init__(
        self, queue_size: int = 1000, *, redis: Redis | None = None, channel: str = "tollhouse:events"
    ) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._redis = redis
        self._channel = channel
        self._origin = secrets.token_hex(8)  # our own messages come back from Redis: skip them
        self._outbox: deque[bytes] = deque(maxlen=_OUTBOX_LIMIT)
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0
        self.received = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def clustered(self) -> bool:
        return self._redis is not None

    async def start(self) -> None:
        """With Redis: start the sender and the listener, and wait (briefly) until subscribed."""
        if self._redis is None or self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="events-send"),
            asyncio.create_task(self._listen_loop(), name="events-listen"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks and self._outbox:
            # What was published just before shutdown still reaches the other replicas.
            with contextlib.suppress(TimeoutError, RedisError):
                await asyncio.wait_for(self._flush(), 1)

    async def _flush(self) -> None:
        assert self._redis is not None
        while self._outbox:
            await self._redis.publish(self._channel, self._outbox.popleft())

    def subscribe(self, types: frozenset[str] | None = None) -> Subscription:
        """Start receiving events (only ``types`` when given); use as a context manager."""
        subscription = Subscription(self, types, self._queue_size)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, type: str, data: dict[str, Any], *, local_only: bool = False) -> Event:
        """Deliver here now; with Redis (unless ``local_only``) queue it for the other replicas."""
        event = Event(type, data)
        self.published += 1
        self._deliver(event)
        if self._redis is not None and not local_only:
            self._outbox.append(
                orjson.dumps(
                    {"o": self._origin, "t": type, "d": data, "at": event.at.isoformat()},
                    option=orjson.OPT_NON_STR_KEYS,
                )
            )
            self._wake.set()
        return event

    def _deliver(self, event: Event) -> None:
        for subscription in tuple(self._subscribers):
            subscription.offer(event)

    async def _send_loop(self) -> None:
        assert self._redis is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                message = self._outbox[0]
                try:
                    await self._redis.publish(self._channel, message)
                except RedisError:
                    log.warning("could not publish an event to Redis; retrying in 1 s")
                    await asyncio.sleep(1)
                    continue
                self._outbox.popleft()

    async def _listen_loop(self) -> None:
        assert self._redis is not None
        await subscribe_forever(self._redis, self._channel, self._receive, self._ready)

    def _receive(self, raw: Any) -> None:
        try:
            payload = orjson.loads(raw)
            if payload.get("o") == self._origin:
                return
            at = datetime.fromisoformat(payload["at"])
            event = Event(str(payload["t"]), dict(payload["d"]), at)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            log.warning("ignored a malformed event from Redis")
            return
        self.received += 1
        self._deliver(event)
