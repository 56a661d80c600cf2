"""Where Claude Code keeps its transcripts, found the way Claude Code (and ccusage) find them.

``$CLAUDE_CONFIG_DIR`` may list several directories separated by commas, each a config
directory or its ``projects/`` directory; when it is set nothing else is read. Otherwise both
``$XDG_CONFIG_HOME/claude`` (default ``~/.config/claude``, where Claude Code 1.0.30 briefly
wrote) and ``~/.claude`` are read.

Three transcript layouts exist side by side in real data directories:

* 1.0.x: ``projects/<dir>/<session>.jsonl`` with subagent lines inline (``isSidechain``);
* 2.0.x: ``projects/<dir>/agent-<id>.jsonl`` next to the session files;
* 2.1.x: ``projects/<dir>/<session>/subagents/agent-<id>.jsonl``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import orjson

_PEEK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class TranscriptFile:
    """One ``.jsonl`` transcript and what its path says about it.

    ``project_dir`` is the encoded directory name under ``projects/`` (lossy: the real path is
    the ``cwd`` inside the lines). ``session_id`` is the session the file belongs to: the file
    name, the parent of ``subagents/``, or for a 2.0 ``agent-*.jsonl`` the ``sessionId`` of its
    first line ("" when the file has none yet).
    """

    path: Path
    project_dir: str
    session_id: str
    is_subagent: bool
    agent_id: str | None


def claude_roots(config_dirs: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> list[Path]:
    """The existing Claude config directories (each holding ``projects/``), without duplicates.

    ``config_dirs`` (from settings) overrides discovery from the environment.
    """
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    if config_dirs:
        candidates = [_normalise(raw, home) for raw in config_dirs if raw.strip()]
    elif env.get("CLAUDE_CONFIG_DIR"):
        candidates = [_normalise(raw, home) for raw in env["CLAUDE_CONFIG_DIR"].split(",") if raw.strip()]
    else:
        xdg = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
        candidates = [xdg / "claude", home / ".claude"]
    roots: list[Path] = []
    seen: set[Path] = set()
    for candidate in candidates:
        if not (candidate / "projects").is_dir():
            continue
        key = candidate.resolve()
        if key not in seen:
            seen.add(key)
            roots.append(candidate)
    return roots


def _normalise(raw: str, home: Path) -> Path:
    text = raw.strip()
    if text == "~" or text.startswith("~/"):
        path = home / text[2:] if len(text) > 1 else home
    else:
        path = Path(text)
    if path.name == "projects" and path.is_dir():
        return path.parent
    return path


def transcript_files(roots: Sequence[Path]) -> Iterator[TranscriptFile]:
    """Every ``*.jsonl`` under each root's ``projects/``, in path order (ccusage's order, which
    decides which of two equal duplicates is kept)."""
    for listed in listing(roots):
        described = listed.describe()
        if described is not None:
            yield described


class Listed(NamedTuple):
    """A transcript as listed: its path as text, its directory and its path's parts below
    ``projects/``. Cheap on purpose: a warm report lists thousands of files and describes only
    the few that changed (parsing every path with ``pathlib`` used to be most of its time)."""

    text: str
    directory: Path
    parts: tuple[str, ...]

    def describe(self) -> TranscriptFile | None:
        """Session, project and subagent identity from the file's place under ``projects/``
        (None for a file directly in ``projects/``: it belongs to no project)."""
        return _describe(self.directory, self.parts)


_Found = tuple[str, Path, tuple[str, ...]]  # Listed's fields as a tuple (sorts by the path's text)


def listing(roots: Sequence[Path]) -> list[Listed]:
    """Every ``*.jsonl`` under each root's ``projects/``, roots in order, each root's in path order."""
    out: list[Listed] = []
    for root in roots:
        found: list[_Found] = []
        _walk(root / "projects", (), found)
        found.sort()
        out += map(Listed._make, found)
    return out


def _walk(directory: Path, parts: tuple[str, ...], out: list[_Found]) -> None:
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        _walk(directory / entry.name, (*parts, entry.name), out)
                    elif entry.name.endswith(".jsonl") and entry.is_file():
                        out.append((entry.path, directory, (*parts, entry.name)))
                except OSError:
                    continue
    except OSError:
        return


def _describe(directory: Path, parts: tuple[str, ...]) -> TranscriptFile | None:
    """Session, project and subagent identity from a transcript's place under ``projects/``."""
    if len(parts) < 2:
        return None
    project_dir, name = parts[0], parts[-1]
    stem = name[: -len(".jsonl")]
    path = directory / name  # under half the cost of ``Path(text)``: the directory is parsed already
    if len(parts) >= 4 and parts[-2] == "subagents":
        return TranscriptFile(path, project_dir, parts[-3], True, _agent_id(stem))
    if len(parts) == 2 and stem.startswith("agent-"):
        return TranscriptFile(path, project_dir, _first_session_id(path), True, _agent_id(stem))
    if len(parts) == 2:
        return TranscriptFile(path, project_dir, stem, False, None)
    # Any other nesting: ccusage attributes it to the directory above the file.
    return TranscriptFile(path, project_dir, parts[-2], False, None)


def _agent_id(stem: str) -> str:
    return stem[len("agent-") :] if stem.startswith("agent-") else stem


def _first_session_id(path: Path) -> str:
    """A 2.0 subagent file is named after its agent; its lines name the parent session."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_PEEK_BYTES)
    except OSError:
        return ""
    for line in head.split(b"\n"):
        if b'"sessionId"' not in line:
            continue
        try:
            value = orjson.loads(line).get("sessionId")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, str) and value:
            return value
    return ""
