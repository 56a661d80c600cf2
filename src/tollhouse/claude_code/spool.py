"""A big first import written in parallel: each parsing process spools its ready ledger rows into a
private SQLite file, and the importer copies the spools into the ledger at the end.

Binding a quarter of a million rows through ``sqlite3`` costs over a second of Python in one
process; spooled, the parsing processes share that work, and the importer's copy is one
``INSERT … SELECT`` per spool (SQLite's transfer optimisation copies the first one's records
without decoding them). The importer still settles duplicates across files, from a brief of each
file's rows (key, token total, sidechain flag, session): the copy that loses is deleted after the
copy, and a winning later copy takes the first one's place in first-seen order, exactly as the
row-by-row import decides (``lite.better``).

Each process takes a contiguous half of the files, so the spools hold ascending ids one after the
other and the ledger's primary-key index is only ever appended to.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tollhouse.claude_code.lite import SEQ_KIND, SESSION, Ids, Kept, better, mark_changed, set_mark

if TYPE_CHECKING:
    from tollhouse.claude_code.first_rollups import FirstRollups
    from tollhouse.claude_code.lite import ScanResult

_SPOOL_NAME = "spool{}"
_PREFIX = ".claude-import-"  # next to the database: its filesystem, and it will hold the data anyway
_STALE_SECONDS = 24 * 3600


@dataclass(slots=True)
class Brief:
    """A spooled file's rows as the importer needs them; row n has seq ``seq0 + n``."""

    seq0: int
    keys: list[str]
    totals: list[int]
    sides: list[bool]
    sessions: list[str]

    @classmethod
    def of(cls, seq0: int, rows: list[tuple[int, bool, tuple[Any, ...]]]) -> Brief:
        return cls(
            seq0,
            [params[-1] for _, _, params in rows],
            [total for total, _, _ in rows],
            [side for _, side, _ in rows],
            [params[SESSION] for _, _, params in rows],
        )


class SpoolWriter:
    """A parsing process's spool: rows written with the import's own insert statement."""

    def __init__(self, path: Path, insert_sql: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=OFF")  # a scratch file: a crash discards it anyway
        self.conn.execute("PRAGMA synchronous=OFF")
        self.insert_sql = insert_sql

    def write(self, rows: list[tuple[int, bool, tuple[Any, ...]]]) -> None:
        """Commits before returning: the importer may copy everything once it has the brief."""
        self.conn.execute("BEGIN")
        self.conn.executemany(self.insert_sql, [params for _, _, params in rows])
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class Spools:
    """The importer's side: makes the spool files, settles cross-file duplicates from the briefs,
    and copies every spool into the ledger."""

    def __init__(self, database: str, count: int, ledger_ddl: str, ids: Ids) -> None:
        home = Path(database).parent
        home.mkdir(parents=True, exist_ok=True)
        _remove_stale(home)
        self.directory = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=home))
        self.paths = [self.directory / f"{n}.db" for n in range(count)]
        for path in self.paths:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=OFF")
                conn.execute(ledger_ddl)  # the ledger's table and primary key, no other index
            finally:
                conn.close()
        self.ids = ids
        # key -> (total, is_sidechain, session, seq it is counted under, seq of its spooled row)
        self.kept: dict[str, tuple[int, bool, str, int, int]] = {}
        self.sessions: set[str] = set()
        self.dropped: list[int] = []  # spooled rows that lost to another copy (their seqs)
        self.moved: dict[int, int] = {}  # spooled row's seq -> the first-seen seq it takes
        self.rows = 0
        self.top = 0

    def attach(self, conn: sqlite3.Connection) -> None:
        """Before the import's transaction: SQLite attaches no database inside one."""
        for n, path in enumerate(self.paths):
            conn.execute(f"ATTACH DATABASE ? AS {_SPOOL_NAME.format(n)}", (str(path),))

    def add(self, brief: Brief, first: FirstRollups | None) -> None:
        """One file's brief, in file order (first seen counts first)."""
        count = len(brief.keys)
        if not count:
            return
        seqs = range(brief.seq0, brief.seq0 + count)
        kept = self.kept
        repeated = kept.keys() & brief.keys  # a set operation in C: duplicates are rare
        earlier = {key: kept[key] for key in repeated}
        facts = zip(brief.totals, brief.sides, brief.sessions, seqs, seqs, strict=True)
        kept.update(zip(brief.keys, facts, strict=True))
        self.sessions.update(brief.sessions)
        self.rows += count
        self.top = max(self.top, brief.seq0 + count - 1)
        for key in repeated:
            total, side, session, _, row_seq = kept[key]
            o_total, o_side, o_session, o_seq, o_row = earlier[key]
            if first is not None:  # both files' sums counted this response: SQL decides
                first.leave_to_sql(o_session)
                first.leave_to_sql(session)
            if better(total, side, Kept("", o_seq, o_total, o_side, o_session)):
                self.dropped.append(o_row)
                self.moved.pop(o_row, None)
                self.moved[row_seq] = o_seq
                kept[key] = (total, side, session, o_seq, row_seq)
            else:
                self.dropped.append(row_seq)
                kept[key] = earlier[key]

    def copy(self, conn: sqlite3.Connection, result: ScanResult) -> None:
        """Inside the import's transaction, with the ledger's secondary indexes dropped."""
        for n in range(len(self.paths)):
            conn.execute(f"INSERT INTO main.ledger SELECT * FROM {_SPOOL_NAME.format(n)}.ledger")  # noqa: S608
        of = self.ids.of
        if self.dropped:
            conn.executemany("DELETE FROM ledger WHERE id = ?", [(of(seq),) for seq in self.dropped])
        if self.moved:
            conn.executemany(
                "UPDATE ledger SET id = ?, claude_seq = ? WHERE id = ?",
                [(of(to), to, of(seq)) for seq, to in self.moved.items()],
            )
        if self.sessions:
            mark_changed(conn, self.sessions)
            set_mark(conn, SEQ_KIND, self.top)
        result.entries_added += self.rows - len(self.dropped)

    def detach(self, conn: sqlite3.Connection) -> None:
        for n in range(len(self.paths)):
            with contextlib.suppress(sqlite3.Error):
                conn.execute(f"DETACH DATABASE {_SPOOL_NAME.format(n)}")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _remove_stale(home: Path) -> None:
    """Spools a killed import left behind (a day old: no import runs that long)."""
    cutoff = time.time() - _STALE_SECONDS
    for stale in home.glob(f"{_PREFIX}*"):
        with contextlib.suppress(OSError):
            if stale.is_dir() and stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)
