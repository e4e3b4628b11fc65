"""What a therapist's protocol may say, with units in every field name.

Each field's range is the hard limit from ``controller.safety``; a protocol can only
narrow those limits. Unknown keys are refused so a typo (``pulse_width_ms``) never passes
silently.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.safety import HARD_LIMITS, ChannelLimits, SafetyConfig, charge_per_phase_uc
from controller.sensor_watch import SensorLimits

_LIMITS = HARD_LIMITS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    frequency_hz: float = Field(ge=_LIMITS.frequency_min_hz, le=_LIMITS.frequency_max_hz)
    ramp_up_s: float = Field(ge=0, le=_LIMITS.ramp_max_s)
    ramp_down_s: float = Field(ge=0, le=_LIMITS.ramp_max_s)
    max_burst_s: float = Field(default=1.5, gt=0, le=_LIMITS.burst_max_gait_s)
    duty_cycle_max: float = Field(default=_LIMITS.duty_cycle_max, gt=0,
                                  le=_LIMITS.duty_cycle_max,
                                  description="largest on-time fraction over any 60 s")


class GyroTrigger(_Section):
    """Gait events from the sagittal angular velocity (self-calibrating detector)."""

    kind: Literal["gyro"]
    start_on: Literal["heel_off", "toe_off"] = "heel_off"


class TiltTrigger(_Section):
    """WalkAide-style: stimulation follows the limb's tilt past two thresholds."""

    kind: Literal["tilt"]
    tilt_heel_off_deg: float = Field(
        gt=0, le=60, description="backward tilt from standing (degrees) that starts a step")
    tilt_heel_strike_deg: float = Field(
        gt=0, le=60, description="forward tilt from standing (degrees) that ends it")


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


class Protocol(_Section):
    """A whole protocol file."""

    name: str = Field(min_length=1)
    description: str = ""
    mode: Literal["gait"] = "gait"
    leg: Literal["left", "right"]
    extension_s: float = Field(default=0.1, ge=0, le=0.5,
                               description="stimulation kept on after heel strike")
    channels: list[Channel] = Field(min_length=1, max_length=8)
    stimulation: Stimulation
    trigger: Trigger
    safety: Safety = Safety()
    session: Session

    @model_validator(mode="after")
    def _channels_unique_and_within_charge(self) -> Protocol:
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

    def safety_config(self) -> SafetyConfig:
        """The supervisor's view of this protocol."""
        return SafetyConfig(
            channels=tuple(
                ChannelLimits(ch.channel, ch.pulse_width_us, ch.amplitude_min_ma,
                              ch.amplitude_max_ma, ch.amplitude_start_ma)
                for ch in self.channels),
            frequency_hz=self.stimulation.frequency_hz,
            ramp_up_s=self.stimulation.ramp_up_s,
            ramp_down_s=self.stimulation.ramp_down_s,
            max_burst_s=self.stimulation.max_burst_s,
            duty_cycle_max=self.stimulation.duty_cycle_max,
            charge_per_phase_max_uc=self.safety.charge_per_phase_max_uc,
            mode=self.mode,
        )

    def sensor_limits(self) -> SensorLimits:
        """The sensor watch's view of this protocol."""
        return SensorLimits(silent_s=self.safety.sensor_silent_s,
                            frozen_s=self.safety.sensor_frozen_s)
