"""The clinic database: stations' records pushed to a real PostgreSQL server, and read back.

The server is started by the tests (see ``tests/postgres_server.py``); where none can be
started they skip, saying why.
"""

from __future__ import annotations

import socket
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from controller.assembly import SimulatedRig, build_simulated_session
from controller.assembly.simulated import recorded_walk, simulate_exercise
from controller.clinic.server import ClinicDatabaseError
from controller.clinic.source import PostgresSource, RecordSource, SqliteSource, open_source
from controller.clinic.sync import SyncResult, sync_to_postgres
from controller.record import list_sessions, load_session, read_rows
from controller.record.schema import CHILD_TABLES
from protocols import ExerciseProtocol, load_protocol
from simulator import BUNDLED_WALK
from tests.postgres_server import PostgresServer

LIBRARY = Path(__file__).resolve().parents[1] / "protocols" / "library"
GAIT = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")
EXERCISE = load_protocol(LIBRARY / "exercise_seated_dorsiflexion.toml")
SHORT_WALK = 1500
"""Samples of the bundled walk in a short gait session (7 s of its 39)."""

def walk_rig(db: Path, samples: int | None, patient: str | None) -> SimulatedRig:
    """A gait session on the bundled walk: recorded as running until it is run."""
    walked = recorded_walk(BUNDLED_WALK, GAIT.leg)[:samples]
    return build_simulated_session(GAIT, walked, db, source="test-walk", patient=patient)


def walk(db: Path, samples: int | None, patient: str | None) -> None:
    walk_rig(db, samples, patient).runner().run()


def exercise(db: Path, patient: str) -> None:
    assert isinstance(EXERCISE, ExerciseProtocol)
    rig, _ = simulate_exercise(EXERCISE, db, duration_s=6.0, patient=patient)
    rig.runner().run()


@pytest.fixture(scope="module")
def stations(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two stations' records: A has a whole walk second (the push that is cut), and a
    patient B also treated; B shares A's gait protocol."""
    folder = tmp_path_factory.mktemp("stations")
    a, b = folder / "a.sqlite", folder / "b.sqlite"
    walk(a, SHORT_WALK, "P-001")
    walk(a, None, None)
    exercise(a, "P-002")
    walk(b, SHORT_WALK, "P-001")
    exercise(b, "P-001")
    return a, b


def uuids(record: Path) -> list[str]:
    return [row[0] for row in read_rows(record, "SELECT uuid FROM sessions ORDER BY id")]


def recorded(source: RecordSource, record: Path, session_uuid: str) -> dict[str, Counter[Any]]:
    """Everything one session recorded, per table, as a multiset of rows (session ids
    left out: each store has its own)."""
    out = {}
    for table in CHILD_TABLES:
        columns = [row[1] for row in read_rows(record, f"PRAGMA table_info({table})")
                   if row[1] != "session_id"]
        out[table] = Counter(source.query(
            f"SELECT {', '.join('t.' + c for c in columns)} FROM {table} t "
            "JOIN sessions s ON s.id = t.session_id WHERE s.uuid = ?", (session_uuid,)))
    return out


def terminate_copies(url: str) -> int:
    """Kill, from a second connection, every backend of the sync that is in a COPY: a
    real dropped connection, as a network failure or a server restart gives."""
    with psycopg.connect(url, autocommit=True) as killer:
        rows = killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'fes-footdrop' AND query LIKE 'COPY%'").fetchall()
    return sum(bool(row[0]) for row in rows)


def test_two_stations_pushed_twice_with_a_dropped_connection_land_once_each(
        stations: tuple[Path, Path], clinic_url: str) -> None:
    a, b = stations
    first_session_rows = sum(read_rows(a, f"SELECT COUNT(*) FROM {table} WHERE session_id = 1"
                                       )[0][0] for table in CHILD_TABLES)
    killed: list[int] = []

    def cut_mid_second_session(sent: int, total: int) -> None:
        if not killed and sent > first_session_rows + 3000:
            killed.append(terminate_copies(clinic_url))

    with pytest.raises(ClinicDatabaseError, match=r"after 1 session\(s\).*pushes the rest"):
        sync_to_postgres(a, clinic_url, station="station-a", progress=cut_mid_second_session)
    assert killed == [1], "the connection was cut while a COPY was under way"
    with PostgresSource(clinic_url) as server:
        assert server.query("SELECT uuid FROM sessions") == [(uuids(a)[0],)]
        assert server.query("SELECT COUNT(*) FROM samples") == [(SHORT_WALK,)], \
            "nothing of the cut session is on the server"

    assert sync_to_postgres(a, clinic_url, station="station-a") == SyncResult(2, 1, 0)
    assert sync_to_postgres(b, clinic_url, station="station-b") == SyncResult(2, 0, 0)
    assert sync_to_postgres(a, clinic_url, station="station-a") == SyncResult(0, 3, 0)
    assert sync_to_postgres(b, clinic_url, station="station-b") == SyncResult(0, 2, 0)

    with PostgresSource(clinic_url) as server:
        on_server = server.query("SELECT uuid, station FROM sessions")
        assert sorted(on_server) == sorted(
            [(u, "station-a") for u in uuids(a)] + [(u, "station-b") for u in uuids(b)])
        assert sorted(server.query("SELECT pseudonym FROM patients")) == [("P-001",),
                                                                          ("P-002",)]
        assert server.query("SELECT COUNT(*) FROM protocols") == [(2,)]
        for record in (a, b):
            local = SqliteSource(record)
            for session_uuid in uuids(record):
                assert (recorded(server, record, session_uuid)
                        == recorded(local, record, session_uuid)), session_uuid
        per_session = ("SELECT s.uuid, COUNT(*) FROM samples t JOIN sessions s "
                       "ON s.id = t.session_id GROUP BY s.uuid")
        assert sorted(server.query(per_session)) == sorted(
            SqliteSource(a).query(per_session) + SqliteSource(b).query(per_session))


def test_the_reader_reads_the_clinic_database_as_it_reads_a_record(
        stations: tuple[Path, Path], clinic_url: str) -> None:
    a, _ = stations
    sync_to_postgres(a, clinic_url)
    local, server = open_source(str(a)), open_source(clinic_url)
    assert isinstance(local, SqliteSource) and isinstance(server, PostgresSource)
    with server:
        local_list = list_sessions(local)
        server_list = list_sessions(server)
        assert [replace(info, id=0) for info in server_list] == [
            replace(info, id=0) for info in local_list]
        assert [info.uuid for info in list_sessions(server, patient="P-002")] == [uuids(a)[2]]
        for here, there in zip(local_list, server_list, strict=True):
            mine, theirs = load_session(local, here), load_session(server, there)
            assert replace(theirs, info=here, samples=mine.samples) == mine
            for column_here, column_there in zip(mine.samples, theirs.samples, strict=True):
                np.testing.assert_array_equal(column_here, column_there)


def test_a_running_session_waits_until_it_has_finished(tmp_path: Path,
                                                      clinic_url: str) -> None:
    record = tmp_path / "station.sqlite"
    walk(record, 300, "P-003")
    running = walk_rig(record, 300, "P-004")
    assert sync_to_postgres(record, clinic_url) == SyncResult(1, 0, 1)
    running.runner().run()
    assert sync_to_postgres(record, clinic_url) == SyncResult(1, 1, 0)
    with PostgresSource(clinic_url) as server:
        assert server.query("SELECT status, COUNT(*) FROM sessions JOIN samples "
                            "ON samples.session_id = sessions.id WHERE uuid = ? GROUP BY status",
                            (uuids(record)[1],)) == [("completed", 300)]


def test_a_column_a_newer_record_adds_reaches_the_server(
        stations: tuple[Path, Path], tmp_path: Path, clinic_url: str) -> None:
    a, b = stations
    sync_to_postgres(a, clinic_url)
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(b) as source, sqlite3.connect(newer) as copy:
        source.backup(copy)
    late = str(uuid.uuid4())
    with sqlite3.connect(newer) as db:
        db.execute("ALTER TABLE samples ADD COLUMN skin_temperature_c REAL")
        db.execute("INSERT INTO sessions (uuid, protocol_id, mode, started_at, sensor, "
                   "stimulator, status) SELECT ?, protocol_id, mode, started_at, sensor, "
                   "stimulator, 'running' FROM sessions LIMIT 1", (late,))
        db.execute("INSERT INTO samples (session_id, t_s, skin_temperature_c) "
                   "SELECT id, 0.0, 31.5 FROM sessions WHERE uuid = ?", (late,))
        db.execute("UPDATE sessions SET status = 'completed' WHERE uuid = ?", (late,))
    assert sync_to_postgres(newer, clinic_url) == SyncResult(3, 0, 0)
    with PostgresSource(clinic_url) as server:
        assert server.query(
            "SELECT s.uuid, t.skin_temperature_c FROM samples t JOIN sessions s "
            "ON s.id = t.session_id WHERE t.skin_temperature_c IS NOT NULL") == [(late, 31.5)]


def test_a_server_written_by_a_newer_program_is_refused(stations: tuple[Path, Path],
                                                       clinic_url: str) -> None:
    a, b = stations
    sync_to_postgres(a, clinic_url)
    with psycopg.connect(clinic_url, autocommit=True) as admin:
        admin.execute("UPDATE fes_meta SET value = '99' WHERE key = 'schema_version'")
    for attempt in (lambda: sync_to_postgres(b, clinic_url), lambda: PostgresSource(clinic_url)):
        with pytest.raises(ClinicDatabaseError, match="newer version of this program"):
            attempt()
    with psycopg.connect(clinic_url) as admin:
        assert admin.execute("SELECT COUNT(*) FROM sessions").fetchone() == (3,)


def test_a_database_holding_another_programs_tables_is_left_alone(
        stations: tuple[Path, Path], clinic_url: str) -> None:
    with psycopg.connect(clinic_url, autocommit=True) as admin:
        admin.execute("CREATE TABLE sessions (booked_at timestamptz)")
    with pytest.raises(ClinicDatabaseError, match=r"did not create \(sessions\)"):
        sync_to_postgres(stations[0], clinic_url)
    with pytest.raises(ClinicDatabaseError, match="no sessions in that clinic database"):
        PostgresSource(clinic_url)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("url", "said"), [
    ("postgresql://fes@127.0.0.1:{closed}/clinic", "cannot connect to the clinic database"),
    ("postgresql://fes@192.0.2.1:5432/clinic?connect_timeout=2",
     "cannot connect to the clinic database"),
    ("postgresql://fes@127.0.0.1:notaport/clinic", "cannot connect|bad clinic database URL"),
    ("postgresql://fes@127.0.0.1/clinic?nonsense=1", "bad clinic database URL"),
    ("https://clinic.example/db", "given as postgresql://"),
    ("postgresql://clinician:not-the-password@127.0.0.1:{port}/postgres",
     "password authentication failed"),
], ids=["refused", "no-answer", "bad-port", "bad-option", "not-postgres", "wrong-password"])
def test_a_server_that_cannot_be_used_gives_one_clear_line(
        postgres: PostgresServer, stations: tuple[Path, Path], url: str, said: str) -> None:
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS clinician")
        admin.execute("CREATE ROLE clinician LOGIN PASSWORD 'right'")
    started = time.monotonic()
    with pytest.raises(ClinicDatabaseError, match=said) as error:
        sync_to_postgres(stations[0], url.format(closed=_closed_port(), port=postgres.port))
    message = str(error.value)
    assert "\n" not in message and "not-the-password" not in message
    assert time.monotonic() - started < 8


def test_a_file_that_is_not_a_record_is_refused_before_any_connection(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    for path, said in ((notes, "not an SQLite database"), (other, "not a session record"),
                       (tmp_path / "missing.sqlite", "no session record there")):
        with pytest.raises(ClinicDatabaseError, match=said):
            sync_to_postgres(path, "postgresql://fes@127.0.0.1:1/never-reached")
