"""A synthetic exercising limb that answers the cues and the stimulation it is given.

The limb is a foot-worn IMU (x along the foot, z out of its top, y across it) on a foot
that rotates about y. Its angle from rest is

    angle = rest level + min(anatomical limit, own movement + stimulated movement)

* **Own movement** (:class:`PatientScript`): the patient answers each "start" cue after a
  reaction time with a rise of their own range of motion, holds it until told to lower,
  and lowers at their own tempo. Fatigue shrinks the range rep by rep; chosen reps are
  given up part way (incomplete); fidgets are small bumps at chosen times; the rest level
  can drift; a range of zero is a patient who does not move.
* **Stimulated movement** (:class:`MuscleModel`): the delivered amplitude recruits the
  muscle between a motor threshold and saturation; activation follows recruitment with a
  time constant; fatigue lowers the force the longer activation lasts and recovers at
  rest. The movement is activation x remaining force x the range full recruitment gives.

It is a sample source for :class:`~simulator.motion.SimulatedMotion` (samples at its own
rate, made as the clock reaches them) and a session observer (it hears the cues). ``truth`` keeps the noise-free angle
of every sample, so tests can compare what the controller measured with what happened.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from controller.observe import SessionObserver
from controller.types import GRAVITY_MPS2, Cue, Sample
from simulator.motion import SAME_TIME_S

ANATOMICAL_LIMIT_DEG = 35.0
"""Dorsiflexion the ankle can reach from a relaxed rest, however hard it is pulled."""
GYRO_NOISE_DPS = 0.3
ACC_NOISE_MPS2 = 0.03


@dataclass(frozen=True)
class MuscleModel:
    """Tibialis anterior under surface stimulation, in three documented effects.

    Recruitment rises smoothly from nothing at the motor threshold to all at saturation
    (surface FES recruits over roughly that span); activation lags recruitment by a first
    order time constant (the rise of a tetanic contraction); fatigue: the force left falls
    at a rate proportional to activation and recovers towards full without it. Values are
    plausible for a tibialis anterior, not fitted to anyone.
    """

    threshold_ma: float = 10.0
    saturation_ma: float = 32.0
    full_range_deg: float = 28.0
    activation_tau_s: float = 0.15
    fatigue_tau_s: float = 120.0
    """Time at full activation for the force to fall to 1/e (without recovery)."""
    recovery_tau_s: float = 60.0

    def recruitment(self, amplitude_ma: float) -> float:
        share = (amplitude_ma - self.threshold_ma) / (self.saturation_ma - self.threshold_ma)
        share = min(max(share, 0.0), 1.0)
        return share * share * (3.0 - 2.0 * share)


@dataclass
class MuscleState:
    model: MuscleModel
    activation: float = 0.0
    force_left: float = 1.0

    def step(self, amplitude_ma: float, dt_s: float) -> float:
        """Advance ``dt_s`` under ``amplitude_ma``; the stimulated movement now (deg)."""
        m = self.model
        self.activation += (m.recruitment(amplitude_ma) - self.activation) * min(
            dt_s / m.activation_tau_s, 1.0)
        self.force_left += dt_s * ((1.0 - self.activation) * (1.0 - self.force_left)
                                   / m.recovery_tau_s
                                   - self.activation * self.force_left / m.fatigue_tau_s)
        return m.full_range_deg * self.activation * self.force_left


@dataclass(frozen=True)
class PatientScript:
    """What the patient does of their own accord."""

    rom_deg: float = 20.0
    """Own range of motion at the first repetition; 0 is a patient who does not move."""
    rise_s: float = 1.0
    lower_s: float = 1.5
    reaction_s: float = 0.6
    """From a start cue to the patient's own onset."""
    fatigue_per_rep: float = 0.0
    """Share of the range lost with every repetition."""
    incomplete_reps: frozenset[int] = frozenset()
    """Repetitions (counted from 1) given up at 40 % of the range, without a hold."""
    fidgets_at_s: tuple[float, ...] = ()
    """Times of small bumps (half a second long), whatever the cues say."""
    fidget_deg: float = 3.0
    rest_drift_deg_per_min: float = 0.0


FIDGET_S = 0.5
INCOMPLETE_SHARE = 0.4


@dataclass
class _Movement:
    """One voluntary excursion: rise to ``rom_deg``, hold until ``lower_at_s``, lower."""

    onset_s: float
    rom_deg: float
    rise_s: float
    lower_s: float
    lower_at_s: float | None = None

    def angle_deg(self, t_s: float) -> float:
        if t_s < self.onset_s:
            return 0.0
        up = _smooth((t_s - self.onset_s) / self.rise_s)
        if self.lower_at_s is None or t_s < self.lower_at_s:
            return self.rom_deg * up
        top_deg = self.rom_deg * _smooth((self.lower_at_s - self.onset_s) / self.rise_s)
        return top_deg * (1.0 - _smooth((t_s - self.lower_at_s) / self.lower_s))

    def over(self, t_s: float) -> bool:
        return self.lower_at_s is not None and t_s >= self.lower_at_s + self.lower_s


def _smooth(share: float) -> float:
    """A minimum-jerk-like 0 -> 1 over share 0 -> 1 (a cosine)."""
    share = min(max(share, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * share)


@dataclass
class LimbTruth:
    """The noise-free angle the limb had at every sample it delivered."""

    t_s: list[float] = field(default_factory=list)
    angle_deg: list[float] = field(default_factory=list)
    own_deg: list[float] = field(default_factory=list)
    stimulated_deg: list[float] = field(default_factory=list)


class SimulatedLimb(SessionObserver):
    """An exercising foot as a motion sensor; it hears cues and feels the stimulation."""

    def __init__(self, script: PatientScript, amplitude_ma: Callable[[], float], *,
                 start_s: float = 0.0, rate_hz: float = 100.0,
                 muscle: MuscleModel | None = None, seed: int = 0) -> None:
        self.script = script
        self.truth = LimbTruth()
        self.start_s = start_s
        self.end_s = math.inf
        self._amplitude_ma = amplitude_ma
        self._period_s = 1.0 / rate_hz
        self._delivered = 0
        self._muscle = MuscleState(muscle or MuscleModel())
        self._rng = np.random.default_rng(seed)
        self._movements: list[_Movement] = []
        self._starts = 0
        self._first_live = 0
        """Movements before this index are over (samples are made in time order)."""

    # -- what the patient hears --------------------------------------------------------------

    def on_cue(self, cue: Cue) -> None:
        if cue.kind == "start":
            self._start(cue.t_s + self.script.reaction_s)
        elif cue.kind == "lower":
            for movement in self._movements:
                if movement.lower_at_s is None:
                    movement.lower_at_s = max(cue.t_s + self.script.reaction_s / 2,
                                              movement.onset_s + movement.rise_s)

    def _start(self, onset_s: float) -> None:
        script = self.script
        self._starts += 1
        rom_deg = script.rom_deg * (1.0 - script.fatigue_per_rep) ** (self._starts - 1)
        if rom_deg <= 0.0:
            return
        movement = _Movement(onset_s, rom_deg, script.rise_s, script.lower_s)
        if self._starts in script.incomplete_reps:
            movement = _Movement(onset_s, rom_deg * INCOMPLETE_SHARE,
                                 script.rise_s * INCOMPLETE_SHARE, script.lower_s,
                                 lower_at_s=onset_s + script.rise_s * INCOMPLETE_SHARE)
        self._movements.append(movement)

    # -- what the sensor sends ---------------------------------------------------------------

    def until(self, now_s: float) -> list[Sample]:
        out: list[Sample] = []
        while (t_s := self.start_s + self._delivered * self._period_s) <= now_s + SAME_TIME_S:
            out.append(self._sample(t_s))
            self._delivered += 1
        return out

    def _own_deg(self, t_s: float) -> float:
        while self._first_live < len(self._movements) and \
                self._movements[self._first_live].over(t_s):
            self._first_live += 1
        live = self._movements[self._first_live:]
        own = max((m.angle_deg(t_s) for m in live), default=0.0)
        for at_s in self.script.fidgets_at_s:
            if at_s <= t_s < at_s + FIDGET_S:
                own += self.script.fidget_deg * math.sin(math.pi * (t_s - at_s) / FIDGET_S)
        return own

    def _sample(self, t_s: float) -> Sample:
        dt_s = self._period_s
        stimulated_deg = self._muscle.step(self._amplitude_ma(), dt_s)
        own_deg = self._own_deg(t_s)
        rest_deg = self.script.rest_drift_deg_per_min * t_s / 60.0
        angle_deg = rest_deg + min(ANATOMICAL_LIMIT_DEG, own_deg + stimulated_deg)
        previous = self.truth.angle_deg[-1] if self.truth.angle_deg else angle_deg
        rate_dps = (angle_deg - previous) / dt_s
        self.truth.t_s.append(t_s)
        self.truth.angle_deg.append(angle_deg)
        self.truth.own_deg.append(own_deg)
        self.truth.stimulated_deg.append(stimulated_deg)
        pitch = math.radians(angle_deg)
        noise_acc = self._rng.normal(0.0, ACC_NOISE_MPS2, 3)
        noise_gyro = self._rng.normal(0.0, GYRO_NOISE_DPS, 3)
        # Specific force of a sensor pitched toes-up about y, seen in the sensor's frame.
        acc = (-GRAVITY_MPS2 * math.sin(pitch) + noise_acc[0], noise_acc[1],
               GRAVITY_MPS2 * math.cos(pitch) + noise_acc[2])
        gyro = (noise_gyro[0], rate_dps + noise_gyro[1], noise_gyro[2])
        return Sample(t_s, (float(acc[0]), float(acc[1]), float(acc[2])),
                      (float(gyro[0]), float(gyro[1]), float(gyro[2])))
