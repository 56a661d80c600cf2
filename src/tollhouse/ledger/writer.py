"""The batched ledger writer: a bounded queue drained by one task into multi-row inserts.

Requests only ``put`` a row (no I/O); the writer flushes every ``batch_size`` rows or
``flush_interval_ms``, whichever comes first. ``close()`` drains everything, so a server
stopped with SIGTERM or SIGINT has lost no row. A failed batch is retried row by row so one
bad row cannot take its neighbours with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from tollhouse.db.tables import ledger
from tollhouse.ledger.entry import LedgerEntry

log = logging.getLogger(__name__)

Listener = Callable[[list[LedgerEntry]], Awaitable[None]]


class LedgerWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_size: int = 500,
        flush_interval_ms: int = 200,
        queue_size: int = 100_000,
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._interval = flush_interval_ms / 1000
        self._queue: asyncio.Queue[LedgerEntry] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Task[None] | None = None
        # Rows taken off the queue but not yet written: kept here, not in a local, so a
        # shutdown that cancels the writer mid-gather still writes them.
        self._gathering: list[LedgerEntry] = []
        self._wake = asyncio.Event()
        self._listeners: list[Listener] = []
        self._progress = asyncio.Condition()
        self._accepted = 0
        self._settled = 0
        self.rows_written = 0
        self.rows_failed = 0

    def subscribe(self, listener: Listener) -> None:
        """Called with every batch after it is committed (events, metrics)."""
        self._listeners.append(listener)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ledger-writer")

    def record(self, entry: LedgerEntry) -> None:
        """Queue a row without waiting; falls back to an awaited put only when the queue is full."""
        self._accepted += 1
        try:
            self._queue.put_nowait(entry)
            if self._queue.qsize() + len(self._gathering) >= self._batch_size:
                self._wake.set()
        except asyncio.QueueFull:
            # Never drop a row: hand the wait to a task so the caller's response is not held.
            asyncio.get_running_loop().create_task(self._queue.put(entry))

    @property
    def pending(self) -> int:
        return self._accepted - self._settled

    async def flush(self) -> None:
        """Wait until every row recorded so far is committed (tests, shutdown, imports)."""
        target = self._accepted
        async with self._progress:
            await self._progress.wait_for(lambda: self._settled >= target)

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._inflight is not None:
            await self._inflight
        remaining, self._gathering = self._gathering, []
        while not self._queue.empty():
            remaining.append(self._queue.get_nowait())
        for start in range(0, len(remaining), self._batch_size):
            await self._write(remaining[start : start + self._batch_size])

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._gathering.append(await self._queue.get())
            deadline = loop.time() + self._interval
            # Wait once for the batch to fill or the interval to pass, then drain without awaiting:
            # one timer per batch instead of one wait_for (task + timer) per row.
            while len(self._gathering) < self._batch_size:
                self._drain()
                remaining = deadline - loop.time()
                if len(self._gathering) >= self._batch_size or remaining <= 0:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), remaining)
            batch, self._gathering = self._gathering, []
            # Shielded: a shutdown that lands mid-write lets the write finish (close() awaits it).
            self._inflight = asyncio.create_task(self._write(batch))
            await asyncio.shield(self._inflight)
            self._inflight = None

    def _drain(self) -> None:
        while len(self._gathering) < self._batch_size:
            try:
                self._gathering.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    async def _write(self, batch: list[LedgerEntry]) -> None:
        rows = [entry.as_row() for entry in batch]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(ledger.insert(), rows)
        except Exception:
            log.exception("ledger batch of %d rows failed; retrying one by one", len(rows))
            good: list[LedgerEntry] = []
            for entry, row in zip(batch, rows, strict=True):
                try:
                    async with self._engine.begin() as conn:
                        await conn.execute(ledger.insert(), [row])
                    good.append(entry)
                except Exception:
                    self.rows_failed += 1
                    log.exception("ledger row %s could not be written", row["id"])
            batch = good
        self.rows_written += len(batch)
        async with self._progress:
            self._settled += len(rows)
            self._progress.notify_all()
        for listener in self._listeners:
            try:
                await listener(batch)
            except Exception:
                log.exception("ledger listener failed")
