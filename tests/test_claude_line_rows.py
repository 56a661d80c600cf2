"""The SQLite fast path reads every odd line exactly as the general parser does (the one the
PostgreSQL importer uses), whether it decodes with msgspec (big reads) or plain JSON (small
reads): the same lines counted, malformed, kept and priced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tollhouse.claude_code.discovery import TranscriptFile
from tollhouse.claude_code.line_rows import FileRows, parse_rows
from tollhouse.claude_code.lite import NO_REPORTED_COST, ROW_PARAMS
from tollhouse.claude_code.parser import Pricer, read_chunk
from tollhouse.claude_code.spans import path_tag
from tollhouse.pricing import load_price_table

SONNET = "claude-sonnet-4-5-20250929"


def record(n: int, usage: Any = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"id": f"msg_{n}", "model": SONNET, "content": [{"type": "text", "text": "x"}]}
    message["usage"] = {"input_tokens": 10, "output_tokens": 3} if usage is None else usage
    base: dict[str, Any] = {
        "type": "assistant",
        "sessionId": "s1",
        "cwd": "/w",
        "timestamp": f"2025-09-01T10:00:{n % 60:02d}.000Z",
        "requestId": f"req_{n}",
        "message": message,
    }
    base.update(extra)
    return base


ODD_LINES: list[str] = [
    json.dumps(record(1)),
    json.dumps(record(2, {"input_tokens": 5.0, "output_tokens": -4, "cache_read_input_tokens": "7"})),
    json.dumps(
        record(3, {"input_tokens": True, "output_tokens": None, "cache_creation_input_tokens": 2**40})
    ),
    json.dumps(record(4, {"input_tokens": 1, "cache_creation_input_tokens": 100, "cache_creation": "split"})),
    json.dumps(
        record(
            5,
            {
                "input_tokens": 1,
                "cache_creation_input_tokens": 100,
                "cache_creation": {"ephemeral_1h_input_tokens": 30, "ephemeral_5m_input_tokens": -1},
            },
        )
    ),
    json.dumps(
        record(
            6,
            {
                "input_tokens": 1,
                "cache_creation_input_tokens": 100,
                "cache_creation": {"ephemeral_1h_input_tokens": 40, "ephemeral_5m_input_tokens": 60},
            },
        )
    ),
    json.dumps(record(7, {"input_tokens": 9, "service_tier": 3, "speed": "fast"})),
    json.dumps(record(8, {"input_tokens": 300_000, "output_tokens": 9, "service_tier": "priority"})),
    json.dumps(record(9, "not usage")),
    json.dumps(record(10, None, timestamp="yesterday")),
    json.dumps(record(11, None, timestamp=12)),
    json.dumps(record(12, None, timestamp="2025-09-01T12:00:00+02:00")),
    json.dumps(record(13, None, costUSD="0.5")),
    json.dumps(record(14, None, costUSD=True)),
    json.dumps(record(15, None, costUSD=0.000123)),
    json.dumps(record(16, None, isApiErrorMessage=True, apiErrorStatus="529")),
    json.dumps(record(17, None, isSidechain="yes", cwd=5, requestId=None)),
    json.dumps({**record(18), "message": "a string"}),
    json.dumps({**record(19), "message": {"model": SONNET, "usage": {"input_tokens": 4}}}),  # no id
    json.dumps({**record(20), "type": "user"}),
    json.dumps([1, 2, 3]),
    '{"type": "assistant", "message": {"id": "broken"',
    json.dumps(record(21, {"input_tokens": 12, "output_tokens": 2})).replace("12", "1" + "0" * 25),
    json.dumps(record(22, {})),
    json.dumps(record(25, {"input_tokens": 2**62, "output_tokens": 1})),  # garbage: must not overflow
    json.dumps({**record(23), "message": {**record(23)["message"], "model": None}}),
    json.dumps(record(24, None, sessionId=None)),
    json.dumps(record(1, {"input_tokens": 50, "output_tokens": 3})),  # a bigger copy of msg_1
    "   ",
]


@pytest.fixture
def transcript(tmp_path: Path) -> TranscriptFile:
    path = tmp_path / "projects" / "-w" / "s1.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(ODD_LINES) + "\n")
    return TranscriptFile(path, "-w", "s1", False, "")


@pytest.mark.parametrize("typed", [True, False], ids=["msgspec", "plain"])
def test_odd_lines_read_as_by_the_general_parser(transcript: TranscriptFile, typed: bool) -> None:
    pricer = Pricer(load_price_table())
    chunk = read_chunk(transcript, 0, pricer, max_bytes=1 << 20)
    out = FileRows(seq0=1)
    data, tag = transcript.path.read_bytes(), path_tag(transcript.path)
    parse_rows(data, 0, transcript, pricer, tag, out, typed=typed)

    assert (out.lines, out.malformed) == (chunk.lines, chunk.malformed)
    assert chunk.malformed >= 3  # the array, the broken line, the bad timestamps
    by_key: dict[str, Any] = {}
    for entry in chunk.entries:  # the general parser keeps every copy: the largest counts
        kept = by_key.get(entry.key)
        if kept is None or entry.total > kept.total:
            by_key[entry.key] = entry
    p = {name: n for n, name in enumerate(ROW_PARAMS)}
    got = {params[p["key"]]: params for _, _, params in out.rows}
    assert sorted(got) == sorted(by_key)
    for key, params in got.items():
        entry = by_key[key]
        usage = entry.usage
        assert (
            params[p["input"]], params[p["cache_read"]], params[p["cache_write_5m"]],
            params[p["cache_write_1h"]], params[p["output"]],
        ) == (
            usage.input_tokens, usage.cache_read_tokens, usage.cache_write_5m_tokens,
            usage.cache_write_1h_tokens, usage.output_tokens,
        )  # fmt: skip
        reported = params[p["reported"]]
        assert (None if reported == NO_REPORTED_COST else reported) == entry.reported_nanos
        assert (params[p["calc"]], params[p["ccusage"]]) == (entry.calc_nanos, entry.ccusage_nanos)
        assert (bool(params[p["unpriced"]]), bool(params[p["ccusage_unpriced"]])) == (
            entry.unpriced,
            entry.ccusage_unpriced,
        )
        assert params[p["ts_ms"]] == entry.ts_ms
        assert params[p["model"]] == entry.model
        assert params[p["cwd"]] == entry.cwd
        assert bool(params[p["fast"]]) == entry.fast
        assert bool(params[p["error"]]) == (entry.api_error_status is not None)
        if entry.api_error_status is not None:
            assert params[p["status_code"]] == entry.api_error_status


def test_the_plain_line_shape_follows_the_typed_one() -> None:
    """The two decoders' line shapes are declared twice (msgspec is not imported for small reads)."""
    import msgspec

    from tollhouse.claude_code import line_rows, line_structs

    pairs = [
        (line_structs.Line, line_rows._Line),
        (line_structs.Message, line_rows._Message),
        (line_structs.Usage, line_rows._Usage),
        (line_structs.Split, line_rows._Split),
    ]
    for typed, plain in pairs:
        typed_names = [f.name for f in msgspec.structs.fields(typed)]
        assert sorted(typed_names) == sorted(plain.__slots__)


def _nanos(usd: float) -> int:
    """A transcript's ``costUSD`` in nano-dollars, exactly as written (``decimal`` loads only here:
    most transcripts carry no ``costUSD``)."""
    from decimal import Decimal

    return int((Decimal(str(usd)) * 1_000_000_000).to_integral_value())
