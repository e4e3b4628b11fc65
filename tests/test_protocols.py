"""Protocol files: the bundled library loads and round-trips; bad files get one clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import (
    ExerciseProtocol,
    ProtocolError,
    dump_protocol,
    load_protocol,
    parse_protocol,
)
from protocols.loader import library_protocols
from protocols.schema import EXERCISES

GAIT = Path(__file__).resolve().parents[1] / "protocols" / "library" / "peroneal_gait_gyro.toml"


def test_library_has_a_peroneal_gait_protocol() -> None:
    names = [load_protocol(path).name for path in library_protocols()]
    assert any("Peroneal" in name and "gait" in name for name in names)


@pytest.mark.parametrize("path", library_protocols(), ids=lambda p: p.name)
def test_library_files_round_trip_exactly(path: Path) -> None:
    text = path.read_text()
    protocol = load_protocol(path)
    assert dump_protocol(protocol) == text
    assert parse_protocol(dump_protocol(protocol)) == protocol


@settings(max_examples=60, deadline=None)
@given(amplitude_max=st.floats(1.0, 100.0), width=st.integers(20, 500),
       frequency=st.floats(1.0, 100.0), extension=st.floats(0.0, 0.5))
def test_any_valid_protocol_round_trips(amplitude_max: float, width: int, frequency: float,
                                        extension: float) -> None:
    base = load_protocol(GAIT)
    channel = base.channels[0].model_copy(update={
        "amplitude_max_ma": amplitude_max, "amplitude_min_ma": 0.0,
        "amplitude_start_ma": amplitude_max / 2, "pulse_width_us": width})
    candidate = base.model_copy(update={
        "channels": [channel], "extension_s": extension,
        "stimulation": base.stimulation.model_copy(update={"frequency_hz": frequency})})
    try:
        protocol = parse_protocol(dump_protocol(candidate))
    except ProtocolError as exc:
        assert "charge per phase" in str(exc)
        assert amplitude_max * width / 1000 > 50.0
        return
    assert protocol == candidate


def edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BAD = {
    "wrong_type": (lambda t: edit(t, "pulse_width_us = 300", 'pulse_width_us = "wide"'),
                   ["channels[0].pulse_width_us", ":13:"]),
    "out_of_range": (lambda t: edit(t, "frequency_hz = 35.0", "frequency_hz = 250.0"),
                     ["stimulation.frequency_hz", "<= 100", "250", ":16:"]),
    "unknown_key": (lambda t: edit(t, "pulse_width_us = 300", "pulse_width_ms = 0.3"),
                    ["channels[0].pulse_width_ms", "unknown key"]),
    "charge_over_limit": (lambda t: edit(edit(t, "amplitude_max_ma = 40.0",
                                              "amplitude_max_ma = 100.0"),
                                         "charge_per_phase_max_uc = 50.0",
                                         "charge_per_phase_max_uc = 20.0"),
                          ["charge per phase 30 µC", "20 µC"]),
    "window_inverted": (lambda t: edit(t, "amplitude_min_ma = 10.0", "amplitude_min_ma = 30.0"),
                        ["channels[0]", "amplitude_min_ma <= amplitude_start_ma"]),
    "not_toml": (lambda t: t + "\n[stimulation\n", ["not valid TOML"]),
    "tilt_out_of_range": (lambda t: edit(edit(t, 'kind = "gyro"\nstart_on = "heel_off"',
                                              'kind = "tilt"\ntilt_heel_off_deg = 80.0'),
                                         "[safety]", "[safety]"),
                          ["trigger.tilt_heel_off_deg", "> 0 and <= 60", "80"]),
    "bad_trigger": (lambda t: edit(t, 'kind = "gyro"', 'kind = "footswitch"'),
                    ["trigger", "footswitch"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_protocol_is_refused_with_file_field_and_range(case: str, tmp_path: Path) -> None:
    make, expected = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(make(GAIT.read_text()))
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    message = str(refused.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def fes(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", *args],
                          check=False, capture_output=True, text=True, timeout=120)


def refused_by_check(text: str, path: Path) -> str:
    """``fes protocol check`` on ``text`` written to ``path``: exit 2, nothing on stdout, no
    traceback; what it said on stderr."""
    path.write_text(text)
    result = fes("protocol", "check", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    return result.stderr


@pytest.mark.parametrize("case", ["wrong_type", "out_of_range", "unknown_key",
                                  "charge_over_limit"])
def test_protocol_check_exits_2_with_one_message_and_no_traceback(case: str,
                                                                   tmp_path: Path) -> None:
    make, expected = BAD[case]
    stderr = refused_by_check(make(GAIT.read_text()), tmp_path / f"{case}.toml")
    assert expected[0] in " ".join(stderr.split())


def test_missing_protocol_file_exits_2(tmp_path: Path) -> None:
    result = fes("protocol", "check", str(tmp_path / "nowhere.toml"))
    assert result.returncode == 2
    assert "no such protocol file" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_refuses_a_bad_protocol_before_touching_anything(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD["out_of_range"][0](GAIT.read_text()))
    db = tmp_path / "record.sqlite"
    result = fes("simulate", "--protocol", str(path), "--db", str(db))
    assert result.returncode == 2
    assert "stimulation.frequency_hz" in " ".join(result.stderr.split())
    assert not db.exists()


def test_protocol_check_accepts_the_bundled_protocol() -> None:
    result = fes("protocol", "check", str(GAIT))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


EXERCISE = GAIT.parent / "exercise_seated_dorsiflexion.toml"
BAD_EXERCISE = {
    "hold_over_the_burst_limit": (lambda t: edit(t, "hold_s = 3.0", "hold_s = 12.0"),
                                  ["stimulated phases (hold + rise)", "13.5 s",
                                   "max_burst_s 6 s", "at most 10 s"]),
    "burst_over_the_exercise_limit": (lambda t: edit(t, "max_burst_s = 6.0",
                                                     "max_burst_s = 12.0"),
                                      ["stimulation.max_burst_s", "<= 10.0", ":18:"]),
    "no_reps": (lambda t: edit(t, "reps = 10", "reps = 0"), ["exercise.reps", ">= 1", ":26:"]),
    "unknown_exercise": (lambda t: edit(t, 'exercise = "seated_dorsiflexion"',
                                        'exercise = "jumping_jacks"'),
                         ["exercise.exercise", "'toe_raises'", "jumping_jacks"]),
    "over_the_duty_cycle": (lambda t: edit(t, "rest_between_reps_s = 5.0",
                                           "rest_between_reps_s = 0.0"),
                            ["duty-cycle limit", "lengthen the rest"]),
    "unknown_mode": (lambda t: edit(t, 'mode = "exercise"', 'mode = "dance"'),
                     [":3:", "'dance' is not a mode", "'gait', 'exercise'"]),
    "gait_key_in_an_exercise": (lambda t: edit(t, 'leg = "left"', 'leg = "left"\n'
                                               "extension_s = 0.1"),
                                ["extension_s", "unknown key"]),
}


@pytest.mark.parametrize("case", sorted(BAD_EXERCISE))
def test_bad_exercise_protocol_exits_2_with_one_clear_message(case: str,
                                                              tmp_path: Path) -> None:
    make, expected = BAD_EXERCISE[case]
    stderr = refused_by_check(make(EXERCISE.read_text()), tmp_path / f"{case}.toml")
    assert len(stderr.strip().splitlines()) == 1
    message = " ".join(stderr.split())
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_the_library_has_one_protocol_per_exercise() -> None:
    exercises = [protocol.exercise.exercise for path in library_protocols()
                 if isinstance(protocol := load_protocol(path), ExerciseProtocol)]
    assert sorted(exercises) == sorted(EXERCISES)
