"""Running Claude Code processes (psutil), each matched to the session it is writing.

A process is Claude Code when its name or the program it runs is ``claude``/``claude-code`` or
the npm package's entry point. Its session is the one it was resumed with (``--resume <id>``),
else the most recently active session in its working directory that has been written to since
the process started; two processes in one folder never claim the same session.
CPU percentages need two samples, so the monitor keeps the ``Process`` objects between calls.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import PurePath
from typing import Any

import psutil

from tollhouse.claude_code.config_inspect import mask_text
from tollhouse.claude_code.sessions import Session

CLAUDE_NAMES = frozenset({"claude", "claude-code", "claude.exe"})
_RESUME_FLAGS = ("--resume", "-r", "--session-id")
_CPU_SAMPLE_S = 0.1


def is_claude(name: str, cmdline: Sequence[str]) -> bool:
    if name in CLAUDE_NAMES:
        return True
    if any(PurePath(arg).name in CLAUDE_NAMES for arg in cmdline[:2]):
        return True
    return any("@anthropic-ai/claude-code" in arg for arg in cmdline[:3])


def _flag(cmdline: Sequence[str], names: Sequence[str]) -> str | None:
    for i, arg in enumerate(cmdline):
        for name in names:
            if arg == name and i + 1 < len(cmdline):
                return cmdline[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


@dataclass(slots=True)
class LiveProcess:
    pid: int
    started: datetime
    cwd: str | None
    command: str
    cmdline: list[str]
    cpu_percent: float
    memory_bytes: int


class LiveMonitor:
    """Finds Claude processes; call ``snapshot`` from a worker thread (it sleeps to sample CPU)."""

    def __init__(self, is_claude_process: Callable[[str, Sequence[str]], bool] = is_claude) -> None:
        self._match = is_claude_process
        self._known: dict[int, tuple[float, psutil.Process]] = {}
        self._lock = threading.Lock()  # two requests at once must not interleave the CPU samples

    def snapshot(self) -> list[LiveProcess]:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> list[LiveProcess]:
        current: dict[int, tuple[float, psutil.Process]] = {}
        fresh = False
        for proc in psutil.process_iter(["pid", "name", "cmdline", "create_time"]):
            info = proc.info
            if info["pid"] == os.getpid() or not self._match(info["name"] or "", info["cmdline"] or []):
                continue
            known = self._known.get(info["pid"])
            if known is not None and known[0] == info["create_time"]:
                current[info["pid"]] = known
                continue
            try:
                proc.cpu_percent(None)  # the first call only starts the measurement
            except psutil.Error:
                continue
            current[info["pid"]] = (info["create_time"], proc)
            fresh = True
        if fresh:
            time.sleep(_CPU_SAMPLE_S)
        self._known = current
        found = []
        for created, proc in current.values():
            try:
                with proc.oneshot():
                    cmdline = proc.cmdline()
                    found.append(
                        LiveProcess(
                            pid=proc.pid,
                            started=datetime.fromtimestamp(created, UTC),
                            cwd=_cwd(proc),
                            command=proc.name(),
                            cmdline=cmdline,
                            cpu_percent=proc.cpu_percent(None),
                            memory_bytes=proc.memory_info().rss,
                        )
                    )
            except psutil.Error:
                continue  # it ended while we looked
        return sorted(found, key=lambda p: p.started)


def _cwd(proc: psutil.Process) -> str | None:
    try:
        return proc.cwd()
    except psutil.Error:
        return None


def match_sessions(processes: Sequence[LiveProcess], sessions: Mapping[str, Session]) -> dict[int, str]:
    """pid -> session id, newest process first so each claims the newest unclaimed session."""
    by_project: dict[str, list[Session]] = {}
    for session in sessions.values():
        by_project.setdefault(session.project, []).append(session)
    claimed: set[str] = set()
    matches: dict[int, str] = {}
    for process in sorted(processes, key=lambda p: p.started, reverse=True):
        resumed = _flag(process.cmdline, _RESUME_FLAGS)
        if resumed and resumed in sessions and resumed not in claimed:
            matches[process.pid] = resumed
            claimed.add(resumed)
            continue
        candidates = [
            s
            for s in by_project.get(process.cwd or "", [])
            if s.id not in claimed and s.last_ts is not None and s.last_ts >= process.started
        ]
        if candidates:
            best = max(candidates, key=lambda s: s.last_ts or process.started)
            matches[process.pid] = best.id
            claimed.add(best.id)
    return matches


def live_sessions(
    processes: Sequence[LiveProcess],
    sessions: Mapping[str, Session],
    tokens: Mapping[str, int],
    zone: tzinfo,
) -> dict[str, Any]:
    matches = match_sessions(processes, sessions)
    rows = []
    for process in processes:
        session_id = matches.get(process.pid)
        session = sessions.get(session_id) if session_id else None
        rows.append(
            {
                "pid": process.pid,
                "startTime": process.started.astimezone(zone).isoformat(),
                "workingDirectory": process.cwd,
                "command": process.command,
                "commandLine": mask_text(" ".join(process.cmdline)),
                "model": _flag(process.cmdline, ("--model",)),
                "cpuPercent": round(process.cpu_percent, 1),
                "memoryMb": process.memory_bytes // (1024 * 1024),
                "memoryBytes": process.memory_bytes,
                "tokens": tokens.get(session_id, 0) if session_id else 0,
                "sessionId": session_id,
                "sessionName": (session.first("title") or session.first("slug")) if session else None,
            }
        )
    return {"sessions": rows, "total": len(rows)}
