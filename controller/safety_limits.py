"""The hard limits and a session's safety configuration: what the supervisor
(:mod:`controller.safety`) enforces, checked when they are made.

Kept apart from the supervisor because the supervisor is compiled with mypyc and these are
not: a compiled class turns a ``True`` given for an ``int`` into 1 before any check could
see it, and a limit must refuse a value of the wrong kind, not quietly convert it. Nothing
here runs per tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal, TypeGuard

from controller.types import GRAVITY_MPS2

Mode = Literal["gait", "exercise"]


class LimitViolation(ValueError):
    """A configuration or request lies outside the hard limits."""


def is_finite_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float, not a bool (``True`` is no amount of anything): the hard
    limits here, and the stimulator host's timings and amplitudes, are checked with it."""
    return not isinstance(value, bool) and isinstance(value, int | float) \
        and math.isfinite(value)


@dataclass(frozen=True)
class HardLimits:
    """Absolute bounds no protocol, patient or caller can exceed.

    The defaults below are the limits; an instance may only narrow them (a test, a device
    with a smaller range). Asking for more, or for a value that is not a finite number,
    is refused at construction, so no constructor argument can widen what the supervisor
    allows.
    """

    amplitude_max_ma: float = 100.0
    pulse_width_min_us: int = 20
    pulse_width_max_us: int = 500
    frequency_min_hz: float = 1.0
    frequency_max_hz: float = 100.0
    charge_per_phase_max_uc: float = 50.0
    ramp_max_s: float = 2.0
    burst_max_gait_s: float = 2.0
    burst_max_exercise_s: float = 10.0
    duty_cycle_max_gait: float = 0.85
    """Walking: footswitch stimulators run from heel rise to heel strike (plus extension),
    60-70 % of the gait cycle, with no duty-cycle cap of their own (README, "Duty cycle")."""
    duty_cycle_max_exercise: float = 0.5
    duty_window_s: float = 60.0
    patient_step_ma: float = 1.0
    acc_full_scale_mps2: float = 16 * GRAVITY_MPS2
    gyro_full_scale_dps: float = 2000.0
    full_scale_allowance: float = 1.05
    """A calibrated sensor can read a few percent past its nominal full scale (walk 1 of
    the shared data reaches 16.1 g on impact); further than this no working sensor reads."""
    loop_late_max_s: float = 0.1
    """The longest a control loop may be silent before output is stopped from outside it;
    the supervisor's ``loop_late_s`` and the runner's watchdog lie in (0, this]."""
    channel_max: int = 8
    """A RehaStim 2 has 8 outputs, numbered from 1."""

    def __post_init__(self) -> None:
        problems = []
        for item in fields(self):
            value, code = getattr(self, item.name), item.default
            assert isinstance(code, int | float)
            if not is_finite_number(value) or not value > 0:
                problems.append(f"{item.name} {value!r} is not a finite number above 0")
            elif item.name in _RAISED_IS_NARROWER and not value >= code:
                problems.append(f"{item.name} {value:g} below the hard {code:g}")
            elif item.name not in _RAISED_IS_NARROWER and not value <= code:
                problems.append(f"{item.name} {value:g} above the hard {code:g}")
        if not problems and not (self.pulse_width_min_us <= self.pulse_width_max_us
                                 and self.frequency_min_hz <= self.frequency_max_hz):
            problems.append("a minimum above its maximum")
        if problems:
            raise LimitViolation("hard limits can only be narrowed: " + "; ".join(problems))

    def burst_max_s(self, mode: Mode) -> float:
        """Continuous stimulation per burst: a swing is short, an exercise hold is not."""
        return self.burst_max_exercise_s if mode == "exercise" else self.burst_max_gait_s

    def duty_cycle_max(self, mode: Mode) -> float:
        """On-time over any ``duty_window_s``: a walk's bursts are short and rest in every
        stance; an exercise's holds are long."""
        return self.duty_cycle_max_exercise if mode == "exercise" else self.duty_cycle_max_gait


_RAISED_IS_NARROWER = frozenset({"pulse_width_min_us", "frequency_min_hz"})
"""The hard limits that are lower bounds: raising them narrows what is allowed."""

HARD_LIMITS = HardLimits()

def charge_per_phase_uc(amplitude_ma: float, pulse_width_us: float) -> float:
    """mA × µs = nC; the limit is in µC."""
    return amplitude_ma * pulse_width_us / 1000.0


@dataclass(frozen=True)
class ChannelLimits:
    """One channel as the therapist configured it, already inside the hard limits."""

    channel: int
    pulse_width_us: int
    amplitude_min_ma: float
    amplitude_max_ma: float
    amplitude_start_ma: float


@dataclass(frozen=True)
class SafetyConfig:
    channels: tuple[ChannelLimits, ...]
    frequency_hz: float
    ramp_up_s: float
    ramp_down_s: float
    max_burst_s: float
    duty_cycle_max: float = HARD_LIMITS.duty_cycle_max_exercise
    charge_per_phase_max_uc: float = HARD_LIMITS.charge_per_phase_max_uc
    loop_late_s: float = 0.05
    mode: Mode = "gait"


def check_config(config: SafetyConfig, limits: HardLimits = HARD_LIMITS) -> None:
    """Refuse a configuration that breaks any hard limit; never clip it into range."""
    problems: list[str] = []
    if not limits.frequency_min_hz <= config.frequency_hz <= limits.frequency_max_hz:
        problems.append(f"frequency {config.frequency_hz} Hz outside "
                        f"{limits.frequency_min_hz}-{limits.frequency_max_hz} Hz")
    for name, ramp in (("ramp up", config.ramp_up_s), ("ramp down", config.ramp_down_s)):
        if not 0.0 <= ramp <= limits.ramp_max_s:
            problems.append(f"{name} {ramp} s outside 0-{limits.ramp_max_s} s")
    burst_max = limits.burst_max_s(config.mode)
    if not 0.0 < config.max_burst_s <= burst_max:
        problems.append(f"max burst {config.max_burst_s} s outside 0-{burst_max} s")
    duty_max = limits.duty_cycle_max(config.mode)
    if not 0.0 < config.duty_cycle_max <= duty_max:
        problems.append(f"duty cycle {config.duty_cycle_max} outside 0-{duty_max}")
    if config.max_burst_s < config.ramp_up_s + config.ramp_down_s:
        problems.append(f"max burst {config.max_burst_s} s cannot hold its ramps "
                        f"({config.ramp_up_s} s up + {config.ramp_down_s} s down)")
    if not 0.0 < config.charge_per_phase_max_uc <= limits.charge_per_phase_max_uc:
        problems.append(f"charge per phase limit {config.charge_per_phase_max_uc} µC outside "
                        f"0-{limits.charge_per_phase_max_uc} µC")
    if not 0.0 < config.loop_late_s <= limits.loop_late_max_s:
        problems.append(f"loop-late limit {config.loop_late_s} s outside "
                        f"0-{limits.loop_late_max_s} s")
    if config.mode not in ("gait", "exercise"):
        problems.append(f"mode {config.mode!r} is neither gait nor exercise")
    if not config.channels:
        problems.append("no channels")
    if len({ch.channel for ch in config.channels}) != len(config.channels):
        problems.append("a channel is listed twice")
    for ch in config.channels:
        where = f"channel {ch.channel}"
        if not is_channel_number(ch.channel, limits):
            problems.append(f"{where}: not an output 1-{limits.channel_max}")
        if type(ch.pulse_width_us) is not int:
            problems.append(f"{where}: pulse width {ch.pulse_width_us!r} is not a whole "
                            "number of µs")
        elif not limits.pulse_width_min_us <= ch.pulse_width_us <= limits.pulse_width_max_us:
            problems.append(f"{where}: pulse width {ch.pulse_width_us} µs outside "
                            f"{limits.pulse_width_min_us}-{limits.pulse_width_max_us} µs")
        if not 0.0 <= ch.amplitude_min_ma <= ch.amplitude_start_ma <= ch.amplitude_max_ma:
            problems.append(f"{where}: amplitude window needs 0 <= min <= start <= max")
        if ch.amplitude_max_ma > limits.amplitude_max_ma:
            problems.append(f"{where}: amplitude {ch.amplitude_max_ma} mA over "
                            f"{limits.amplitude_max_ma} mA")
        charge = charge_per_phase_uc(ch.amplitude_max_ma, ch.pulse_width_us)
        charge_max = min(config.charge_per_phase_max_uc, limits.charge_per_phase_max_uc)
        if charge > charge_max:
            problems.append(f"{where}: charge per phase {charge:g} µC over {charge_max:g} µC")
    if problems:
        raise LimitViolation("; ".join(problems))


def is_channel_number(channel: object, limits: HardLimits) -> TypeGuard[int]:
    """A stimulator output is a whole number 1..channel_max (not a bool, not 1.0)."""
    return type(channel) is int and 1 <= channel <= limits.channel_max
