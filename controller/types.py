"""Value types that flow along one control tick (see DESIGN "Data flow").

Units are in the names; time is seconds on the sensor's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Vector3 = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Sample:
    """One IMU reading. The timestamp is the session clock, never wall time."""

    t_s: float
    acc_mps2: Vector3
    gyro_dps: Vector3
    angle_deg: Vector3 | None = None


class GaitEventKind(str, Enum):
    HEEL_OFF = "heel_off"
    TOE_OFF = "toe_off"
    MID_SWING = "mid_swing"
    HEEL_STRIKE = "heel_strike"
    STEP_END = "step_end"
    """A step closed with no heel strike found (pivot, last step): stimulation must stop."""
    STILL = "still"
    """The limb has stopped moving (standing or sitting): stimulation must stop."""


@dataclass(frozen=True, slots=True)
class GaitEvent:
    """A detected gait event.

    ``t_s`` is when the event happened (the detector's estimate); ``detected_at_s`` is the
    time of the sample on which the detector could first say so. Their difference is the
    causal delay that the stimulation timing has to live with.
    """

    kind: GaitEventKind
    t_s: float
    detected_at_s: float


class ExerciseEventKind(str, Enum):
    ONSET = "onset"
    """The segment left its rest level: the patient started a repetition."""
    REACHED = "reached"
    """The rise stopped at a top far enough from rest to be a repetition."""
    LOWERING = "lowering"
    """The segment left its top on the way back."""
    AT_REST = "at_rest"
    """Back at rest after a top: the repetition is complete."""
    ABANDONED = "abandoned"
    """Back at rest without a top: a rise given up part way (an incomplete repetition)."""
    FIDGET = "fidget"
    """Back at rest after an excursion too small to be an attempt at all."""


@dataclass(frozen=True, slots=True)
class ExerciseEvent:
    """A detected exercise event; ``t_s`` and ``detected_at_s`` as for :class:`GaitEvent`.

    ``angle_deg`` is the excursion from the rest level the event is about: the angle at
    the onset, the peak at the top and after it.
    """

    kind: ExerciseEventKind
    t_s: float
    detected_at_s: float
    angle_deg: float

    @property
    def trigger(self) -> str:
        return self.kind.value


DetectorEvent = GaitEvent | ExerciseEvent


class FaultKind(str, Enum):
    SENSOR_SILENT = "sensor_silent"
    SENSOR_FROZEN = "sensor_frozen"
    SENSOR_ERROR = "sensor_error"
    TIME_BACKWARDS = "time_backwards"
    TIME_JUMP = "time_jump"
    IMPLAUSIBLE_VALUE = "implausible_value"
    SENSOR_DEGRADED = "sensor_degraded"
    """Too few usable samples a second for the mode's detector (lost or damaged packets)."""
    STIMULATOR_ERROR = "stimulator_error"
    LIMIT_REJECTED = "limit_rejected"
    LOOP_LATE = "loop_late"
    EMERGENCY_STOP = "emergency_stop"
    RECORD_FAILED = "record_failed"
    """The session record cannot be written: no stimulation goes unrecorded."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A latched reason for zero output; ``t_s`` is the session time it became visible."""

    kind: FaultKind
    t_s: float
    detail: str


@dataclass(frozen=True, slots=True)
class ClosedStep:
    """One step of the stimulated leg as the session accounts for it once it has closed.

    ``charge_uc`` is what the stimulator delivered while the step was open (a ramp-down
    after it closed counts in the channel totals only).
    """

    index: int
    start_s: float
    end_s: float
    heel_strike_s: float | None
    outcome: str
    charge_uc: float


@dataclass(frozen=True, slots=True)
class Repetition:
    """One exercise repetition as the session accounts for it once it has ended.

    Angles are from the calibrated rest orientation in the movement's plane; times are
    session time. ``peak_s`` is when the top was reached (the angle first within the hold
    tolerance of its peak), ``hold_s`` how long the top was held (within that tolerance),
    ``lower_s`` the time from the end of the hold back near rest, within the onset
    threshold or a fifth of the peak (None if the limb never got back while the machine
    waited).
    """

    set_index: int
    rep_index: int
    onset_s: float
    peak_s: float
    peak_angle_deg: float
    hold_s: float
    lower_s: float | None
    end_s: float
    stimulated: bool
    charge_uc: float
    stimulation_s: float
    assisted: bool
    sway_deg: float
    """Spread of the tilt while held, both axes together (root of the summed variances):
    steadiness, and the sway of a balance exercise."""
    span_deg: float = 0.0
    """Range the angle covered about the movement axis (highest minus lowest)."""
    cross_span_deg: float = 0.0
    """Range covered about the axis across it: with ``span_deg``, the range of motion of
    an ankle alphabet or rotation in two axes."""

    @property
    def time_to_peak_s(self) -> float:
        return self.peak_s - self.onset_s


Unit = ClosedStep | Repetition
"""What a session closes one at a time: a step of a walk or a repetition of an exercise."""


@dataclass(frozen=True, slots=True)
class Cue:
    """What the patient is told now (shown large, and spoken where the platform can)."""

    t_s: float
    kind: str
    """start, hold, lower, rest, set_break, done."""
    text: str
    duration_s: float | None = None


class SessionStatus(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    """Ended by the patient or operator."""
    EMERGENCY_STOP = "emergency_stop"
    FAILED = "failed"
    """Ended by an unexpected error; output was still forced off."""
    FAULTED = "faulted"
    """Ran its course with a fault still latched: output stayed off from the fault on."""


@dataclass
class SessionSummary:
    """How a session ended and what it did; ``figures`` are the mode's own counts."""

    session_id: int | None
    record_path: str | None
    status: str
    duration_s: float
    samples: int
    figures: dict[str, int | float] = field(default_factory=dict)
    faults: list[dict[str, object]] = field(default_factory=list)
    charge_uc: dict[int, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    """How a person reads each figure's key (``unexpected_events``: unexpected (false)
    events)."""
    warnings: list[str] = field(default_factory=list)
    """What went less well than the figures alone show (few steps stimulated...)."""

    def as_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready: the record's copy of the summary."""
        return {"session_id": self.session_id, "record_path": self.record_path,
                "status": self.status, "duration_s": self.duration_s,
                "samples": self.samples, **self.figures, "faults": self.faults,
                "charge_uc": self.charge_uc, "warnings": self.warnings}


@dataclass(frozen=True)
class StatusLine:
    """What a live display shows at a refresh."""

    t_s: float
    elapsed_s: float
    phase: str
    output_ma: dict[int, float]
    setting_ma: dict[int, float]
    counts: dict[str, int]
    latched: tuple[Fault, ...]
    paused: bool
    resetting: bool = False
    """A reset waits for the stimulator to come up again (faults stay latched meanwhile)."""

    @property
    def counts_text(self) -> str:
        """The counters as a person reads them: ``rep 3 of 30 · set 1 of 3`` or
        ``steps 24 · stimulated 22 · missed 0``."""
        c = self.counts
        if "reps" in c:
            return f"rep {c['reps']} of {c['of']} · set {c['set']} of {c['sets']}"
        return " · ".join(f"{name} {value}" for name, value in c.items())


GRAVITY_MPS2 = 9.80665
"""Standard gravity: the one value every layer converts g with."""
