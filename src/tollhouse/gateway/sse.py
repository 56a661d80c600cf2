"""Incremental Server-Sent Events framing: split a byte stream into whole events, untouched."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    raw: bytes  # the event exactly as received, terminator included
    event: str | None
    data: bytes

    @property
    def is_done(self) -> bool:
        return self.data == b"[DONE]"


class SSEParser:
    """Feed arbitrary chunks; get back complete events. Handles \\n\\n and \\r\\n\\r\\n framing."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        events: list[SSEEvent] = []
        while True:
            end, size = _boundary(self._buffer)
            if end < 0:
                return events
            raw = self._buffer[: end + size]
            self._buffer = self._buffer[end + size :]
            events.append(_parse(raw))

    def tail(self) -> bytes:
        """Bytes after the last complete event (a stream cut mid-event)."""
        return self._buffer


def _boundary(buffer: bytes) -> tuple[int, int]:
    lf = buffer.find(b"\n\n")
    crlf = buffer.find(b"\r\n\r\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, 4
    return lf, 2


def _parse(raw: bytes) -> SSEEvent:
    event: str | None = None
    data_lines: list[bytes] = []
    for line in raw.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            data_lines.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
    return SSEEvent(raw=raw, event=event, data=b"\n".join(data_lines))


def encode(data: bytes, event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"
