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
from controller.session import Session
from controller.types import Sample
from protocols import Protocol
from simulator import BUNDLED_WALK
from simulator.inmemory import InMemoryStimulator
from simulator.motion import MotionFault, SimulatedMotion

MIN_RATE_HZ = 50.0
"""The slowest stream the gait detector is built for; slower ticks would also trip the
50 ms loop-late watchdog."""


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
    span_s = samples[-1].t_s - samples[0].t_s
    if not span_s > 0:
        raise ValueError("the walk's timestamps do not increase")
    rate_hz = (len(samples) - 1) / span_s
    if not rate_hz >= MIN_RATE_HZ:
        raise ValueError(f"the walk is sampled at {rate_hz:.1f} Hz; the controller needs at "
                         f"least {MIN_RATE_HZ:g} Hz (one sample per control tick)")
    clock = VirtualClock(1.0 / rate_hz, start_s=samples[0].t_s, realtime=realtime)
    motion = SimulatedMotion(samples, clock)
    stimulator = InMemoryStimulator(clock.now)
    session = build_session(protocol, motion, stimulator, clock, db_path,
                            sensor_name=source, stimulator_name="sim://rehastim2",
                            duration_s=duration_s, patient=patient, calibration=calibration,
                            observers=observers)
    watchdog_s = protocol.safety_config().loop_late_s if realtime else None
    return SimulatedRig(session, motion, stimulator, clock, watchdog_s)


def simulate_walk(protocol: Protocol, db_path: Path | str | None, *,
                  walk: Path = BUNDLED_WALK, foot: str | None = None,
                  observers: Iterable[SessionObserver] = (),
                  patient: str | None = None) -> SimulatedRig:
    """The shortest way to a supervised simulated session: ``protocol`` walked on a recording
    (the bundled walk by default, the protocol's leg by default), recorded in ``db_path``."""
    foot = foot or protocol.leg
    return build_simulated_session(
        protocol, recorded_walk(walk, foot), Path(db_path) if db_path is not None else None,
        source=f"sim://{walk.name}#{foot}", patient=patient, observers=observers)
