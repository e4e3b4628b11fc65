"""A supervised session on the in-process simulator (``fes simulate``, tests, scripts).

Nothing here is simulator-only logic: it picks a motion source and the stimulator twin
and builds the same session a hardware session uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from controller.assembly.build import build_session
from controller.clock import VirtualClock
from controller.detect.calibration import GaitCalibration
from controller.devices.recording import load_recording
from controller.observe import SessionObserver
from controller.runner import SessionRunner, StatusCallback
from controller.sensor_watch import MIN_RATE_HZ
from controller.session import Session
from controller.types import Sample
from protocols import ExerciseProtocol, Protocol
from simulator import BUNDLED_WALK
from simulator.inmemory import InMemoryStimulator
from simulator.limb import MuscleModel, PatientScript, SimulatedLimb
from simulator.motion import MotionFault, SimulatedMotion

LIMB_RATE_HZ = 100.0
"""Sample rate of the synthetic exercising limb."""


@dataclass
class SimulatedRig:
    """A session plus handles on the simulated hardware, for fault injection and checks."""

    session: Session
    motion: SimulatedMotion
    stimulator: InMemoryStimulator
    clock: VirtualClock
    watchdog_s: float | None
    """The runner's wall-clock loop watchdog: only when paced to the wall clock."""

    def runner(self, on_status: StatusCallback | None = None) -> SessionRunner:
        return SessionRunner(self.session, on_status=on_status, watchdog_s=self.watchdog_s)


def parse_injection(text: str) -> tuple[MotionFault, float, float]:
    """``KIND@T`` or ``KIND@T+D`` (seconds), e.g. ``silent@12`` or ``frozen@8+2``."""
    try:
        kind, when = text.split("@", 1)
        at, _, duration = when.partition("+")
        return MotionFault(kind), float(at), float(duration) if duration else float("inf")
    except ValueError:
        choices = ", ".join(f.value for f in MotionFault)
        raise ValueError(f"bad fault injection {text!r}: use KIND@SECONDS[+DURATION] with "
                         f"KIND one of {choices}") from None


def recorded_walk(path: Path, foot: str) -> list[Sample]:
    return load_recording(path, foot).samples()


def build_simulated_session(protocol: Protocol, samples: list[Sample], db_path: Path | None,
                            *, source: str, duration_s: float | None = None,
                            realtime: bool = False, patient: str | None = None,
                            calibration: GaitCalibration | None = None,
                            observers: Iterable[SessionObserver] = ()) -> SimulatedRig:
    """A session on recorded (or pre-made synthetic) samples."""
    span_s = samples[-1].t_s - samples[0].t_s
    if not span_s > 0:
        raise ValueError("the recording's timestamps do not increase")
    rate_hz = (len(samples) - 1) / span_s
    min_rate_hz = MIN_RATE_HZ[protocol.mode]
    if not rate_hz >= min_rate_hz * 0.98:
        raise ValueError(f"the recording is sampled at {rate_hz:.1f} Hz; {protocol.mode} mode "
                         f"needs at least {min_rate_hz:g} Hz (one sample per control tick)")
    clock = VirtualClock(1.0 / rate_hz, start_s=samples[0].t_s, realtime=realtime)
    return _rig(protocol, SimulatedMotion(samples, clock), InMemoryStimulator(clock.now), clock,
                db_path, source=source, duration_s=duration_s, realtime=realtime,
                patient=patient, calibration=calibration, observers=observers)


def replay_rig(protocol: Protocol, samples: list[Sample], *, tick_s: float, start_s: float,
               duration_s: float, calibration: GaitCalibration | None,
               observers: Iterable[SessionObserver] = ()) -> SimulatedRig:
    """Recorded samples on a recorded control clock, unrecorded (:mod:`controller.replay`)."""
    clock = VirtualClock(tick_s, start_s=start_s)
    return _rig(protocol, SimulatedMotion(samples, clock), InMemoryStimulator(clock.now), clock,
                None, source="replay://record", duration_s=duration_s, realtime=False,
                patient=None, calibration=calibration, observers=observers)


def simulate_exercise(protocol: ExerciseProtocol, db_path: Path | str | None, *,
                      script: PatientScript | None = None, muscle: MuscleModel | None = None,
                      rate_hz: float = LIMB_RATE_HZ, duration_s: float | None = None,
                      realtime: bool = False, patient: str | None = None, seed: int = 0,
                      observers: Iterable[SessionObserver] = ()) -> tuple[SimulatedRig,
                                                                        SimulatedLimb]:
    """An exercise session on the synthetic limb, which hears the cues and feels the
    stimulation. Without a ``script`` the patient suits the pairing (see
    :func:`patient_for`)."""
    clock = VirtualClock(1.0 / rate_hz, realtime=realtime)
    stimulator = InMemoryStimulator(clock.now)
    channel = protocol.channels[0].channel

    def amplitude_ma() -> float:
        return float(stimulator.model.output.get(channel, (0, 0))[0])

    limb = SimulatedLimb(script or patient_for(protocol), amplitude_ma, rate_hz=rate_hz,
                         muscle=muscle, seed=seed)
    rig = _rig(protocol, SimulatedMotion(limb, clock), stimulator, clock,
               Path(db_path) if db_path is not None else None,
               source=f"sim://limb#{protocol.exercise.pairing}", duration_s=duration_s,
               realtime=realtime, patient=patient, observers=[limb, *observers])
    return rig, limb


def patient_for(protocol: ExerciseProtocol) -> PatientScript:
    """The simulated patient a protocol is meant for: one who moves fully (triggered, and
    a timed exercise with no stimulation), one who does not move at all (cued
    stimulation: the passive exercises), one who reaches half the target
    (assist-as-needed)."""
    ex = protocol.exercise
    own_share = {"triggered": 1.1, "cued": 0.0 if ex.stimulate else 1.1,
                 "assist_as_needed": 0.5}[ex.pairing]
    return PatientScript(rom_deg=own_share * ex.target_rom_deg, rise_s=ex.rise_s,
                         lower_s=ex.lower_s)


def _rig(protocol: Protocol, motion: SimulatedMotion, stimulator: InMemoryStimulator,
         clock: VirtualClock, db_path: Path | None, *, source: str, duration_s: float | None,
         realtime: bool, patient: str | None, calibration: GaitCalibration | None = None,
         observers: Iterable[SessionObserver] = ()) -> SimulatedRig:
    session = build_session(protocol, motion, stimulator, clock, db_path,
                            sensor_name=source, stimulator_name="sim://rehastim2",
                            duration_s=duration_s, patient=patient, calibration=calibration,
                            observers=observers)
    watchdog_s = protocol.safety_config().loop_late_s if realtime else None
    return SimulatedRig(session, motion, stimulator, clock, watchdog_s)


def simulate_walk(protocol: Protocol, db_path: Path | str | None, *,
                  walk: Path = BUNDLED_WALK, foot: str | None = None,
                  observers: Iterable[SessionObserver] = (),
                  patient: str | None = None, realtime: bool = False,
                  calibration: GaitCalibration | None = None) -> SimulatedRig:
    """The shortest way to a supervised simulated session: ``protocol`` walked on a recording
    (the bundled walk by default, the protocol's leg by default), recorded in ``db_path``."""
    foot = foot or protocol.leg
    return build_simulated_session(
        protocol, recorded_walk(walk, foot), Path(db_path) if db_path is not None else None,
        source=f"sim://{walk.name}#{foot}", patient=patient, observers=observers,
        realtime=realtime, calibration=calibration)
