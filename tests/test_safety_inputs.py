"""Numbers that reach the supervisor from outside its loop: hard limits, configuration,
watchdog settings, nudges and requests. Each bad one is refused with a message and
changes nothing; none may switch a protection off or freeze the output."""

from __future__ import annotations

import math
import re
from dataclasses import fields, replace
from pathlib import Path

import pytest

from controller.assembly import build_simulated_session
from controller.devices.recording import load_recording
from controller.record import read_rows
from controller.runner import SessionRunner
from controller.safety import SafetySupervisor
from controller.safety_limits import HARD_LIMITS, ChannelLimits, HardLimits, LimitViolation
from controller.types import FaultKind
from protocols import ProtocolError, load_protocol, parse_protocol
from protocols.loader import LIBRARY
from simulator import BUNDLED_WALK
from simulator.inmemory import InMemoryStimulator
from tests.test_safety import MemoryLog, Rig, config

GAIT = LIBRARY / "peroneal_gait_gyro.toml"
NOT_FINITE = [math.nan, math.inf, -math.inf]

WIDER = {"amplitude_max_ma": 126.0, "pulse_width_min_us": 10, "pulse_width_max_us": 1000,
         "frequency_min_hz": 0.5, "frequency_max_hz": 150.0, "charge_per_phase_max_uc": 60.0,
         "ramp_max_s": 5.0, "burst_max_gait_s": 3.0, "burst_max_exercise_s": 30.0,
         "duty_cycle_max_gait": 1.0, "duty_cycle_max_exercise": 0.9, "duty_window_s": 600.0,
         "patient_step_ma": 5.0, "acc_full_scale_mps2": 1000.0, "gyro_full_scale_dps": 4000.0,
         "full_scale_allowance": 2.0, "loop_late_max_s": 1.0, "channel_max": 16}


def test_every_hard_limit_has_a_wider_case_here() -> None:
    assert set(WIDER) == {item.name for item in fields(HardLimits)}


@pytest.mark.parametrize(("name", "value"), sorted(WIDER.items()))
def test_a_hard_limit_cannot_be_widened_by_a_constructor_argument(name: str,
                                                                 value: float) -> None:
    with pytest.raises(LimitViolation, match=name):
        HardLimits(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [*NOT_FINITE, 0.0, -1.0])
def test_a_hard_limit_must_be_a_finite_number_above_zero(value: float) -> None:
    with pytest.raises(LimitViolation, match="amplitude_max_ma"):
        HardLimits(amplitude_max_ma=value)


def test_a_narrowed_limit_refuses_a_channel_over_it_and_allows_one_under_it() -> None:
    narrow = HardLimits(amplitude_max_ma=30.0)
    with pytest.raises(LimitViolation, match="over 30.0 mA"):
        SafetySupervisor(InMemoryStimulator(lambda: 0.0), config(), MemoryLog(), narrow)
    under = config(channels=(ChannelLimits(1, 300, 10.0, 30.0, 20.0),))
    assert SafetySupervisor(InMemoryStimulator(lambda: 0.0), under, MemoryLog(),
                            narrow).setting_ma(1) == 20.0
    with pytest.raises(LimitViolation, match="amplitude_max_ma 120"):
        SafetySupervisor(InMemoryStimulator(lambda: 0.0),
                         config(channels=(ChannelLimits(1, 300, 10.0, 120.0, 20.0),)),
                         MemoryLog(), replace(HARD_LIMITS, amplitude_max_ma=120.0))


@pytest.mark.parametrize("changes", [
    {"loop_late_s": math.nan}, {"loop_late_s": math.inf}, {"loop_late_s": 0.0},
    {"loop_late_s": 0.5}, {"charge_per_phase_max_uc": math.nan},
    {"charge_per_phase_max_uc": 80.0}, {"frequency_hz": math.nan}, {"ramp_up_s": math.inf},
    {"max_burst_s": math.nan}, {"duty_cycle_max": math.nan}, {"mode": "sprint"},
    {"channels": (ChannelLimits(0, 300, 10.0, 40.0, 20.0),)},
    {"channels": (ChannelLimits(9, 300, 10.0, 40.0, 20.0),)},
    {"channels": (ChannelLimits(True, 300, 10.0, 40.0, 20.0),)},
    {"channels": (ChannelLimits(1, 300, 10.0, math.nan, 20.0),)},
    {"channels": (ChannelLimits(1, 300.0, 10.0, 40.0, 20.0),)},  # type: ignore[arg-type]
], ids=repr)
def test_a_configuration_number_that_is_not_finite_or_in_range_is_refused(
        changes: dict[str, object]) -> None:
    with pytest.raises(LimitViolation):
        Rig(config(**changes))


@pytest.mark.parametrize("watchdog_s", [*NOT_FINITE, 0.0, -0.05, 0.5])
def test_a_loop_watchdog_that_could_not_fire_in_time_is_refused(tmp_path: Path,
                                                               watchdog_s: float) -> None:
    rig = build_simulated_session(load_protocol(GAIT), load_recording(BUNDLED_WALK, "left")
                                  .samples(), None, source="test")
    with pytest.raises(LimitViolation, match="loop watchdog"):
        SessionRunner(rig.session, watchdog_s=watchdog_s)
    with pytest.raises(ValueError, match="status interval"):
        SessionRunner(rig.session, status_interval_s=math.nan)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0.0"])
@pytest.mark.parametrize("field", ["sensor_silent_s", "sensor_frozen_s"])
def test_a_protocols_sensor_limit_must_be_finite_and_in_range(field: str, value: str) -> None:
    text = GAIT.read_text(encoding="utf-8")
    changed = re.sub(rf"^{field} = .*$", f"{field} = {value}", text, count=1, flags=re.MULTILINE)
    assert changed != text
    with pytest.raises(ProtocolError, match=field):
        parse_protocol(changed)


BAD_NUDGES: list[tuple[object, object]] = [
    (1, math.nan), (1, math.inf), (1, -math.inf), (1, 0.5), (1, True), (1, "1"),
    (1, 10 ** 400), (1, 1e300), (7, 1), (True, 1), (1.0, 1), (math.nan, 1)]


@pytest.mark.parametrize(("channel", "steps"), BAD_NUDGES, ids=repr)
def test_a_bad_nudge_is_refused_with_a_notice_and_changes_nothing(channel: object,
                                                                  steps: object) -> None:
    rig = Rig()
    rig.run(0.3, intensity=1.0)
    at_plateau = rig.device_ma()
    assert at_plateau == 20
    assert rig.supervisor.nudge(rig.now, channel, steps) is None  # type: ignore[arg-type]
    assert rig.log.notices[-1][1] == "nudge_refused"
    rig.run(0.5, intensity=1.0)
    assert rig.supervisor.setting_ma(1) == 20.0 and rig.supervisor.setting_ma(2) == 10.0
    assert rig.device_ma() == at_plateau
    assert not rig.supervisor.latched
    rig.run(1.0, intensity=0.0)
    rig.run(0.3, intensity=1.0)
    assert rig.device_ma() == at_plateau, "the next burst comes out as before"


def test_a_whole_nudge_given_as_a_float_moves_whole_steps() -> None:
    rig = Rig()
    assert rig.supervisor.nudge(rig.now, 1, 2.0) == 22.0  # type: ignore[arg-type]
    assert rig.supervisor.nudge(rig.now, 1, -1) == 21.0


@pytest.mark.parametrize(("channel", "intensity"), [
    (1, math.nan), (1, math.inf), (1, -0.1), (True, 0.5), (1.0, 0.5)], ids=repr)
def test_a_request_outside_zero_to_one_or_on_no_channel_latches_with_output_off(
        channel: object, intensity: float) -> None:
    rig = Rig()
    rig.run(0.3, intensity=1.0)
    rig.supervisor.request(rig.now, channel, intensity)  # type: ignore[arg-type]
    assert [f.kind for f in rig.supervisor.faults] == [FaultKind.LIMIT_REJECTED]
    rig.run(0.1, intensity=1.0)
    assert rig.device_ma() == 0


def test_a_nan_nudge_through_the_runner_leaves_the_session_stimulating_every_step(
        tmp_path: Path) -> None:
    """The regression: a NaN nudge used to freeze the output at its setting until the burst
    limit cut it, and then stimulation stayed off for the rest of the session."""
    samples = load_recording(BUNDLED_WALK, "left").samples()

    def walk(db: Path, nudge: object | None) -> dict[str, int | float]:
        rig = build_simulated_session(load_protocol(GAIT), samples, db, source="test",
                                      duration_s=20.0)
        runner = rig.runner()
        if nudge is not None:
            rig.session.submit(lambda now_s: rig.session.nudge(now_s, 1, nudge))  # type: ignore[arg-type]
        summary = runner.run()
        assert summary.status == "completed" and summary.faults == []
        return summary.figures

    plain = walk(tmp_path / "plain.sqlite", None)
    nudged = walk(tmp_path / "nudged.sqlite", math.nan)
    assert nudged == plain
    notices = read_rows(tmp_path / "nudged.sqlite", "SELECT kind, detail FROM notices")
    assert [kind for kind, _ in notices].count("nudge_refused") == 1
    assert not any(kind == "burst_limit" for kind, _ in notices)
