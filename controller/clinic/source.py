"""Reading sessions from a station's record or from the clinic database alike.

The reader's queries use ``?`` placeholders and SQL that SQLite and PostgreSQL both
understand; :class:`PostgresSource` turns the placeholders into psycopg's. The server
tables have the record's names and columns, so the same queries read either store.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg

from controller.clinic.server import (
    ClinicDatabaseError,
    Connection,
    connect,
    is_url,
    reason,
    refuse_newer,
    stored_version,
)
from controller.record.reader import RecordSource, SqliteSource

__all__ = ["PostgresSource", "RecordSource", "SqliteSource", "open_source"]


class PostgresSource:
    """The clinic database, read-only (the server refuses any write on this connection).

    One connection, opened again on the next query if it drops; every query is its own
    transaction, so a screen left open holds no transaction on the server.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = self._open()

    def _open(self) -> Connection:
        conn = connect(self.url, read_only=True)
        try:
            version = stored_version(conn)
            if version is None:
                raise ClinicDatabaseError("no sessions in that clinic database yet (push a "
                                          "station's record to it with fes sync first)")
            refuse_newer(version)
        except BaseException:
            conn.close()
            raise
        return conn

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        text = sql.replace("%", "%%").replace("?", "%s")
        try:
            if self._conn.closed:
                self._conn = self._open()
            return self._conn.execute(text, params).fetchall()
        except psycopg.Error as exc:
            raise ClinicDatabaseError(f"reading the clinic database failed: "
                                      f"{reason(exc, self.url)}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def open_source(location: str | Path) -> RecordSource:
    """``postgresql://…`` reads the clinic database; anything else is a record file."""
    if isinstance(location, str) and is_url(location):
        return PostgresSource(location)
    return SqliteSource(Path(location).expanduser())
