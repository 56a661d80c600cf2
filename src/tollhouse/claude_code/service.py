"""ClaudeCodeService: import in the background, follow file changes, answer the dashboard at once.

``start()`` returns immediately; the first import (ledger rows + session index) runs in a task
and ``first_import_done`` says when it has finished, so a large ``~/.claude`` never delays the
server. Afterwards ``watchfiles`` reports changes: transcripts under the roots (recursively)
and the settings/MCP files that live outside them (home, project folders; not recursively,
since a home directory is far too big to watch whole). Every change becomes an event on the
broadcaster: ``session_created``, ``session_updated``, ``stats_updated``, ``config_changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine
from watchfiles import Change, awatch

from tollhouse.claude_code import assets as asset_files
from tollhouse.claude_code import config_inspect
from tollhouse.claude_code import conversation as transcript
from tollhouse.claude_code import live as processes
from tollhouse.claude_code import mcp as mcp_files
from tollhouse.claude_code import stats as ledger_stats
from tollhouse.claude_code.importer import ClaudeImporter, ScanResult
from tollhouse.claude_code.sessions import (
    MAX_LIMIT,
    IndexDelta,
    SessionIndex,
    SessionQuery,
    parse_int,
    query_sessions,
)
from tollhouse.errors import NotFound
from tollhouse.events.bus import EventBroadcaster
from tollhouse.pricing.table import PriceTable

log = logging.getLogger(__name__)

_CONFIG_NAMES = frozenset(
    {"settings.json", "settings.local.json", ".claude.json", ".mcp.json", "claude_desktop_config.json"}
)
_ASSET_DIRS = frozenset({"agents", "commands", "skills"})


def _relevant(_change: Change, path: str) -> bool:
    name = Path(path).name
    return name.endswith((".jsonl", ".md")) or name in _CONFIG_NAMES or name == "stats-cache.json"


def _side_relevant(_change: Change, path: str) -> bool:
    """Outside the roots only settings, MCP files and agent/command Markdown matter."""
    place = Path(path)
    return place.name in _CONFIG_NAMES or (place.suffix == ".md" and place.parent.name in _ASSET_DIRS)


class ClaudeCodeService:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        prices: PriceTable,
        roots: Sequence[Path],
        zone: ZoneInfo,
        cost_mode: str = "auto",
        watch: bool = True,
        home: Path | None = None,
        managed_dir: Path | None = None,
        events: EventBroadcaster | None = None,
        debounce_ms: int = 300,
    ) -> None:
        self.engine = engine
        self.roots = list(roots)
        self.zone = zone
        self.watch = watch
        self.config_dir = config_inspect.config_dir_of(self.roots)
        self.home = home or config_inspect.home_of(self.config_dir)
        self.managed_dir = managed_dir or config_inspect.managed_settings_dir()
        self.importer = ClaudeImporter(engine, prices, self.roots, cost_mode=cost_mode)
        self.index = SessionIndex(self.roots)
        self.events = events or EventBroadcaster()
        self.monitor = processes.LiveMonitor()
        self.keepalive_s = 30.0
        self.debounce_ms = debounce_ms
        self.first_import_done = False
        self.last_scan: ScanResult | None = None
        self.last_error: str | None = None
        self.watching = False
        self._sync_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._restart_side_watch = asyncio.Event()
        self._side_dirs: frozenset[Path] = frozenset()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="claude-code-import"))

    async def stop(self) -> None:
        self._stop.set()
        self._restart_side_watch.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self) -> None:
        try:
            await self.sync(initial=True)
        except Exception as exc:  # the server keeps serving what it has
            self.last_error = f"first import failed: {exc}"
            log.exception("Claude Code import failed")
        self.first_import_done = True
        await self._publish_stats({"first_import": True})
        if not self.watch:
            return
        self.watching = True
        self._tasks.append(asyncio.create_task(self._watch_side_files(), name="claude-code-config-watch"))
        roots = [r for r in self.roots if r.is_dir()]
        if not roots:
            return
        try:
            async for changes in awatch(
                *roots, watch_filter=_relevant, debounce=self.debounce_ms, stop_event=self._stop
            ):
                await self._changed({Path(p) for _, p in changes})
        except Exception as exc:  # inotify limits, vanished root: fall back to refresh-on-request
            self.watching = False
            self.last_error = f"file watcher stopped: {exc}"
            log.exception("Claude Code watcher stopped")

    async def _watch_side_files(self) -> None:
        """Settings and MCP files outside the roots; restarted when new project folders appear."""
        try:
            await self._follow_side_files()
        except Exception as exc:  # settings changes go unannounced; everything else still works
            self.last_error = f"settings watcher stopped: {exc}"
            log.exception("Claude Code settings watcher stopped")

    async def _follow_side_files(self) -> None:
        while not self._stop.is_set():
            self._restart_side_watch.clear()
            self._side_dirs = self._config_dirs()
            dirs = [d for d in self._side_dirs if d.is_dir()]
            if not dirs:
                await self._restart_side_watch.wait()
                continue
            async for changes in awatch(
                *dirs,
                watch_filter=_side_relevant,
                debounce=self.debounce_ms,
                stop_event=self._restart_side_watch,
                recursive=False,
            ):
                await self._changed({Path(p) for _, p in changes})

    def _config_dirs(self) -> frozenset[Path]:
        dirs = {self.home}
        for project in {s.project for s in self.index.sessions.values()}:
            base = Path(project)
            dirs |= {base, base / ".claude", base / ".claude" / "agents", base / ".claude" / "commands"}
        return frozenset(d for d in dirs if d != self.config_dir)

    # -- synchronising --------------------------------------------------------------------------

    async def sync(self, *, initial: bool = False) -> IndexDelta:
        """Import new ledger rows and refresh the session index, then tell subscribers."""
        async with self._sync_lock:
            scan, delta = await asyncio.gather(self.importer.scan(), self.index.refresh())
            self.last_scan = scan
        if not initial:
            await self._publish_sessions(delta)
            if scan.entries_added or scan.entries_replaced:
                await self._publish_stats({"entries_added": scan.entries_added})
        if self.watching and self._config_dirs() != self._side_dirs:
            self._restart_side_watch.set()
        return delta

    async def _changed(self, paths: set[Path]) -> None:
        if any(p.suffix == ".jsonl" for p in paths):
            try:
                await self.sync()
            except Exception as exc:  # a locked database must not end the watch: the next change retries
                self.last_error = f"import after a file change failed: {exc}"
                log.exception("Claude Code import after a file change failed")
        if any(p.name == "stats-cache.json" for p in paths):
            await self._publish_stats({"stats_cache": True})
        for path in sorted(paths):
            change = self._config_change(path)
            if change is not None:
                self.events.publish("config_changed", change)

    def _config_change(self, path: Path) -> dict[str, Any] | None:
        parent = path.parent
        if path.name in ("settings.json", "settings.local.json"):
            local = path.name == "settings.local.json"
            scope = "global" if parent == self.config_dir else "local" if local else "project"
            return {"scope": scope, "kind": "settings", "path": str(path)}
        if path.name in (".claude.json", ".mcp.json", "claude_desktop_config.json"):
            return {
                "scope": "project" if path.name == ".mcp.json" else "global",
                "kind": "mcp",
                "path": str(path),
            }
        kinds = sorted(_ASSET_DIRS & set(path.parts))
        if path.suffix == ".md" and kinds:
            scope = "global" if path.is_relative_to(self.config_dir) else "project"
            return {"scope": scope, "kind": kinds[0], "path": str(path)}
        return None

    async def _publish_sessions(self, delta: IndexDelta) -> None:
        usage = await ledger_stats.usage_by_session(self.engine) if delta.created or delta.updated else {}
        for kind, ids in (("session_created", delta.created), ("session_updated", delta.updated)):
            for session_id in sorted(ids):
                session = self.index.sessions.get(session_id)
                if session is None:
                    continue
                entry = usage.get(session_id)
                self.events.publish(
                    kind,
                    {
                        "id": session_id,
                        "project": session.project,
                        "project_dir": session.project_dir,
                        "message_count": session.messages,
                        "tokens": entry.total.tokens if entry else 0,
                        "cost": entry.total.cost if entry else 0.0,
                        "date": ledger_stats.iso(session.last_ts),
                    },
                )

    async def _publish_stats(self, extra: Mapping[str, Any]) -> None:
        totals = ledger_stats.Usage()
        for entry in (await ledger_stats.usage_by_project(self.engine)).values():
            totals.add(entry)
        self.events.publish(
            "stats_updated",
            {
                "total_sessions": len(self.index.sessions),
                "total_tokens": totals.tokens,
                "total_cost": totals.cost,
                **extra,
            },
        )

    async def _fresh(self) -> None:
        """Without a working watcher, each request re-stats the files (cheap, cached by size+mtime)."""
        if self.first_import_done and not self.watching:
            await self.index.refresh_if_idle()

    # -- answers --------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        scan = self.last_scan
        unreadable = sorted(set(self.index.unreadable) | set(scan.unreadable_files if scan else ()))
        degraded = bool(unreadable or self.last_error)
        return {
            "status": "degraded" if degraded else "healthy",
            "sessions": len(self.index.sessions),
            "stats_loaded": self.first_import_done,
            "first_import_done": self.first_import_done,
            "watching": self.watching,
            "roots": [str(r) for r in self.roots],
            "files": scan.files_seen if scan else 0,
            "malformed_lines": scan.malformed_lines if scan else self.index.malformed_lines,
            "unreadable_files": unreadable,
            "last_error": self.last_error,
            "last_refresh": ledger_stats.iso(self.index.refreshed_at),
        }

    async def stats(self) -> dict[str, Any]:
        await self._fresh()
        hours, projects = await asyncio.gather(
            ledger_stats.usage_by_hour(self.engine), ledger_stats.usage_by_project(self.engine)
        )
        servers = await asyncio.to_thread(self.mcp, ())
        cache, _ = await asyncio.to_thread(config_inspect.read_json, self.config_dir / "stats-cache.json")
        body = ledger_stats.build_stats(
            sessions=self.index.sessions,
            hours=hours,
            projects=projects,
            zone=self.zone,
            now=datetime.now(UTC),
            mcp_servers=len({s["name"] for s in servers["servers"] if s["scope"] != "desktop"}),
            stats_cache=cache,
        )
        body["first_import_done"] = self.first_import_done
        return body

    async def sessions(self, params: Mapping[str, str]) -> dict[str, Any]:
        now = datetime.now(UTC)
        query = SessionQuery.parse(params, now)
        await self._fresh()
        usage = await ledger_stats.usage_by_session(self.engine)
        rows, total = query_sessions(self.index.sessions.values(), usage, query, now)
        return {"sessions": rows, "total": total, "page": query.page, "page_size": query.limit}

    async def recent(self, params: Mapping[str, str]) -> dict[str, Any]:
        limit = parse_int(params, "limit", 5, 1, MAX_LIMIT)
        page = await self.sessions({"limit": str(limit)})
        return {"sessions": page["sessions"], "total": len(self.index.sessions)}

    async def live(self) -> dict[str, Any]:
        running = await asyncio.to_thread(self.monitor.snapshot)
        await self._fresh()
        usage = await ledger_stats.usage_by_session(self.engine)
        tokens = {sid: u.total.tokens for sid, u in usage.items()}
        return processes.live_sessions(running, self.index.sessions, tokens, self.zone)

    async def conversation(self, session_id: str) -> dict[str, Any]:
        await self._fresh()
        session = self.index.sessions.get(session_id)
        files = (
            [transcript.ConversationFile(f.path, f.is_subagent, f.agent_id) for f in session.files]
            if (session)
            else []
        )
        files += [
            transcript.ConversationFile(Path(path), Path(path).stem != session_id, None)
            for path, (owner, _) in self.index.unreadable.items()
            if owner == session_id
        ]
        if not files:
            raise NotFound(f"no Claude Code session {session_id!r}", details={"session_id": session_id})
        body = await asyncio.to_thread(transcript.read_conversation, session_id, files)
        usage = (await ledger_stats.usage_by_session(self.engine)).get(session_id)
        body["project"] = session.project if session else None
        body["gitBranch"] = session.first("git_branch") if session else None
        body["tokens"] = usage.total.tokens if usage else 0
        body["cost"] = usage.total.cost if usage else 0.0
        return body

    def project_path(self, requested: str | None) -> Path | None:
        """The project whose settings to show: the one asked for, else the latest session's."""
        if requested:
            return Path(requested).expanduser()
        dated = [s for s in self.index.sessions.values() if s.last_ts is not None]
        for session in sorted(dated, key=lambda s: s.last_ts or datetime.min, reverse=True):
            if Path(session.project).is_dir():
                return Path(session.project)
        return None

    def _config(self, project: str | None) -> config_inspect.ConfigLocations:
        return config_inspect.ConfigLocations(
            self.config_dir, self.home, self.project_path(project), self.managed_dir
        )

    def config_merged(self, project: str | None = None) -> dict[str, Any]:
        return config_inspect.merged_config(self._config(project))

    def hooks(self, project: str | None = None) -> dict[str, Any]:
        return config_inspect.list_hooks(self._config(project))

    def mcp(self, projects: Iterable[str] = ()) -> dict[str, Any]:
        where = mcp_files.McpLocations(self.config_dir, self.home, self.managed_dir)
        known = [*projects, *(s.project for s in self.index.sessions.values())]
        return mcp_files.list_servers(
            where, [p for p in dict.fromkeys(known) if p.startswith("/") or ":" in p]
        )

    def assets(self, kind: str, project: str | None = None) -> dict[str, Any]:
        where = asset_files.AssetLocations(self.config_dir, self.project_path(project))
        listing = {
            "agents": asset_files.list_agents,
            "commands": asset_files.list_commands,
            "skills": asset_files.list_skills,
        }
        return listing[kind](where)
