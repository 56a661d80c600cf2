"""Claude Code scans remember the rates of the models they priced, per price source: a later scan
prices new lines of those models without loading the price table, to the same nano-dollar as a
scan that loads it; a new model, a long-context request or another price source loads it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.test_claude_import import line, write
from tollhouse.claude_code import fast_scan, lite
from tollhouse.db import sqlite_schema
from tollhouse.pricing import PriceTable, load_price_table

SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"
OPUS = "claude-opus-4-1-20250805"


class Prices:
    """The ``prices`` callable a scan gets, counting how often the table is loaded."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self) -> PriceTable:
        self.loads += 1
        return load_price_table()


def scan(db: Path, root: Path, prices: Callable[[], PriceTable], source: str = "S1") -> None:
    if not db.exists():
        sqlite_schema.create(str(db))
    fast_scan.scan(str(db), [root], prices, workers=1, price_source=source)


def costs(db: Path) -> list[tuple[object, ...]]:
    conn = lite.connect(str(db))
    try:
        query = (
            "SELECT external_id, cost_nanos, claude_calc_nanos, claude_ccusage_nanos, unpriced,"
            " claude_ccusage_unpriced, price_version FROM ledger ORDER BY external_id"
        )
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def remembered(db: Path) -> dict[str, dict[str, object]]:
    conn = lite.connect(str(db))
    try:
        rows = conn.execute("SELECT source, version, rates FROM claude_price_cache").fetchall()
    finally:
        conn.close()
    return {
        source: {"version": version, "models": sorted(orjson.loads(rates))} for source, version, rates in rows
    }


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    path = tmp_path / "claude" / "projects" / "-w" / "s1.jsonl"

    def usage(n: int) -> dict[str, int]:
        return {"input_tokens": 100 + n, "output_tokens": 7 * n, "cache_read_input_tokens": 1000 * n}

    write(path, *(line(f"m{n}", model=SONNET if n % 2 else HAIKU, usage=usage(n)) for n in range(6)))
    return path


def test_new_lines_of_known_models_are_priced_without_the_table(transcript: Path, tmp_path: Path) -> None:
    root, db = tmp_path / "claude", tmp_path / "cached.db"
    first = Prices()
    scan(db, root, first)
    assert first.loads == 1
    assert remembered(db)["S1"]["models"] == sorted([SONNET, HAIKU])

    write(
        transcript, line("m10", model=SONNET, usage={"input_tokens": 12_345, "output_tokens": 678}), mode="a"
    )
    again = Prices()
    scan(db, root, again)
    assert again.loads == 0  # priced from the remembered rates

    fresh = tmp_path / "fresh.db"
    scan(fresh, root, Prices(), source="other")
    assert costs(db) == costs(fresh)
    assert any(row[0] == "m10:req_m10" and row[1] > 0 for row in costs(db))


@pytest.mark.parametrize(
    "added",
    [
        line("m20", model=OPUS, usage={"input_tokens": 50, "output_tokens": 5}),  # a model not seen yet
        line("m21", model=SONNET, usage={"input_tokens": 250_000, "output_tokens": 5}),  # long context
        line("m22", model="claude-unknown-7", usage={"input_tokens": 50, "output_tokens": 5}),  # no price
    ],
    ids=["new-model", "long-context", "unpriced"],
)
def test_what_the_remembered_rates_do_not_cover_loads_the_table(
    transcript: Path, tmp_path: Path, added: str
) -> None:
    root, db = tmp_path / "claude", tmp_path / "cached.db"
    scan(db, root, Prices())
    write(transcript, added, mode="a")
    again = Prices()
    scan(db, root, again)
    assert again.loads == 1

    fresh = tmp_path / "fresh.db"
    scan(fresh, root, Prices(), source="other")
    assert costs(db) == costs(fresh)
    if OPUS in added:
        assert OPUS in remembered(db)["S1"]["models"]  # remembered for next time


def test_another_price_source_never_reuses_rates(transcript: Path, tmp_path: Path) -> None:
    root, db = tmp_path / "claude", tmp_path / "cached.db"
    scan(db, root, Prices(), source="S1")
    write(transcript, line("m30", model=SONNET), mode="a")
    other = Prices()
    scan(db, root, other, source="S2")  # e.g. a new snapshot, or overrides changed
    assert other.loads == 1
    assert list(remembered(db)) == ["S2"]


def test_a_pooled_first_import_remembers_what_its_processes_priced(
    transcript: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tollhouse.claude_code import reader

    write(transcript.with_name("s2.jsonl"), line("m40", model=OPUS, session="s2"))
    monkeypatch.setattr(fast_scan, "_COLD_MIN_BYTES", 0)  # the bulk import, spooled by two processes
    monkeypatch.setattr(reader, "POOL_MIN_BYTES", 0)
    db = tmp_path / "pooled.db"
    sqlite_schema.create(str(db))
    fast_scan.scan(str(db), [tmp_path / "claude"], Prices(), workers=2, price_source="S1")
    assert remembered(db)["S1"]["models"] == sorted([SONNET, HAIKU, OPUS])
