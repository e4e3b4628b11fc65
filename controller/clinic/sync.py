"""Pushing a station's finished sessions to the clinic's PostgreSQL database.

The control loop only ever writes the local SQLite record; this runs afterwards. Each
session goes to the server in one transaction (its row and everything it recorded), so a
connection dropped half-way leaves nothing of that session there and the next sync pushes
it whole. The server is asked once which session UUIDs it already holds; those are
skipped, so syncing twice, or from two stations, never duplicates a session, and the
station keeps no sync state of its own.

The server tables mirror the record's: their columns are read from the record itself
(``PRAGMA table_info``), so a column a later record schema adds is added on the server by
the next sync. Ids are the server's own: patients are matched across stations by
pseudonym, protocols by their SHA-256, sessions by UUID; ``sessions.station`` says where
each came from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from controller.clinic.server import (
    SCHEMA_VERSION,
    ClinicDatabaseError,
    Connection,
    connect,
    reason,
    refuse_newer,
    stored_version,
)
from controller.record.liveness import this_host
from controller.record.reader import SqliteSource, path_uri
from controller.record.schema import CHILD_TABLES, RecordOpenError

Progress = Callable[[int, int], None]
"""Told (rows sent, rows to send) as the push goes; rows are everything the sessions
recorded, samples mostly."""

PROGRESS_EVERY_ROWS = 1000

NATURAL_KEYS = {"patients": "pseudonym", "protocols": "sha256", "sessions": "uuid"}
"""Tables whose ids the server assigns, with the column that identifies a row on every
station."""

_PG_TYPES: dict[str, LiteralString] = {
    "INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}

_SCHEMA_LOCK = 0x46455352
"""Advisory lock key: two stations preparing the schema at once take turns."""


@dataclass(frozen=True)
class SyncResult:
    pushed: int
    already_there: int
    skipped_running: int
    """Sessions still being recorded (or whose writer died and no session has been run
    since to mark them interrupted): pushed by a later sync once finished."""


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: LiteralString
    not_null: bool
    references: str | None
    """The table whose ``id`` this column holds."""


Layout = dict[str, list[Column]]
"""Per table, the record's columns that go to the server (a local ``id`` never does)."""


def sync_to_postgres(sqlite_path: Path, url: str, *, station: str | None = None,
                     progress: Progress | None = None) -> SyncResult:
    """Push every finished session of the record at ``sqlite_path`` the server lacks."""
    try:
        SqliteSource(sqlite_path)  # refuses a file that is not a record; upgrades an old one
        local = sqlite3.connect(f"{path_uri(sqlite_path)}?mode=ro", uri=True)
    except (RecordOpenError, sqlite3.Error) as exc:
        raise ClinicDatabaseError(str(exc)) from None
    with closing(local), connect(url) as server:
        push = _Push(local, server, station or this_host())
        try:
            return push.run(progress)
        except psycopg.Error as exc:
            raise ClinicDatabaseError(
                f"pushing to the clinic database failed after {push.pushed} session(s): "
                f"{reason(exc, url)}; a session is pushed whole or not at all, so running "
                "fes sync again pushes the rest") from None
        except sqlite3.Error as exc:
            raise ClinicDatabaseError(f"{sqlite_path}: cannot read the record: {exc}") from None


def _layout(local: sqlite3.Connection) -> Layout:
    """The record's tables as the server holds them."""
    layout: Layout = {}
    for table in (*NATURAL_KEYS, *CHILD_TABLES):
        references = {row[3]: row[2] for row in local.execute(
            f"PRAGMA foreign_key_list({table})")}
        if table in CHILD_TABLES:
            references["session_id"] = "sessions"
        columns = []
        for _, name, declared, not_null, _, primary in local.execute(
                f"PRAGMA table_info({table})"):
            if primary:
                continue
            pg_type = _PG_TYPES.get(declared.upper())
            if pg_type is None:
                raise ClinicDatabaseError(f"record column {table}.{name} has type {declared!r},"
                                          " which the clinic database has no type for")
            columns.append(Column(name, pg_type, bool(not_null), references.get(name)))
        if not columns:
            raise ClinicDatabaseError(f"not a session record: no {table} table")
        layout[table] = columns
    return layout


def _prepare_schema(server: Connection, layout: Layout) -> None:
    """Create what the server lacks (tables, columns a newer record added); refuse a
    server written by a newer program, or a database holding someone else's tables."""
    with server.transaction():
        server.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        present: dict[str, set[str]] = {}
        for table, column in server.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"):
            present.setdefault(table, set()).add(column)
        version = stored_version(server)
        if version is None:
            foreign = sorted(set(layout) & set(present))
            if foreign:
                raise ClinicDatabaseError(
                    "that database already has tables this program did not create ("
                    f"{', '.join(foreign)}); give the clinic database its own database")
            server.execute("CREATE TABLE fes_meta (key text PRIMARY KEY, value text NOT NULL)")
            server.execute("INSERT INTO fes_meta VALUES ('schema_version', %s)",
                           (str(SCHEMA_VERSION),))
        else:
            refuse_newer(version)
        for table, columns in layout.items():
            if table not in present:
                for statement in _create_table(table, columns):
                    server.execute(statement)
                continue
            for column in columns:
                if column.name not in present[table]:
                    server.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(
                        sql.Identifier(table), _column_sql(column, nullable=True)))


def _create_table(table: str, columns: list[Column]) -> list[sql.Composed]:
    """The table and, for what a session recorded, an index to find a session's rows
    (in time order where they have a time, as the record's samples have)."""
    parts: list[sql.Composable] = [_column_sql(column, nullable=False) for column in columns]
    if table in NATURAL_KEYS:
        parts.insert(0, sql.SQL("id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"))
        parts.append(sql.SQL("UNIQUE ({})").format(sql.Identifier(NATURAL_KEYS[table])))
    if table == "sessions":
        parts.append(sql.SQL("station text NOT NULL"))
    statements = [sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table),
                                                         sql.SQL(", ").join(parts))]
    if table in CHILD_TABLES:
        ordered = [name for name in ("session_id", "t_s")
                   if any(column.name == name for column in columns)]
        statements.append(sql.SQL("CREATE INDEX ON {} ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, ordered))))
    return statements


def _column_sql(column: Column, *, nullable: bool) -> sql.Composed:
    """A column as the server declares it; one added to a table with rows is nullable."""
    text = sql.SQL("{} " + column.pg_type).format(sql.Identifier(column.name))
    if column.not_null and not nullable:
        text += sql.SQL(" NOT NULL")
    if column.references:
        text += sql.SQL(" REFERENCES {} (id)").format(sql.Identifier(column.references))
    return text


class _Push:
    """One sync: sessions copied from the record to the server, one transaction each."""

    def __init__(self, local: sqlite3.Connection, server: Connection, station: str) -> None:
        self.local = local
        self.server = server
        self.station = station
        self.layout: Layout = {}
        self.pushed = 0
        self.rows_sent = 0

    def run(self, progress: Progress | None) -> SyncResult:
        self.layout = _layout(self.local)
        finished = dict(self.local.execute(
            "SELECT uuid, id FROM sessions WHERE status <> 'running' ORDER BY id"))
        running = self.local.execute(
            "SELECT COUNT(*) FROM sessions WHERE status = 'running'").fetchone()[0]
        _prepare_schema(self.server, self.layout)
        have = {uuid for (uuid,) in self.server.execute(
            "SELECT uuid FROM sessions WHERE uuid = ANY(%s)", (list(finished),))}
        self._push([local_id for uuid, local_id in finished.items() if uuid not in have],
                   progress)
        return SyncResult(pushed=self.pushed, already_there=len(finished) - self.pushed,
                          skipped_running=int(running))

    def _push(self, local_ids: list[int], progress: Progress | None) -> None:
        """Push the sessions ``local_ids``; one another station pushed since the server
        was asked is left as it is."""
        total = self._row_count(local_ids)
        report = progress or (lambda done, total: None)
        report(0, total)
        for local_id in local_ids:
            with self.server.transaction():
                server_id, inserted = self._row("sessions", local_id)
                if inserted:
                    for table in CHILD_TABLES:
                        self._copy(table, local_id, server_id, lambda: report(self.rows_sent,
                                                                              total))
            if inserted:
                self.pushed += 1
            report(self.rows_sent, total)

    def _row_count(self, local_ids: list[int]) -> int:
        wanted = set(local_ids)
        return sum(count for table in CHILD_TABLES for session_id, count in self.local.execute(
            f"SELECT session_id, COUNT(*) FROM {table} GROUP BY session_id")
            if session_id in wanted)

    def _row(self, table: str, local_id: int) -> tuple[int, bool]:
        """The server id of a local row, inserted (and the rows it references before it)
        unless the server has one with its natural key; and whether it was inserted."""
        columns = self.layout[table]
        names = [column.name for column in columns]
        (values,) = self.local.execute(
            f"SELECT {', '.join(map(_quoted, names))} FROM {table} WHERE id = ?", (local_id,))
        row = {column.name: self._row(column.references, value)[0]
               if column.references and value is not None else value
               for column, value in zip(columns, values, strict=True)}
        if table == "sessions":
            row["station"] = self.station
        key = NATURAL_KEYS[table]
        inserted = self.server.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING RETURNING id"
                    ).format(sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, row)),
                             sql.SQL(", ").join(sql.Placeholder() * len(row)),
                             sql.Identifier(key)),
            tuple(row.values())).fetchone()
        if inserted is not None:
            return int(inserted[0]), True
        (existing,) = self.server.execute(
            sql.SQL("SELECT id FROM {} WHERE {} = %s").format(sql.Identifier(table),
                                                              sql.Identifier(key)),
            (row[key],)).fetchall()
        return int(existing[0]), False

    def _copy(self, table: str, local_id: int, server_id: int,
              tick: Callable[[], None]) -> None:
        """COPY what one session recorded in ``table``, its session id the server's."""
        names = [column.name for column in self.layout[table]]
        selected = ", ".join("?" if name == "session_id" else _quoted(name) for name in names)
        rows: Iterable[tuple[Any, ...]] = self.local.execute(
            f"SELECT {selected} FROM {table} WHERE session_id = ? ORDER BY rowid",
            (server_id, local_id))
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)))
        with self.server.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                self.rows_sent += 1
                if self.rows_sent % PROGRESS_EVERY_ROWS == 0:
                    tick()


def _quoted(name: str) -> str:
    """An SQLite identifier (names come from the record's own schema)."""
    return f'"{name}"'
