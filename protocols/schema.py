"""What a therapist's protocol may say, with units in every field name.

Each field's range is the hard limit from ``controller.safety``; a protocol can only
narrow those limits. Unknown keys are refused so a typo (``pulse_width_ms``) never passes
silently. There is one model per mode (``mode = "gait"`` or ``"exercise"``), each with
its own limits (a gait burst is at most 2 s, an exercise hold at most 10 s); a file is
read as the one its ``mode`` names.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from controller.detect.calibration import Placement
from controller.safety_limits import (
    HARD_LIMITS,
    ChannelLimits,
    Mode,
    SafetyConfig,
    charge_per_phase_uc,
)
from controller.sensor_watch import MIN_RATE_HZ, SensorLimits

_LIMITS = HARD_LIMITS


class _Section(BaseModel):
    # defer_build: a model's validator is built when it is first used, so a command that
    # loads a gait protocol does not build the exercise models (start-up time)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Channel(_Section):
    """One electrode pair and its intensity window (the patient's nudges stay inside it)."""

    channel: int = Field(ge=1, le=8, description="stimulator output 1-8")
    site: str = Field(min_length=1, description="electrode site, e.g. common peroneal nerve")
    amplitude_min_ma: float = Field(ge=0, le=_LIMITS.amplitude_max_ma)
    amplitude_max_ma: float = Field(ge=0, le=_LIMITS.amplitude_max_ma)
    amplitude_start_ma: float = Field(ge=0, le=_LIMITS.amplitude_max_ma)
    pulse_width_us: int = Field(ge=_LIMITS.pulse_width_min_us, le=_LIMITS.pulse_width_max_us)

    @model_validator(mode="after")
    def _window(self) -> Channel:
        if not self.amplitude_min_ma <= self.amplitude_start_ma <= self.amplitude_max_ma:
            raise ValueError(
                "needs amplitude_min_ma <= amplitude_start_ma <= amplitude_max_ma, got "
                f"{self.amplitude_min_ma:g} / {self.amplitude_start_ma:g} / "
                f"{self.amplitude_max_ma:g} mA")
        return self


class Stimulation(_Section):
    """Gait: a burst covers one swing."""

    frequency_hz: float = Field(ge=_LIMITS.frequency_min_hz, le=_LIMITS.frequency_max_hz)
    ramp_up_s: float = Field(ge=0, le=_LIMITS.ramp_max_s)
    ramp_down_s: float = Field(ge=0, le=_LIMITS.ramp_max_s)
    max_burst_s: float = Field(default=1.5, gt=0, le=_LIMITS.burst_max_s("gait"))
    duty_cycle_max: float = Field(default=_LIMITS.duty_cycle_max("gait"), gt=0,
                                  le=_LIMITS.duty_cycle_max("gait"),
                                  description="largest on-time fraction over any 60 s")

    @model_validator(mode="after")
    def _burst_holds_its_ramps(self) -> Any:
        if self.max_burst_s < self.ramp_up_s + self.ramp_down_s:
            raise ValueError(
                f"max_burst_s {self.max_burst_s:g} s is shorter than ramp_up_s + ramp_down_s "
                f"({self.ramp_up_s:g} + {self.ramp_down_s:g} s): every burst would be cut "
                "before its ramps are done")
        return self


class ExerciseStimulation(Stimulation):
    """Exercise: a burst may cover a whole rise and hold."""

    max_burst_s: float = Field(default=6.0, gt=0, le=_LIMITS.burst_max_s("exercise"))
    duty_cycle_max: float = Field(default=_LIMITS.duty_cycle_max("exercise"), gt=0,
                                  le=_LIMITS.duty_cycle_max("exercise"),
                                  description="largest on-time fraction over any 60 s")


class GyroTrigger(_Section):
    """Gait events from the sagittal angular velocity (self-calibrating detector)."""

    kind: Literal["gyro"]
    start_on: Literal["heel_off", "toe_off"] = "heel_off"
    placement: Placement = Field(default="foot", description="where the IMU is worn")


class TiltTrigger(_Section):
    """WalkAide-style: stimulation follows the limb's tilt past two thresholds."""

    kind: Literal["tilt"]
    tilt_heel_off_deg: float = Field(
        gt=0, le=60, description="backward tilt from standing (degrees) that starts a step")
    tilt_heel_strike_deg: float = Field(
        gt=0, le=60, description="forward tilt from standing (degrees) that ends it")
    placement: Placement = Field(default="shank", description="where the IMU is worn")


class CadenceTrigger(_Section):
    """Timed stepping for treadmill training: no sensor events needed."""

    kind: Literal["cadence"]
    cadence_steps_per_min: float = Field(ge=20, le=150,
                                         description="steps of the stimulated leg per minute")
    swing_fraction: float = Field(default=0.4, ge=0.1, le=0.7,
                                  description="part of each step cycle that is swing")


Trigger = Annotated[GyroTrigger | TiltTrigger | CadenceTrigger, Field(discriminator="kind")]
TRIGGER_KINDS = ("gyro", "tilt", "cadence")


class Safety(_Section):
    charge_per_phase_max_uc: float = Field(
        default=_LIMITS.charge_per_phase_max_uc, gt=0, le=_LIMITS.charge_per_phase_max_uc,
        description="largest charge per phase, amplitude_max_ma x pulse_width_us / 1000")
    sensor_silent_s: float = Field(default=0.1, ge=0.02, le=0.5)
    sensor_frozen_s: float = Field(default=0.5, ge=0.1, le=2.0)


class Session(_Section):
    duration_s: float = Field(gt=0, le=4 * 3600)


class _ProtocolBase(_Section):
    """What every mode's protocol holds: who, which electrodes, how long, which limits."""

    mode: Mode
    name: str = Field(min_length=1)
    description: str = ""
    leg: Literal["left", "right"]
    channels: list[Channel] = Field(min_length=1, max_length=8)
    safety: Safety = Safety()
    session: Session

    @model_validator(mode="after")
    def _channels_unique_and_within_charge(self) -> Any:
        numbers = [ch.channel for ch in self.channels]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"channel numbers must be unique, got {numbers}")
        limit = self.safety.charge_per_phase_max_uc
        for index, ch in enumerate(self.channels):
            charge = charge_per_phase_uc(ch.amplitude_max_ma, ch.pulse_width_us)
            if charge > limit:
                raise ValueError(
                    f"channels[{index}]: charge per phase {charge:g} µC "
                    f"(amplitude_max_ma x pulse_width_us) is over the {limit:g} µC limit "
                    "(safety.charge_per_phase_max_uc); refused, not clipped: lower one of them")
        return self

    def _safety_config(self, mode: Mode, stimulation: Stimulation | ExerciseStimulation
                       ) -> SafetyConfig:
        return SafetyConfig(
            channels=tuple(
                ChannelLimits(ch.channel, ch.pulse_width_us, ch.amplitude_min_ma,
                              ch.amplitude_max_ma, ch.amplitude_start_ma)
                for ch in self.channels),
            frequency_hz=stimulation.frequency_hz,
            ramp_up_s=stimulation.ramp_up_s,
            ramp_down_s=stimulation.ramp_down_s,
            max_burst_s=stimulation.max_burst_s,
            duty_cycle_max=stimulation.duty_cycle_max,
            charge_per_phase_max_uc=self.safety.charge_per_phase_max_uc,
            mode=mode,
        )

    def sensor_limits(self) -> SensorLimits:
        """The sensor watch's view of this protocol."""
        return SensorLimits(silent_s=self.safety.sensor_silent_s,
                            frozen_s=self.safety.sensor_frozen_s,
                            min_rate_hz=MIN_RATE_HZ[self.mode])


class GaitProtocol(_ProtocolBase):
    """Stimulation timed to the phases of walking."""

    mode: Literal["gait"] = "gait"
    extension_s: float = Field(default=0.1, ge=0, le=0.5,
                               description="stimulation kept on after heel strike")
    stimulation: Stimulation
    trigger: Trigger

    def safety_config(self) -> SafetyConfig:
        """The supervisor's view of this protocol."""
        return self._safety_config("gait", self.stimulation)

    @model_validator(mode="after")
    def _fits_a_walk(self) -> Any:
        """Refuse a protocol whose bursts cannot cover every swing within its limits (see
        :mod:`protocols.duty`)."""
        from protocols.duty import check_gait

        problems = check_gait(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


Exercise = Literal[
    "seated_dorsiflexion", "toe_raises", "assisted_toe_raises", "toe_raise_negatives",
    "heel_raises", "ankle_eversion", "ankle_inversion", "band_dorsiflexion", "step_taps",
    "heel_walking", "single_leg_stand", "ankle_alphabet", "calf_stretch",
    "knee_extension",
]
EXERCISES: tuple[str, ...] = typing.get_args(Exercise)
"""The exercises the controller knows how to measure; each has one bundled protocol."""
StimulatedPhase = Literal["rise", "hold", "lower"]


class ExerciseSection(_Section):
    """One exercise as the therapist's sheet prescribes it."""

    exercise: Exercise
    instruction: str = Field(min_length=1, max_length=200,
                             description="what the patient is told, in plain words")
    start_cue: str = Field(default="Lift", min_length=1, max_length=40,
                           description="the word that starts each repetition")
    sets: int = Field(ge=1, le=10)
    reps: int = Field(ge=1, le=50, description="repetitions per set")
    hold_s: float = Field(ge=0, le=60, description="time to hold at the top of each rep")
    rest_between_reps_s: float = Field(default=3.0, ge=0, le=120)
    rest_between_sets_s: float = Field(default=60.0, ge=0, le=600)
    target_rom_deg: float = Field(gt=0, le=90, description="range of motion aimed for")
    rise_s: float = Field(default=1.0, gt=0, le=10, description="tempo of the rise")
    lower_s: float = Field(default=1.0, gt=0, le=10,
                           description="tempo of the lowering (long for slow negatives)")
    pairing: Literal["triggered", "cued", "assist_as_needed"]
    onset_threshold_deg: float = Field(default=5.0, gt=0, le=30,
                                       description="movement from rest that is an onset")
    assist_timeout_s: float = Field(default=2.0, gt=0, le=10,
                                    description="assist-as-needed: time to reach the target "
                                    "before stimulation helps")
    stimulate: list[StimulatedPhase] = Field(
        default_factory=list, description="phases stimulated; empty: measure only")
    axis: Literal["auto", "x", "y", "z", "-x", "-y", "-z"] = "auto"
    placement: Literal["foot", "shank"] = "foot"

    def expected_s(self) -> float:
        """About how long the prescription takes when done as prescribed (for a progress
        bar; the session ends when the last set is done, whatever this says)."""
        rep_s = 1.0 + self.rise_s + self.hold_s + self.lower_s + self.rest_between_reps_s
        return self.sets * self.reps * rep_s + (self.sets - 1) * self.rest_between_sets_s


class ExerciseProtocol(_ProtocolBase):
    """Stimulation paired with a prescribed exercise, repetition by repetition."""

    mode: Literal["exercise"]
    stimulation: ExerciseStimulation
    exercise: ExerciseSection

    @model_validator(mode="after")
    def _stimulation_fits_the_limits(self) -> Any:
        """Refuse a prescription whose stimulated part cannot fit one burst, or whose
        repetitions, done as prescribed, would stimulate for more than the duty-cycle limit:
        the supervisor would cut the output mid-repetition, which is no way to pair
        stimulation with an exercise."""
        ex, stimulation = self.exercise, self.stimulation
        if not ex.stimulate:
            return self
        phases_s = {"rise": ex.rise_s, "hold": ex.hold_s, "lower": ex.lower_s}
        if ex.pairing == "assist_as_needed":
            phases_s["rise"] = max(ex.rise_s, ex.assist_timeout_s)
        stimulated = sorted(set(ex.stimulate))
        burst_s = sum(phases_s[phase] for phase in stimulated) + stimulation.ramp_down_s
        if burst_s > stimulation.max_burst_s:
            raise ValueError(
                f"exercise: the stimulated phases ({' + '.join(stimulated)}) with the "
                f"ramp-down last {burst_s:g} s, longer than stimulation.max_burst_s "
                f"{stimulation.max_burst_s:g} s (at most "
                f"{_LIMITS.burst_max_s('exercise'):g} s for an exercise): shorten the hold "
                "or stimulate fewer phases")
        cycle_s = sum(phases_s.values()) + ex.rest_between_reps_s
        if burst_s / cycle_s > stimulation.duty_cycle_max:
            raise ValueError(
                f"exercise: stimulated {burst_s:g} s in every {cycle_s:g} s repetition "
                f"({100 * burst_s / cycle_s:.0f} % on-time), over the duty-cycle limit "
                f"stimulation.duty_cycle_max {100 * stimulation.duty_cycle_max:.0f} %: "
                "lengthen the rest between repetitions")
        return self

    def safety_config(self) -> SafetyConfig:
        """The supervisor's view of this protocol."""
        return self._safety_config("exercise", self.stimulation)


def _mode_of(data: Any) -> str:
    """The model a protocol file is read as; files written before modes existed are gait."""
    if isinstance(data, dict):
        return str(data.get("mode", "gait"))
    return str(getattr(data, "mode", "gait"))


Protocol = GaitProtocol | ExerciseProtocol
"""A protocol of any mode; narrow it with ``isinstance`` where the mode matters."""

AnyProtocol = Annotated[
    Annotated[GaitProtocol, Tag("gait")] | Annotated[ExerciseProtocol, Tag("exercise")],
    Discriminator(_mode_of)]
MODES: dict[str, type[BaseModel]] = {"gait": GaitProtocol, "exercise": ExerciseProtocol}
