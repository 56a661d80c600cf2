"""Migrations build exactly the declared tables, on SQLite and PostgreSQL; the ledger writer
batches, survives bad rows, and loses nothing on close."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.db_urls import postgres_url
from tollhouse.db import sqlite_schema
from tollhouse.db.engine import create_engine, migrate, revision
from tollhouse.db.tables import ledger, metadata
from tollhouse.ledger.entry import LedgerEntry, Outcome
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing.usage import Usage


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        yield eng
        await eng.dispose()
        return
    base = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = create_engine(base)

    @event.listens_for(eng.sync_engine, "connect")
    def _search_path(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET search_path TO "{schema}"')
        cursor.close()

    try:
        yield eng
    finally:
        await eng.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def entry(**kwargs: object) -> LedgerEntry:
    values: dict[str, object] = {
        "project_id": "p",
        "source": "gateway",
        "route": "/v1/chat/completions",
        "status_code": 200,
        "outcome": Outcome.OK,
        "price_version": "test",
        "usage": Usage(input_tokens=3, output_tokens=4),
        "cost_nanos": 7,
    }
    values.update(kwargs)
    return LedgerEntry(**values)  # type: ignore[arg-type]


async def test_migrated_schema_matches_the_tables(engine: AsyncEngine) -> None:
    await migrate(engine)
    await migrate(engine)  # idempotent

    def diff(conn):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    current, head = await revision(engine)
    assert current == head


def test_generated_sqlite_schema_is_current() -> None:
    """Regenerate with ``python -m tollhouse.db.sqlite_schema --write``."""
    assert sqlite_schema.SCRIPT.read_text() == sqlite_schema.render()


async def test_a_database_made_from_the_generated_ddl_equals_a_migrated_one(tmp_path: Path) -> None:
    made, migrated = tmp_path / "made.db", tmp_path / "migrated.db"
    sqlite_schema.create(str(made))
    sqlite_schema.create(str(made))  # a second creator (another process first) changes nothing
    engine = create_engine(f"sqlite+aiosqlite:///{made}")
    reference = create_engine(f"sqlite+aiosqlite:///{migrated}")
    try:
        await migrate(reference)

        def diff(conn):  # type: ignore[no-untyped-def]
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)

        def shape(conn):  # type: ignore[no-untyped-def]
            rows = conn.exec_driver_sql("SELECT type, name, tbl_name FROM sqlite_master ORDER BY name")
            return rows.fetchall()

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            made_shape = await conn.run_sync(shape)
        async with reference.connect() as conn:
            assert made_shape == await conn.run_sync(shape)  # same tables and index names
        current, head = await revision(engine)
        assert current == head is not None
        await migrate(engine)  # nothing to do: stamped at head
    finally:
        await engine.dispose()
        await reference.dispose()


async def test_writer_batches_and_flushes(engine: AsyncEngine) -> None:
    await migrate(engine)
    writer = LedgerWriter(engine, batch_size=100, flush_interval_ms=20)
    writer.start()
    for _ in range(1000):
        writer.record(entry())
    await writer.flush()
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ledger)) == 1000
        assert await conn.scalar(select(func.sum(ledger.c.cost_nanos))) == 7000
    await writer.close()
    assert writer.rows_written == 1000


async def test_close_drains_everything_queued(engine: AsyncEngine) -> None:
    await migrate(engine)
    writer = LedgerWriter(engine, batch_size=50, flush_interval_ms=10_000)
    writer.start()
    for _ in range(333):
        writer.record(entry())
    await writer.close()
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ledger)) == 333


async def test_a_bad_row_does_not_take_its_batch_with_it(engine: AsyncEngine) -> None:
    await migrate(engine)
    writer = LedgerWriter(engine, batch_size=10, flush_interval_ms=20)
    writer.start()
    good = [entry() for _ in range(5)]
    duplicate = entry(id=good[0].id)  # violates the primary key
    for row in [*good[:3], duplicate, *good[3:]]:
        writer.record(row)
    await writer.flush()
    await writer.close()
    assert writer.rows_failed == 1
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ledger)) == 5


async def test_listeners_see_committed_batches(engine: AsyncEngine) -> None:
    await migrate(engine)
    writer = LedgerWriter(engine, batch_size=10, flush_interval_ms=10)
    seen: list[int] = []

    async def listen(batch: list[LedgerEntry]) -> None:
        seen.append(len(batch))

    writer.subscribe(listen)
    writer.start()
    for _ in range(25):
        writer.record(entry())
    await writer.flush()
    await writer.close()
    assert sum(seen) == 25


async def test_full_queue_waits_instead_of_dropping(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    await migrate(engine)
    writer = LedgerWriter(engine, batch_size=5, flush_interval_ms=5, queue_size=3)
    writer.start()
    for _ in range(40):
        writer.record(entry())
    await asyncio.sleep(0)
    await writer.flush()
    await writer.close()
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ledger)) == 40
    await engine.dispose()
