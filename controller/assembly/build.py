"""How a session is built: protocol + devices + record + calibration -> a Session.

The one place that knows which control a protocol's mode needs and how the supervisor,
the sensor watch, the observers and the record are wired around it. The command line, the
GUI, tests and scripts all build sessions here, whatever the devices are.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from controller.clock import Clock
from controller.detect.calibration import GaitCalibration
from controller.detect.exercise import ExercisePhaseDetector
from controller.detect.factory import make_detector
from controller.devices.base import MotionSensor, Stimulator
from controller.exercise_control import COMPLETE_SHARE, ExerciseControl
from controller.exercise_machine import ExerciseMachine, ExercisePhase, Prescription
from controller.gait_control import GaitControl
from controller.machine import GaitMachine
from controller.observe import Observers, SessionObserver
from controller.record import SessionRecord
from controller.safety import SafetySupervisor
from controller.sensor_watch import SensorWatch
from controller.session import ModeControl, Session
from protocols import ExerciseProtocol, Protocol, dump_protocol


def build_session(protocol: Protocol, sensor: MotionSensor, stimulator: Stimulator,
                  clock: Clock, db_path: Path | None, *, sensor_name: str,
                  stimulator_name: str, duration_s: float | None = None,
                  patient: str | None = None, calibration: GaitCalibration | None = None,
                  observers: Iterable[SessionObserver] = (),
                  sensor_rate_hz: float | None = None) -> Session:
    """A session ready to start, recorded in ``db_path`` (None: not recorded).

    ``calibration`` (from ``fes calibrate``) lets the gait detector stimulate from the
    first step instead of calibrating itself on the first steps of the walk.
    ``sensor_rate_hz``: the rate a serial IMU was measured sending before the session
    (None for recordings), which a degraded stream must come back near to be cleared.
    """
    fanout = Observers(observers)
    supervisor = SafetySupervisor(stimulator, protocol.safety_config(), fanout)
    watch = SensorWatch(supervisor, protocol.sensor_limits(), log=fanout,
                        sensor_rate_hz=sensor_rate_hz)
    control = _control(protocol, fanout, supervisor, calibration)
    record = None
    if db_path is not None:
        record = SessionRecord(db_path, protocol_name=protocol.name,
                               protocol_toml=dump_protocol(protocol), mode=protocol.mode,
                               sensor=sensor_name, clock=(clock.tick_s, clock.now()),
                               calibration=calibration.to_dict() if calibration else None,
                               stimulator=stimulator_name, patient=patient,
                               paced=clock.paced)
    return Session(control, sensor, supervisor, watch, clock, fanout,
                   duration_s if duration_s is not None else protocol.session.duration_s,
                   record)


def _control(protocol: Protocol, observers: Observers, supervisor: SafetySupervisor,
             calibration: GaitCalibration | None) -> ModeControl:
    """The mode's own logic: the one place that looks at which mode a protocol is."""
    if isinstance(protocol, ExerciseProtocol):
        return _exercise_control(protocol, observers, supervisor)
    stimulation = protocol.stimulation
    start_on = getattr(protocol.trigger, "start_on", "toe_off")
    machine = GaitMachine(start_on, protocol.extension_s,
                          step_limit_s=stimulation.max_burst_s - stimulation.ramp_down_s)
    return GaitControl(make_detector(protocol.trigger, calibration), machine, observers,
                       lambda: supervisor.total_charge_uc)


def _exercise_control(protocol: ExerciseProtocol, observers: Observers,
                      supervisor: SafetySupervisor) -> ExerciseControl:
    ex = protocol.exercise
    prescription = Prescription(
        pairing=ex.pairing, stimulated=frozenset(ExercisePhase(p) for p in ex.stimulate),
        sets=ex.sets, reps=ex.reps, hold_s=ex.hold_s,
        rest_between_reps_s=ex.rest_between_reps_s,
        rest_between_sets_s=ex.rest_between_sets_s, rise_s=ex.rise_s, lower_s=ex.lower_s,
        assist_timeout_s=ex.assist_timeout_s)
    detector = ExercisePhaseDetector(
        ex.onset_threshold_deg, min_rom_deg=max(2 * ex.onset_threshold_deg,
                                                COMPLETE_SHARE * ex.target_rom_deg),
        axis=ex.axis)
    return ExerciseControl(detector, ExerciseMachine(prescription), observers,
                           lambda: supervisor.total_charge_uc,
                           target_rom_deg=ex.target_rom_deg,
                           onset_threshold_deg=ex.onset_threshold_deg, start_cue=ex.start_cue)
