"""The `fes` command as a newcomer runs it: real subprocesses, real files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.detect.calibration_file import load_calibration
from controller.record import read_rows

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "simulator" / "data" / "walk1_2x20m_foot_imu.csv"
LIBRARY = ROOT / "protocols" / "library"
EXERCISE_DATA = ROOT.parent / "shared" / "data" / "exercise"
needs_exercise_data = pytest.mark.skipif(
    not EXERCISE_DATA.is_dir(), reason="needs ../shared/data/exercise next to the checkout")
FES = [sys.executable, "-m", "controller.cli"]


def fes(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([*FES, *args], check=False, capture_output=True, text=True,
                          timeout=timeout_s, env=env)


def test_simulate_runs_the_bundled_session_and_prints_a_summary(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    result = fes("simulate", "--duration", "15", "--db", str(db))
    assert result.returncode == 0, result.stderr
    for line in ("session summary", "stimulated steps", "missed heel strikes", "charge ch1",
                 "faults", str(db)):
        assert line in result.stdout
    status, = read_rows(db, "SELECT status FROM sessions")[0]
    assert status == "completed"
    assert read_rows(db, "SELECT count(*) FROM samples")[0][0] > 2900


def test_simulate_with_an_injected_fault_reports_it_and_exits_1(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    result = fes("simulate", "--duration", "12", "--inject", "frozen@6", "--db", str(db))
    assert result.returncode == 1
    assert "sensor_frozen" in result.stdout
    assert read_rows(db, "SELECT kind FROM faults") == [("sensor_frozen",)]


@pytest.mark.parametrize("args", [
    ["simulate", "--data", "nowhere_foot_imu.csv"],
    ["simulate", "--inject", "meteor@3"],
    ["calibrate", "--data", "nowhere.csv", "--out", "x.toml"],
])
def test_bad_input_exits_2_with_a_message_not_a_traceback(args: list[str],
                                                          tmp_path: Path) -> None:
    result = fes(*args, "--db", str(tmp_path / "r.sqlite")) if args[0] == "simulate" else \
        fes(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr


def recorded_samples(db: Path) -> int:
    """Samples a running session has committed so far (0 while its file is still being made)."""
    try:
        return int(read_rows(db, "SELECT count(*) FROM samples")[0][0])
    except sqlite3.OperationalError:
        return 0


def wait_until_recording(process: subprocess.Popen[str], db: Path) -> None:
    """Until a session started by ``process`` has samples in its record (a live session)."""
    deadline = time.monotonic() + 30
    while recorded_samples(db) <= 200:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the session never started recording"
        time.sleep(0.05)


def test_ctrl_c_is_an_emergency_stop_and_the_record_says_so(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    process = subprocess.Popen([*FES, "simulate", "--realtime", "--db", str(db)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_recording(process, db)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 1
    finally:
        process.kill()
        process.wait()
    assert read_rows(db, "SELECT status FROM sessions") == [("emergency_stop",)]
    assert read_rows(db, "SELECT kind, detail FROM faults") == [("emergency_stop", "SIGINT")]
    fault_s = read_rows(db, "SELECT t_s FROM faults")[0][0]
    assert read_rows(db, "SELECT count(*) FROM commands WHERE t_s > ? AND amplitude_ma > 0",
                     (fault_s,)) == [(0,)]


def test_keys_on_the_terminal_drive_the_running_session(tmp_path: Path) -> None:
    """The live line is a front end too: +, p, p and space reach the session through its
    runner, with standard input a real terminal (a pseudo-terminal here)."""
    db = tmp_path / "record.sqlite"
    leader, follower = os.openpty()
    process = subprocess.Popen([*FES, "simulate", "--realtime", "--db", str(db)],
                               stdin=follower, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    os.close(follower)
    try:
        wait_until_recording(process, db)
        for key in (b"+", b"p", b"p", b" "):
            os.write(leader, key)
            time.sleep(0.5)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        os.close(leader)
    notices = read_rows(db, "SELECT kind, detail FROM notices ORDER BY t_s")
    assert notices == [("nudge", "channel 1: 25 mA"), ("pause", "output paused"),
                       ("resume", "output resumes at the next cycle"),
                       ("stop", "session ended by keyboard")]
    assert read_rows(db, "SELECT status FROM sessions") == [("stopped",)]


def test_calibrate_writes_a_calibration_the_detector_can_load(tmp_path: Path) -> None:
    out = tmp_path / "calibration.toml"
    result = fes("calibrate", "--data", str(WALK), "--foot", "right", "--out", str(out))
    assert result.returncode == 0, result.stderr
    calibration = load_calibration(out)
    assert abs(calibration.axis[1]) > 0.85, "walk 1's sagittal axis is near the sensor's y"
    assert 0.8 < calibration.stride_s < 1.5


def test_simulate_walks_a_synthetic_shank_sensor(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    result = fes("simulate", "--synthetic", "shank", "--duration", "30", "--db", str(db))
    assert result.returncode == 0, result.stderr
    steps, stimulated = read_rows(
        db, "SELECT count(*), sum(charge_uc > 0) FROM steps WHERE outcome = 'completed'")[0]
    assert steps >= 20
    assert stimulated >= steps - 2


def test_the_first_steps_are_stimulated_with_or_without_a_saved_calibration(
        tmp_path: Path) -> None:
    out = tmp_path / "calibration.toml"
    assert fes("calibrate", "--data", str(WALK), "--out", str(out)).returncode == 0
    unstimulated = {}
    for name, extra in (("self", []), ("saved", ["--calibration", str(out)])):
        db = tmp_path / f"{name}.sqlite"
        result = fes("simulate", "--duration", "12", "--db", str(db), *extra)
        assert result.returncode == 0, result.stderr
        unstimulated[name] = read_rows(
            db, "SELECT count(*) FROM steps WHERE outcome = 'completed' AND charge_uc = 0")[0][0]
    assert unstimulated == {"self": 0, "saved": 0}


@pytest.mark.parametrize(("text", "message"), [
    (("time_s,right_acc_x,right_acc_y,right_acc_z,right_gyr_x,right_gyr_y,right_gyr_z\n"
     "0,0,0,9.8,0,0,0\n0.01,0,0,9.8,0,0,0\n"), "it holds the right foot (choose with --foot)"),
    (("time_s,left_acc_x,left_acc_y,left_acc_z,left_gyr_x,left_gyr_y,left_gyr_z\n"
     "0,0,0,nine,0,0,0\n"), "a value is not a number"),
    ("", "no left-foot IMU data"),
    ("time_s,left_acc_x,left_acc_y,left_acc_z,left_gyr_x,left_gyr_y,left_gyr_z\n"
     + "".join(f"{k / 10},0,0,9.8,0,0,0\n" for k in range(50)), "needs at least 50 Hz"),
    (("time_s,left_acc_x,left_acc_y,left_acc_z,left_gyr_x,left_gyr_y,left_gyr_z\n"
     "1,0,0,9.8,0,0,0\n1,0,0,9.8,0,0,0\n"), "timestamps do not increase"),
])
def test_a_recording_that_cannot_be_used_is_refused_with_the_reason(
        text: str, message: str, tmp_path: Path) -> None:
    data = tmp_path / "walk_foot_imu.csv"
    data.write_text(text)
    result = fes("simulate", "--data", str(data), "--db", str(tmp_path / "r.sqlite"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_runs_an_exercise_on_the_synthetic_limb_with_cues_and_a_summary(
        tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    result = fes("simulate", "--protocol", str(LIBRARY / "exercise_seated_dorsiflexion.toml"),
                 "--duration", "30", "--db", str(db))
    assert result.returncode == 0, result.stderr
    for line in ("Keep still", "Lift (1 of 10, set 1 of 3)", "Hold 3 s", "Lower slowly",
                 "repetitions done", "mean range of motion", "holds achieved", "charge ch1"):
        assert line in result.stdout
    reps = read_rows(db, "SELECT peak_angle_deg, stimulated FROM repetitions")
    assert len(reps) >= 2 and all(stimulated for _, stimulated in reps)
    assert read_rows(db, "SELECT count(*) FROM cues")[0][0] >= 8


@needs_exercise_data
def test_simulate_counts_the_repetitions_of_a_real_recording(tmp_path: Path) -> None:
    result = fes("simulate", "--protocol", str(LIBRARY / "exercise_knee_extension.toml"),
                 "--data", str(EXERCISE_DATA / "yb_s3_knee_extension_9reps_imu.csv"),
                 "--side", "right", "--db", str(tmp_path / "r.sqlite"))
    assert result.returncode == 0, result.stderr
    assert read_rows(tmp_path / "r.sqlite", "SELECT count(*) FROM repetitions")[0][0] == 9


def test_a_walk_option_with_an_exercise_protocol_is_refused(tmp_path: Path) -> None:
    result = fes("simulate", "--protocol", str(LIBRARY / "exercise_toe_raises.toml"),
                 "--synthetic", "foot", "--db", str(tmp_path / "r.sqlite"))
    assert result.returncode == 2
    assert "synthetic limb" in result.stderr and "Traceback" not in result.stderr
