"""Reaching the clinic's PostgreSQL server, and the version of the schema kept there.

Every failure (bad URL, server down, wrong password, a database written by a newer
program) becomes :class:`ClinicDatabaseError` with one line a person at a station can act
on; the password is never part of it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from controller.record.schema import RecordOpenError

SCHEMA_VERSION = 1
"""The server schema this program writes and reads; ``fes_meta`` holds the server's."""

CONNECT_TIMEOUT_S = 10
"""A clinic server that does not answer is reported soon (libpq would wait minutes)."""

TCP_USER_TIMEOUT_MS = 60_000
"""A network that drops silently mid-push fails the push instead of hanging it."""

URL_SCHEMES = ("postgresql://", "postgres://")

Connection = psycopg.Connection[tuple[Any, ...]]


class ClinicDatabaseError(RecordOpenError):
    """The clinic database cannot be reached or used; the message says why in one line.

    A :class:`RecordOpenError`, so whatever reads either store handles one error type.
    """


def is_url(location: str) -> bool:
    return location.startswith(URL_SCHEMES)


def connect(url: str, *, read_only: bool = False) -> Connection:
    """An autocommit connection (transactions are explicit ``conn.transaction()`` blocks)."""
    if not is_url(url):
        raise ClinicDatabaseError("the clinic database is given as postgresql://USER@HOST/"
                                  "DATABASE, not as " + repr(_redacted(url, url)))
    try:
        params: dict[str, Any] = dict(conninfo_to_dict(url))
    except psycopg.Error as exc:
        raise ClinicDatabaseError(f"bad clinic database URL: {reason(exc, url)}") from None
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    params.setdefault("tcp_user_timeout", TCP_USER_TIMEOUT_MS)
    params.setdefault("application_name", "fes-footdrop")
    if read_only:
        params["options"] = f"{params.get('options', '')} -c default_transaction_read_only=on"
    try:
        return psycopg.connect(autocommit=True, **params)
    except psycopg.Error as exc:
        raise ClinicDatabaseError(f"cannot connect to the clinic database: {reason(exc, url)}"
                                  ) from None


def stored_version(conn: Connection) -> int | None:
    """The server's schema version, or None where this program has never written."""
    if conn.execute("SELECT to_regclass('fes_meta')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT value FROM fes_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise ClinicDatabaseError(
            f"the clinic database was written by a newer version of this program (server "
            f"schema {version}; this one knows up to {SCHEMA_VERSION}); update the program "
            "on this station")


def reason(exc: BaseException, url: str) -> str:
    """The error on one line, without the URL's password."""
    return _redacted(" ".join(str(exc).split()), url) or type(exc).__name__


def _redacted(text: str, url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    return text.replace(password, "***") if password else text
