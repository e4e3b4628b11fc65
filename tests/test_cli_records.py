"""The record's commands as a newcomer runs them: report, export, import, from the shell."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]

from controller.assembly.simulated import simulate_exercise, simulate_walk
from controller.record import read_rows
from protocols import ExerciseProtocol, load_protocol
from protocols.loader import LIBRARY
from simulator import BUNDLED_WALK
from tests.test_cli import fes


def two_sessions(db: Path) -> None:
    simulate_walk(load_protocol(LIBRARY / "peroneal_gait_gyro.toml"), db,
                  patient="P-001").runner().run()
    exercise = load_protocol(LIBRARY / "exercise_seated_dorsiflexion.toml")
    assert isinstance(exercise, ExerciseProtocol)
    rig, _ = simulate_exercise(exercise, db, patient="P-001", duration_s=40)
    rig.runner().run()


def test_fes_report_writes_the_html_pdf_and_figures_of_a_patient(tmp_path: Path) -> None:
    db, out = tmp_path / "record.sqlite", tmp_path / "report"
    two_sessions(db)
    result = fes("report", "--patient", "P-001", "--out", str(out), "--db", str(db))
    assert result.returncode == 0, result.stderr
    written = {p.name for p in out.iterdir()}
    assert {"report.html", "report.pdf", "progress-P-001.png", "session-1.png",
            "session-2.png"} <= written
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    missing = fes("report", "--session", "9", "--out", str(out), "--db", str(db))
    assert missing.returncode == 2 and "no session matches" in missing.stderr


def test_fes_export_writes_every_table_of_a_patients_sessions(tmp_path: Path) -> None:
    db, out = tmp_path / "record.sqlite", tmp_path / "export"
    two_sessions(db)
    result = fes("export", "--patient", "P-001", "--format", "parquet", "--out", str(out),
                 "--db", str(db))
    assert result.returncode == 0, result.stderr
    folders = sorted(out.iterdir())
    assert len(folders) == 2
    exported = sum(pq.read_table(folder / "samples.parquet").num_rows for folder in folders)
    assert exported == read_rows(db, "SELECT count(*) FROM samples")[0][0]
    nobody = fes("export", "--patient", "P-404", "--out", str(out), "--db", str(db))
    assert nobody.returncode == 2 and "P-404" in nobody.stderr


def test_fes_import_converts_a_two_foot_walk_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "walk.csv"
    result = fes("import", str(BUNDLED_WALK), "--foot", "right", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "204.8 Hz" in result.stdout and out.exists()
    simulated = fes("simulate", "--data", str(out), "--db", str(tmp_path / "r.sqlite"))
    assert simulated.returncode == 0, simulated.stderr
    again = fes("import", str(BUNDLED_WALK), "--out", str(out))
    assert again.returncode == 2 and "nothing is overwritten" in again.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,acc_x\n0,1\n")
    refused = fes("import", str(bad))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
