"""The session record as a file a clinic keeps: versions, bad files, and a record that
stops being writable while a patient is stimulated."""

from __future__ import annotations

import hashlib
import os
import resource
import shlex
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from controller.assembly.simulated import SimulatedRig, simulate_walk
from controller.observe import SessionObserver
from controller.record import (
    SqliteSource,
    find_session,
    list_sessions,
    open_record,
    read_rows,
    writer,
)
from controller.record.schema import _VERSION_1, BUSY_TIMEOUT_S, SCHEMA_VERSION
from controller.types import FaultKind, SessionStatus
from protocols import load_protocol
from protocols.loader import LIBRARY
from tests.test_cli import FES, fes, wait_until_recording

GAIT = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")
FLUSH_S = 0.25


def recorded_session(db: Path, patient: str = "P-001") -> None:
    summary = simulate_walk(GAIT, db, patient=patient).runner().run()
    assert summary.status == "completed"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settled(db: Path) -> None:
    """Everything in the write-ahead log moved into the file, and the log gone."""
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()


def refused(db: Path, *expected: str) -> None:
    """Every command that opens the record refuses it the same way and leaves it alone."""
    before = digest(db)
    for args in (("simulate", "--duration", "2", "--db", str(db)), ("sessions", "--db", str(db))):
        result = subprocess.run([*FES, *args], capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
        assert any(words in result.stderr for words in expected), result.stderr
    assert digest(db) == before, "a refused record was written to"


# -- versions -----------------------------------------------------------------------------

def test_a_record_from_before_versioning_opens_upgraded_and_keeps_its_sessions(
        tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as old:  # the unversioned schema the first releases wrote
        old.executescript(_VERSION_1)
        old.execute("INSERT INTO protocols VALUES (1, 'old', 'abc', 'mode = \"exercise\"')")
        old.execute("INSERT INTO sessions (protocol_id, started_at, sensor, stimulator, status)"
                    " VALUES (1, '2025-01-02T10:00:00+00:00', 'x', 'y', 'completed')")
        old.execute("INSERT INTO sessions (protocol_id, started_at, sensor, stimulator, status)"
                    " VALUES (1, '2025-01-03T10:00:00+00:00', 'x', 'y', 'running')")
        old.execute("INSERT INTO repetitions VALUES (1, 0, 0, 1, 2, 20, 1, 3, 1, 6, 1, 0, 0, 0, 1)")
    recorded_session(db)
    sessions = list_sessions(SqliteSource(db))
    assert [(s.mode, s.status, s.reps) for s in sessions] == [
        ("exercise", "completed", 1), ("exercise", "interrupted", 0), ("gait", "completed", 0)]
    assert len({s.uuid for s in sessions}) == 3
    assert read_rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert read_rows(db, "SELECT span_deg FROM repetitions") == [(None,)]


def test_a_record_from_a_newer_program_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "newer.sqlite"
    recorded_session(db)
    with sqlite3.connect(db) as newer:
        newer.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    settled(db)
    refused(db, "newer version")


def test_a_finished_session_is_never_rewritten(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    recorded_session(db)
    with sqlite3.connect(db) as raw:
        for statement in ("UPDATE sessions SET status='completed', summary=NULL",
                          "DELETE FROM sessions", "UPDATE samples SET acc_x = 0",
                          "DELETE FROM commands",
                          "INSERT INTO commands VALUES (1, 99.0, 1, 40.0)"):
            with pytest.raises(sqlite3.IntegrityError, match="never"):
                raw.execute(statement)


# -- files that are not (usable) records ------------------------------------------------------

def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "notes.sqlite"
    db.write_bytes(b"patient notes, not a database\n" * 100)
    refused(db, "not an SQLite database")


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "contacts.sqlite"
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    refused(db, "another program's database")


def test_a_record_with_damaged_pages_is_refused_and_never_appended_to(tmp_path: Path) -> None:
    db = tmp_path / "damaged.sqlite"
    recorded_session(db)
    settled(db)
    page_size = read_rows(db, "PRAGMA page_size")[0][0]
    data = bytearray(db.read_bytes())
    for page in range(3, len(data) // page_size, 5):  # scribble over every fifth page
        data[page * page_size:page * page_size + 64] = b"\xa5" * 64
    db.write_bytes(bytes(data))
    refused(db, "damaged")


def test_a_locked_record_is_refused_at_the_start(tmp_path: Path) -> None:
    db = tmp_path / "locked.sqlite"
    recorded_session(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = fes("simulate", "--duration", "2", "--db", str(db))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 2 and "locked" in result.stderr, result.stderr
    assert len(list_sessions(SqliteSource(db))) == 1


def test_a_read_only_record_is_refused_for_writing_and_still_listed(tmp_path: Path) -> None:
    """Root writes any file whatever its mode, so as root the record sits on a read-only
    mount (in a mount namespace of its own) instead."""
    db = tmp_path / "readonly.sqlite"
    recorded_session(db)
    settled(db)
    before = digest(db)
    simulate = [*FES, "simulate", "--duration", "2", "--db", str(db)]
    sessions = [*FES, "sessions", "--db", str(db)]
    if os.geteuid() == 0:
        mount = (f"mount --bind {tmp_path} {tmp_path} && "
                 f"mount -o remount,bind,ro {tmp_path}")
        probe = subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True,
                               check=False)
        if probe.returncode != 0:
            pytest.skip(f"as root a read-only file needs a read-only mount: {probe.stderr!r}")
        results = [subprocess.run(["unshare", "-m", "sh", "-c", f"{mount} && {shlex.join(c)}"],
                                  capture_output=True, text=True, timeout=120, check=False)
                   for c in (simulate, sessions)]
    else:
        db.chmod(0o444)
        tmp_path.chmod(0o555)
        results = [subprocess.run(c, capture_output=True, text=True, timeout=120, check=False)
                   for c in (simulate, sessions)]
        tmp_path.chmod(0o755)
    refusal, listing = results
    assert refusal.returncode == 2 and "read-only" in refusal.stderr, refusal.stderr
    assert "Traceback" not in refusal.stderr
    assert listing.returncode == 0 and "1 session" in listing.stdout, listing.stderr
    assert digest(db) == before


# -- a record that fails while the patient is stimulated -------------------------------------

class OutputWatch(SessionObserver):
    """When (wall time) the stimulator was last told anything above zero."""

    def __init__(self) -> None:
        self.last_on_wall_s = 0.0
        self.on = False

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self.on = any(ma > 0 for ma in amplitudes_ma.values())
        if self.on:
            self.last_on_wall_s = time.monotonic()


def run_until_broken(tmp_path: Path, breaker: Callable[[Path], None]
                     ) -> tuple[SimulatedRig, OutputWatch, float, Path]:
    """A walk paced to the wall clock; ``breaker`` acts on the record while output is on.

    Returns the rig, the watch, the wall time the record broke, and the record's path.
    """
    db = tmp_path / "record.sqlite"
    watch = OutputWatch()
    rig = simulate_walk(GAIT, db, observers=[watch])
    session = rig.session
    session.start()
    broke_at: float | None = None
    deadline = time.monotonic() + 20
    while session.step():
        time.sleep(rig.clock.tick_s)
        if broke_at is None and watch.on and session.now_s > 4.0:
            breaker(db)
            broke_at = time.monotonic()
        assert time.monotonic() < deadline, "the session went on with its record broken"
    session.finish()
    assert broke_at is not None, "output never came on"
    return rig, watch, broke_at, db


def assert_stopped_for_the_record(rig: SimulatedRig, watch: OutputWatch, broke_at: float,
                                  within_s: float) -> None:
    session = rig.session
    assert session.status is SessionStatus.FAILED
    assert [f.kind for f in session.supervisor.fault_history] == [FaultKind.RECORD_FAILED]
    assert not watch.on and rig.stimulator.model.output.get(1, (0, 0))[0] == 0
    assert watch.last_on_wall_s - broke_at <= within_s


def test_a_record_locked_mid_session_stops_the_output_and_keeps_what_was_written(
        tmp_path: Path) -> None:
    holders: list[sqlite3.Connection] = []

    def lock(db: Path) -> None:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        holders.append(holder)

    rig, watch, broke_at, db = run_until_broken(tmp_path, lock)
    holders[0].execute("ROLLBACK")
    # A commit is tried within the flush interval and gives up after the busy timeout.
    assert_stopped_for_the_record(rig, watch, broke_at, FLUSH_S + BUSY_TIMEOUT_S + 0.25)
    samples = read_rows(db, "SELECT count(*), max(t_s) FROM samples")[0]
    assert samples[0] > 300 and samples[1] > 3.5, "what was committed before the lock is gone"


def test_a_record_deleted_mid_session_stops_the_output(tmp_path: Path) -> None:
    def delete(db: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)

    rig, watch, broke_at, _ = run_until_broken(tmp_path, delete)
    assert_stopped_for_the_record(rig, watch, broke_at, FLUSH_S + 0.25)
    assert "deleted" in rig.session.supervisor.fault_history[0].detail


def test_a_full_disk_mid_session_stops_the_output_and_the_user_is_told(tmp_path: Path) -> None:
    """The record's file may not grow past a limit (RLIMIT_FSIZE): SQLite meets a full disk."""
    db = tmp_path / "record.sqlite"
    open_record(db).close()
    limit_bytes = db.stat().st_size + 160_000

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    result = subprocess.run([*FES, "simulate", "--realtime", "--duration", "30", "--db",
                             str(db)], capture_output=True, text=True, timeout=60,
                            preexec_fn=small_disk, check=False)
    assert result.returncode == 1, result.stderr
    assert "record_failed" in result.stdout and "Traceback" not in result.stderr
    [session] = list_sessions(SqliteSource(db))
    assert session.status == "interrupted", "the file could not take the session's end"
    t_max = read_rows(db, "SELECT max(t_s) FROM samples")[0][0]
    assert t_max is not None and t_max > 1.0, "nothing of the session stayed readable"
    commands = read_rows(db, "SELECT count(*) FROM commands")[0][0]
    assert commands > 0


def test_a_session_killed_outright_leaves_a_readable_record_marked_interrupted(
        tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    process = subprocess.Popen([*FES, "simulate", "--realtime", "--db", str(db)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_recording(process, db)
        started_wall_s = time.monotonic() - read_rows(db, "SELECT max(t_s) FROM samples")[0][0]
        time.sleep(1.0)
        killed_at_session_s = time.monotonic() - started_wall_s
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()
        process.wait()
    [session] = list_sessions(SqliteSource(db))
    assert session.status == "interrupted"
    last_s = read_rows(db, "SELECT max(t_s) FROM samples")[0][0]
    assert killed_at_session_s - last_s < 0.6, (killed_at_session_s, last_s)
    open_record(db).close()  # a writer marks it in the file itself
    assert read_rows(db, "SELECT status FROM sessions") == [("interrupted",)]


def test_fes_sessions_lists_each_patients_sessions(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    recorded_session(db, patient="P-001")
    recorded_session(db, patient="P-002")
    recorded_session(db, patient="P-001")
    everyone = fes("sessions", "--db", str(db))
    assert everyone.returncode == 0 and "3 sessions" in everyone.stdout
    one = fes("sessions", "--patient", "P-002", "--db", str(db))
    assert one.returncode == 0 and "1 session" in one.stdout, one.stdout
    assert "P-002" in one.stdout and "P-001" not in one.stdout
    assert "completed" in one.stdout and "steps" in one.stdout
    nobody = fes("sessions", "--patient", "P-404", "--db", str(db))
    assert nobody.returncode == 0 and "no sessions recorded for patient P-404" in nobody.stdout


def test_the_record_holds_what_the_stimulator_delivered_in_its_own_steps(
        tmp_path: Path) -> None:
    """Ramps ask for any amplitude; the device gives 2 mA steps, and the record says so:
    every change of output the simulated device made on a command is a recorded command."""
    db = tmp_path / "record.sqlite"
    rig = simulate_walk(GAIT, db)
    rig.runner().run()
    log = rig.stimulator.model.delivered
    assert log.total == len(log), "the device's log kept every change"
    delivered = [float(entry.current_ma) for entry in log if entry.reason == "command"]
    recorded = [row[0] for row in read_rows(db, "SELECT amplitude_ma FROM commands ORDER BY "
                                                "rowid")]
    changes = [a for i, a in enumerate(recorded) if a != (recorded[i - 1] if i else 0.0)]
    assert changes == delivered and len(delivered) > 100
    ramp_levels = {a for a in recorded if 0 < a < 24}
    assert len(ramp_levels) >= 5 and all(a % 2 == 0 for a in recorded), ramp_levels


def test_two_sessions_on_one_record_at_once_both_keep_everything(tmp_path: Path) -> None:
    """Two stations' processes (or a second window) writing one file: each commit waits
    its turn under the busy timeout, and neither session loses a row or faults."""
    db = tmp_path / "shared.sqlite"
    open_record(db).close()
    processes = [subprocess.Popen([*FES, "simulate", "--realtime", "--duration", "8",
                                   "--patient", f"P-00{n}", "--db", str(db)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in (1, 2)]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, out + err
    sessions = list_sessions(SqliteSource(db))
    assert [(s.status, s.faults) for s in sessions] == [("completed", 0), ("completed", 0)]
    for session in sessions:
        samples, span_s = read_rows(db, "SELECT count(*), max(t_s) - min(t_s) FROM samples "
                                        "WHERE session_id = ?", (session.id,))[0]
        assert span_s >= 7.9 and samples == round(span_s * 204.8) + 1, (samples, span_s)


def test_a_session_is_found_by_a_uuid_that_starts_with_digits_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "record.sqlite"
    monkeypatch.setattr(writer.uuid, "uuid4",
                        lambda: uuid.UUID("12345678-9abc-4def-8123-456789abcdef"))
    recorded_session(db)
    source = SqliteSource(db)
    assert find_session(source, "1").uuid.startswith("12345678")
    assert find_session(source, "12345678").id == 1
    with pytest.raises(LookupError, match="no session matches"):
        find_session(source, "1234_%")
