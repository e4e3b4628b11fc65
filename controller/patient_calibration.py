"""A patient's calibration: reviewed on a short capture, stored in the record, applied to
the next session.

What is calibrated depends on the protocol:

* gyro gait trigger: the detector's own calibration (sagittal axis, stride sizes) from
  a short walk, so the session stimulates from the first step;
* tilt gait trigger: the two tilt thresholds, which the therapist sets on the plot;
* exercise: the onset threshold, set on the plot of the segment's angle.

:func:`review` runs the session's own detector over the captured samples with the
thresholds given, so what it marks is what the session would do.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from controller.detect.calibration import CalibrationError, GaitCalibration, calibrate
from controller.detect.exercise import ExercisePhaseDetector
from controller.detect.factory import make_detector
from controller.detect.tilt import TiltTrigger
from controller.record import check_pseudonym, open_record
from controller.types import Sample
from protocols import ExerciseProtocol, GaitProtocol, Protocol
from protocols.loader import check_protocol_data


def calibration_kind(protocol: Protocol) -> str:
    """What a protocol's calibration is for: ``gait/gyro``, ``gait/tilt``,
    ``exercise/toe_raises``..."""
    if isinstance(protocol, ExerciseProtocol):
        return f"exercise/{protocol.exercise.exercise}"
    return f"gait/{protocol.trigger.kind}"


def thresholds_of(protocol: Protocol) -> dict[str, float]:
    """The thresholds a therapist may set for this protocol, as it has them now."""
    if isinstance(protocol, ExerciseProtocol):
        return {"onset_threshold_deg": protocol.exercise.onset_threshold_deg}
    trigger = protocol.trigger
    if trigger.kind == "tilt":
        return {"tilt_heel_off_deg": trigger.tilt_heel_off_deg,
                "tilt_heel_strike_deg": trigger.tilt_heel_strike_deg}
    return {}


@dataclass(frozen=True)
class Review:
    """What a capture shows with given thresholds."""

    t_s: list[float]
    trace_deg: list[float]
    """The angle the thresholds apply to (tilt, or the exercise excursion); empty for the
    gyro trigger, which has no threshold to set."""
    events: list[tuple[float, str]]
    """(when the detector was sure, kind): the moment a session would act on it."""
    thresholds: dict[str, float]
    gait: GaitCalibration | None = None
    problem: str | None = None
    """Why this capture cannot be accepted (nothing found)."""


def review(protocol: Protocol, samples: Sequence[Sample],
           thresholds: Mapping[str, float] | None = None) -> Review:
    """Run the protocol's detector over ``samples`` with ``thresholds`` (default: the
    protocol's own)."""
    chosen = {**thresholds_of(protocol), **(thresholds or {})}
    checked = apply(protocol, chosen)
    t_s = [s.t_s for s in samples]
    if isinstance(checked, ExerciseProtocol):
        return _review_exercise(checked, samples, t_s, chosen)
    return _review_gait(checked, samples, t_s, chosen)


def _review_exercise(protocol: ExerciseProtocol, samples: Sequence[Sample], t_s: list[float],
                     chosen: dict[str, float]) -> Review:
    detector = ExercisePhaseDetector(protocol.exercise.onset_threshold_deg,
                                     axis=protocol.exercise.axis)
    trace, events = [], []
    for sample in samples:
        events += [(e.detected_at_s, e.kind.value) for e in detector.update(sample)]
        trace.append(detector.angle_deg)
    reps = sum(kind == "at_rest" for _, kind in events)
    problem = None if reps >= 2 else f"{reps} repetition(s) found: do at least 2 full ones"
    return Review(t_s, trace, events, chosen, problem=problem)


def _review_gait(protocol: GaitProtocol, samples: Sequence[Sample], t_s: list[float],
                 chosen: dict[str, float]) -> Review:
    try:
        gait = calibrate(samples)
    except CalibrationError as exc:
        return Review(t_s, [], [], chosen, problem=f"no usable walk: {exc}")
    detector = make_detector(protocol.trigger, gait)
    trace: list[float] = []
    events: list[tuple[float, str]] = []
    for sample in samples:
        events += [(e.detected_at_s, e.kind.value) for e in detector.update(sample)]
        if isinstance(detector, TiltTrigger):
            trace.append(detector.tilt_deg)
    strikes = sum(kind == "heel_strike" for _, kind in events)
    problem = None if strikes >= 4 else f"{strikes} heel strikes found: walk at least 6 steps"
    return Review(t_s, trace, events, chosen, gait=gait, problem=problem)


def apply(protocol: Protocol, thresholds: Mapping[str, float]) -> Protocol:
    """``protocol`` with these thresholds in place; ValueError (the schema's message) for
    one it does not allow."""
    data = protocol.model_dump(mode="json")
    section = data["exercise"] if isinstance(protocol, ExerciseProtocol) else data["trigger"]
    for name, value in thresholds.items():
        if name not in section:
            raise ValueError(f"{name} is not a threshold of this protocol")
        section[name] = value
    checked, errors = check_protocol_data(data)
    if checked is None:
        raise ValueError("; ".join(f"{'.'.join(map(str, loc))}: {message}"
                                   for loc, message in errors))
    return checked


@dataclass(frozen=True)
class StoredCalibration:
    pseudonym: str
    kind: str
    created_at: str
    thresholds: dict[str, float] = field(default_factory=dict)
    gait: GaitCalibration | None = None


def save(db_path: Path, pseudonym: str, protocol: Protocol, result: Review) -> None:
    """Keep an accepted review with the patient (refused if it found too little)."""
    if result.problem is not None:
        raise ValueError(f"not saved: {result.problem}")
    apply(protocol, result.thresholds)
    with closing(open_record(db_path)) as db:
        db.execute("INSERT INTO calibrations (pseudonym, kind, created_at, thresholds_json, "
                   "gait_json) VALUES (?,?,?,?,?)",
                   (check_pseudonym(pseudonym), calibration_kind(protocol),
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    json.dumps(result.thresholds),
                    json.dumps(result.gait.to_dict()) if result.gait else None))


def latest(db_path: Path, pseudonym: str, protocol: Protocol) -> StoredCalibration | None:
    """The newest calibration of this patient for this kind of protocol."""
    if not db_path.exists():
        return None
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        try:
            row = db.execute("SELECT created_at, thresholds_json, gait_json FROM calibrations "
                             "WHERE pseudonym=? AND kind=? ORDER BY id DESC LIMIT 1",
                             (pseudonym, calibration_kind(protocol))).fetchone()
        except sqlite3.OperationalError:  # no calibration was ever saved in this record
            return None
    if row is None:
        return None
    created_at, thresholds, gait = row
    return StoredCalibration(pseudonym, calibration_kind(protocol), created_at,
                             json.loads(thresholds),
                             GaitCalibration.from_dict(json.loads(gait)) if gait else None)
