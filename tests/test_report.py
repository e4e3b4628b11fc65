"""``fes report``: real records made by short simulated sessions, turned into a report.

The numbers the report shows are checked against the record's own rows, the files
against what a browser, an image viewer and a PDF reader need.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from controller.assembly.simulated import simulate_exercise, simulate_walk
from controller.clinic.source import PostgresSource
from controller.clinic.sync import sync_to_postgres
from controller.record.patients import add_patient
from controller.record.reader import SqliteSource, list_sessions, load_session, read_rows
from controller.record.schema import open_record
from controller.report import build_report, progress_figure, session_figure, session_outcome
from protocols import ExerciseProtocol, load_protocol
from simulator.motion import MotionFault

LIBRARY = Path(__file__).resolve().parents[1] / "protocols" / "library"
GAIT = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")
EXERCISE = load_protocol(LIBRARY / "exercise_seated_dorsiflexion.toml")
BAND = load_protocol(LIBRARY / "exercise_band_dorsiflexion.toml")
FROZEN_AT_S = 20.0


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """P-001 walked, exercised, and walked again into a sensor fault; P-002 exercised
    with a band; P-003 is registered and has no session yet."""
    path = tmp_path_factory.mktemp("report") / "record.sqlite"
    assert isinstance(EXERCISE, ExerciseProtocol) and isinstance(BAND, ExerciseProtocol)
    simulate_walk(GAIT, path, patient="P-001").runner().run()
    rig, _ = simulate_exercise(EXERCISE, path, patient="P-001", duration_s=30.0)
    rig.runner().run()
    rig = simulate_walk(GAIT, path, patient="P-001")
    rig.motion.inject(MotionFault.FROZEN, FROZEN_AT_S)
    rig.runner().run()
    rig, _ = simulate_exercise(BAND, path, patient="P-002", duration_s=20.0)
    rig.runner().run()
    add_patient(path, "P-003")
    return path


@pytest.fixture(scope="module")
def patient_report(record: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[Path, list[Path], list[tuple[int, int]]]:
    out = tmp_path_factory.mktemp("out")
    calls: list[tuple[int, int]] = []
    files = build_report(SqliteSource(record), out, patient="P-001",
                         progress=lambda done, total: calls.append((done, total)))
    return out, files, calls


def count(record: Path, table: str, session_id: int) -> int:
    return int(read_rows(record, f"SELECT COUNT(*) FROM {table} WHERE session_id = ?",
                         (session_id,))[0][0])


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def test_a_patient_report_has_every_file(
        record: Path, patient_report: tuple[Path, list[Path], list[tuple[int, int]]]) -> None:
    out, files, calls = patient_report
    ids = [info.id for info in list_sessions(SqliteSource(record), "P-001")]
    assert len(ids) == 3
    expected = {"report.html", "report.pdf", "progress-P-001.png",
                *(f"session-{i}.png" for i in ids)}
    assert {f.name for f in files} == expected
    assert all(f.parent == out and f.stat().st_size > 0 for f in files)
    assert calls[-1][0] == calls[-1][1] and [c[0] for c in calls] == list(
        range(1, len(calls) + 1))


def test_the_html_names_the_sessions_and_the_recorded_numbers(
        record: Path, patient_report: tuple[Path, list[Path], list[tuple[int, int]]]) -> None:
    text = (patient_report[0] / "report.html").read_text(encoding="utf-8")
    walk, exercise, faulted = list_sessions(SqliteSource(record), "P-001")
    for info in (walk, exercise, faulted):
        assert f"Session {info.id}: {info.protocol_name}" in text
    reps = count(record, "repetitions", exercise.id)
    assert reps >= 2
    assert f"<td class=num>{reps} (30)</td>" in text
    steps = count(record, "steps", walk.id)
    assert f"<td class=num>{walk.id}</td>" in text and f"<td class=num>{steps}</td>" in text
    assert faulted.status == "faulted" and "sensor_frozen" in text
    assert "not a certified medical device" in text
    assert "P-002" not in text
    assert text.count("data:image/png;base64,") == 4
    assert "@media print" in text


def test_the_pngs_are_real_pictures_of_a_printable_size(
        patient_report: tuple[Path, list[Path], list[tuple[int, int]]]) -> None:
    for png in (f for f in patient_report[1] if f.suffix == ".png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = imread(png)
        height, width = pixels.shape[:2]
        assert 1000 <= width <= 2000 and 600 <= height <= 2000, png.name
        assert float(np.std(pixels[..., :3])) > 0.05, f"{png.name} is blank"


def test_the_pdf_opens_with_a_page_per_figure_and_the_tables(
        patient_report: tuple[Path, list[Path], list[tuple[int, int]]]) -> None:
    pdf = patient_report[0] / "report.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    # overview tables, progress, and for each of 3 sessions its figure and its tables
    assert pdf_pages(pdf) >= 2 + 2 * 3


def test_outcomes_are_the_records_numbers(record: Path) -> None:
    source = SqliteSource(record)
    walk, exercise, faulted = (session_outcome(load_session(source, info))
                               for info in list_sessions(source, "P-001"))
    assert walk.gait is not None and walk.exercise is None
    assert walk.gait.steps == count(record, "steps", walk.info.id)
    assert walk.gait.strides and all(s.stimulated for s in walk.gait.strides)
    assert 80 < walk.gait.summary("cadence_spm").median < 140
    assert walk.gait.comparison["cadence_spm"].unstimulated.count == 0
    assert exercise.exercise is not None
    assert exercise.exercise.reps_done == count(record, "repetitions", exercise.info.id)
    assert exercise.exercise.reps_prescribed == 30
    assert exercise.exercise.mean_rom_deg > exercise.exercise.target_rom_deg / 2
    assert [f.kind for f in faulted.faults] == ["sensor_frozen"]
    assert faulted.faults[0].t_s == pytest.approx(FROZEN_AT_S, abs=1.0)


def test_one_session_by_uuid_has_no_progress_figure(record: Path, tmp_path: Path) -> None:
    source = SqliteSource(record)
    band = list_sessions(source, "P-002")[0]
    files = build_report(source, tmp_path, session=band.uuid[:8])
    assert {f.name for f in files} == {"report.html", "report.pdf", f"session-{band.id}.png"}
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"Session {band.id}: {band.protocol_name}" in text
    assert "P-001" not in text


def test_what_is_not_there_is_named(record: Path, tmp_path: Path) -> None:
    source = SqliteSource(record)
    with pytest.raises(LookupError, match="no session matches '999'"):
        build_report(source, tmp_path, session="999")
    with pytest.raises(LookupError, match="no patient 'P-404'"):
        build_report(source, tmp_path, patient="P-404")
    band = list_sessions(source, "P-002")[0]
    with pytest.raises(LookupError, match="not patient P-001's"):
        build_report(source, tmp_path, patient="P-001", session=band.id)
    assert not list(tmp_path.iterdir())


def test_a_patient_without_sessions_and_an_empty_record_still_report(
        record: Path, tmp_path: Path) -> None:
    build_report(SqliteSource(record), tmp_path / "p3", patient="P-003")
    text = (tmp_path / "p3" / "report.html").read_text(encoding="utf-8")
    assert "No sessions recorded for patient P-003" in text
    empty = tmp_path / "empty.sqlite"
    open_record(empty).close()
    files = build_report(SqliteSource(empty), tmp_path / "empty")
    assert [f.name for f in files] == ["report.html", "report.pdf"]
    assert "No sessions in this record." in files[0].read_text(encoding="utf-8")
    assert files[1].read_bytes().startswith(b"%PDF-") and pdf_pages(files[1]) == 1


def test_figures_show_what_the_sessions_have(record: Path) -> None:
    source = SqliteSource(record)
    infos = list_sessions(source)
    walk = load_session(source, infos[0])
    assert len(session_figure(walk).axes) == 3
    assert len(session_figure(walk, window_s=(0.0, 1e6)).axes) == 2
    outcomes = [session_outcome(load_session(source, info)) for info in infos]
    assert len(progress_figure(outcomes).axes) == 7
    assert len(progress_figure([o for o in outcomes if o.gait]).axes) == 4
    empty = progress_figure([])
    assert not empty.axes and any("No sessions" in t.get_text() for t in empty.texts)


def test_the_clinic_database_gives_the_same_report(
        record: Path, patient_report: tuple[Path, list[Path], list[tuple[int, int]]],
        clinic_url: str, tmp_path: Path) -> None:
    sync_to_postgres(record, clinic_url)
    with PostgresSource(clinic_url) as clinic:
        files = build_report(clinic, tmp_path, patient="P-001")
        with pytest.raises(LookupError, match="no patient 'P-404'"):
            build_report(clinic, tmp_path, patient="P-404")
    station = SqliteSource(record)
    text = files[0].read_text(encoding="utf-8")
    station_text = (patient_report[0] / "report.html").read_text(encoding="utf-8")
    for info in list_sessions(station, "P-001"):
        assert info.uuid in text
    strides = re.compile(r"Per stride.*?</table>", re.DOTALL)
    assert len(strides.findall(text)) == 2
    assert strides.findall(text) == strides.findall(station_text)
    assert pdf_pages(files[1]) == pdf_pages(patient_report[0] / "report.pdf")
