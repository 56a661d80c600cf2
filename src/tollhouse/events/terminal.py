"""The ``/terminal`` commands (seed 000): help, cache stats, cache clear, stats, overrides, exit.

Transport-free: the WebSocket route feeds it command strings and sends back what it returns,
while ``live`` forwards bus events to the same socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tollhouse.analytics.live import summary
from tollhouse.errors import Forbidden
from tollhouse.events.bus import Event, EventBroadcaster
from tollhouse.tenancy.auth import Principal

COMMANDS = {
    "help": "Show available commands",
    "cache stats": "Show cache statistics",
    "cache clear": "Clear the cache (a project key: its own project only)",
    "stats": "Show current statistics (last 24 hours)",
    "overrides": "Show override statistics",
    "exit": "Close the connection",
}
LIVE_EVENTS = frozenset({"analytics", "model_override", "cache_hit", "cache_miss", "error"})

Reply = dict[str, Any]


class Terminal:
    def __init__(self, state: Any, who: Principal) -> None:
        self._state = state
        self._who = who

    def greeting(self) -> str:
        return "Tollhouse terminal. Type 'help' for commands; live events follow."

    @contextlib.asynccontextmanager
    async def live(self, push: Callable[[Event], Awaitable[None]]) -> AsyncIterator[None]:
        """Forward bus events to ``push`` while the session lasts."""
        bus: EventBroadcaster = self._state.events

        async def forward() -> None:
            with bus.subscribe(LIVE_EVENTS) as subscription:
                async for event in subscription:
                    await push(event)

        task = asyncio.create_task(forward(), name="terminal-events")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def run(self, command: str) -> tuple[Reply, bool]:
        """The reply to one command, and whether the session ends."""
        name = " ".join(command.lower().split())
        if name == "exit":
            return {"type": "output", "content": "Goodbye."}, True
        if name == "help":
            width = max(len(c) for c in COMMANDS)
            lines = [f"{c.ljust(width)}  {text}" for c, text in COMMANDS.items()]
            return {"type": "output", "content": "Available commands:\n" + "\n".join(lines)}, False
        try:
            handler = {
                "cache stats": self._cache_stats,
                "cache clear": self._cache_clear,
                "stats": self._stats,
                "overrides": self._overrides,
            }.get(name)
            if handler is None:
                return {"type": "error", "content": f"Unknown command: {command!r}. Type 'help'."}, False
            return await handler(), False
        except Forbidden as exc:
            return {"type": "error", "content": exc.message}, False

    async def _cache_stats(self) -> Reply:
        cache = self._state.gateway.cache
        if cache is None:
            return {"type": "output", "content": "The cache is off.", "data": None}
        s = await cache.stats()
        text = (
            f"Cache hits: {s['cache_hits']}\nCache misses: {s['cache_misses']}\n"
            f"Hit rate: {s['hit_rate']:.1%}\nCached items: {s['cached_items']}\n"
            f"Memory: {s['memory_usage_bytes']} bytes\nTokens saved: {s['tokens_saved']}\n"
            f"Cost saved: ${s['cost_saved_usd']:.4f}"
        )
        return {"type": "output", "content": text, "data": s}

    async def _cache_clear(self) -> Reply:
        cache = self._state.gateway.cache
        project = None if self._who.admin else self._who.project_id
        removed = await cache.clear(project) if cache is not None else 0
        scope = f"project {project}" if project else "all projects"
        return {"type": "output", "content": f"Cache cleared ({scope}): {removed} entries removed."}

    async def _stats(self) -> Reply:
        self._who.require_admin()
        s = await summary(self._state.engine, self._state.gateway)
        day = s["last24h"]
        text = (
            f"Last 24 h: {day['calls']} calls, {day['tokens']} tokens, ${day['cost']:.4f}\n"
            f"Saved by the cache: ${day['costSaved']:.4f} ({day['cacheHits']} hits)\n"
            f"Overrides since start: {s['overrides']['total']}, "
            f"saved ${s['overrides']['cost_saved_usd']:.4f}\n"
            f"Active projects: {day['activeProjects']}"
        )
        return {"type": "output", "content": text, "data": s}

    async def _overrides(self) -> Reply:
        stats = self._state.gateway.override_stats.as_json()
        if not stats["overrides_enabled"]:
            return {"type": "output", "content": "Model overrides are not enabled", "data": stats}
        lines = [f"Total overrides: {stats['total_overrides']} (saved {stats['total_cost_saved']})"]
        for model, row in stats["overrides_by_model"].items():
            lines.append(f"{model} → {row['overridden_to']}: {row['count']} ({row['cost_saved']})")
        return {"type": "output", "content": "\n".join(lines), "data": stats}
