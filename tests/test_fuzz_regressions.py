"""Inputs that ``benchmarks/fuzz.py`` found escaping a loader or decoder, kept as tests.

Each one escaped as a traceback (or printed a library warning) before its fix; now each is
the loader's own one-line refusal, naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.detect.calibration_file import CalibrationFileError, load_calibration
from controller.devices.recording import (
    RecordingFormatError,
    load_recording,
    load_reference_events,
)
from controller.exchange import import_recording
from protocols.loader import LIBRARY, ProtocolError, parse_protocol

HEADER = b"time_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n"
ROW = b"0.0,0.9,2.8,9.4,-0.1,0.0,-0.1\n"
GAIT_PROTOCOL = (LIBRARY / "peroneal_gait_gyro.toml").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def no_warnings() -> Iterator[None]:
    """A warning printed by a library is no clear message either."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("mode", ["[1]", "{ a = 1 }"])
def test_protocol_mode_that_is_not_a_string_is_refused(mode: str) -> None:
    # fuzz: TypeError "unhashable type" from the mode check
    with pytest.raises(ProtocolError, match=r"fuzz\.toml:1: mode: .* is not a mode"):
        parse_protocol(f"mode = {mode}\n", "fuzz.toml")


def test_protocol_nested_too_deeply_is_refused() -> None:
    # fuzz: RecursionError from tomllib on "[" * 3000 in place of a value
    text = GAIT_PROTOCOL.replace('leg = "left"', "leg = " + "[" * 3000)
    with pytest.raises(ProtocolError, match="nested too deeply"):
        parse_protocol(text, "fuzz.toml")


def test_protocol_error_quotes_a_huge_value_cut_short() -> None:
    text = GAIT_PROTOCOL.replace("duration_s = 600.0", "duration_s = " + "9" * 400)
    with pytest.raises(ProtocolError) as refused:
        parse_protocol(text, "fuzz.toml")
    message = str(refused.value)
    assert "session.duration_s" in message and "(400 characters)" in message
    assert len(message) < 250


@pytest.mark.parametrize("text", [
    # fuzz: RecursionError from tomllib
    '[gait_calibration]\naxis = [0.0, 1.0, ' + "{a=" * 600 + "\n",
    # OverflowError: an integer beyond any float
    "[gait_calibration]\naxis = [0.0, 1.0, 0.0]\nswing_peak_dps = " + "9" * 400 +
    "\npush_off_peak_dps = 120.0\nimpact_mps2 = 25.0\nstride_s = 1.1\n",
])
def test_calibration_file_refused_in_words(tmp_path: Path, text: str) -> None:
    path = tmp_path / "calibration.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalibrationFileError, match="calibration.toml: "):
        load_calibration(path)


def _recording(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "recording.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data", [
    # fuzz: csv.Error "field larger than field limit", in the header and in a row
    b'"' + b"a" * 200_000 + b'",acc_x\n' + ROW,
    HEADER + b'"' + b"a" * 200_000 + b'"\n' + ROW,
    # fuzz: UnicodeDecodeError while looking again for the cell numpy refused (a quoted
    # number, which the csv module reads as a number, then a byte that is not UTF-8)
    HEADER + ROW.replace(b"0.9", b'"0.9"') + ROW * 1000 + b"0.1,\xb5\n",
    # numpy's UserWarning "input contained no data", then the refusal
    HEADER,
    # RuntimeWarning: overflow in the time step, and the recording accepted
    HEADER + b"-1e308,1,2,3,4,5,6\n1e308,1,2,3,4,5,6\n",
])
def test_recording_refused_in_words(tmp_path: Path, data: bytes) -> None:
    path = _recording(tmp_path, data)
    with pytest.raises(RecordingFormatError, match="recording.csv"):
        load_recording(path)
    with pytest.raises(RecordingFormatError, match="recording.csv"):
        import_recording(path)


@pytest.mark.parametrize(("events", "problem"), [
    # KeyError 'foot': a file without the columns
    (b"side,kind,time\nleft,IC,1.0\n", "need the column"),
    # ValueError from float(): a time that is not a number
    (b"foot,event,sample,time_s\nleft,IC,3,soon\n", "line 2: time_s is not a number"),
    # TypeError float(None): a short row
    (b"foot,event,sample,time_s\nleft,IC\n", "line 2: time_s is not a number"),
    (b"foot,event,sample,time_s\nleft,FC,3,nan\n", "line 2: time_s is not a number"),
])
def test_reference_events_refused_in_words(tmp_path: Path, events: bytes,
                                           problem: str) -> None:
    imu = tmp_path / "walk_foot_imu.csv"
    imu.write_bytes(b"time_s,left_acc_x,left_acc_y,left_acc_z,left_gyr_x,left_gyr_y,"
                    b"left_gyr_z\n0,1,2,3,4,5,6\n0.01,1,2,3,4,5,6\n")
    events_path = tmp_path / "walk_reference_events.csv"
    events_path.write_bytes(events)
    with pytest.raises(RecordingFormatError, match=problem):
        load_recording(imu, "left")
    with pytest.raises(RecordingFormatError, match=problem):
        load_reference_events(events_path, "left")


def test_reference_events_of_the_other_foot_are_skipped(tmp_path: Path) -> None:
    """The refusals above do not refuse rows the loader never uses."""
    path = tmp_path / "events.csv"
    path.write_bytes(b"foot,event,sample,time_s\nright,IC,1,soon\nleft,XX,2,\n"
                     b"left,FC,3,0.5\nleft,IC,4,0.25\n")
    assert [event.t_s for event in load_reference_events(path, "left")] == [0.25, 0.5]
