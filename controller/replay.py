"""Re-run a recorded session through the current controller and compare its decisions.

The recorded samples are fed on the recorded control clock (same tick, same start), with
the detector's recorded starting calibration, into a session built exactly as any other
(:func:`controller.assembly.simulated.replay_rig`). What came from outside the controller
is applied again at the tick it happened: the operator's pause, resume, stop, emergency
stop, intensity change and reset, and the faults the world caused (a stimulator that
failed, a late loop, a record that could not be written). Everything the controller
decided itself (events, phases, commands) is then compared with the record. The same code
gives the same decisions bit for bit; a changed detector shows where it now differs.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from controller.assembly.simulated import replay_rig
from controller.detect.calibration import GaitCalibration
from controller.observe import SessionObserver
from controller.record.reader import RecordedCommand, RecordedEvent, SessionData
from controller.safety import RESET_IN_PROGRESS
from controller.session import Session
from controller.types import DetectorEvent, FaultKind, Sample
from protocols import parse_protocol

EXTERNAL_FAULTS = (FaultKind.STIMULATOR_ERROR, FaultKind.LOOP_LATE, FaultKind.SENSOR_ERROR,
                   FaultKind.RECORD_FAILED)
"""Faults the world causes rather than the controller's own judgement: replayed as is."""

_NUDGE = re.compile(r"channel (\d+): ([0-9.]+) mA")

Action = Callable[[Session, float], object]


@dataclass(frozen=True)
class Difference:
    """One stretch where the replay decided differently: what was recorded, what now."""

    what: str
    """``event``, ``phase`` or ``command``."""
    recorded: tuple[tuple[object, ...], ...]
    replayed: tuple[tuple[object, ...], ...]

    @property
    def t_s(self) -> float:
        first = (self.recorded or self.replayed)[0]
        return float(first[0])  # type: ignore[arg-type]


@dataclass(frozen=True)
class ReplayResult:
    recorded_counts: dict[str, int]
    replayed_counts: dict[str, int]
    differences: list[Difference]

    @property
    def identical(self) -> bool:
        return not self.differences


class _Decisions(SessionObserver):
    """What the replayed controller decides, in the record's own shapes."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self.phases: list[tuple[float, str]] = []
        self.commands: list[RecordedCommand] = []

    def on_event(self, event: DetectorEvent) -> None:
        self.events.append(RecordedEvent(event.t_s, event.detected_at_s, event.kind.value))

    def on_phase(self, t_s: float, phase: str) -> None:
        self.phases.append((t_s, phase))

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self.commands.extend(RecordedCommand(t_s, channel, amplitude)
                             for channel, amplitude in amplitudes_ma.items())


def replay(data: SessionData) -> ReplayResult:
    """Run ``data``'s samples through the current controller; compare its decisions."""
    if len(data.samples.t_s) < 2:
        raise LookupError(f"session {data.info.id} recorded {len(data.samples.t_s)} samples: "
                         "nothing to replay")
    protocol = parse_protocol(data.protocol_toml, f"session {data.info.id}'s protocol")
    samples = _samples(data)
    tick_s = data.tick_s or float(samples[1].t_s - samples[0].t_s)
    start_s = data.clock_start_s if data.clock_start_s is not None else samples[0].t_s
    duration_s: float | None = data.summary.get("duration_s")
    decisions = _Decisions()
    rig = replay_rig(
        protocol, samples, tick_s=tick_s, start_s=start_s,
        duration_s=duration_s - tick_s / 2 if duration_s is not None else math.inf,
        calibration=GaitCalibration.from_dict(data.calibration) if data.calibration else None,
        observers=[decisions])
    _run(rig.session, _actions(data), tick_s)
    recorded: dict[str, Sequence[tuple[object, ...]]] = {
        "events": data.events, "phases": data.phases, "commands": data.commands}
    replayed: dict[str, Sequence[tuple[object, ...]]] = {
        "events": decisions.events, "phases": decisions.phases, "commands": decisions.commands}
    differences = [diff for name in recorded
                   for diff in _differences(name[:-1], recorded[name], replayed[name])]
    return ReplayResult({k: len(v) for k, v in recorded.items()},
                        {k: len(v) for k, v in replayed.items()},
                        sorted(differences, key=lambda d: d.t_s))


def _samples(data: SessionData) -> list[Sample]:
    s = data.samples
    angles = [None if math.isnan(row[0]) else (float(row[0]), float(row[1]), float(row[2]))
              for row in s.angle_deg]
    return [Sample(float(t), (float(a[0]), float(a[1]), float(a[2])),
                   (float(g[0]), float(g[1]), float(g[2])), angle)
            for t, a, g, angle in zip(s.t_s, s.acc_mps2, s.gyro_dps, angles, strict=True)]


def _actions(data: SessionData) -> list[tuple[float, Action]]:
    """What came from outside the controller, at the tick it happened."""
    ended_by_emergency = data.summary.get("status") == "emergency_stop"
    actions: list[tuple[float, Action]] = []
    for note in data.notices:
        action: Action | None = {"pause": Session.pause, "resume": Session.resume,
                                 "reset": Session.reset_faults,
                                 "reset_refused": Session.reset_faults}.get(note.kind)
        if note.kind == "reset_refused" and note.text == RESET_IN_PROGRESS:
            action = None  # a second press while a bring-up ran: it changed nothing
        elif note.kind == "stop" and not ended_by_emergency:
            action = partial(_stop, source=note.text.removeprefix("session ended by "))
        elif note.kind == "nudge" and (match := _NUDGE.fullmatch(note.text)):
            action = partial(_set_intensity, channel=int(match[1]),
                             setting_ma=float(match[2]))
        if action is not None:
            actions.append((note.t_s, action))
    for fault in data.faults:
        kind = FaultKind(fault.kind)
        if kind is FaultKind.EMERGENCY_STOP:
            actions.append((fault.t_s, partial(_emergency_stop, source=fault.text,
                                               end_session=ended_by_emergency)))
        elif kind in EXTERNAL_FAULTS:
            actions.append((fault.t_s, partial(_fault, kind=kind, detail=fault.text)))
    return sorted(actions, key=lambda action: action[0])


def _stop(session: Session, now_s: float, *, source: str) -> None:
    session.stop(now_s, source)


def _emergency_stop(session: Session, now_s: float, *, source: str, end_session: bool) -> None:
    session.emergency_stop(now_s, source, end_session=end_session)


def _fault(session: Session, now_s: float, *, kind: FaultKind, detail: str) -> None:
    session.supervisor.fault(kind, now_s, detail)


def _set_intensity(session: Session, now_s: float, *, channel: int, setting_ma: float) -> None:
    step_ma = session.supervisor.patient_step_ma
    steps = round((setting_ma - session.supervisor.setting_ma(channel)) / step_ma)
    session.nudge(now_s, channel, steps)


def _run(session: Session, actions: list[tuple[float, Action]], tick_s: float) -> None:
    """Step the session, submitting each action just before the tick it belongs to."""
    session.start()
    pending = list(actions)
    while True:
        upcoming_s = session.now_s + tick_s
        while pending and pending[0][0] <= upcoming_s + tick_s / 2:
            session.submit(partial(pending.pop(0)[1], session))
        if not session.step():
            break
    session.finish()


def _differences(what: str, recorded: Sequence[tuple[object, ...]],
                 replayed: Sequence[tuple[object, ...]]) -> list[Difference]:
    matcher = difflib.SequenceMatcher(a=list(map(tuple, recorded)),
                                      b=list(map(tuple, replayed)), autojunk=False)
    return [Difference(what, tuple(map(tuple, recorded[i1:i2])),
                       tuple(map(tuple, replayed[j1:j2])))
            for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]
