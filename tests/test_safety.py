"""The SafetySupervisor against the in-memory RehaStim 2 twin: limits, ramps, faults."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.safety import PROCESS_STALL_S, SafetySupervisor
from controller.safety_limits import ChannelLimits, LimitViolation, SafetyConfig
from controller.sensor_watch import SensorLimits, SensorWatch
from controller.types import GRAVITY_MPS2, Fault, FaultKind, Sample
from simulator.inmemory import InMemoryStimulator, StimulatorMisbehaviour

TICK_S = 0.01


class MemoryLog:
    def __init__(self) -> None:
        self.commands: list[tuple[float, dict[int, float]]] = []
        self.faults: list[Fault] = []
        self.notices: list[tuple[float, str, str]] = []

    def command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self.commands.append((t_s, dict(amplitudes_ma)))

    def fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def notice(self, t_s: float, kind: str, detail: str) -> None:
        self.notices.append((t_s, kind, detail))


def config(**changes: object) -> SafetyConfig:
    base = SafetyConfig(
        channels=(ChannelLimits(1, 300, 10.0, 40.0, 20.0),
                  ChannelLimits(2, 200, 5.0, 30.0, 10.0)),
        frequency_hz=35.0, ramp_up_s=0.1, ramp_down_s=0.2, max_burst_s=1.5)
    return replace(base, **changes)  # type: ignore[arg-type]


class Rig:
    """Supervisor + sensor watch + twin on a hand-driven clock, fed a moving sample every
    tick."""

    def __init__(self, cfg: SafetyConfig | None = None) -> None:
        self.now = 0.0
        self.twin = InMemoryStimulator(lambda: self.now)
        self.log = MemoryLog()
        self.supervisor = SafetySupervisor(self.twin, cfg or config(), self.log)
        self.watch = SensorWatch(self.supervisor, SensorLimits())
        self.supervisor.start(self.now)
        self.watch.start(self.now)

    def tick(self) -> None:
        """The end of a session tick: silence judged, then output decided."""
        self.watch.tick(self.now)
        self.supervisor.tick(self.now)

    def run(self, seconds: float, intensity: float | None = None, channel: int = 1) -> None:
        for _ in range(round(seconds / TICK_S)):
            self.now = round(self.now + TICK_S, 9)
            self.feed()
            if intensity is not None:
                self.supervisor.request(self.now, channel, intensity)
            self.tick()

    def feed(self, gyro_y: float | None = None) -> None:
        wobble = math.sin(self.now * 7.0) * 50.0 if gyro_y is None else gyro_y
        self.watch.observe(Sample(self.now, (0.0, 0.0, GRAVITY_MPS2), (0.0, wobble, 0.0)), self.now)

    def device_ma(self, channel: int = 1) -> int:
        return self.twin.model.output.get(channel, (0, 0))[0]


def test_ramp_up_is_applied_by_the_supervisor_not_the_caller() -> None:
    rig = Rig()
    rig.run(0.05, intensity=1.0)
    assert 0.0 < rig.supervisor.output_ma(1) < 20.0
    rig.run(0.06, intensity=1.0)
    assert rig.supervisor.output_ma(1) == pytest.approx(20.0)
    rig.run(0.1, intensity=0.0)
    assert 0.0 < rig.supervisor.output_ma(1) < 20.0
    rig.run(0.11, intensity=0.0)
    assert rig.supervisor.output_ma(1) == 0.0
    assert rig.device_ma() == 0


def test_the_supervisor_works_in_the_devices_steps_rounded_down_never_up() -> None:
    rig = Rig(config(channels=(ChannelLimits(1, 300, 10.0, 40.0, 21.0),)))
    rig.run(0.2, intensity=1.0)
    assert rig.supervisor.setting_ma(1) == 21.0
    assert rig.supervisor.output_ma(1) == rig.device_ma() == 20
    sent = {amplitudes[1] for _, amplitudes in rig.log.commands}
    assert sent <= {0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0}, sent


def test_a_setting_below_the_devices_step_delivers_and_records_nothing() -> None:
    rig = Rig(config(channels=(ChannelLimits(1, 300, 1.0, 40.0, 1.0),)))
    rig.run(0.5, intensity=1.0)
    assert rig.device_ma() == 0
    assert rig.supervisor.delivered_charge_uc[1] == 0.0
    assert all(amplitudes[1] == 0.0 for _, amplitudes in rig.log.commands)


def test_burst_longer_than_max_is_forced_off_and_stays_off_until_released() -> None:
    rig = Rig()
    rig.run(1.6, intensity=1.0)
    assert rig.supervisor.output_ma(1) == 0.0
    assert rig.device_ma() == 0
    assert any(kind == "burst_limit" for _, kind, _ in rig.log.notices)
    rig.run(0.5, intensity=1.0)
    assert rig.supervisor.output_ma(1) == 0.0, "a held request must not start a new burst"
    rig.run(0.05, intensity=0.0)
    rig.run(0.3, intensity=1.0)
    assert rig.supervisor.output_ma(1) > 0.0
    assert not rig.supervisor.latched, "the burst limit is enforcement, not a fault"


def test_duty_cycle_over_the_window_forces_output_off() -> None:
    rig = Rig(config(duty_cycle_max=0.2))
    for _ in range(20):
        rig.run(1.0, intensity=1.0)
        rig.run(0.5, intensity=0.0)
        if any(kind == "duty_cycle_limit" for _, kind, _ in rig.log.notices):
            break
    else:
        pytest.fail("duty cycle limit never enforced")
    assert rig.supervisor.output_ma(1) == 0.0
    assert rig.now < 60.0


def test_patient_nudges_stay_inside_the_therapists_window() -> None:
    rig = Rig()
    for _ in range(50):
        rig.supervisor.nudge(rig.now, 1, +1)
    assert rig.supervisor.setting_ma(1) == 40.0
    for _ in range(50):
        rig.supervisor.nudge(rig.now, 1, -1)
    assert rig.supervisor.setting_ma(1) == 10.0
    assert any(kind == "nudge_refused" for _, kind, _ in rig.log.notices)


def test_request_outside_zero_to_one_is_refused_and_latches() -> None:
    rig = Rig()
    rig.run(0.2, intensity=1.0)
    rig.supervisor.request(rig.now, 1, 1.5)
    assert rig.supervisor.output_ma(1) == 0.0
    assert rig.device_ma() == 0
    assert [f.kind for f in rig.supervisor.faults] == [FaultKind.LIMIT_REJECTED]


def test_unknown_channel_is_refused() -> None:
    rig = Rig()
    rig.supervisor.request(rig.now, 7, 0.5)
    assert rig.supervisor.faults[0].kind is FaultKind.LIMIT_REJECTED


@pytest.mark.parametrize("changes", [
    {"frequency_hz": 150.0},
    {"ramp_up_s": 3.0},
    {"max_burst_s": 2.5},
    {"duty_cycle_max": 0.9},
    {"max_burst_s": 0.25, "ramp_up_s": 0.1, "ramp_down_s": 0.2},
    {"channels": (ChannelLimits(1, 600, 10.0, 40.0, 20.0),)},
    {"channels": (ChannelLimits(1, 300, 10.0, 120.0, 20.0),)},
    {"channels": (ChannelLimits(1, 500, 10.0, 60.0, 20.0),), "charge_per_phase_max_uc": 25.0},
    {"channels": (ChannelLimits(1, 300, 30.0, 40.0, 20.0),)},
])
def test_configuration_outside_hard_limits_is_refused_not_clipped(
        changes: dict[str, object]) -> None:
    with pytest.raises(LimitViolation):
        Rig(config(**changes))


def test_fault_latches_until_reset_and_output_restarts_from_zero_with_a_ramp() -> None:
    rig = Rig()
    rig.run(0.3, intensity=1.0)
    rig.supervisor.emergency_stop(rig.now, "test")
    assert rig.device_ma() == 0
    rig.run(0.5, intensity=1.0)
    assert rig.supervisor.output_ma(1) == 0.0, "latched: requests are ignored"
    assert rig.supervisor.reset(rig.now) == []
    rig.run(0.02, intensity=1.0)
    assert 0.0 < rig.supervisor.output_ma(1) < 10.0, "restart ramps up from zero"


def test_reset_is_refused_while_the_cause_is_still_there() -> None:
    rig = Rig()
    rig.run(0.2, intensity=1.0)
    for _ in range(70):
        rig.now += TICK_S
        rig.feed(gyro_y=12.5)
        rig.tick()
    assert [f.kind for f in rig.supervisor.faults] == [FaultKind.SENSOR_FROZEN]
    assert rig.supervisor.reset(rig.now), "frozen samples still arriving"
    rig.run(0.1)
    assert rig.supervisor.reset(rig.now) == []


def test_silent_sensor_latches_within_one_tick_of_the_silence_limit() -> None:
    rig = Rig()
    rig.run(0.3, intensity=1.0)
    last_sample = rig.now
    while not rig.supervisor.latched:
        rig.now += TICK_S
        rig.supervisor.request(rig.now, 1, 1.0)
        rig.tick()
    assert rig.supervisor.faults[0].kind is FaultKind.SENSOR_SILENT
    assert rig.now - last_sample <= 0.1 + TICK_S + 1e-9
    assert rig.device_ma() == 0


def test_stimulator_error_answer_latches_and_reset_reconnects() -> None:
    rig = Rig()
    rig.run(0.05, intensity=1.0)
    rig.twin.misbehaviour = StimulatorMisbehaviour.ERROR_ANSWER
    rig.run(0.02, intensity=1.0)
    assert rig.supervisor.faults[0].kind is FaultKind.STIMULATOR_ERROR
    assert rig.device_ma() == 0
    assert rig.supervisor.reset(rig.now), "the stimulator still answers with errors"
    rig.twin.misbehaviour = StimulatorMisbehaviour.NONE
    assert rig.supervisor.reset(rig.now) == []
    rig.run(0.2, intensity=1.0)
    assert rig.device_ma() > 0


def test_late_control_loop_latches() -> None:
    rig = Rig()
    rig.run(0.2, intensity=1.0)
    rig.now += 0.08
    rig.feed()
    rig.tick()
    assert rig.supervisor.faults[0].kind is FaultKind.LOOP_LATE
    assert rig.device_ma() == 0


def test_a_bring_up_inside_a_tick_is_not_a_late_loop() -> None:
    """A reset reconfigures the stimulator within a tick and marks the loop resumed after
    it; the rest of that tick, stamped with its start, must not undo the mark."""
    rig = Rig()
    rig.run(0.2)
    tick_start = rig.now
    rig.supervisor.loop_resumed(tick_start + 1.0)  # the bring-up took a second
    rig.supervisor.tick(tick_start)  # the same tick goes on, with its own (earlier) time
    rig.supervisor.tick(tick_start + 1.0 + TICK_S)
    assert not rig.supervisor.latched, rig.supervisor.faults


def test_a_watched_loop_records_a_scheduler_delay_and_latches_a_stopped_process() -> None:
    """With a watchdog thread judging a stuck loop, one late tick is the scheduler's delay
    (a notice, output goes on); a gap past PROCESS_STALL_S means the process stood still."""
    rig = Rig()
    rig.supervisor.watched_from_outside()
    rig.run(0.2, intensity=1.0)
    rig.now += 0.08
    rig.feed()
    rig.tick()
    assert not rig.supervisor.latched
    assert rig.log.notices[-1][1] == "loop_delayed"
    assert rig.device_ma() == 20
    rig.now += PROCESS_STALL_S + TICK_S
    rig.feed()
    rig.tick()
    assert FaultKind.LOOP_LATE in [f.kind for f in rig.supervisor.faults]
    assert rig.device_ma() == 0


@pytest.mark.parametrize(("acc", "gyro", "kind"), [
    ((0.0, 0.0, GRAVITY_MPS2), (0.0, 4000.0, 0.0), FaultKind.IMPLAUSIBLE_VALUE),
    ((0.0, 0.0, 200.0), (0.0, 0.0, 0.0), FaultKind.IMPLAUSIBLE_VALUE),
    ((0.0, float("nan"), 9.81), (0.0, 0.0, 0.0), FaultKind.IMPLAUSIBLE_VALUE),
])
def test_implausible_samples_latch(acc: tuple[float, float, float],
                                   gyro: tuple[float, float, float], kind: FaultKind) -> None:
    rig = Rig()
    rig.run(0.2, intensity=1.0)
    rig.watch.observe(Sample(rig.now + 0.001, acc, gyro), rig.now)
    assert rig.supervisor.faults[0].kind is kind
    assert rig.device_ma() == 0


def test_timestamps_going_backwards_or_jumping_latch() -> None:
    rig = Rig()
    rig.run(0.2)
    rig.watch.observe(Sample(rig.now - 0.05, (0.0, 0.0, GRAVITY_MPS2), (0.0, 1.0, 0.0)), rig.now)
    rig.watch.observe(Sample(rig.now + 0.5, (0.0, 0.0, GRAVITY_MPS2), (0.0, 2.0, 0.0)), rig.now)
    assert {f.kind for f in rig.supervisor.faults} == {FaultKind.TIME_BACKWARDS,
                                                      FaultKind.TIME_JUMP}


# -- properties over random sequences ------------------------------------------------------

Action = tuple[str, float]
actions = st.lists(st.one_of(
    st.tuples(st.just("request"), st.floats(-0.5, 1.5, allow_nan=False)),
    st.tuples(st.just("tick"), st.floats(0.001, 0.3)),
    st.tuples(st.just("nudge"), st.integers(-15, 15).map(float)),
    st.tuples(st.just("fault"), st.sampled_from([0.0, 1.0, 2.0])),
    st.tuples(st.just("reset"), st.just(0.0)),
    st.tuples(st.just("stimulator"), st.sampled_from([0.0, 1.0, 2.0])),
), max_size=80)


@settings(max_examples=150, deadline=None)
@given(actions)
def test_output_never_leaves_the_window_and_is_zero_while_latched(script: list[Action]) -> None:
    rig = Rig()
    cfg = config()
    windows = {ch.channel: ch.amplitude_max_ma for ch in cfg.channels}
    misbehaviours = list(StimulatorMisbehaviour)
    for action, value in script:
        if action == "request":
            rig.supervisor.request(rig.now, 1 + int(abs(value) * 10) % 2, value)
        elif action == "tick":
            rig.now += value
            rig.feed()
            rig.tick()
        elif action == "nudge":
            rig.supervisor.nudge(rig.now, 1, int(value))
        elif action == "fault":
            kind = [FaultKind.EMERGENCY_STOP, FaultKind.SENSOR_ERROR, FaultKind.LOOP_LATE]
            rig.supervisor.fault(kind[int(value)], rig.now, "injected")
        elif action == "reset":
            rig.supervisor.reset(rig.now)
        else:
            rig.twin.misbehaviour = misbehaviours[int(value)]
        for channel, high in windows.items():
            output = rig.supervisor.output_ma(channel)
            assert 0.0 <= output <= high
            assert rig.device_ma(channel) <= high
            if rig.supervisor.latched:
                assert output == 0.0
        if rig.supervisor.latched and rig.twin.misbehaviour is StimulatorMisbehaviour.NONE:
            assert rig.twin.model.is_delivering is False


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0.005, 0.05)), min_size=1, max_size=400))
def test_no_burst_outlasts_the_max_and_duty_stays_bounded(script: list[tuple[bool, float]]
                                                          ) -> None:
    rig = Rig(config(ramp_up_s=0.0, ramp_down_s=0.0, max_burst_s=0.5))
    burst_start: float | None = None
    on_time = 0.0
    for on, dt in script:
        rig.now += dt
        rig.feed()
        rig.supervisor.request(rig.now, 1, 1.0 if on else 0.0)
        previous = rig.now - dt
        rig.tick()
        delivering = rig.supervisor.output_ma(1) > 0
        if delivering:
            burst_start = previous if burst_start is None else burst_start
            on_time += dt
            assert rig.now - burst_start <= 0.5 + 0.05
        else:
            burst_start = None
    assert on_time <= 0.5 * max(rig.now, 60.0) + 0.05


def test_requests_made_while_latched_do_not_come_out_after_the_reset() -> None:
    rig = Rig()
    rig.run(0.2, intensity=1.0)
    rig.supervisor.emergency_stop(rig.now, "test")
    rig.run(0.2, intensity=1.0)
    assert rig.supervisor.reset(rig.now) == []
    rig.run(0.5)
    assert rig.supervisor.output_ma(1) == 0.0, "only a request after the reset turns it on"
    assert rig.device_ma() == 0
