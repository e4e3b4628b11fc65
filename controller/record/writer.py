"""Writing one session to the record as it runs.

Rows are buffered and committed every ``flush_interval_s`` of wall time, and at once for
faults, so a killed process loses at most the last fraction of a second, never the
session. (Wall time, not session time, because what a kill can lose is wall time; a
replay running 1000x faster than real time then commits rarely, as it should.) WAL mode
lets a reader (the GUI, ``fes report``) follow a running session.

A record that cannot be written is a reason to stop stimulating. :meth:`SessionRecord.problem`
says so: a write error (a full disk, another program's lock held past the busy timeout), a
commit that has not returned for :data:`STALL_S`, a writer fallen :data:`MAX_QUEUED_BATCHES`
behind, the file deleted or replaced. The session turns it into a fault.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

from controller.observe import SessionObserver
from controller.record.liveness import process_token, this_host
from controller.record.schema import RecordOpenError, open_record
from controller.types import ClosedStep, Cue, DetectorEvent, Fault, Sample, SessionSummary, Unit

_TABLES = ("samples", "events", "phases", "commands", "faults", "notices", "steps",
           "repetitions", "cues")
MAX_ROWS_PER_STATEMENT = 2048
"""Rows inserted by one statement (fewer if SQLite allows fewer bound values)."""

FINISH_WAIT_S = 10.0
"""How long the end of a session waits for the last rows to reach the disk (a disk that
has stopped answering must not keep the program from exiting)."""
MAX_QUEUED_BATCHES = 12
"""Batches handed to the writer and not yet committed (3 s at the flush interval). A
paced session whose writer falls this far behind has a fault; an unpaced one (a replay)
waits for the writer. Either way the queue never grows without end."""
STALL_S = 1.0
"""In a paced session, a commit still not done after this long means a disk that has
stopped answering (a lock fails sooner, after the schema's busy timeout). An unpaced
session races the writer for the interpreter, so there a slow commit is no sign."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


Job = Callable[[sqlite3.Connection], object]


class SessionRecord(SessionObserver):
    """Writes one session as it runs: an observer of everything a tick emits.

    The control loop only appends rows to lists; a writer thread commits them, so a slow
    disk can never make the loop late. The hooks never raise: trouble on the writer's
    side is reported by :meth:`problem`, which the loop asks every tick.
    """

    def __init__(self, path: Path, *, protocol_name: str, protocol_toml: str, mode: str,
                 sensor: str, stimulator: str, clock: tuple[float, float],
                 calibration: Mapping[str, object] | None = None,
                 patient: str | None = None, paced: bool = True,
                 flush_interval_s: float = 0.25) -> None:
        """``clock`` is the control loop's (tick, start) in seconds and ``calibration``
        the detector's starting calibration: with the samples, what a replay needs.
        ``paced``: the session follows the wall clock (see :data:`STALL_S`)."""
        self.path = path
        self.uuid = str(uuid.uuid4())
        self._db = open_record(path)
        self._identity = _identity(path)
        self._flush_interval_s = flush_interval_s
        self._paced = paced
        self._pending: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _TABLES}
        self._samples = self._pending["samples"]
        self._last_flush_s = time.monotonic()
        try:
            with _transaction(self._db):
                protocol_id = self._protocol_id(protocol_name, protocol_toml)
                patient_id = self._patient_id(patient) if patient else None
                cursor = self._db.execute(
                    "INSERT INTO sessions (uuid, patient_id, protocol_id, mode, started_at, "
                    "sensor, stimulator, status, host, pid, process_token, tick_s, "
                    "clock_start_s, calibration) "
                    "VALUES (?,?,?,?,?,?,?, 'running', ?,?,?,?,?,?)",
                    (self.uuid, patient_id, protocol_id, mode, now_iso(), sensor, stimulator,
                     this_host(), os.getpid(), process_token(os.getpid()), *clock,
                     json.dumps(calibration) if calibration is not None else None))
        except sqlite3.Error as exc:
            self._db.close()
            raise RecordOpenError(f"{path}: the session could not be started in the record: "
                                  f"{exc}") from None
        assert cursor.lastrowid is not None
        self.session_id: int = cursor.lastrowid
        self._jobs: queue.Queue[Job | None] = queue.Queue(MAX_QUEUED_BATCHES)
        self._error: str | None = None
        self._writing_since: float | None = None
        self._behind = False
        self._writer = threading.Thread(target=self._write_loop, name="session-record",
                                        daemon=True)
        self._writer.start()

    # -- the observer hooks: what the session writes --------------------------------

    def on_sample(self, sample: Sample) -> None:
        """One row per sample, built without unpacking into a list first: at 1000x real time
        this is a hundred thousand rows a second on the control loop's thread."""
        ax, ay, az = sample.acc_mps2
        gx, gy, gz = sample.gyro_dps
        angle = sample.angle_deg
        row: tuple[Any, ...]
        if angle is None:
            row = (self.session_id, sample.t_s, ax, ay, az, gx, gy, gz, None, None, None)
        else:
            row = (self.session_id, sample.t_s, ax, ay, az, gx, gy, gz, *angle)
        self._samples.append(row)

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
        """Write the outcome, wait (a bounded time) for every row to reach the disk, close.

        A record that has failed keeps what it had: nothing more is attempted.
        """
        row = (now_iso(), summary.status, json.dumps(summary.as_dict()), self.session_id)
        deadline_s = time.monotonic() + FINISH_WAIT_S
        last: list[Job | None] = [lambda db: db.execute(
            "UPDATE sessions SET ended_at=?, status=?, summary=? WHERE id=?", row), None]
        pending = self._take_pending()
        try:
            for job in [pending, *last] if pending is not None else last:
                self._jobs.put(job, timeout=max(0.0, deadline_s - time.monotonic()))
        except queue.Full:
            return  # the disk stopped answering: what is committed stays, the rest is lost
        self._writer.join(max(0.0, deadline_s - time.monotonic()))
        if not self._writer.is_alive():
            self._db.close()

    # -- what the loop asks -----------------------------------------------------------

    def problem(self) -> str | None:
        """Why the record is not being written, or None while it is."""
        if self._error is not None:
            return f"{self.path}: session record not written: {self._error}"
        if self._behind:
            return (f"{self.path}: the session record cannot keep up ({MAX_QUEUED_BATCHES} "
                    "batches waiting for the disk)")
        started = self._writing_since
        if self._paced and started is not None and time.monotonic() - started > STALL_S:
            return (f"{self.path}: session record not written for "
                    f"{time.monotonic() - started:.2f} s (the disk is not answering)")
        return None

    def flush(self) -> None:
        """Hand everything buffered to the writer now. A paced session never waits for the
        disk: a full queue is a fault (:meth:`problem`); an unpaced one waits its turn."""
        self._last_flush_s = time.monotonic()
        job = self._take_pending()
        if job is None:
            return
        if not self._paced:
            self._jobs.put(job)
            return
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._behind = True

    def _take_pending(self) -> Job | None:
        batch = {table: rows for table, rows in self._pending.items() if rows}
        if not batch:
            return None
        self._pending = {table: [] for table in _TABLES}
        self._samples = self._pending["samples"]
        return lambda db: _insert(db, batch)

    # -- internals -------------------------------------------------------------------

    def _write_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is not None:
                continue
            self._writing_since = time.monotonic()
            try:
                if _identity(self.path) != self._identity:
                    raise FileNotFoundError("the record file was deleted, moved or replaced")
                with _transaction(self._db):
                    job(self._db)
            except (sqlite3.Error, OSError) as exc:
                self._error = str(exc)
            self._writing_since = None

    def _protocol_id(self, name: str, toml_text: str) -> int:
        digest = hashlib.sha256(toml_text.encode()).hexdigest()
        self._db.execute("INSERT OR IGNORE INTO protocols (name, sha256, toml) VALUES (?,?,?)",
                         (name, digest, toml_text))
        row = self._db.execute("SELECT id FROM protocols WHERE sha256=?", (digest,)).fetchone()
        return int(row[0])

    def _patient_id(self, pseudonym: str) -> int:
        self._db.execute("INSERT OR IGNORE INTO patients (pseudonym, created_at) VALUES (?,?)",
                         (pseudonym, now_iso()))
        row = self._db.execute("SELECT id FROM patients WHERE pseudonym=?",
                               (pseudonym,)).fetchone()
        return int(row[0])


def _identity(path: Path) -> tuple[int, int]:
    """Device and inode: a record deleted, moved or replaced under a session changes it."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN/COMMIT around a block, ROLLBACK on error (the connection is in autocommit)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _insert(db: sqlite3.Connection, batch: dict[str, list[tuple[Any, ...]]]) -> None:
    """The batch's rows, many to a statement: ``executemany`` releases and retakes the
    interpreter lock around every row, so against a busy control loop the writer waits a
    switch interval per row; one statement of a few thousand rows waits once, and SQLite
    inserts them while the loop runs on the other core. Same rows, same order.

    Statements hold :func:`_rows_per_statement` rows, and what is left over goes in
    statements of falling powers of two: a dozen sizes per table at most, so the
    connection's statement cache never keeps one large statement per remainder (tens of
    MB over an hour)."""
    for table, rows in batch.items():
        width = len(rows[0])
        per = _rows_per_statement(db, width)
        first = 0
        while first < len(rows):
            left = len(rows) - first
            size = per if left >= per else 1 << (left.bit_length() - 1)
            db.execute(_many_rows_insert(table, width, size),
                       tuple(chain.from_iterable(rows[first:first + size])))
            first += size


def _rows_per_statement(db: sqlite3.Connection, width: int) -> int:
    return max(1, min(db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width,
                      MAX_ROWS_PER_STATEMENT))


@lru_cache(maxsize=128)
def _many_rows_insert(table: str, width: int, rows: int) -> str:
    one = f"({','.join('?' * width)})"
    return f"INSERT INTO {table} VALUES {','.join([one] * rows)}"
