"""Protocols driven by a timer, not by the foot, for the end-to-end tests and the fault
benchmarks: a burst, a ramp or a hold comes within seconds whatever the walk does, so a
fault can be injected at that moment. One source for both, so they test the same thing.
"""

from __future__ import annotations

PLATEAU_MA = 24
"""The full setting of the protocols' one channel."""
SESSION_S = 60.0

_CHANNEL = f"""
[[channels]]
channel = 1
site = "common peroneal nerve"
amplitude_min_ma = 10.0
amplitude_max_ma = 30.0
amplitude_start_ma = {PLATEAU_MA}.0
pulse_width_us = 300
"""


def _safety_and_length(sensor_frozen_s: float) -> str:
    return f"""
[safety]
charge_per_phase_max_uc = 50.0
sensor_silent_s = 0.1
sensor_frozen_s = {sensor_frozen_s}

[session]
duration_s = {SESSION_S}
"""


def timed_gait(name: str, description: str, *, ramp_up_s: float, ramp_down_s: float,
               sensor_frozen_s: float) -> str:
    """Gait bursts from a cadence timer: a 3 s cycle with 1.35 s bursts."""
    return f"""
name = "{name}"
description = "{description}"
mode = "gait"
leg = "left"
extension_s = 0.0
{_CHANNEL}
[stimulation]
frequency_hz = 30.0
ramp_up_s = {ramp_up_s}
ramp_down_s = {ramp_down_s}
max_burst_s = 2.0
duty_cycle_max = 0.5

[trigger]
kind = "cadence"
cadence_steps_per_min = 20.0
swing_fraction = 0.45
{_safety_and_length(sensor_frozen_s)}"""


def cued_exercise(name: str, description: str, *, sensor_frozen_s: float) -> str:
    """Toe raises cued on a timer (1 s rise, 2 s hold, 3 s rest), stimulated through the
    rise and the hold."""
    return f"""
name = "{name}"
description = "{description}"
mode = "exercise"
leg = "left"
{_CHANNEL}
[stimulation]
frequency_hz = 30.0
ramp_up_s = 0.5
ramp_down_s = 0.5
max_burst_s = 6.0
duty_cycle_max = 0.5

[exercise]
exercise = "assisted_toe_raises"
instruction = "Relax; the stimulation lifts the foot."
start_cue = "Lift"
sets = 1
reps = 50
hold_s = 2.0
rest_between_reps_s = 3.0
rest_between_sets_s = 10.0
target_rom_deg = 15.0
rise_s = 1.0
lower_s = 1.0
pairing = "cued"
onset_threshold_deg = 5.0
assist_timeout_s = 2.0
stimulate = ["rise", "hold"]
axis = "auto"
placement = "foot"
{_safety_and_length(sensor_frozen_s)}"""
