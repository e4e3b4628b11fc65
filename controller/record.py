"""The session record: one SQLite file (WAL) holding everything a session saw and did.

Rows are buffered and committed every ``flush_interval_s`` of wall time, and at once for
faults, so a killed process loses at most the last fraction of a second, never the
session. (Wall time, not session time, because what a kill can lose is wall time; a
replay running 1000x faster than real time then commits rarely, as it should.) WAL mode lets a reader (the GUI, ``fes report``) follow a running session.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from controller.observe import SessionObserver
from controller.types import ClosedStep, Cue, DetectorEvent, Fault, Sample, SessionSummary, Unit

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
CREATE TABLE IF NOT EXISTS repetitions (
    session_id INTEGER NOT NULL, set_index INTEGER NOT NULL, rep_index INTEGER NOT NULL,
    onset_s REAL NOT NULL, peak_s REAL NOT NULL, peak_angle_deg REAL NOT NULL,
    time_to_peak_s REAL NOT NULL, hold_s REAL NOT NULL, lower_s REAL, end_s REAL NOT NULL,
    stimulated INTEGER NOT NULL, charge_uc REAL NOT NULL, stimulation_s REAL NOT NULL,
    assisted INTEGER NOT NULL, sway_deg REAL NOT NULL, span_deg REAL, cross_span_deg REAL
);
CREATE TABLE IF NOT EXISTS cues (
    session_id INTEGER NOT NULL, t_s REAL NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_session ON samples(session_id, t_s);
"""

_TABLES = ("samples", "events", "phases", "commands", "faults", "notices", "steps",
           "repetitions", "cues")
_INSERTS = {
    "samples": "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "events": "INSERT INTO events VALUES (?,?,?,?)",
    "phases": "INSERT INTO phases VALUES (?,?,?)",
    "commands": "INSERT INTO commands VALUES (?,?,?,?)",
    "faults": "INSERT INTO faults VALUES (?,?,?,?)",
    "notices": "INSERT INTO notices VALUES (?,?,?,?)",
    "steps": "INSERT INTO steps VALUES (?,?,?,?,?,?,?)",
    "repetitions": "INSERT INTO repetitions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "cues": "INSERT INTO cues VALUES (?,?,?,?)",
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
    _add_columns(db, "repetitions", {"span_deg": "REAL", "cross_span_deg": "REAL"})
    return db


def _add_columns(db: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Bring a table written by an earlier version up to date (columns are only ever
    appended, so rows keep their order); versioned migrations are still to come."""
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for name, kind in columns.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


class RecordError(RuntimeError):
    """The record could not be written (disk full, file removed)."""


Job = Callable[[sqlite3.Connection], object]


class SessionRecord(SessionObserver):
    """Writes one session as it runs: an observer of everything a tick emits.

    The control loop only appends rows to lists; a writer thread commits them, so a slow
    disk can never make the loop late. A write error is raised in the control loop at its
    next flush, where the session turns it into a safe stop.
    """

    def __init__(self, path: Path, *, protocol_name: str, protocol_toml: str, sensor: str,
                 stimulator: str, patient: str | None = None,
                 flush_interval_s: float = 0.25) -> None:
        self.path = path
        self._db = connect(path)
        self._flush_interval_s = flush_interval_s
        self._pending: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _TABLES}
        self._last_flush_s = time.monotonic()
        with _transaction(self._db):
            protocol_id = self._protocol_id(protocol_name, protocol_toml)
            patient_id = self._patient_id(patient) if patient else None
            cursor = self._db.execute(
                "INSERT INTO sessions (patient_id, protocol_id, started_at, sensor, stimulator,"
                " status) VALUES (?,?,?,?,?, 'running')",
                (patient_id, protocol_id, _now_iso(), sensor, stimulator))
        assert cursor.lastrowid is not None
        self.session_id: int = cursor.lastrowid
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, name="session-record",
                                        daemon=True)
        self._writer.start()

    # -- the observer hooks: what the session writes --------------------------------

    def on_sample(self, sample: Sample) -> None:
        angle = sample.angle_deg or (None, None, None)
        self._pending["samples"].append(
            (self.session_id, sample.t_s, *sample.acc_mps2, *sample.gyro_dps, *angle))

    def on_event(self, event: DetectorEvent) -> None:
        self._pending["events"].append(
            (self.session_id, event.t_s, event.detected_at_s, event.kind.value))

    def on_phase(self, t_s: float, phase: str) -> None:
        self._pending["phases"].append((self.session_id, t_s, phase))

    def on_unit(self, unit: Unit) -> None:
        if isinstance(unit, ClosedStep):
            self._pending["steps"].append(
                (self.session_id, unit.index, unit.start_s, unit.end_s, unit.heel_strike_s,
                 unit.outcome, unit.charge_uc))
            return
        self._pending["repetitions"].append(
            (self.session_id, unit.set_index, unit.rep_index, unit.onset_s, unit.peak_s,
             unit.peak_angle_deg, unit.time_to_peak_s, unit.hold_s, unit.lower_s, unit.end_s,
             unit.stimulated, unit.charge_uc, unit.stimulation_s, unit.assisted,
             unit.sway_deg, unit.span_deg, unit.cross_span_deg))

    def on_cue(self, cue: Cue) -> None:
        self._pending["cues"].append((self.session_id, cue.t_s, cue.kind, cue.text))

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self._pending["commands"].extend(
            (self.session_id, t_s, channel, amplitude)
            for channel, amplitude in amplitudes_ma.items())

    def on_fault(self, fault: Fault) -> None:
        self._pending["faults"].append(
            (self.session_id, fault.t_s, fault.kind.value, fault.detail))
        self.flush()

    def on_notice(self, t_s: float, kind: str, detail: str) -> None:
        self._pending["notices"].append((self.session_id, t_s, kind, detail))

    def on_tick(self, t_s: float) -> None:
        """Hand the buffered rows to the writer once enough wall time has passed."""
        if time.monotonic() - self._last_flush_s >= self._flush_interval_s:
            self.flush()

    def on_finish(self, summary: SessionSummary) -> None:
        """Write the outcome, wait for every row to reach the disk, and close the file."""
        row = (_now_iso(), summary.status, json.dumps(summary.as_dict()), self.session_id)
        self.flush()
        self._submit(lambda db: db.execute(
            "UPDATE sessions SET ended_at=?, status=?, summary=? WHERE id=?", row))
        self._jobs.put(None)
        self._writer.join()
        self._db.close()
        self._raise_writer_error()

    def flush(self) -> None:
        """Hand everything buffered to the writer now (it never waits for the disk)."""
        self._last_flush_s = time.monotonic()
        batch = {table: rows for table, rows in self._pending.items() if rows}
        if batch:
            self._pending = {table: [] for table in _TABLES}
            self._submit(lambda db: _insert(db, batch))

    # -- internals -------------------------------------------------------------------

    def _submit(self, job: Job) -> None:
        self._raise_writer_error()
        self._jobs.put(job)

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise RecordError(f"{self.path}: session record not written: {self._error}")

    def _write_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is not None:
                continue
            try:
                with _transaction(self._db):
                    job(self._db)
            except sqlite3.Error as exc:
                self._error = exc

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


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN/COMMIT around a block, ROLLBACK on error (the connection is in autocommit)."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _insert(db: sqlite3.Connection, batch: dict[str, list[tuple[Any, ...]]]) -> None:
    for table, rows in batch.items():
        db.executemany(_INSERTS[table], rows)


def read_rows(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run a read-only query against a record (tests, reports)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return list(db.execute(query, params))


PSEUDONYM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
"""A pseudonym: letters, digits, ``_ . -``, at most 32 characters (no spaces, so a full
name is not typed in by habit)."""


def check_pseudonym(pseudonym: str) -> str:
    """The pseudonym as stored, or ValueError saying what a valid one looks like."""
    if not PSEUDONYM.fullmatch(pseudonym):
        raise ValueError(f"{pseudonym!r} is not a pseudonym: use 1-32 letters, digits, "
                         "'_', '.' or '-' (e.g. P-017), no spaces and no real names")
    return pseudonym


def add_patient(path: Path, pseudonym: str) -> None:
    """Register a patient before any session (nothing happens if already there)."""
    with closing(connect(path)) as db:
        db.execute("INSERT OR IGNORE INTO patients (pseudonym, created_at) VALUES (?,?)",
                   (check_pseudonym(pseudonym), _now_iso()))


def list_patients(path: Path) -> list[str]:
    """Every patient's pseudonym in the record, sorted (none if there is no record yet)."""
    if not path.exists():
        return []
    return [row[0] for row in read_rows(path, "SELECT pseudonym FROM patients "
                                              "ORDER BY pseudonym")]
