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

from controller.detect.gait import HEEL_OFF_LEAD_FRACTION
from controller.safety import TRIMMED_RAMP_DOWN_S
from protocols.schema import CadenceTrigger, GaitProtocol, GyroTrigger

CADENCE_RANGE_SPM = (60.0, 120.0)
"""Steps per minute a protocol must work over: slow hemiparetic walking to brisk walking."""
SWING_FRACTION = 0.4


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
    if isinstance(trigger, CadenceTrigger):  # its own swing share, no heel-off
        swing, lead = trigger.swing_fraction, 0.0
    elif isinstance(trigger, GyroTrigger) and trigger.start_on == "toe_off":
        swing, lead = SWING_FRACTION, 0.0
    else:  # starts at heel-off (gyro) or at the tilt's heel-off threshold
        swing, lead = SWING_FRACTION, HEEL_OFF_LEAD_FRACTION
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
    trigger = protocol.trigger
    if isinstance(trigger, CadenceTrigger):  # steps of the stimulated leg: one stride each
        return 60.0 / trigger.cadence_steps_per_min, 60.0 / trigger.cadence_steps_per_min
    return 120.0 / cadence_range_spm[0], 120.0 / cadence_range_spm[1]
