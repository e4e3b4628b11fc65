"""The `fes` command given bad input, as a careless user or a hostile environment would.

Every case must end with exit code 2 and one clear message (ours begins "error:", an
option argparse refuses gets its usage line and "error:"), never a traceback or a hang,
and a file named on the command line is never overwritten.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.detect.calibration_file import load_calibration
from controller.record import read_rows
from controller.terminal_output import BoundedOutput
from tests.test_cli import FES, LIBRARY, WALK, fes

EXERCISE = LIBRARY / "exercise_toe_raises.toml"
GAIT = LIBRARY / "peroneal_gait_gyro.toml"
KEPT_TEXT = "# a file the user wrote\n"
F_SETPIPE_SZ = 1031
"""fcntl command (Linux) that sets a pipe's capacity."""

# Each case: its arguments, with {tmp} a scratch folder holding `kept.toml` and
# `kept.csv` (files that must survive), `not_a_db.sqlite` (text), `folder/` (a folder).
CASES: dict[str, list[str]] = {
    # fes simulate: numbers
    "cadence zero": ["simulate", "--synthetic", "foot", "--cadence", "0"],
    "cadence negative": ["simulate", "--synthetic", "foot", "--cadence", "-10"],
    "cadence nan": ["simulate", "--synthetic", "foot", "--cadence", "nan"],
    "cadence not a number": ["simulate", "--synthetic", "foot", "--cadence", "fast"],
    "duration zero": ["simulate", "--duration", "0"],
    "duration negative": ["simulate", "--duration", "-5"],
    "duration nan": ["simulate", "--duration", "nan"],
    "duration inf": ["simulate", "--duration", "inf"],
    "duration not a number": ["simulate", "--duration", "ten"],
    "own range nan": ["simulate", "--protocol", str(EXERCISE), "--own-rom", "nan"],
    "inject at nan": ["simulate", "--inject", "silent@nan"],
    "inject after the end": ["simulate", "--duration", "5", "--inject", "silent@50"],
    "inject negative span": ["simulate", "--inject", "frozen@2+-1"],
    "inject unknown fault": ["simulate", "--inject", "meteor@3"],
    # fes simulate: options that would be silently ignored
    "synthetic with data": ["simulate", "--synthetic", "foot", "--data", str(WALK)],
    "synthetic with an exercise": ["simulate", "--synthetic", "foot", "--protocol",
                                   str(EXERCISE)],
    "cadence without synthetic": ["simulate", "--cadence", "100"],
    "own range with gait": ["simulate", "--own-rom", "20"],
    "own range with exercise data": ["simulate", "--protocol", str(EXERCISE), "--data",
                                     str(WALK), "--own-rom", "20"],
    "side on the synthetic limb": ["simulate", "--protocol", str(EXERCISE), "--side", "left"],
    "calibration with an exercise": ["simulate", "--protocol", str(EXERCISE),
                                     "--calibration", "{tmp}/kept.toml"],
    # fes simulate: files
    "data missing": ["simulate", "--data", "{tmp}/nowhere_foot_imu.csv"],
    "data a folder": ["simulate", "--data", "{tmp}/folder"],
    "protocol missing": ["simulate", "--protocol", "{tmp}/nowhere.toml"],
    "protocol a folder": ["simulate", "--protocol", "{tmp}/folder"],
    "record a folder": ["simulate", "--db", "{tmp}/folder"],
    "record not a database": ["simulate", "--db", "{tmp}/not_a_db.sqlite"],
    "record /dev/null": ["simulate", "--db", "/dev/null"],
    "record where nothing can be made": ["simulate", "--db", "/proc/fes-record.sqlite"],
    "record a database URL": ["simulate", "--db", "postgresql://nobody@localhost/clinic"],
    "patient empty": ["simulate", "--patient", ""],
    "patient a real name": ["simulate", "--patient", "John Smith"],
    # fes run
    "run calibration with an exercise": ["run", "--stimulator", "sim://", "--imu", "sim://",
                                         "--protocol", str(EXERCISE), "--calibration",
                                         "{tmp}/kept.toml"],
    "run duration nan": ["run", "--stimulator", "sim://", "--imu", "sim://", "--duration",
                         "nan"],
    "run unknown stimulator": ["run", "--stimulator", "bogus://", "--imu", "sim://"],
    "run missing port": ["run", "--stimulator", "serial:///dev/nonexistent-fes", "--imu",
                         "sim://"],
    "run replay missing": ["run", "--stimulator", "sim://", "--imu",
                           "replay://{tmp}/nowhere.csv"],
    "run record a folder": ["run", "--stimulator", "sim://", "--imu", "sim://", "--db",
                            "{tmp}/folder"],
    # fes calibrate
    "calibrate from sim://": ["calibrate", "--imu", "sim://", "--out", "{tmp}/new.toml"],
    "calibrate from replay://": ["calibrate", "--imu", f"replay://{WALK}", "--out",
                                 "{tmp}/new.toml"],
    "calibrate into a missing folder": ["calibrate", "--data", str(WALK), "--out",
                                        "{tmp}/nowhere/new.toml"],
    "calibrate over a file": ["calibrate", "--data", str(WALK), "--out", "{tmp}/kept.toml"],
    "calibrate into a folder": ["calibrate", "--data", str(WALK), "--out", "{tmp}/folder"],
    "calibrate seconds with data": ["calibrate", "--data", str(WALK), "--seconds", "5",
                                    "--out", "{tmp}/new.toml"],
    "calibrate foot with a sensor": ["calibrate", "--imu", "serial:///dev/nonexistent-fes",
                                     "--foot", "left", "--out", "{tmp}/new.toml"],
    "calibrate seconds nan": ["calibrate", "--imu", "serial:///dev/nonexistent-fes",
                              "--seconds", "nan", "--out", "{tmp}/new.toml"],
    "calibrate missing port": ["calibrate", "--imu", "serial:///dev/nonexistent-fes",
                               "--out", "{tmp}/new.toml"],
    # the record's readers
    "sessions record missing": ["sessions", "--db", "{tmp}/nowhere.sqlite"],
    "sessions record a folder": ["sessions", "--db", "{tmp}/folder"],
    "sessions not a database": ["sessions", "--db", "{tmp}/not_a_db.sqlite"],
    "sessions /dev/null": ["sessions", "--db", "/dev/null"],
    "sessions unknown scheme": ["sessions", "--db", "mysql://somewhere/x"],
    "replay record missing": ["replay", "1", "--db", "{tmp}/nowhere.sqlite"],
    "report over a file": ["report", "--out", "{tmp}/kept.toml", "--db",
                           "{tmp}/not_a_db.sqlite"],
    "report record missing": ["report", "--out", "{tmp}/report", "--db",
                              "{tmp}/nowhere.sqlite"],
    "export over a file": ["export", "--all", "--out", "{tmp}/kept.toml", "--db",
                           "{tmp}/not_a_db.sqlite"],
    "export into a missing folder": ["export", "--all", "--out", "{tmp}/nowhere/out", "--db",
                                     "{tmp}/not_a_db.sqlite"],
    "import missing": ["import", "{tmp}/nowhere.csv"],
    "import not a recording": ["import", "{tmp}/not_a_db.sqlite"],
    "import into a missing folder": ["import", str(WALK), "--out", "{tmp}/nowhere/x.csv"],
    "import over a file": ["import", str(WALK), "--out", "{tmp}/kept.csv"],
    "sync to a web address": ["sync", "--to", "http://clinic.example", "--db",
                              "{tmp}/not_a_db.sqlite"],
    "sync record a URL": ["sync", "--to", "postgresql://nobody@127.0.0.1:1/x", "--db",
                          "postgresql://nobody@127.0.0.1:1/y"],
    "sync record a folder": ["sync", "--to", "postgresql://nobody@127.0.0.1:1/x", "--db",
                             "{tmp}/folder"],
    # fes protocol, fes devices
    "protocol check missing": ["protocol", "check", "{tmp}/nowhere.toml"],
    "protocol check a folder": ["protocol", "check", "{tmp}/folder"],
    "protocol check not TOML": ["protocol", "check", "{tmp}/not_a_db.sqlite"],
    "protocol check cadence nan": ["protocol", "check", str(GAIT), "--cadence", "nan-100"],
    "protocol check cadence on an exercise": ["protocol", "check", str(EXERCISE), "--cadence",
                                              "60-120"],
    "devices missing port": ["devices", "/dev/nonexistent-fes"],
    "unknown command": ["frobnicate"],
}


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "kept.toml").write_text(KEPT_TEXT)
    (tmp_path / "kept.csv").write_text(KEPT_TEXT)
    (tmp_path / "not_a_db.sqlite").write_text("not a database\n")
    (tmp_path / "folder").mkdir()
    return tmp_path


def refused(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 2, one clear message, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0] if result.stderr else ""
    assert first.startswith(("error:", "usage:")), result.stderr
    assert "error:" in result.stderr


@pytest.mark.parametrize("args", CASES.values(), ids=CASES.keys())
def test_bad_command_line_is_refused_with_one_message(args: list[str], scratch: Path) -> None:
    argv = [arg.replace("{tmp}", str(scratch)) for arg in args]
    if argv[0] in ("simulate", "run") and "--db" not in argv:
        argv += ["--db", str(scratch / "record.sqlite")]
    result = fes(*argv, timeout_s=90)
    refused(result)
    assert (scratch / "kept.toml").read_text() == KEPT_TEXT
    assert (scratch / "kept.csv").read_text() == KEPT_TEXT
    assert not (scratch / "new.toml").exists()
    if (scratch / "record.sqlite").exists():  # a refusal leaves no session in the record
        assert read_rows(scratch / "record.sqlite", "SELECT count(*) FROM sessions") == [(0,)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_a_read_only_record_is_refused(scratch: Path) -> None:
    record = scratch / "record.sqlite"
    assert fes("simulate", "--duration", "2", "--db", str(record)).returncode == 0
    record.chmod(0o444)
    refused(fes("simulate", "--duration", "2", "--db", str(record)))
    assert read_rows(record, "SELECT count(*) FROM sessions") == [(1,)]


def test_overwrite_replaces_a_calibration_only_when_asked(scratch: Path) -> None:
    out = scratch / "kept.toml"
    result = fes("calibrate", "--data", str(WALK), "--out", str(out), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert load_calibration(out).stride_s > 0


@pytest.mark.parametrize("env_change", [
    {"DISPLAY": None, "WAYLAND_DISPLAY": None, "QT_QPA_PLATFORM": None},
    {"QT_QPA_PLATFORM": "offscreen", "DB": "{tmp}/not_a_db.sqlite"},
    {"QT_QPA_PLATFORM": "offscreen", "DB": "{tmp}/folder"},
    {"QT_QPA_PLATFORM": "offscreen", "CLINIC": "http://clinic.example"},
], ids=["no display", "record not a database", "record a folder", "clinic not postgres"])
def test_gui_refuses_before_opening_a_window(env_change: dict[str, str | None],
                                             scratch: Path) -> None:
    env = dict(os.environ)
    for name, value in env_change.items():
        env.pop(name, None)
        if value is not None and name not in ("DB", "CLINIC"):
            env[name] = value
    db = env_change.get("DB") or "{tmp}/record.sqlite"
    argv = [*FES, "gui", "--db", db.replace("{tmp}", str(scratch))]
    if "CLINIC" in env_change:
        argv += ["--clinic", str(env_change["CLINIC"])]
    refused(subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env,
                           check=False))


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A serial port (a pseudo-terminal) where no sensor ever speaks."""
    controller_fd, port_fd = os.openpty()
    yield os.ttyname(port_fd)
    os.close(port_fd)
    os.close(controller_fd)


def test_a_live_calibration_from_a_silent_sensor_is_refused(silent_port: str,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "calibration.toml"
    refused(fes("calibrate", "--imu", f"serial://{silent_port}", "--seconds", "1", "--out",
                str(out)))
    assert not out.exists()


def test_ctrl_c_outside_a_session_is_a_message_not_a_traceback(silent_port: str,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "calibration.toml"
    with subprocess.Popen([*FES, "calibrate", "--imu", f"serial://{silent_port}", "--seconds",
                           "600", "--out", str(out)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        assert "walk now" in process.stdout.readline()  # it is recording
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.startswith("error: interrupted") and "Traceback" not in stderr
    assert not out.exists()


def full_pipe() -> tuple[int, int]:
    """A pipe, already full, whose reader never reads (read end, write end)."""
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, 4096)
    flags = fcntl.fcntl(write_fd, fcntl.F_GETFL)
    fcntl.fcntl(write_fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            os.write(write_fd, b"x" * 256)
    except BlockingIOError:
        pass
    fcntl.fcntl(write_fd, fcntl.F_SETFL, flags)  # the session gets an ordinary, blocking pipe
    return read_fd, write_fd


def test_a_session_ends_and_exits_when_nobody_reads_its_output(tmp_path: Path) -> None:
    """Once a blocked print held the process for ever; now output waits a bounded time."""
    db = tmp_path / "record.sqlite"
    read_fd, write_fd = full_pipe()
    try:
        process = subprocess.Popen([*FES, "simulate", "--duration", "10", "--db", str(db)],
                                   stdout=write_fd, stderr=write_fd)
        code = process.wait(timeout=120)
    finally:
        os.close(write_fd)
        os.close(read_fd)
    assert code == 0
    assert read_rows(db, "SELECT status FROM sessions") == [("completed",)]
    assert read_rows(db, "SELECT count(*) FROM samples")[0][0] > 1900


def test_bounded_output_gives_up_on_a_full_pipe_and_writes_to_a_reader() -> None:
    read_fd, write_fd = full_pipe()
    with os.fdopen(write_fd, "w") as stream:
        stuck = BoundedOutput(stream, patience_s=0.2)
        stuck.write("summary\n")
        assert stuck.stalled
        stuck.write("dropped at once\n")
    os.close(read_fd)
    reader, writer = os.pipe()
    with os.fdopen(writer, "w") as stream, os.fdopen(reader) as back:
        fine = BoundedOutput(stream, patience_s=5.0)
        fine.write("summary ✓\n" * 100)
        stream.close()
        assert back.read() == "summary ✓\n" * 100
        assert not fine.stalled


def test_help_imports_nothing_heavy() -> None:
    """`fes --help` stays quick: no numerics, GUI, database drivers or rich on the way."""
    heavy = ("numpy", "pydantic", "rich", "PySide6", "matplotlib", "pyarrow", "psycopg",
             "serial", "protocols")
    probe = ("import runpy, sys\n"
             "sys.argv = ['fes', '--help']\n"
             "try:\n    runpy.run_module('controller.cli', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stderr.strip() == "[]"
    assert "simulate" in result.stdout
