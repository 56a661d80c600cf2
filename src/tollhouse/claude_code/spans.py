"""Complete lines from a transcript, from a byte offset: what every reader of transcripts starts
with. A light module (no pricing, no ``decimal``): a report with nothing new to price loads no
more than it needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from tollhouse.claude_code.discovery import TranscriptFile

HEAD_BYTES = 4096  # a file's first bytes, fingerprinted to tell a replaced file from a grown one


@dataclass(slots=True)
class Span:
    """Complete lines read from a file: ``data`` starts at ``offset`` (0 after a restart)."""

    data: bytes
    offset: int
    eof: bool
    restarted: bool
    head: bytes


def read_span(
    file: TranscriptFile, offset: int, *, max_bytes: int, expect_head: tuple[str, int] | None
) -> Span:
    """Complete lines from ``offset``. When ``expect_head`` (sha256 and length of the file's first
    bytes as last seen) no longer matches, the file was replaced: read from 0."""
    restarted, head = False, b""
    with file.path.open("rb") as handle:
        if offset and expect_head is not None and fingerprint(handle.read(expect_head[1])) != expect_head:
            offset = 0
            restarted = True
        if offset == 0:
            handle.seek(0)
            head = handle.read(HEAD_BYTES)
        handle.seek(offset)
        # No bigger than the file: read(n) allocates n bytes first, and most files are small.
        want = min(max_bytes, max(os.fstat(handle.fileno()).st_size - offset, 0) + 1)
        data = handle.read(want)
        at_end = len(data) < want
        newline = b"\n" in data
        while not at_end and not newline:  # one line longer than a chunk: read until it ends
            more = handle.read(max_bytes)
            data += more
            at_end = len(more) < max_bytes
            newline = b"\n" in more
    end = data.rfind(b"\n") + 1
    if at_end and end < len(data) and _is_complete_object(data[end:]):
        end = len(data)  # a last line without its newline but whole: Claude Code is done with it
    return Span(data[:end] if end < len(data) else data, offset, at_end, restarted, head)


def fingerprint(head: bytes) -> tuple[str, int]:
    import hashlib  # here: its OpenSSL binding costs ~3.5 ms of a short report's start-up

    return hashlib.sha256(head).hexdigest(), len(head)


def _is_complete_object(tail: bytes) -> bool:
    try:
        return isinstance(orjson.loads(tail), dict)
    except orjson.JSONDecodeError:
        return False


def path_tag(path: Path) -> str:
    """A file's short stable name, in the keys of its responses that have no ids."""
    import hashlib

    return hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]
