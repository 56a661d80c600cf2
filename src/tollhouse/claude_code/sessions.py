"""The session index: what the ledger does not know about a Claude Code session.

The ledger holds each session's priced calls; titles, first prompts, git branches, message
counts and start/end times live only in the transcripts. Reading those is the slow part of a
dashboard, so each file's summary is cached by (size, mtime) and an appended file is read on
from where the last read stopped: repeated requests and live sessions cost a ``stat`` per file.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.claude_code.discovery import TranscriptFile, transcript_files
from tollhouse.errors import InvalidParameter

if TYPE_CHECKING:
    from tollhouse.claude_code.stats import SessionUsage

PREVIEW_CHARS = 200
# Claude Code's own wrappers around slash commands and hook output: not what the user asked.
_NOT_A_PROMPT = ("<command-", "<local-command", "<system-reminder", "[Request interrupted", "Caveat: ")


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def prompt_text(content: Any) -> str | None:
    """The user-typed text of a ``user`` line, or None for tool results and wrappers."""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        text = "\n".join(p for p in parts if isinstance(p, str))
    else:
        return None
    text = text.strip()
    if not text or text.startswith(_NOT_A_PROMPT):
        return None
    return text


@dataclass(slots=True)
class FileSummary:
    """Everything one transcript file contributes to its session, plus where reading stopped."""

    path: Path
    session_id: str
    project_dir: str
    is_subagent: bool
    agent_id: str | None
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0
    offset: int = 0
    cwd: str | None = None
    git_branch: str | None = None
    version: str | None = None
    slug: str | None = None
    title: str | None = None
    line_session_id: str | None = None
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    messages: int = 0
    sidechain_messages: int = 0
    user_prompts: int = 0
    tool_calls: int = 0
    malformed_lines: int = 0
    models: set[str] = field(default_factory=set)
    preview: str | None = None
    # UTC hour "YYYY-MM-DDTHH" -> [messages, tool calls]; days are grouped later in the user's zone.
    activity: dict[str, list[int]] = field(default_factory=dict)
    assistant_ids: set[str] = field(default_factory=set)

    def copy(self) -> FileSummary:
        return replace(
            self,
            models=set(self.models),
            activity={k: list(v) for k, v in self.activity.items()},
            assistant_ids=set(self.assistant_ids),
        )

    def read_from(self, handle: Any) -> None:
        """Consume complete lines from ``self.offset``; a half-written last line waits for its newline."""
        handle.seek(self.offset)
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            self.offset += len(raw)
            if raw.startswith(b'{"type":"file-history-snapshot"'):
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                if raw.strip():
                    self.malformed_lines += 1
                continue
            if isinstance(line, dict):
                self._take(line)

    def _take(self, line: dict[str, Any]) -> None:
        kind = line.get("type")
        if kind in ("summary", "ai-title"):
            title = line.get("summary") or line.get("title") or line.get("aiTitle")
            if isinstance(title, str) and title:
                self.title = title
            return
        for attr, key in (("cwd", "cwd"), ("version", "version"), ("slug", "slug")):
            value = line.get(key)
            if isinstance(value, str) and value:
                setattr(self, attr, value)
        branch = line.get("gitBranch")
        if isinstance(branch, str) and branch:
            self.git_branch = branch
        if self.line_session_id is None and isinstance(line.get("sessionId"), str):
            self.line_session_id = line["sessionId"]
        moment = parse_timestamp(line.get("timestamp"))
        if kind not in ("user", "assistant") or moment is None:
            return
        self.first_ts = moment if self.first_ts is None else min(self.first_ts, moment)
        self.last_ts = moment if self.last_ts is None else max(self.last_ts, moment)
        message = line.get("message") if isinstance(line.get("message"), dict) else {}
        assert isinstance(message, dict)
        content = message.get("content")
        tools = (
            sum(1 for b in content if isinstance(b, dict) and b.get("type") == "tool_use")
            if isinstance(content, list)
            else 0
        )
        counted = 1
        if kind == "assistant":
            model = message.get("model")
            if isinstance(model, str) and model and model != "<synthetic>":
                self.models.add(model)
            message_id = message.get("id")
            # One line per content block: a response split over lines is still one message.
            if isinstance(message_id, str):
                counted = 0 if message_id in self.assistant_ids else 1
                self.assistant_ids.add(message_id)
        elif not line.get("isMeta"):
            text = prompt_text(content)
            if text is not None and not line.get("isSidechain"):
                self.user_prompts += 1
                if self.preview is None and not self.is_subagent:
                    self.preview = text[:PREVIEW_CHARS]
        else:
            counted = 0
        if line.get("isSidechain") or self.is_subagent:
            self.sidechain_messages += counted
        else:
            self.messages += counted
        self.tool_calls += tools
        bucket = self.activity.setdefault(moment.strftime("%Y-%m-%dT%H"), [0, 0])
        bucket[0] += counted
        bucket[1] += tools


@dataclass(slots=True)
class Session:
    """One session as the dashboard shows it: its main transcript and its subagents' files."""

    id: str
    project: str
    project_dir: str
    files: list[FileSummary]

    @property
    def main(self) -> FileSummary | None:
        return next((f for f in self.files if not f.is_subagent), None)

    @property
    def first_ts(self) -> datetime | None:
        stamps = [f.first_ts for f in self.files if f.first_ts is not None]
        return min(stamps) if stamps else None

    @property
    def last_ts(self) -> datetime | None:
        stamps = [f.last_ts for f in self.files if f.last_ts is not None]
        return max(stamps) if stamps else None

    @property
    def messages(self) -> int:
        return sum(f.messages for f in self.files)

    @property
    def subagent_messages(self) -> int:
        return sum(f.sidechain_messages for f in self.files)

    @property
    def tool_calls(self) -> int:
        return sum(f.tool_calls for f in self.files)

    @property
    def models(self) -> list[str]:
        return sorted(set().union(*(f.models for f in self.files)))

    @property
    def subagents(self) -> list[str]:
        return sorted({f.agent_id or f.path.stem for f in self.files if f.is_subagent})

    @property
    def file_size(self) -> int:
        return sum(f.size for f in self.files)

    def first(self, attr: str) -> Any:
        """The main file's value, else any subagent file's."""
        ordered = sorted(self.files, key=lambda f: f.is_subagent)
        return next((getattr(f, attr) for f in ordered if getattr(f, attr)), None)


@dataclass(frozen=True, slots=True)
class IndexDelta:
    created: frozenset[str]
    updated: frozenset[str]
    removed: frozenset[str]


class SessionIndex:
    """Session metadata for every transcript under the roots, refreshed incrementally."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = list(roots)
        self._files: dict[Path, FileSummary] = {}
        self._sessions: dict[str, Session] = {}
        self._lock = asyncio.Lock()
        # path -> (session id, reason): kept so a request for that session can say why it fails.
        self.unreadable: dict[str, tuple[str, str]] = {}
        self.refreshed_at: datetime | None = None

    @property
    def sessions(self) -> dict[str, Session]:
        return self._sessions

    @property
    def files(self) -> Iterable[FileSummary]:
        return self._files.values()

    @property
    def malformed_lines(self) -> int:
        return sum(f.malformed_lines for f in self._files.values())

    async def refresh(self) -> IndexDelta:
        """Re-stat every transcript and read only what changed (in a worker thread)."""
        async with self._lock:
            files, unreadable, changed = await asyncio.to_thread(self._scan, dict(self._files))
            before = self._sessions
            self._files, self.unreadable = files, unreadable
            self._sessions = _assemble(files.values())
            self.refreshed_at = datetime.now(UTC)
        changed_ids = {s.id for s in self._sessions.values() if any(f.path in changed for f in s.files)}
        return IndexDelta(
            created=frozenset(changed_ids - before.keys()),
            updated=frozenset(changed_ids & before.keys()),
            removed=frozenset(before.keys() - self._sessions.keys()),
        )

    async def refresh_if_idle(self) -> None:
        """For request handlers: freshen cheaply, but never wait behind a running import."""
        if not self._lock.locked():
            await self.refresh()

    def _scan(
        self, previous: dict[Path, FileSummary]
    ) -> tuple[dict[Path, FileSummary], dict[str, tuple[str, str]], set[Path]]:
        files: dict[Path, FileSummary] = {}
        unreadable: dict[str, tuple[str, str]] = {}
        changed: set[Path] = set()
        for found in transcript_files(self.roots):
            old = previous.get(found.path)
            try:
                summary = _read(found, old)
            except OSError as exc:
                unreadable[str(found.path)] = (
                    found.session_id,
                    f"{type(exc).__name__}: {exc.strerror or exc}",
                )
                continue
            files[found.path] = summary
            if summary is not old:
                changed.add(found.path)
        return files, unreadable, changed


def _read(found: TranscriptFile, old: FileSummary | None) -> FileSummary:
    info = os.stat(found.path)
    if old is not None and (old.size, old.mtime_ns, old.inode) == (
        info.st_size,
        info.st_mtime_ns,
        info.st_ino,
    ):
        return old
    if old is not None and old.inode == info.st_ino and info.st_size >= old.size:
        summary = old.copy()  # appended: carry on from the last complete line
    else:
        summary = FileSummary(
            path=found.path,
            session_id=found.session_id,
            project_dir=found.project_dir,
            is_subagent=found.is_subagent,
            agent_id=found.agent_id,
        )
    with open(found.path, "rb") as handle:
        summary.read_from(handle)
    summary.size, summary.mtime_ns, summary.inode = info.st_size, info.st_mtime_ns, info.st_ino
    return summary


def _assemble(files: Iterable[FileSummary]) -> dict[str, Session]:
    sessions: dict[str, Session] = {}
    for summary in files:
        session_id = summary.session_id or summary.line_session_id or summary.path.stem
        session = sessions.get(session_id)
        if session is None:
            session = sessions[session_id] = Session(session_id, "", summary.project_dir, [])
        session.files.append(summary)
    for session in sessions.values():
        session.files.sort(key=lambda f: (f.is_subagent, str(f.path)))
        session.project = session.first("cwd") or session.project_dir
        session.project_dir = session.files[0].project_dir
    return sessions


# -- queries ------------------------------------------------------------------------------------

SORT_FIELDS = ("date", "tokens", "cost", "messages", "duration")
MAX_LIMIT = 100
ACTIVE_WINDOW = timedelta(minutes=10)
_SINCE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _bad(param: str, value: str, expected: str) -> InvalidParameter:
    return InvalidParameter(
        f"{param} must be {expected} (got {value!r})",
        param=param,
        details={"param": param, "value": value, "expected": expected},
    )


def parse_int(params: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    expected = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, raw, expected) from None
    if value < low or (high is not None and value > high):
        raise _bad(name, raw, expected)
    return value


def parse_since(raw: str, now: datetime) -> datetime:
    """``30m``, ``12h``, ``7d``, ``2w`` back from now, or an ISO date/time (UTC when no zone)."""
    match = _SINCE.match(raw.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    moment = parse_timestamp(raw.strip())
    if moment is None:
        raise _bad("since", raw, "a duration like 30m, 12h, 7d, 2w or an ISO date")
    return moment


@dataclass(frozen=True, slots=True)
class SessionQuery:
    search: str | None = None
    project: str | None = None
    model: str | None = None
    since: datetime | None = None
    sort: str = "date"
    descending: bool = True
    page: int = 0
    limit: int = 50

    @classmethod
    def parse(cls, params: Mapping[str, str], now: datetime) -> SessionQuery:
        sort = params.get("sort") or "date"
        if sort not in SORT_FIELDS:
            raise _bad("sort", sort, "one of " + ", ".join(SORT_FIELDS))
        order = params.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise _bad("order", order, "asc or desc")
        since = params.get("since")
        return cls(
            search=(params.get("search") or "").strip().lower() or None,
            project=(params.get("project") or "").strip().lower() or None,
            model=(params.get("model") or "").strip().lower() or None,
            since=parse_since(since, now) if since else None,
            sort=sort,
            descending=order == "desc",
            page=parse_int(params, "page", 0, 0, None),
            limit=parse_int(params, "limit", 50, 1, MAX_LIMIT),
        )


def session_row(session: Session, usage: SessionUsage | None, now: datetime) -> dict[str, Any]:
    """One session in ccboard's shape (snake_case fields), tokens and cost from the ledger."""
    first, last = session.first_ts, session.last_ts
    total = usage.total if usage else None
    return {
        "id": session.id,
        "date": _iso(last),
        "first_timestamp": _iso(first),
        "project": session.project,
        "project_dir": session.project_dir,
        "model": (usage.main_model if usage else None) or (session.models[0] if session.models else None),
        "models": sorted(set(session.models) | set(usage.by_model if usage else ())),
        "messages": session.messages,
        "subagent_messages": session.subagent_messages,
        "tool_calls": session.tool_calls,
        "tokens": total.tokens if total else 0,
        "input_tokens": total.input if total else 0,
        "output_tokens": total.output if total else 0,
        "cache_creation_tokens": total.cache_write if total else 0,
        "cache_read_tokens": total.cache_read if total else 0,
        "cost": total.cost if total else 0.0,
        "calls": total.calls if total else 0,
        "status": "active" if last is not None and now - last < ACTIVE_WINDOW else "completed",
        "duration_seconds": int((last - first).total_seconds()) if first and last else None,
        "preview": session.first("preview") or "",
        "title": session.first("title"),
        "slug": session.first("slug"),
        "git_branch": session.first("git_branch"),
        "version": session.first("version"),
        "subagents": session.subagents,
        "file_size": session.file_size,
    }


def query_sessions(
    sessions: Iterable[Session], usage: Mapping[str, SessionUsage], query: SessionQuery, now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """(the requested page of rows, how many sessions matched before paging)."""
    rows = [session_row(s, usage.get(s.id), now) for s in sessions]
    if query.since is not None:
        cutoff = _iso(query.since) or ""
        rows = [r for r in rows if (r["date"] or "") >= cutoff]
    if query.project:
        rows = [r for r in rows if query.project in f"{r['project']}\n{r['project_dir']}".lower()]
    if query.model:
        rows = [r for r in rows if any(query.model in m.lower() for m in r["models"])]
    if query.search:
        needle = query.search
        rows = [r for r in rows if needle in _haystack(r)]
    key = {
        "date": lambda r: r["date"] or "",
        "tokens": lambda r: r["tokens"],
        "cost": lambda r: r["cost"],
        "messages": lambda r: r["messages"],
        "duration": lambda r: r["duration_seconds"] or 0,
    }[query.sort]
    rows.sort(key=lambda r: r["id"])
    rows.sort(key=key, reverse=query.descending)
    start = query.page * query.limit
    return rows[start : start + query.limit], len(rows)


def _haystack(row: Mapping[str, Any]) -> str:
    parts = (row["id"], row["project"], row["project_dir"], row["preview"], row["title"], row["git_branch"])
    return "\n".join(p for p in parts if p).lower()


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None
