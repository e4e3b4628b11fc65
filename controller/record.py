"""The session record: one SQLite file (WAL) holding everything a session saw and did.

Rows are buffered and committed every ``flush_interval_s`` of session time, and at once
for faults, so a killed process loses at most the last fraction of a second, never the
session. WAL mode lets a reader (the GUI, ``fes report``) follow a running session.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from controller.safety import Fault
from controller.types import GaitEvent, Sample

SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (
    id INTEGER PRIMARY KEY,
    pseudonym TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS protocols (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    toml TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER REFERENCES patients(id),
    protocol_id INTEGER NOT NULL REFERENCES protocols(id),
    started_at TEXT NOT NULL,
    ended_at TEXT,
    sensor TEXT NOT NULL,
    stimulator TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT
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
CREATE TABLE IF NOT EXISTS notes (
    session_id INTEGER NOT NULL, t_s REAL, written_at TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_session ON samples(session_id, t_s);
"""

_TABLES = ("samples", "events", "phases", "commands", "faults", "notices", "steps")
_INSERTS = {
    "samples": "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "events": "INSERT INTO events VALUES (?,?,?,?)",
    "phases": "INSERT INTO phases VALUES (?,?,?)",
    "commands": "INSERT INTO commands VALUES (?,?,?,?)",
    "faults": "INSERT INTO faults VALUES (?,?,?,?)",
    "notices": "INSERT INTO notices VALUES (?,?,?,?)",
    "steps": "INSERT INTO steps VALUES (?,?,?,?,?,?,?)",
}


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("fes-footdrop")) / "sessions.sqlite"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a record database in WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    return db


class SessionRecord:
    """Writes one session as it runs; implements the supervisor's SafetyLog."""

    def __init__(self, path: Path, *, protocol_name: str, protocol_toml: str, sensor: str,
                 stimulator: str, patient: str | None = None,
                 flush_interval_s: float = 0.25) -> None:
        self.path = path
        self._db = connect(path)
        self._flush_interval_s = flush_interval_s
        self._pending: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _TABLES}
        self._last_flush_s: float | None = None
        with self._transaction():
            protocol_id = self._protocol_id(protocol_name, protocol_toml)
            patient_id = self._patient_id(patient) if patient else None
            cursor = self._db.execute(
                "INSERT INTO sessions (patient_id, protocol_id, started_at, sensor, stimulator,"
                " status) VALUES (?,?,?,?,?, 'running')",
                (patient_id, protocol_id, _now_iso(), sensor, stimulator))
        assert cursor.lastrowid is not None
        self.session_id: int = cursor.lastrowid

    # -- what the session writes -----------------------------------------------------

    def sample(self, sample: Sample) -> None:
        angle = sample.angle_deg or (None, None, None)
        self._pending["samples"].append(
            (self.session_id, sample.t_s, *sample.acc_mps2, *sample.gyro_dps, *angle))

    def event(self, event: GaitEvent) -> None:
        self._pending["events"].append(
            (self.session_id, event.t_s, event.detected_at_s, event.kind.value))

    def phase(self, t_s: float, phase: str) -> None:
        self._pending["phases"].append((self.session_id, t_s, phase))

    def step(self, index: int, start_s: float, end_s: float, heel_strike_s: float | None,
             outcome: str, charge_uc: float) -> None:
        self._pending["steps"].append(
            (self.session_id, index, start_s, end_s, heel_strike_s, outcome, charge_uc))

    def command(self, t_s: float, amplitudes_ma: dict[int, float]) -> None:
        self._pending["commands"].extend(
            (self.session_id, t_s, channel, amplitude)
            for channel, amplitude in amplitudes_ma.items())

    def fault(self, fault: Fault) -> None:
        self._pending["faults"].append(
            (self.session_id, fault.t_s, fault.kind.value, fault.detail))
        self.flush()

    def notice(self, t_s: float, kind: str, detail: str) -> None:
        self._pending["notices"].append((self.session_id, t_s, kind, detail))

    def note(self, text: str, t_s: float | None = None) -> None:
        self.flush()
        with self._transaction():
            self._db.execute("INSERT INTO notes VALUES (?,?,?,?)",
                             (self.session_id, t_s, _now_iso(), text))

    def tick(self, now_s: float) -> None:
        """Commit what is buffered once enough session time has passed."""
        if self._last_flush_s is None:
            self._last_flush_s = now_s
        elif now_s - self._last_flush_s >= self._flush_interval_s:
            self.flush()
            self._last_flush_s = now_s

    def flush(self) -> None:
        if not any(self._pending.values()):
            return
        with self._transaction():
            for table, rows in self._pending.items():
                if rows:
                    self._db.executemany(_INSERTS[table], rows)
                    rows.clear()

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        self.flush()
        with self._transaction():
            self._db.execute(
                "UPDATE sessions SET ended_at=?, status=?, summary=? WHERE id=?",
                (_now_iso(), status, json.dumps(summary), self.session_id))

    def close(self) -> None:
        self.flush()
        self._db.close()

    # -- internals -------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _protocol_id(self, name: str, toml_text: str) -> int:
        digest = hashlib.sha256(toml_text.encode()).hexdigest()
        self._db.execute("INSERT OR IGNORE INTO protocols (name, sha256, toml) VALUES (?,?,?)",
                         (name, digest, toml_text))
        row = self._db.execute("SELECT id FROM protocols WHERE sha256=?", (digest,)).fetchone()
        return int(row[0])

    def _patient_id(self, pseudonym: str) -> int:
        self._db.execute("INSERT OR IGNORE INTO patients (pseudonym, created_at) VALUES (?,?)",
                         (pseudonym, _now_iso()))
        row = self._db.execute("SELECT id FROM patients WHERE pseudonym=?",
                               (pseudonym,)).fetchone()
        return int(row[0])


class _Transaction:
    """BEGIN/COMMIT around a block, ROLLBACK on error (the connection is in autocommit)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def read_rows(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run a read-only query against a record (tests, reports)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return list(db.execute(query, params))
