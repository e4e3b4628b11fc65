"""Per-session outcome measures a therapist compares across sessions.

One :class:`SessionOutcome` per recorded session, built from what the reader loads: for a
walk the per-stride gait measures (:mod:`controller.outcomes.gait`) summed up and split
into stimulated and unstimulated strides; for an exercise the recorded repetitions against
the prescription. Outcomes keep no samples, so a patient's whole history fits in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from controller.detect.calibration import CalibrationError
from controller.outcomes.gait import (
    BoutComparison,
    BoutSummary,
    StepMeasures,
    compare_stimulated,
    step_measures,
)
from controller.record.reader import Note, SessionData, SessionInfo
from protocols import ExerciseProtocol, GaitProtocol, Protocol, ProtocolError, parse_protocol
from protocols.schema import CadenceTrigger


@dataclass(frozen=True)
class GaitOutcome:
    """A walk: the controller's step count and the strides measured from the samples."""

    steps: int
    stimulated_steps: int
    missed_heel_strikes: int | None
    placement: Literal["foot", "shank"] | None
    strides: list[StepMeasures]
    """Strides that had the shape of one (turns, stops and missed events left out)."""
    not_measured: str | None
    """Why there are no stride measures, when there are none."""

    def summary(self, measure: str) -> BoutSummary:
        """One measure over every measured stride (toe clearance: where it was estimable)."""
        values = [getattr(s, measure) for s in self.strides]
        return BoutSummary.of([v for v in values if v is not None])

    @property
    def comparison(self) -> dict[str, BoutComparison]:
        """Each measure on stimulated against unstimulated strides."""
        return compare_stimulated(self.strides)


@dataclass(frozen=True)
class ExerciseOutcome:
    """An exercise: repetitions done against the prescription, range and hold per rep."""

    exercise: str
    reps_prescribed: int | None
    target_rom_deg: float | None
    target_hold_s: float | None
    repetitions: list[dict[str, Any]]
    """The record's repetition rows (see ``REPETITION_COLUMNS`` in the reader)."""

    @property
    def reps_done(self) -> int:
        return len(self.repetitions)

    @property
    def rom_per_rep_deg(self) -> list[float]:
        return [float(r["peak_angle_deg"]) for r in self.repetitions
                if r["peak_angle_deg"] is not None]

    @property
    def hold_per_rep_s(self) -> list[float]:
        return [float(r["hold_s"]) for r in self.repetitions if r["hold_s"] is not None]

    @property
    def mean_rom_deg(self) -> float:
        return _mean(self.rom_per_rep_deg)

    @property
    def mean_hold_s(self) -> float:
        return _mean(self.hold_per_rep_s)

    @property
    def stimulated_reps(self) -> int:
        return sum(bool(r["stimulated"]) for r in self.repetitions)

    @property
    def assisted_reps(self) -> int:
        return sum(bool(r["assisted"]) for r in self.repetitions)


@dataclass(frozen=True)
class SessionOutcome:
    """What one session achieved, with the faults and warnings a therapist must see."""

    info: SessionInfo
    gait: GaitOutcome | None
    exercise: ExerciseOutcome | None
    faults: list[Note]
    notices: list[Note]
    warnings: list[str]
    charge_uc: dict[int, float]
    """Charge delivered per channel over the session."""


def session_protocol(data: SessionData) -> Protocol | None:
    """The protocol the session ran, from the exact TOML it stored (None when this version
    of the schema no longer reads it: the report then leaves out what needs it)."""
    try:
        return parse_protocol(data.protocol_toml, f"session {data.info.id}")
    except (ProtocolError, ValueError):
        return None


def session_outcome(data: SessionData) -> SessionOutcome:
    """The outcome of one loaded session."""
    protocol = session_protocol(data)
    summary = data.summary
    return SessionOutcome(
        info=data.info,
        gait=_gait(data, protocol) if data.info.mode == "gait" else None,
        exercise=_exercise(data, protocol) if data.info.mode == "exercise" else None,
        faults=data.faults,
        notices=data.notices,
        warnings=[str(w) for w in summary.get("warnings", [])],
        charge_uc={int(ch): float(uc) for ch, uc in summary.get("charge_uc", {}).items()},
    )


def event_times_s(data: SessionData, kind: str) -> list[float]:
    return [e.t_s for e in data.events if e.kind == kind]


def _gait(data: SessionData, protocol: Protocol | None) -> GaitOutcome:
    placement: Literal["foot", "shank"] | None = None
    strides: list[StepMeasures] = []
    reason: str | None = None
    if not isinstance(protocol, GaitProtocol):
        reason = "the stored protocol could not be read"
    elif isinstance(protocol.trigger, CadenceTrigger):
        reason = "timed cadence: no gait events are detected"
    else:
        placement = protocol.trigger.placement
        bursts = [b for ch in protocol.channels for b in data.bursts(ch.channel)]
        try:
            strides = step_measures(
                data.samples.t_s, data.samples.acc_mps2, data.samples.gyro_dps,
                event_times_s(data, "heel_strike"), event_times_s(data, "toe_off"),
                placement=placement, stimulated_s=bursts)
        except CalibrationError as exc:
            reason = str(exc)
        if not strides and reason is None:
            reason = "no stride had the shape of one (turns, stops or missed events)"
    missed = data.summary.get("missed_heel_strikes")
    return GaitOutcome(
        steps=data.info.steps, stimulated_steps=data.info.stimulated_steps,
        missed_heel_strikes=int(missed) if missed is not None else None,
        placement=placement, strides=strides, not_measured=reason)


def _exercise(data: SessionData, protocol: Protocol | None) -> ExerciseOutcome:
    section = protocol.exercise if isinstance(protocol, ExerciseProtocol) else None
    prescribed = data.info.reps_prescribed
    if prescribed is None and section is not None:
        prescribed = section.sets * section.reps
    return ExerciseOutcome(
        exercise=section.exercise if section else data.info.protocol_name,
        reps_prescribed=prescribed,
        target_rom_deg=section.target_rom_deg if section else None,
        target_hold_s=section.hold_s if section else None,
        repetitions=data.repetitions)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan
