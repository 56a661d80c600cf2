"""A new SQLite database in one script: the schema the migrations build, as DDL, stamped at head.

Creating a database by running every migration costs most of a second (alembic, SQLAlchemy and
the batch-mode table copies): on the first ``tollhouse claude …`` run that is CPU taken from
the import running at the same time. Alembic's own recipe for a new database is "create the
tables from the metadata, then stamp head"; this module does exactly that, from DDL generated
out of ``tables.metadata`` into ``sqlite_schema.sql`` (a test checks the file is current and
that the database it creates equals a migrated one). Existing databases still migrate.

python -m tollhouse.db.sqlite_schema          # print the script
python -m tollhouse.db.sqlite_schema --write  # regenerate sqlite_schema.sql
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("sqlite_schema.sql")
_HEADER = "-- Generated from tollhouse.db.tables by `python -m tollhouse.db.sqlite_schema --write`.\n"


def render() -> str:
    """The script: every table and index of the metadata, alembic's version table at head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from tollhouse.db.engine import MIGRATIONS_DIR
    from tollhouse.db.tables import metadata

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    dialect = sqlite.dialect()
    statements = [
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,"
        " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
        f"INSERT INTO alembic_version (version_num) VALUES ('{head}')",  # noqa: S608 (a revision id)
    ]
    for table in metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect)).strip()
        statements.append("\n".join(line.rstrip() for line in ddl.splitlines()))
        statements.extend(
            str(CreateIndex(index).compile(dialect=dialect)).strip()
            for index in sorted(table.indexes, key=lambda i: i.name or "")
        )
    return _HEADER + "".join(f"{statement};\n\n" for statement in statements)


def statements() -> list[str]:
    """The script's statements, in order."""
    text = "".join(line for line in SCRIPT.read_text().splitlines(keepends=True) if not line.startswith("--"))
    return [statement.strip() for statement in text.split(";\n\n") if statement.strip()]


def table_ddl(name: str) -> str:
    """The ``CREATE TABLE`` statement of one table (its columns and keys, no other index)."""
    return next(s for s in statements() if s.startswith(f"CREATE TABLE {name} ("))


def create(path: str) -> None:
    """Create the schema in the database at ``path`` in one transaction; nothing when another
    process created it first."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone() is None:
                for statement in statements():
                    conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def main() -> None:
    text = render()
    if "--write" in sys.argv[1:]:
        SCRIPT.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
