"""How much of a walk a gait protocol keeps the stimulator on, before anyone walks with it.

Per stride a gait burst covers (see README, "Duty cycle"):

* the step itself, which nothing may shorten: from the start event to heel strike. Swing
  is about 40 % of the gait cycle (Perry's phases of normal gait; people with foot drop
  walk with a swing of 35-45 %), and a burst started at heel-off adds the push-off before
  toe-off, about 20 % of the stride as the detector times it;
* the optional tail, which the supervisor may shorten when on-time nears the limit: the
  extension after heel strike and the ramp-down (trimmed to ``TRIMMED_RAMP_DOWN_S``).

The fraction is highest at the fastest cadence (the tail is fixed in seconds, the stride
is shortest) and the burst longest at the slowest. ``check_gait`` refuses a protocol
whose step alone cannot fit its duty-cycle limit, or whose burst limit would cut a slow
step short, across ``CADENCE_RANGE_SPM``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.safety import TRIMMED_RAMP_DOWN_S

if TYPE_CHECKING:
    from protocols.schema import GaitProtocol

CADENCE_RANGE_SPM = (60.0, 120.0)
"""Steps per minute a protocol must work over: slow hemiparetic walking to brisk walking."""
SWING_FRACTION = 0.4
PUSH_OFF_FRACTION = 0.2
"""Heel-off to toe-off, as a fraction of the stride (the gyro detector's heel-off lead)."""


@dataclass(frozen=True)
class OnTime:
    stride_s: float
    step_s: float
    """Start event to heel strike: never shortened."""
    tail_s: float
    """Extension plus ramp-down, as the protocol asks."""
    trimmed_tail_s: float
    """The tail once the supervisor trims it (no extension, short ramp-down)."""

    @property
    def full(self) -> float:
        return (self.step_s + self.tail_s) / self.stride_s

    @property
    def trimmed(self) -> float:
        return (self.step_s + self.trimmed_tail_s) / self.stride_s


    @property
    def cadence_spm(self) -> float:
        """Steps per minute, both legs."""
        return 120.0 / self.stride_s


def gait_on_time(protocol: GaitProtocol, stride_s: float) -> OnTime:
    """The on-time of one stride of ``stride_s`` (one step of each leg)."""
    trigger = protocol.trigger
    swing = getattr(trigger, "swing_fraction", SWING_FRACTION)
    lead = PUSH_OFF_FRACTION if getattr(trigger, "start_on", "heel_off") == "heel_off" \
        and trigger.kind != "cadence" else 0.0
    stimulation = protocol.stimulation
    return OnTime(stride_s, (lead + swing) * stride_s,
                  protocol.extension_s + stimulation.ramp_down_s,
                  min(stimulation.ramp_down_s, TRIMMED_RAMP_DOWN_S))


def check_gait(protocol: GaitProtocol,
               cadence_range_spm: tuple[float, float] = CADENCE_RANGE_SPM) -> list[str]:
    """Why this protocol cannot serve a walk in the cadence range ([] if it can); a
    cadence trigger is checked at its own pace."""
    slow, fast = (gait_on_time(protocol, s) for s in stride_range_s(protocol, cadence_range_spm))
    limit = protocol.stimulation.duty_cycle_max
    problems = []
    if fast.trimmed > limit:
        problems.append(
            f"at {fast.cadence_spm:g} steps/min the step alone keeps output on "
            f"{100 * fast.trimmed:.0f} % of the time, over the duty-cycle limit of "
            f"{100 * limit:.0f} %: whole swings would go unstimulated (start on toe_off, or "
            "raise duty_cycle_max)")
    longest_s = slow.step_s + slow.trimmed_tail_s
    if protocol.stimulation.max_burst_s < longest_s:
        problems.append(
            f"at {slow.cadence_spm:g} steps/min a step needs a {longest_s:.2f} s burst but "
            f"max_burst_s is {protocol.stimulation.max_burst_s:g} s: the end of each swing "
            "would go unstimulated")
    return problems


def stride_range_s(protocol: GaitProtocol, cadence_range_spm: tuple[float, float]
                   ) -> tuple[float, float]:
    """(slowest, fastest) stride the protocol must serve."""
    own_spm = getattr(protocol.trigger, "cadence_steps_per_min", None)
    if own_spm is not None:  # steps of the stimulated leg: one stride each
        return 60.0 / own_spm, 60.0 / own_spm
    return 120.0 / cadence_range_spm[0], 120.0 / cadence_range_spm[1]
