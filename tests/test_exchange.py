"""Export of recorded sessions to CSV and Parquet, import of recordings, and the round trip:
an exported session imported back and simulated on gives the session it came from."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from controller.assembly.simulated import (
    build_simulated_session,
    recorded_walk,
    simulate_exercise,
    simulate_walk,
)
from controller.cli import main as fes
from controller.devices.recording import RecordingFormatError, load_recording
from controller.exchange import (
    SAMPLE_COLUMNS,
    TABLES,
    export_sessions,
    import_recording,
    session_tables,
    write_recording,
)
from controller.record import SessionData, SqliteSource, list_sessions, load_session
from controller.record.reader import REPETITION_COLUMNS, STEP_COLUMNS
from controller.types import Sample
from protocols import ExerciseProtocol, Protocol, load_protocol
from protocols.loader import LIBRARY
from simulator import BUNDLED_WALK

GAIT = LIBRARY / "peroneal_gait_gyro.toml"
EXERCISE = LIBRARY / "exercise_seated_dorsiflexion.toml"
EXERCISE_DATA = (Path(__file__).resolve().parents[2] / "shared" / "data" / "exercise"
                 / "yb_s2_knee_extension_9reps_imu.csv")
PATIENT = "P-exchange"


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A record with one gait and one exercise session of the same patient."""
    path = tmp_path_factory.mktemp("record") / "record.sqlite"
    simulate_walk(load_protocol(GAIT), path, patient=PATIENT).runner().run()
    exercise = load_protocol(EXERCISE)
    assert isinstance(exercise, ExerciseProtocol)
    rig, _ = simulate_exercise(exercise, path, duration_s=25.0, patient=PATIENT)
    rig.runner().run()
    return path


@pytest.fixture(scope="module")
def sessions(record: Path) -> list[SessionData]:
    source = SqliteSource(record)
    return [load_session(source, info) for info in list_sessions(source)]


def expected_rows(data: SessionData) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows straight from the reader, NaN as None (a missing value)."""
    s = data.samples
    samples = np.column_stack([s.t_s, s.acc_mps2, s.gyro_dps, s.angle_deg]).tolist()
    return {
        "samples": [tuple(None if math.isnan(v) else v for v in row) for row in samples],
        "events": [tuple(e) for e in data.events],
        "phases": list(data.phases),
        "commands": [tuple(c) for c in data.commands],
        "faults": [tuple(n) for n in data.faults],
        "notices": [tuple(n) for n in data.notices],
        "cues": [tuple(n) for n in data.cues],
        "steps": [tuple(row[c] for c in STEP_COLUMNS) for row in data.steps],
        "repetitions": [tuple(row[c] for c in REPETITION_COLUMNS) for row in data.repetitions],
    }


def typed(cell: str, like: object) -> object:
    """A CSV cell read back as the type the record holds."""
    if cell == "":
        return None
    if isinstance(like, str):
        return cell
    return int(cell) if isinstance(like, int) else float(cell)


def test_both_formats_hold_every_table_of_every_session_exactly(
        record: Path, sessions: list[SessionData], tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    for fmt in ("csv", "parquet"):
        folders = export_sessions(SqliteSource(record), [d.info for d in sessions],
                                  tmp_path / fmt, fmt=fmt,
                                  progress=lambda done, total: calls.append((done, total)))
        assert [f.name[-8:] for f in folders] == [d.info.uuid[:8] for d in sessions]
        for folder, data in zip(folders, sessions, strict=True):
            expected = expected_rows(data)
            assert expected["samples"] and expected["events"] and expected["commands"]
            for table in TABLES:
                path = folder / f"{table}.{fmt}"
                if fmt == "parquet":
                    got = [tuple(row.values()) for row in pq.read_table(path).to_pylist()]
                else:
                    with path.open(newline="") as handle:
                        got = [tuple(typed(cell, like) for cell, like in zip(
                            row, expected[table][0] if expected[table] else row, strict=True))
                            for row in list(csv.reader(handle))[1:]]
                assert got == expected[table], (fmt, data.info.mode, table)
    assert calls == [(0, 2), (1, 2), (2, 2)] * 2


def test_session_json_carries_info_summary_and_protocol(
        record: Path, sessions: list[SessionData], tmp_path: Path) -> None:
    gait = sessions[0]
    [folder] = export_sessions(SqliteSource(record), [gait.info], tmp_path, fmt="csv")
    about = json.loads((folder / "session.json").read_text())
    assert about["info"]["uuid"] == gait.info.uuid
    assert about["protocol_toml"] == gait.protocol_toml
    assert about["summary"] == gait.summary
    assert about["rows"] == {name: t.rows for name, t in session_tables(gait).items()}
    assert not list(tmp_path.glob(".*.partial"))


def test_a_patients_sessions_export_by_patient(record: Path, tmp_path: Path) -> None:
    source = SqliteSource(record)
    assert len(export_sessions(source, list_sessions(source, patient=PATIENT), tmp_path,
                               fmt="parquet")) == 2
    assert export_sessions(source, list_sessions(source, patient="nobody"), tmp_path,
                           fmt="parquet") == []


def rerun(protocol: Protocol, samples: list[Sample], db: Path) -> SessionData:
    build_simulated_session(protocol, samples, db, source="reimport").runner().run()
    source = SqliteSource(db)
    return load_session(source, list_sessions(source)[-1])


@pytest.mark.parametrize("which", [0, 1], ids=["gait", "exercise"])
def test_an_exported_session_imported_back_runs_the_same_session(
        record: Path, sessions: list[SessionData], tmp_path: Path, which: int) -> None:
    original = sessions[which]
    [folder] = export_sessions(SqliteSource(record), [original.info], tmp_path, fmt="csv")
    protocol = load_protocol(GAIT if original.info.mode == "gait" else EXERCISE)
    again = rerun(protocol, import_recording(folder), tmp_path / "again.sqlite")
    assert again.events == original.events
    assert again.phases == original.phases
    assert again.commands == original.commands


def test_fes_simulate_takes_the_one_sensor_layout(
        record: Path, sessions: list[SessionData], tmp_path: Path) -> None:
    [folder] = export_sessions(SqliteSource(record), [sessions[0].info], tmp_path, fmt="csv")
    assert recorded_walk(folder / "samples.csv", "left") == recorded_walk(BUNDLED_WALK, "left")
    assert fes(["simulate", "--data", str(folder / "samples.csv"),
                "--db", str(tmp_path / "cli.sqlite")]) == 0


def test_the_shared_two_feet_layouts_import() -> None:
    assert import_recording(BUNDLED_WALK) == load_recording(BUNDLED_WALK).samples()
    if EXERCISE_DATA.exists():
        assert len(import_recording(EXERCISE_DATA, foot="right")) == 1654


def test_angles_round_trip_with_gaps(tmp_path: Path) -> None:
    walk = recorded_walk(BUNDLED_WALK, "left")
    with_angles = [Sample(s.t_s, s.acc_mps2, s.gyro_dps,
                          None if i % 3 == 0 else (i * 0.1, -1.0 / 3.0, 1e-9))
                   for i, s in enumerate(walk)]
    write_recording(with_angles, tmp_path / "angles.csv")
    assert import_recording(tmp_path / "angles.csv") == with_angles


def one_sensor_csv(path: Path, rows: list[list[str]],
                   header: tuple[str, ...] = SAMPLE_COLUMNS[:7]) -> Path:
    path.write_text("\n".join(",".join(row) for row in [list(header), *rows]) + "\n")
    return path


GOOD_ROW = ["0.0", "0.1", "0.2", "9.8", "1", "2", "3"]


@pytest.mark.parametrize(("rows", "header", "message"), [
    ([GOOD_ROW] * 3, ("time_s", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y"),
     "missing column(s) gyro_z"),
    ([["0.00", *GOOD_ROW[1:]], ["0.01", "0.1", "abc", *GOOD_ROW[3:]]], SAMPLE_COLUMNS[:7],
     "line 3: a value is not a number (acc_y is 'abc')"),
    ([["0.00", *GOOD_ROW[1:]], ["0.01", *GOOD_ROW[1:6]]], SAMPLE_COLUMNS[:7],
     "line 3: 6 cells where the header has 7"),
    ([["0.00", *GOOD_ROW[1:]], ["0.01", *GOOD_ROW[1:]], ["0.01", *GOOD_ROW[1:]]],
     SAMPLE_COLUMNS[:7], "line 4: timestamps do not increase (0.01 s after 0.01 s)"),
    ([["0.00", "nan", *GOOD_ROW[2:]], GOOD_ROW], SAMPLE_COLUMNS[:7],
     "line 2: a value is not finite"),
    ([GOOD_ROW], SAMPLE_COLUMNS[:7], "fewer than two samples"),
], ids=["missing column", "not a number", "short row", "time not increasing", "nan",
        "too few rows"])
def test_bad_files_are_refused_in_one_line_that_says_where(
        tmp_path: Path, rows: list[list[str]], header: tuple[str, ...], message: str) -> None:
    path = one_sensor_csv(tmp_path / "bad.csv", rows, header)
    with pytest.raises(RecordingFormatError) as refused:
        import_recording(path)
    assert message in str(refused.value)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(("acc_scale", "gyro_scale", "message"), [
    (1 / 9.81, 1.0, "it reports g"),
    (1.0, math.pi / 180, "it reports rad/s"),
], ids=["acc in g", "gyro in rad/s"])
def test_a_recording_in_the_wrong_units_is_refused(
        tmp_path: Path, acc_scale: float, gyro_scale: float, message: str) -> None:
    walk = recorded_walk(BUNDLED_WALK, "left")
    write_recording([Sample(s.t_s, (s.acc_mps2[0] * acc_scale, s.acc_mps2[1] * acc_scale,
                                    s.acc_mps2[2] * acc_scale),
                            (s.gyro_dps[0] * gyro_scale, s.gyro_dps[1] * gyro_scale,
                             s.gyro_dps[2] * gyro_scale)) for s in walk],
                    tmp_path / "units.csv")
    with pytest.raises(RecordingFormatError, match=message):
        import_recording(tmp_path / "units.csv")


def test_a_parquet_export_folder_is_not_taken_for_a_recording(
        record: Path, sessions: list[SessionData], tmp_path: Path) -> None:
    [folder] = export_sessions(SqliteSource(record), [sessions[0].info], tmp_path,
                               fmt="parquet")
    with pytest.raises(RecordingFormatError, match="no samples.csv"):
        import_recording(folder)
