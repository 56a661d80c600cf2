"""Reading changed transcripts for the SQLite scan: each file parsed from its cursor into ledger
rows (:mod:`line_rows`), in forked processes when there is much to read.

With a pool, files go in groups of a few megabytes and each result is queued as soon as its group
is done; the results are read in the importing thread (no result-handling thread contends for
the GIL that ``sqlite3`` releases and retakes per row). A big first import can also have the
processes spool their rows into SQLite themselves (:mod:`spool`); each then takes a contiguous
share of the files, so the spools hold ascending ids one after the other.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tollhouse.claude_code.discovery import TranscriptFile
from tollhouse.claude_code.lite import SEQ_STRIDE

if TYPE_CHECKING:
    import multiprocessing

    from tollhouse.claude_code.first_rollups import FileSums, Summer
    from tollhouse.claude_code.pricer import Pricer, Rates
    from tollhouse.claude_code.spool import Brief

POOL_MIN_BYTES = 32 * 1024 * 1024  # below this a process pool costs more than it saves
_GROUP_BYTES = 2 * 1024 * 1024  # files per pool job
# One file to read: where from, the head it must still have, chunk size, first seq.
_Job = tuple[TranscriptFile, int, tuple[str, int] | None, int, int]
# A pool's answer for one group: its number, its reads (or the error), the rates its process knows.
_Result = tuple[int, "list[FileRead] | str", "dict[str, Rates]"]
# A changed file: its stat, its cursor (None when new), where to start, the head it must still have.
Todo = tuple[TranscriptFile, os.stat_result, Any, int, tuple[str, int] | None]


@dataclass(slots=True)
class FileRead:
    """Everything read from one file: its rows (see ``line_rows.FileRows``; numbered from
    ``seq0``) and the new cursor values. A spooling process sends a ``brief`` instead of rows."""

    rows: list[tuple[int, bool, tuple[Any, ...]]]
    lines: int
    malformed: int
    offset: int
    head: bytes
    fresh: bool
    session: str
    seq0: int
    error: str | None = None
    sums: FileSums | None = None  # see ``first_rollups.Summer``; first imports only
    brief: Brief | None = None


def read_file(
    file: TranscriptFile,
    start: int,
    expect_head: tuple[str, int] | None,
    pricer: Pricer,
    chunk_bytes: int,
    seq0: int,
    summer: Summer | None = None,
    *,
    typed: bool = True,
) -> FileRead:
    """Parse a file from ``start``; its rows are numbered from ``seq0`` (see ``line_rows.FileRows``).
    With a ``summer``, also its rows summed for the first roll-ups; ``typed``: decode with
    msgspec (worth its import when there is much to read, see ``line_rows.TYPED_MIN_BYTES``)."""
    from tollhouse.claude_code.line_rows import FileRows, parse_rows
    from tollhouse.claude_code.spans import read_span

    offset, head, fresh = start, b"", start == 0
    out = FileRows(seq0=seq0)
    try:
        while True:
            span = read_span(file, offset, max_bytes=chunk_bytes, expect_head=expect_head)
            expect_head = None
            if span.restarted or span.head:
                offset, head, fresh = 0, span.head, True
                if span.restarted:
                    out = FileRows(seq0=seq0)
            parse_rows(span.data, offset, file, pricer, None, out, typed=typed)
            offset += len(span.data)
            if span.eof:
                break
    except OSError as exc:
        return FileRead([], 0, 0, start, b"", False, file.session_id, seq0, error=str(exc))
    session = file.session_id or out.line_session_id or ""
    read = FileRead(out.rows, out.lines, out.malformed, offset, head, fresh, session, seq0)
    if summer is not None:
        read.sums = summer.file_sums(out.rows)
    return read


def pool_size(todo: Sequence[Todo], pending: int, workers: int | None) -> int:
    """How many parsing processes to fork: 0 (read in this process) unless there is much to read,
    several files, more than one core, and no other thread (forking a threaded process is unsafe)."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if (
        count > 1
        and pending >= POOL_MIN_BYTES
        and len(todo) > 1
        and threading.active_count() == 1
        and hasattr(os, "fork")
    ):
        return count
    return 0


class Reader:
    """Every file's read, in order; file n's rows are numbered from ``base_seq + n * SEQ_STRIDE + 1``.

    ``processes`` (see :func:`pool_size`) start at construction. With ``spool`` (one file per
    process, and the insert statement), each process writes its rows there and sends briefs."""

    def __init__(
        self,
        todo: Sequence[Todo],
        pricer: Pricer,
        chunk_bytes: int,
        base_seq: int,
        processes: int,
        summer: Summer | None = None,
        spool: tuple[Sequence[Path], str] | None = None,
        *,
        typed: bool = True,
    ) -> None:
        self.jobs: list[_Job] = [
            (file, start, expect, chunk_bytes, base_seq + n * SEQ_STRIDE + 1)
            for n, (file, _, _, start, expect) in enumerate(todo)
        ]
        self.pricer = pricer
        self.summer = summer
        self.typed = typed
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.groups: list[list[_Job]] = []
        if processes < 2:
            return
        import multiprocessing

        sizes: list[int] = []
        for job, (_, stat, _, start, _) in zip(self.jobs, todo, strict=True):
            if not sizes or sizes[-1] >= _GROUP_BYTES:
                self.groups.append([])
                sizes.append(0)
            self.groups[-1].append(job)
            sizes[-1] += max(stat.st_size - start, 0)
        numbered = list(enumerate(self.groups))
        if spool is None:  # interleaved: results arrive in about the order they are consumed
            shares = [numbered[k::processes] for k in range(processes)]
        else:  # contiguous: each spool holds one run of ascending ids
            shares = _contiguous(numbered, sizes, processes)
        context = multiprocessing.get_context("fork")
        self.results: multiprocessing.Queue[_Result] = context.Queue()
        self.procs = [
            context.Process(
                target=_worker,
                args=(shares[k], pricer, summer, (spool[0][k], spool[1]) if spool else None, self.results),
                daemon=True,
            )
            for k in range(processes)
        ]
        for proc in self.procs:
            proc.start()

    def __iter__(self) -> Iterator[FileRead]:
        if not self.procs:
            for file, start, expect, chunk, seq0 in self.jobs:
                yield read_file(file, start, expect, self.pricer, chunk, seq0, self.summer, typed=self.typed)
            return
        import queue

        ready: dict[int, list[FileRead] | str] = {}
        for number in range(len(self.groups)):
            while number not in ready:
                try:
                    at, reads, rates = self.results.get(timeout=1.0)
                except queue.Empty:
                    if any(p.exitcode not in (None, 0) for p in self.procs):
                        raise RuntimeError("a transcript parsing process died") from None
                    continue
                ready[at] = reads
                self.pricer.learn(rates)  # what the process priced: remembered for later scans
            reads = ready.pop(number)
            if isinstance(reads, str):
                raise RuntimeError(f"parsing transcripts failed: {reads}")
            yield from reads

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        if self.procs:
            self.results.close()
        self.procs = []


def _contiguous(
    numbered: list[tuple[int, list[_Job]]], sizes: list[int], parts: int
) -> list[list[tuple[int, list[_Job]]]]:
    """``numbered`` cut into ``parts`` runs of about equal bytes."""
    total = sum(sizes) or 1
    shares: list[list[tuple[int, list[_Job]]]] = [[] for _ in range(parts)]
    done = 0
    for item, size in zip(numbered, sizes, strict=True):
        shares[min(done * parts // total, parts - 1)].append(item)
        done += size
    return shares


def _worker(
    groups: list[tuple[int, list[_Job]]],
    pricer: Pricer,
    summer: Summer | None,
    spool: tuple[Path, str] | None,
    results: multiprocessing.Queue[_Result],
) -> None:
    """A forked parsing process: its share of the groups, each result queued as it is done (the
    queue's feeder thread sends while the next group is parsed)."""
    gc.disable()  # lives for one scan
    writer = None
    if spool is not None:
        from tollhouse.claude_code.spool import Brief, SpoolWriter

        writer = SpoolWriter(*spool)
    for number, group in groups:
        try:
            reads: list[FileRead] | str = [
                read_file(file, start, expect, pricer, chunk, seq0, summer)  # typed: a pool reads much
                for file, start, expect, chunk, seq0 in group
            ]
            if writer is not None:
                assert not isinstance(reads, str)
                writer.write([row for read in reads for row in read.rows])
                for read in reads:
                    read.brief, read.rows = Brief.of(read.seq0, read.rows), []
        except Exception as exc:
            reads = f"{type(exc).__name__}: {exc}"
        results.put((number, reads, pricer.known_rates()))
        if isinstance(reads, str):
            break
    if writer is not None:
        writer.close()
    results.close()
    results.join_thread()
