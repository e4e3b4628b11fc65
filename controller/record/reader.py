"""Reading sessions back: the list, one session whole, rows for tests and reports.

Everything here reads through a :class:`RecordSource`, so the same code reads a station's
SQLite record or the clinic's PostgreSQL database (:mod:`controller.clinic.source`).
Queries use ``?`` placeholders and SQL both databases understand.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from controller.record.liveness import is_dead, this_host
from controller.record.schema import (
    SCHEMA_VERSION,
    RecordOpenError,
    check_header,
    check_readable,
    open_record,
)


class RecordSource(Protocol):
    """Somewhere sessions can be read from."""

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...


class SqliteSource:
    """A station's record, opened read-only (an older record is upgraded first)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise RecordOpenError(f"{path}: no session record there")
        check_header(path)
        self.path = path
        with closing(self._connect()) as db:
            check_readable(db, path)
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version < SCHEMA_VERSION:
            open_record(path).close()

    def _connect(self) -> sqlite3.Connection:
        """Read-only; on a read-only disk or folder, where SQLite cannot keep the WAL's
        shared index beside the file, as an unchanging file."""
        options = "mode=ro" if os.access(self.path.parent, os.W_OK) else "immutable=1"
        return sqlite3.connect(f"{path_uri(self.path)}?{options}", uri=True)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with closing(self._connect()) as db:
                return list(db.execute(sql, params))
        except sqlite3.Error as exc:
            raise RecordOpenError(f"{self.path}: cannot read the session record: {exc}"
                                  ) from None


def path_uri(path: Path) -> str:
    return path.resolve().as_uri()


def read_rows(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run a read-only query against a record file (tests, quick looks)."""
    with closing(sqlite3.connect(f"{path_uri(path)}?mode=ro", uri=True)) as db:
        return list(db.execute(query, params))


@dataclass(frozen=True)
class SessionInfo:
    """One line of the session list: what a therapist files a session by."""

    id: int
    """The session's number in the store it was read from."""
    uuid: str
    patient: str | None
    protocol_name: str
    protocol_sha256: str
    mode: str
    started_at: str
    ended_at: str | None
    status: str
    sensor: str
    stimulator: str
    duration_s: float
    steps: int
    stimulated_steps: int
    reps: int
    reps_prescribed: int | None
    faults: int

    @property
    def units_text(self) -> str:
        """``32 steps, 30 stimulated`` or ``27 of 30 reps``."""
        if self.mode == "exercise":
            of = f" of {self.reps_prescribed}" if self.reps_prescribed else ""
            return f"{self.reps}{of} reps"
        return f"{self.steps} steps, {self.stimulated_steps} stimulated"


_SESSION_COLUMNS = """
SELECT s.id, s.uuid, p.pseudonym, pr.name, pr.sha256, s.mode, s.started_at, s.ended_at,
       s.status, s.sensor, s.stimulator, s.summary, s.host, s.pid, s.process_token,
       (SELECT MAX(t_s) - MIN(t_s) FROM samples WHERE session_id = s.id),
       (SELECT COUNT(*) FROM steps WHERE session_id = s.id),
       (SELECT COUNT(*) FROM steps WHERE session_id = s.id AND charge_uc > 0),
       (SELECT COUNT(*) FROM repetitions WHERE session_id = s.id),
       (SELECT COUNT(*) FROM faults WHERE session_id = s.id)
FROM sessions s
JOIN protocols pr ON pr.id = s.protocol_id
LEFT JOIN patients p ON p.id = s.patient_id
"""


def list_sessions(source: RecordSource, patient: str | None = None) -> list[SessionInfo]:
    """Every session, oldest first (one patient's with ``patient``)."""
    where, params = ("WHERE p.pseudonym = ?", (patient,)) if patient else ("", ())
    rows = source.query(f"{_SESSION_COLUMNS} {where} ORDER BY s.started_at, s.id", params)
    return [_info(row) for row in rows]


def has_patient(source: RecordSource, pseudonym: str) -> bool:
    """Whether the store knows the patient (who may have no session yet)."""
    return bool(source.query("SELECT 1 FROM patients WHERE pseudonym = ?", (pseudonym,)))


_HEX_DASHES = re.compile(r"[0-9a-fA-F-]+")
UUID_PREFIX_MIN = 4
"""The shortest start of a UUID that names a session (shorter ones name too many)."""


def find_session(source: RecordSource, reference: str) -> SessionInfo:
    """A session by its number in this store, or by its UUID (or a unique start of it)."""
    rows = []
    if reference.isdigit():
        rows = source.query(f"{_SESSION_COLUMNS} WHERE s.id = ?", (int(reference),))
    if not rows and len(reference) >= UUID_PREFIX_MIN and _HEX_DASHES.fullmatch(reference):
        # A UUID's start may be all digits too: a number that is no session's is tried so.
        rows = source.query(f"{_SESSION_COLUMNS} WHERE s.uuid LIKE ?",
                            (reference.lower() + "%",))
    if len(rows) != 1:
        found = "no session" if not rows else f"{len(rows)} sessions"
        raise LookupError(f"{found} matches {reference!r}: give the number or the UUID that "
                          "fes sessions lists")
    return _info(rows[0])


def _info(row: tuple[Any, ...]) -> SessionInfo:
    (id_, uuid, patient, protocol, sha, mode, started, ended, status, sensor, stimulator,
     summary_json, host, pid, token, span_s, steps, stimulated, reps, faults) = row
    summary = json.loads(summary_json) if summary_json else {}
    if status == "running" and host == this_host() and is_dead(pid, token):
        status = "interrupted"
    return SessionInfo(
        id=int(id_), uuid=uuid, patient=patient, protocol_name=protocol, protocol_sha256=sha,
        mode=mode, started_at=started, ended_at=ended, status=status, sensor=sensor,
        stimulator=stimulator, duration_s=float(summary.get("duration_s", span_s or 0.0)),
        steps=int(steps), stimulated_steps=int(stimulated), reps=int(reps),
        reps_prescribed=summary.get("reps_prescribed"), faults=int(faults))


class SampleArrays(NamedTuple):
    """A session's samples as columns; ``angle_deg`` is NaN where the sensor gave none."""

    t_s: np.ndarray
    acc_mps2: np.ndarray
    gyro_dps: np.ndarray
    angle_deg: np.ndarray


class Note(NamedTuple):
    """A fault, notice or cue: when, what kind, and the words."""

    t_s: float
    kind: str
    text: str


class RecordedEvent(NamedTuple):
    t_s: float
    detected_at_s: float
    kind: str


class RecordedCommand(NamedTuple):
    """An amplitude as the stimulator was told it, in its own steps."""

    t_s: float
    channel: int
    amplitude_ma: float


STEP_COLUMNS = ("step", "start_s", "end_s", "heel_strike_s", "outcome", "charge_uc")
REPETITION_COLUMNS = ("set_index", "rep_index", "onset_s", "peak_s", "peak_angle_deg",
                      "time_to_peak_s", "hold_s", "lower_s", "end_s", "stimulated",
                      "charge_uc", "stimulation_s", "assisted", "sway_deg", "span_deg",
                      "cross_span_deg")


@dataclass(frozen=True)
class SessionData:
    """One session whole, as recorded."""

    info: SessionInfo
    protocol_toml: str
    summary: dict[str, Any]
    samples: SampleArrays
    events: list[RecordedEvent]
    phases: list[tuple[float, str]]
    commands: list[RecordedCommand]
    faults: list[Note]
    notices: list[Note]
    cues: list[Note]
    steps: list[dict[str, Any]]
    repetitions: list[dict[str, Any]]
    tick_s: float | None
    """The control loop's tick and start (None in records older than schema 2)."""
    clock_start_s: float | None
    calibration: dict[str, Any] | None
    """The gait detector's starting calibration, if the session was given one."""

    def bursts(self, channel: int) -> list[tuple[float, float]]:
        """(start, end) of each stretch with output on ``channel``, from the commands."""
        out: list[tuple[float, float]] = []
        started: float | None = None
        for command in self.commands:
            if command.channel != channel:
                continue
            if command.amplitude_ma > 0 and started is None:
                started = command.t_s
            elif command.amplitude_ma <= 0 and started is not None:
                out.append((started, command.t_s))
                started = None
        if started is not None and self.commands:
            out.append((started, self.commands[-1].t_s))
        return out


def load_session(source: RecordSource, info: SessionInfo) -> SessionData:
    """Everything ``info``'s session recorded, in time order."""
    sid = (info.id,)

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return source.query(sql, sid)

    toml_text, summary_json, tick_s, clock_start_s, calibration = rows(
        "SELECT pr.toml, s.summary, s.tick_s, s.clock_start_s, s.calibration FROM sessions s "
        "JOIN protocols pr ON pr.id = s.protocol_id WHERE s.id = ?")[0]
    samples = np.array(rows(
        "SELECT t_s, acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z, angle_x, angle_y, angle_z "
        "FROM samples WHERE session_id = ? ORDER BY t_s"), dtype=float).reshape(-1, 10)
    return SessionData(
        info=info, protocol_toml=toml_text,
        summary=json.loads(summary_json) if summary_json else {},
        samples=SampleArrays(samples[:, 0], samples[:, 1:4], samples[:, 4:7], samples[:, 7:10]),
        events=[RecordedEvent(*r) for r in rows(
            "SELECT t_s, detected_at_s, kind FROM events WHERE session_id = ? "
            "ORDER BY detected_at_s, t_s")],
        phases=[(r[0], r[1]) for r in rows(
            "SELECT t_s, phase FROM phases WHERE session_id = ? ORDER BY t_s")],
        commands=[RecordedCommand(*r) for r in rows(
            "SELECT t_s, channel, amplitude_ma FROM commands WHERE session_id = ? "
            "ORDER BY t_s, channel")],
        faults=[Note(*r) for r in rows(
            "SELECT t_s, kind, detail FROM faults WHERE session_id = ? ORDER BY t_s")],
        notices=[Note(*r) for r in rows(
            "SELECT t_s, kind, detail FROM notices WHERE session_id = ? ORDER BY t_s")],
        cues=[Note(*r) for r in rows(
            "SELECT t_s, kind, text FROM cues WHERE session_id = ? ORDER BY t_s")],
        steps=[dict(zip(STEP_COLUMNS, r, strict=True)) for r in rows(
            f"SELECT {', '.join(STEP_COLUMNS)} FROM steps WHERE session_id = ? ORDER BY step")],
        repetitions=[dict(zip(REPETITION_COLUMNS, r, strict=True)) for r in rows(
            f"SELECT {', '.join(REPETITION_COLUMNS)} FROM repetitions WHERE session_id = ? "
            "ORDER BY set_index, rep_index")],
        tick_s=tick_s, clock_start_s=clock_start_s,
        calibration=json.loads(calibration) if calibration else None,
    )
