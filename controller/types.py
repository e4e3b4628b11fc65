"""Value types that flow along one control tick (see DESIGN "Data flow").

Units are in the names; time is seconds on the sensor's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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
