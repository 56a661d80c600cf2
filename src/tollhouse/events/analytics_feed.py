"""The periodic ``analytics`` event of ``/api/stream`` (seed 000).

Computed only while someone is listening, and delivered to this replica's listeners only:
every replica reads the same shared ledger, so fanning it out through Redis would only
repeat it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tollhouse.events.bus import EventBroadcaster

log = logging.getLogger(__name__)


async def publish_analytics(
    bus: EventBroadcaster, interval_s: float, compute: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        if not bus.subscriber_count:
            continue
        try:
            payload = await compute()
        except Exception:
            log.exception("could not compute the analytics event")
            continue
        bus.publish("analytics", {"type": "stats", "payload": payload}, local_only=True)
