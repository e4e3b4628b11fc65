"""The record's schema, its versions, and the checks made before a record file is used.

A record carries ``PRAGMA application_id`` (so a foreign SQLite file is told apart) and
``PRAGMA user_version`` (the schema version). Opening runs the migrations from the file's
version up to :data:`SCHEMA_VERSION`, one transaction each; a new file goes through the
same migrations from nothing, so there is one path to the current schema. A file written
by a newer program, a damaged file, a foreign database, a read-only or locked file each
give :class:`RecordOpenError` with one line saying what is wrong, and the file is left
exactly as it was.

Triggers make a finished session immutable: once its status is no longer ``running``,
its row cannot change and no row can be added to, changed in or deleted from what it
recorded.
"""

from __future__ import annotations

import os
import sqlite3
import time
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

from controller.record.liveness import is_dead, this_host

SCHEMA_VERSION = 2
APPLICATION_ID = 0x46455352
"""``FESR``: marks an SQLite file as a session record."""

BUSY_TIMEOUT_S = 0.1
"""How long a statement waits for another process's lock before it counts as failed:
short, because a record that cannot be written must stop the stimulation soon."""

SQLITE_HEADER = b"SQLite format 3\x00"

CHILD_TABLES = ("samples", "events", "phases", "commands", "faults", "notices", "steps",
                "repetitions", "cues")
"""The tables holding what one session recorded; each starts with ``session_id``."""

_VERSION_1 = """
CREATE TABLE IF NOT EXISTS patients (
    id INTEGER PRIMARY KEY, pseudonym TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS protocols (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE, toml TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER REFERENCES patients(id),
    protocol_id INTEGER NOT NULL REFERENCES protocols(id),
    started_at TEXT NOT NULL, ended_at TEXT,
    sensor TEXT NOT NULL, stimulator TEXT NOT NULL, status TEXT NOT NULL, summary TEXT
);
CREATE TABLE IF NOT EXISTS samples (
    session_id INTEGER NOT NULL, t_s REAL NOT NULL,
    acc_x REAL, acc_y REAL, acc_z REAL, gyro_x REAL, gyro_y REAL, gyro_z REAL,
    angle_x REAL, angle_y REAL, angle_z REAL
);
CREATE TABLE IF NOT EXISTS events (
    session_id INTEGER NOT NULL, t_s REAL NOT NULL, detected_at_s REAL NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS phases (
    session_id INTEGER NOT NULL, t_s REAL NOT NULL, phase TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    session_id INTEGER NOT NULL, t_s REAL NOT NULL, channel INTEGER NOT NULL,
    amplitude_ma REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    session_id INTEGER NOT NULL, t_s REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
    session_id INTEGER NOT NULL, t_s REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    session_id INTEGER NOT NULL, step INTEGER NOT NULL, start_s REAL NOT NULL,
    end_s REAL NOT NULL, heel_strike_s REAL, outcome TEXT NOT NULL, charge_uc REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS repetitions (
    session_id INTEGER NOT NULL, set_index INTEGER NOT NULL, rep_index INTEGER NOT NULL,
    onset_s REAL NOT NULL, peak_s REAL NOT NULL, peak_angle_deg REAL NOT NULL,
    time_to_peak_s REAL NOT NULL, hold_s REAL NOT NULL, lower_s REAL, end_s REAL NOT NULL,
    stimulated INTEGER NOT NULL, charge_uc REAL NOT NULL, stimulation_s REAL NOT NULL,
    assisted INTEGER NOT NULL, sway_deg REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cues (
    session_id INTEGER NOT NULL, t_s REAL NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_session ON samples(session_id, t_s);
"""

_FINISHED = "(SELECT status FROM sessions WHERE id = {row}.session_id) IS NOT 'running'"


def _immutability() -> str:
    """Triggers that refuse any change to a session once it has ended."""
    triggers = ["""
CREATE TRIGGER sessions_finished_stay BEFORE UPDATE ON sessions WHEN OLD.status <> 'running'
BEGIN SELECT RAISE(ABORT, 'a finished session is never rewritten'); END;
CREATE TRIGGER sessions_never_deleted BEFORE DELETE ON sessions
BEGIN SELECT RAISE(ABORT, 'sessions are never deleted from the record'); END;"""]
    for table in CHILD_TABLES:
        triggers.append(f"""
CREATE TRIGGER {table}_only_while_running BEFORE INSERT ON {table}
WHEN {_FINISHED.format(row="NEW")}
BEGIN SELECT RAISE(ABORT, 'a finished session is never added to'); END;
CREATE TRIGGER {table}_never_changed BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'recorded rows are never changed'); END;
CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'recorded rows are never deleted'); END;""")
    return "".join(triggers)


def _to_version_1(db: sqlite3.Connection) -> None:
    """The first schema (records written before versioning hold it, perhaps without the
    two span columns of repetitions, which came later)."""
    _run_script(db, _VERSION_1)
    present = {row[1] for row in db.execute("PRAGMA table_info(repetitions)")}
    for column in ("span_deg", "cross_span_deg"):
        if column not in present:
            db.execute(f"ALTER TABLE repetitions ADD COLUMN {column} REAL")


def _to_version_2(db: sqlite3.Connection) -> None:
    """A stable id per session, its mode, who wrote it (to tell an interrupted session),
    what a replay needs besides the samples (the control clock, the detector's starting
    calibration), stored calibrations, and immutability of finished sessions."""
    for column, kind in (("uuid", "TEXT"), ("mode", "TEXT"), ("host", "TEXT"),
                         ("pid", "INTEGER"), ("process_token", "TEXT"), ("tick_s", "REAL"),
                         ("clock_start_s", "REAL"), ("calibration", "TEXT")):
        db.execute(f"ALTER TABLE sessions ADD COLUMN {column} {kind}")
    rows = db.execute("SELECT sessions.id, protocols.toml FROM sessions "
                      "JOIN protocols ON protocols.id = sessions.protocol_id").fetchall()
    for session_id, toml_text in rows:
        db.execute("UPDATE sessions SET uuid=?, mode=? WHERE id=?",
                   (str(uuid.uuid4()), _mode_of(toml_text), session_id))
    # Whoever wrote a session still 'running' in an unversioned record is long gone.
    db.execute("UPDATE sessions SET status='interrupted' WHERE status='running'")
    _run_script(db, """
CREATE UNIQUE INDEX sessions_by_uuid ON sessions(uuid);
CREATE TABLE IF NOT EXISTS calibrations (
    id INTEGER PRIMARY KEY,
    pseudonym TEXT NOT NULL, kind TEXT NOT NULL, created_at TEXT NOT NULL,
    thresholds_json TEXT NOT NULL, gait_json TEXT
);""" + _immutability())


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Statement by statement, inside the caller's transaction (``executescript`` would
    commit it first)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def _mode_of(toml_text: str) -> str:
    try:
        return str(tomllib.loads(toml_text).get("mode", "gait"))
    except tomllib.TOMLDecodeError:
        return "gait"


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_to_version_1, _to_version_2)
"""``MIGRATIONS[n]`` takes a record from version n to n + 1."""


class RecordOpenError(RuntimeError):
    """The file cannot be used as a session record; the message says why in one line."""


def open_record(path: Path) -> sqlite3.Connection:
    """Open a record for writing, creating or upgrading it; refuse anything else.

    Nothing is written to a file that fails a check.
    """
    check_header(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise RecordOpenError(f"{path}: the record is read-only (file or folder permissions, "
                              "or a read-only disk); nothing was written")
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                             timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise RecordOpenError(f"{path}: cannot open the session record: {exc}") from None
    try:
        version = _checked_version(db, path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        _migrate(db, version)
        _close_interrupted(db)
    except sqlite3.Error as exc:
        db.close()
        raise RecordOpenError(f"{path}: {_plain(exc)}") from None
    except RecordOpenError:
        db.close()
        raise
    return db


def check_readable(db: sqlite3.Connection, path: Path) -> None:
    """The checks of :func:`open_record` that need no writing (for a read-only reader)."""
    try:
        _checked_version(db, path)
    except sqlite3.Error as exc:
        raise RecordOpenError(f"{path}: {_plain(exc)}") from None


def check_header(path: Path) -> None:
    """A file that is there but not SQLite is refused before SQLite touches it."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RecordOpenError(f"{path}: cannot read the session record: {exc.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise RecordOpenError(f"{path}: not a session record (not an SQLite database); "
                              "left untouched")


def _checked_version(db: sqlite3.Connection, path: Path) -> int:
    """The file's schema version, after checking it is ours, undamaged and not newer."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    if application_id not in (0, APPLICATION_ID) or (
            application_id == 0 and tables and "sessions" not in tables):
        shown = ", ".join(sorted(tables)[:4]) or "no tables"
        raise RecordOpenError(f"{path}: not a session record (another program's database: "
                              f"{shown}); left untouched")
    if version > SCHEMA_VERSION:
        raise RecordOpenError(f"{path}: written by a newer version of this program (record "
                              f"schema {version}; this one reads up to {SCHEMA_VERSION}); "
                              "update the program to open it")
    _check_undamaged(db, path)
    return version


FileState = tuple[int, ...]
_UNDAMAGED: dict[str, FileState] = {}
"""Per record path, the file state last found undamaged in this process: the check reads
the whole file (seconds on a record of several GB), and the review screen opens the
record for every read."""
SETTLED_NS = 100_000_000
"""A state is remembered only once its last change is this old: file times advance in
clock ticks (a few ms), so a second write within one tick of the first, of the same size,
would leave every field of the state as it was."""


def _file_state(path: Path) -> tuple[FileState, int]:
    """Inode, size and modification time of the file and of its write-ahead log (where a
    live record's latest pages are), and the file's change time: any write changes one
    of them. Also the latest of those times, in ns. The log's change time is left out
    (opening the record, even read-only, sets the log's owner, as root, and so its change
    time), and an empty log holds nothing, so it counts as none."""
    state: list[int] = []
    changed_ns = 0
    for part in (path, Path(f"{path}-wal")):
        try:
            stat = part.stat()
        except FileNotFoundError:
            stat = None
        if stat is None or (part is not path and stat.st_size == 0):
            state += [-1] * 4
            continue
        state += [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns]
        changed_ns = max(changed_ns, stat.st_mtime_ns)
        if part is path:
            state.append(stat.st_ctime_ns)
            changed_ns = max(changed_ns, stat.st_ctime_ns)
    return tuple(state), changed_ns


def _check_undamaged(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged record; a settled file state already found undamaged is not read
    again, a file that changed is."""
    key = str(path.resolve())
    state, changed_ns = _file_state(path)  # before the check: a write during it is a new state
    settled = time.time_ns() - changed_ns > SETTLED_NS
    if settled and _UNDAMAGED.get(key) == state:
        return
    _UNDAMAGED.pop(key, None)
    verdict = run_quick_check(db)
    if verdict != "ok":
        problems = [line for line in verdict.splitlines() if not line.startswith("***")] or [verdict]
        shown = problems[0] if len(problems) == 1 else f"{problems[0]}, and {len(problems) - 1} more"
        raise RecordOpenError(f"{path}: the record is damaged ({shown}); it is never "
                              "appended to — keep a copy and recover what is readable with "
                              "sqlite3's .recover")
    if settled:
        _UNDAMAGED[key] = state


def run_quick_check(db: sqlite3.Connection) -> str:
    """SQLite's verdict on the file's pages and indexes: ``ok`` or the first problem."""
    return str(db.execute("PRAGMA quick_check").fetchone()[0])


def _migrate(db: sqlite3.Connection, version: int) -> None:
    for target, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            migration(db)
            db.execute(f"PRAGMA user_version={target}")
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _close_interrupted(db: sqlite3.Connection) -> None:
    """Mark sessions whose writing process on this host has died as ``interrupted``."""
    rows = db.execute("SELECT id, pid, process_token FROM sessions "
                      "WHERE status='running' AND host=?", (this_host(),)).fetchall()
    for session_id, pid, token in rows:
        if is_dead(pid, token):
            db.execute("UPDATE sessions SET status='interrupted' WHERE id=?", (session_id,))


def _plain(exc: sqlite3.Error) -> str:
    """What an SQLite error means to the person at the station."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return "the record is locked by another program; close it and try again"
    if "readonly" in text or "read-only" in text:
        return "the record is read-only (file or folder permissions); nothing was written"
    if "not a database" in text or "malformed" in text:
        return "the record is damaged or not a database; left untouched"
    return f"cannot use the session record: {text}"
