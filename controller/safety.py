"""The SafetySupervisor: the only path from a decision to a stimulator.

The hard limits are in code (:mod:`controller.safety_limits`); a protocol can only narrow
them. Every request is checked, every output is ramped here (never trusted to callers),
bursts and duty cycle are bounded here, and every fault latches all output to zero until
an explicit reset with the cause gone. After a reset, output restarts from zero with a
ramp.

The supervisor is clocked by its caller (the sensor's clock), never by ``time.time()``,
so it behaves the same in a faster-than-real-time replay as on a patient.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from controller.devices.base import ChannelSetup, DeviceError, Stimulator
from controller.safety_limits import (
    HARD_LIMITS,
    ChannelLimits,
    HardLimits,
    LimitViolation,
    SafetyConfig,
    charge_per_phase_uc,
    check_config,
    is_channel_number,
)
from controller.types import Fault, FaultKind

PROCESS_STALL_S = 0.25
"""A gap between two ticks this long means the whole process stood still (stopped,
swapped out, starved of the CPU), not one wake-up delayed by the scheduler: it latches
``loop_late`` even where a watchdog thread judges the loop (see
:meth:`SafetySupervisor.watched_from_outside`)."""

TRIM_MARGIN = 0.05
"""On-time this far (a fraction of the window) below the duty-cycle limit starts trimming
the optional part of each burst; twice this far below stops it."""
MAX_NUDGE_STEPS = 200
"""More steps than any window holds (0-100 mA in 1 mA steps, either way): a larger nudge
is not a patient pressing a button."""
TRIMMED_RAMP_DOWN_S = 0.05
"""The ramp-down while trimming: still no step to zero, but no long tail."""


class SafetyLog(Protocol):
    """Where the supervisor reports what it did; the session record implements it."""

    def command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        """What was sent, in the stimulator's own amplitude steps (what it delivers)."""

    def fault(self, fault: Fault) -> None: ...

    def notice(self, t_s: float, kind: str, detail: str) -> None:
        """A limit enforced without a fault (burst cut short, duty cycle, refused nudge)."""


def _whole_steps(steps: object) -> int | None:
    """``steps`` as a whole number of patient steps, or None if it is not one (NaN, 2.5,
    a bool, something huge): a nudge is a press of a button, one or a few steps. An int
    and a float are checked apart: compiled, a value known only as ``int | float`` is held
    as a float, which a huge int does not fit."""
    if type(steps) is int:  # not a bool
        return steps if abs(steps) <= MAX_NUDGE_STEPS else None
    if isinstance(steps, float) and math.isfinite(steps) and steps.is_integer() \
            and abs(steps) <= MAX_NUDGE_STEPS:
        return int(steps)
    return None


@dataclass
class _ChannelState:
    limits: ChannelLimits
    setting_ma: float
    target_ma: float = 0.0
    output_ma: float = 0.0
    """The ramp's exact value; bursts and limits are timed on it (the conservative side)."""
    delivered_ma: float = 0.0
    """``output_ma`` rounded down to the stimulator's amplitude step: what comes out."""
    burst_start_s: float | None = None
    blocked: bool = False
    """Forced off (burst or duty limit): stays off until the request drops to zero."""
    optional: bool = False
    """The request is the optional part of a burst (a gait extension after heel strike)."""
    trimming: bool = False
    """On-time is near the duty-cycle limit: optional parts and long ramp-downs are cut."""
    bursts: deque[tuple[float, float]] = field(default_factory=deque)
    bursts_on_s: float = 0.0

    def on_time_in_window(self, now_s: float, window_s: float) -> float:
        start = now_s - window_s
        while self.bursts and self.bursts[0][1] <= start:
            begin, end = self.bursts.popleft()
            self.bursts_on_s -= end - begin
        total = self.bursts_on_s
        if self.bursts and self.bursts[0][0] < start:
            total -= start - self.bursts[0][0]
        if self.burst_start_s is not None:
            total += now_s - max(self.burst_start_s, start)
        return total


def _below_the_step(config: SafetyConfig, step_ma: float) -> list[str]:
    """Refuse a channel whose whole window lies below the stimulator's smallest amplitude
    step (it would deliver nothing, silently); warn about a start below it."""
    if not (math.isfinite(step_ma) and step_ma >= 0.0):
        raise LimitViolation(f"the stimulator's amplitude step {step_ma!r} mA is not a "
                             "finite number >= 0")
    warnings = []
    for ch in config.channels:
        if ch.amplitude_max_ma < step_ma:
            raise LimitViolation(
                f"channel {ch.channel}: at most {ch.amplitude_max_ma:g} mA, below the "
                f"stimulator's smallest step of {step_ma:g} mA: it would deliver nothing")
        if ch.amplitude_start_ma < step_ma:
            warnings.append(
                f"channel {ch.channel} starts at {ch.amplitude_start_ma:g} mA, below the "
                f"stimulator's {step_ma:g} mA step: nothing is delivered until it is raised")
    return warnings


CauseCheck = Callable[[FaultKind, float], str]
"""Says why a latched fault of this kind cannot be cleared at this time ('' if it can)."""

RESET_IN_PROGRESS = "a reset is in progress: the stimulator is being brought up again"
BRING_UP_WAIT_MAX_S = 15.0
"""The longest the end of a session waits for a reset's bring-up still under way. The
drivers bound their own waits (a RehaStim 2: the handshake, at most 10 s, and 100 ms per
acknowledged command), so this is only a backstop against a driver that does not."""


@dataclass
class _BringUp:
    """A reset's connect and configure, running off the control loop's thread."""

    on_cleared: Callable[[], None] | None
    meanwhile: list[str] = field(default_factory=list)
    """Every fault raised while it ran, a kind already latched included (a second
    emergency stop): any of them refuses the reset."""
    problem: str | None = None
    thread: threading.Thread | None = None

    @property
    def ended(self) -> bool:
        return self.thread is None or not self.thread.is_alive()


class SafetySupervisor:
    """Owns the Stimulator; turns requests into ramped, bounded, logged commands.

    It works in the stimulator's own amplitude resolution: commands, the record and the
    charge totals hold what the device delivers, never an unquantised request.
    """

    def __init__(self, stimulator: Stimulator, config: SafetyConfig, log: SafetyLog,
                 limits: HardLimits = HARD_LIMITS) -> None:
        check_config(config, limits)
        self.warnings = _below_the_step(config, stimulator.amplitude_step_ma)
        """What this stimulator will not deliver as configured, in words (for the summary)."""
        self._stimulator = stimulator
        self._config = config
        self._limits = limits
        self._log = log
        self._step_ma = stimulator.amplitude_step_ma
        self._channels = {ch.channel: _ChannelState(ch, ch.amplitude_start_ma)
                          for ch in config.channels}
        self._faults: list[Fault] = []
        self.fault_history: list[Fault] = []
        """Every fault this session latched, cleared or not."""
        self._cause_checks: list[CauseCheck] = []
        self._halt: tuple[FaultKind, str] | None = None
        """Set from another thread by :meth:`halt`; latched by the loop at its next tick."""
        self._last_tick_s: float | None = None
        self._late_limit_s = config.loop_late_s
        """A gap between ticks past this latches ``loop_late``."""
        self._stimulator_connected = False
        self._stimulator_configured = False
        self._bring_up_off_loop = False
        """Set by :meth:`bring_up_off_loop`: a reset's bring-up runs on its own thread."""
        self._bring_up: _BringUp | None = None
        """A reset waiting for its bring-up; the stimulator is the bring-up's meanwhile."""
        self.delivered_charge_uc: dict[int, float] = dict.fromkeys(self._channels, 0.0)

    # -- state -----------------------------------------------------------------------

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The latched faults; empty means output is allowed."""
        return tuple(self._faults)

    @property
    def latched(self) -> bool:
        return bool(self._faults)

    @property
    def resetting(self) -> bool:
        """A reset waits for the stimulator to come up again; faults stay latched meanwhile."""
        return self._bring_up is not None

    def output_ma(self, channel: int) -> float:
        """What the stimulator delivers on ``channel`` now."""
        return self._channels[channel].delivered_ma

    def setting_ma(self, channel: int) -> float:
        return self._channels[channel].setting_ma

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self._channels)

    @property
    def total_charge_uc(self) -> float:
        return sum(self.delivered_charge_uc.values())

    def add_cause_check(self, check: CauseCheck) -> None:
        """Let another judge of faults (the sensor watch) veto a reset while its cause lasts."""
        self._cause_checks.append(check)

    # -- lifecycle -------------------------------------------------------------------

    def start(self, now_s: float) -> None:
        """Connect and configure the stimulator; a failure latches a fault."""
        self._last_tick_s = now_s
        self._bring_up_stimulator(now_s)

    def loop_resumed(self, now_s: float) -> None:
        """The control loop starts ticking again at ``now_s`` after a blocking bring-up.

        Connecting a stimulator can take a second (a RehaStim 2 announces itself about
        once a second); that wait is not a late loop, so lateness is measured from here.
        """
        self._last_tick_s = now_s

    def watched_from_outside(self) -> None:
        """A watchdog thread now judges whether the loop is stuck: it stops output once the
        loop has been silent for ``loop_late_s`` of the time the watchdog itself ran (see
        :class:`controller.runner.SessionRunner`). A late tick alone is then a scheduler's
        delay, recorded as a ``loop_delayed`` notice, and latches only past
        :data:`PROCESS_STALL_S`, when the whole process stood still."""
        self._late_limit_s = max(self._config.loop_late_s, PROCESS_STALL_S)

    def bring_up_off_loop(self) -> None:
        """Run a reset's bring-up (connect, configure) on a thread of its own from now on.

        A serial stimulator can take its 2 s handshake to answer, or not answer at all,
        and a loop on wall time must go on reading, watching and recording meanwhile: the
        reset is completed by the first tick after the bring-up ends. A session on a
        simulated clock (a replay) keeps the bring-up inline, where it takes no session
        time and the replay stays deterministic; the runner calls this only for a loop
        paced to the wall clock, which is also the one a watchdog judges.
        """
        self._bring_up_off_loop = True

    def shutdown(self, now_s: float) -> None:
        """End of session: output off, stimulator closed, whatever else happens.

        A reset's bring-up still under way is waited for (its driver bounds the wait) and
        never completed: the session has ended, so nothing is turned on again."""
        bring_up, self._bring_up = self._bring_up, None
        if bring_up is not None and bring_up.thread is not None:
            bring_up.thread.join(BRING_UP_WAIT_MAX_S)
            self._log.notice(now_s, "reset_abandoned",
                             "the session ended while the stimulator was being brought up "
                             "again: the reset was not completed")
        for state in self._channels.values():
            self._end_burst(state, now_s)
            state.target_ma = state.output_ma = state.delivered_ma = 0.0
        try:
            self._stimulator.close()
        except DeviceError as exc:
            self._log.notice(now_s, "close_failed", str(exc))

    def halt(self, kind: FaultKind, detail: object) -> None:
        """Stop output now, from any thread, even while the control loop is stuck.

        The stimulator's own emergency stop puts the stop on the wire without waiting and
        refuses further output until it is configured again; the fault itself is latched
        (and logged) by the loop at its next tick, so it still needs an explicit reset.
        """
        self._stimulator.emergency_stop()  # first: nothing below may keep it off the wire
        if (bring_up := self._bring_up) is not None:
            bring_up.meanwhile.append(kind.value)  # its configure lifted this stop
        self._halt = (kind, f"{detail}")

    # -- inputs ----------------------------------------------------------------------

    def request(self, now_s: float, channel: object, intensity: float,
                optional: bool = False) -> None:
        """Ask for ``intensity`` (0..1) of the channel's current setting, ramped. Any
        ``channel`` is checked here (one that is not an output latches a fault), so it is
        typed ``object``: compiled code would raise on a wrong type before the check.

        ``optional`` marks output the supervisor may drop first when on-time nears the
        duty-cycle limit (a gait extension), so that it never has to cut a swing. While a
        fault is latched a request is checked but not kept: nothing asked for during a
        fault may come out after the reset.
        """
        state = self._channels.get(channel) if is_channel_number(channel, self._limits) \
            else None
        if state is None or not 0.0 <= intensity <= 1.0:
            self.fault(FaultKind.LIMIT_REJECTED, now_s,
                       f"request channel {channel} intensity {intensity} outside 0..1 "
                       f"on channels {sorted(self._channels)}")
            return
        if self._faults:
            return
        state.target_ma = intensity * state.setting_ma
        state.optional = optional
        if state.target_ma == 0.0:
            state.blocked = False

    @property
    def patient_step_ma(self) -> float:
        """How much one press of the patient's up or down changes the setting."""
        return self._limits.patient_step_ma

    def nudge(self, now_s: float, channel: object, steps: object) -> float | None:
        """Patient's up/down: whole 1 mA steps, kept inside the therapist's window.

        Returns the setting now, or None if the nudge was refused outright (an unknown
        channel, steps that are not a whole number): then nothing changed, and the record
        says why. Nudges come from outside the loop (a button, a key, a pipe), so a bad one
        is a notice, never a fault that would end the patient's stimulation; hence
        ``object``: compiled code would raise on a wrongly typed argument before checking.
        """
        state = self._channels.get(channel) if is_channel_number(channel, self._limits) \
            else None
        whole = _whole_steps(steps)
        if state is None or whole is None:
            self._log.notice(now_s, "nudge_refused",
                             f"channel {channel!r}, {steps!r} steps: a nudge is a whole "
                             f"number of steps (at most {MAX_NUDGE_STEPS}) on one of the "
                             f"channels {sorted(self._channels)}; nothing changed")
            return None
        wanted = state.setting_ma + whole * self._limits.patient_step_ma
        low, high = state.limits.amplitude_min_ma, state.limits.amplitude_max_ma
        allowed = min(max(wanted, low), high)
        if allowed != wanted:
            self._log.notice(now_s, "nudge_refused",
                             f"channel {channel}: {wanted:g} mA outside window "
                             f"{low:g}-{high:g} mA, kept {allowed:g} mA")
        if state.target_ma:
            state.target_ma = state.target_ma / state.setting_ma * allowed
        state.setting_ma = allowed
        return allowed

    def emergency_stop(self, now_s: float, source: str) -> None:
        self.fault(FaultKind.EMERGENCY_STOP, now_s, source)

    def fault(self, kind: FaultKind, now_s: float, detail: str) -> None:
        """Latch a fault: every channel to zero and the stimulator told to stop, then logged.

        The stop is not waited for here: the ticks that follow confirm it (see
        :meth:`tick`), so a device slow to answer cannot also make the loop late."""
        if self._bring_up is not None:
            self._bring_up.meanwhile.append(kind.value)
        if any(f.kind is kind for f in self._faults):
            return
        fault = Fault(kind, now_s, detail)
        self._faults.append(fault)
        self.fault_history.append(fault)
        was_delivering = any(state.delivered_ma > 0 for state in self._channels.values())
        for state in self._channels.values():
            self._end_burst(state, now_s)
            state.target_ma = state.output_ma = state.delivered_ma = 0.0
        self._stimulator_configured = False
        stop_error: DeviceError | None = None
        if self._bring_up is None:  # else the bring-up's; its completion sends this stop
            try:
                self._stimulator.send_stop()
            except DeviceError as exc:
                self._stimulator_connected = False
                stop_error = exc
        if was_delivering:  # the record shows output going to zero, as the device did
            self._log.command(now_s, {ch: 0.0 for ch in self._channels})
        self._log.fault(fault)
        if stop_error is not None and kind is not FaultKind.STIMULATOR_ERROR:
            self.fault(FaultKind.STIMULATOR_ERROR, now_s, f"stop failed: {stop_error}")

    def reset(self, now_s: float, on_cleared: Callable[[], None] | None = None) -> list[str]:
        """Clear latched faults if every cause is gone; return the causes still present.

        The stimulator was told to stop when the fault latched, so it is configured again
        (and reconnected if the link was lost) before the latch is cleared: a stimulator
        that still does not answer, refuses, or is gone is a cause still present, and the
        reset is refused with the fault kept. Output does not jump back: targets are zero,
        and a new request ramps up from zero. ``on_cleared`` is called when the latch is
        cleared.

        Where the bring-up runs off the loop (:meth:`bring_up_off_loop`) this returns
        ``[RESET_IN_PROGRESS]`` and the first tick after the bring-up ends completes the
        reset (see :meth:`_complete_reset`); a second reset meanwhile is refused.
        """
        if self._bring_up is not None:
            self._log.notice(now_s, "reset_refused", RESET_IN_PROGRESS)
            return [RESET_IN_PROGRESS]
        remaining = self._causes_present(now_s)
        if remaining:
            self._log.notice(now_s, "reset_refused", "; ".join(remaining))
            return remaining
        bring_up = self._bring_up = _BringUp(on_cleared)
        if self._stimulator_configured:
            return self._complete_reset(now_s)
        connect = not self._stimulator_connected
        if not self._bring_up_off_loop:
            bring_up.problem = self._bring_up_device(connect)
            return self._complete_reset(now_s)

        def run() -> None:
            try:
                bring_up.problem = self._bring_up_device(connect)
            except BaseException as exc:  # noqa: BLE001 - refuses the reset, output stays off
                bring_up.problem = f"{type(exc).__name__}: {exc}"

        bring_up.thread = threading.Thread(target=run, name="stimulator-bring-up",
                                           daemon=True)
        self._log.notice(now_s, "reset_bring_up",
                         f"{'connecting and ' if connect else ''}configuring the stimulator "
                         "off the control loop; output stays off until it is done")
        bring_up.thread.start()
        return [RESET_IN_PROGRESS]

    def _causes_present(self, now_s: float) -> list[str]:
        return [reason for reason in (check(f.kind, now_s) for f in self._faults
                                      for check in self._cause_checks) if reason]

    def _complete_reset(self, now_s: float) -> list[str]:
        """Finish the reset whose bring-up has ended: refused if the bring-up failed, a
        fault latched meanwhile, or a cause came back; else the latch is cleared."""
        bring_up, self._bring_up = self._bring_up, None
        assert bring_up is not None
        self._stimulator_connected = self._stimulator_configured = bring_up.problem is None
        latched_meanwhile = list(dict.fromkeys(bring_up.meanwhile))
        if latched_meanwhile and self._stimulator_configured:
            self._stop_held_back(now_s)
        if bring_up.problem is not None:
            problem = f"the stimulator does not come up again: {bring_up.problem}"
            remaining = [f"stimulator_error: {problem}"]
        elif latched_meanwhile:
            kinds = ", ".join(latched_meanwhile)
            remaining = [f"{kinds} latched while the stimulator was being brought up again"]
        else:
            remaining = self._causes_present(now_s)
        if remaining:
            self._log.notice(now_s, "reset_refused", "; ".join(remaining))
            return remaining
        if self._faults:
            self._log.notice(now_s, "reset", ", ".join(f.kind.value for f in self._faults))
        self._faults.clear()
        for state in self._channels.values():
            state.blocked = False
            state.target_ma = 0.0
        if bring_up.on_cleared is not None:
            bring_up.on_cleared()
        return []

    def _stop_held_back(self, now_s: float) -> None:
        """The stop that faults latched during a bring-up did not send (the stimulator was
        the bring-up's): sent now, so the configured device is stopped again."""
        self._stimulator_configured = False
        try:
            self._stimulator.send_stop()
        except DeviceError as exc:
            self._stimulator_connected = False
            self.fault(FaultKind.STIMULATOR_ERROR, now_s, f"stop failed: {exc}")

    # -- the control tick ------------------------------------------------------------

    def tick(self, now_s: float) -> None:
        """Advance ramps and limits to ``now_s`` and send the stimulator what changed."""
        last = self._last_tick_s
        # A reset within this tick may have moved the mark past ``now_s`` (loop_resumed).
        self._last_tick_s = now_s if last is None else max(now_s, last)
        if self._halt is not None:
            kind, detail = self._halt
            self._halt = None
            self.fault(kind, now_s, detail)
        if last is not None and now_s - last > self._config.loop_late_s:
            gap = f"control loop ran {1000 * (now_s - last):.0f} ms after the last tick"
            if now_s - last > self._late_limit_s:
                self.fault(FaultKind.LOOP_LATE, now_s, gap)
            else:
                self._log.notice(now_s, "loop_delayed", gap)
        if self._bring_up is not None:
            if not self._bring_up.ended:
                return  # faults are latched; the stimulator is the bring-up's until it ends
            self._complete_reset(now_s)
        if self._faults or self._stimulator_configured:
            self._check_stimulator(now_s)
        if self._faults:
            return
        dt = max(0.0, now_s - last) if last is not None else 0.0
        changed = False
        for state in self._channels.values():
            before = state.delivered_ma
            self._advance(state, now_s, dt)
            changed |= state.delivered_ma != before
        if changed:
            self._send(now_s)

    def _check_stimulator(self, now_s: float) -> None:
        """The stimulator's heartbeat and its troubles: every tick while it is configured,
        and while a fault is latched (the fault's stop must be confirmed; a stop answered
        late or refused latches ``stimulator_error`` beside the fault)."""
        if not self._stimulator_connected:
            return
        try:
            self._stimulator.check()
        except DeviceError as exc:
            self._stimulator_connected = False
            detail = f"stop failed: {exc}" if self._faults else str(exc)
            self.fault(FaultKind.STIMULATOR_ERROR, now_s, detail)

    def _advance(self, state: _ChannelState, now_s: float, dt: float) -> None:
        if state.output_ma > 0.0 or state.target_ma > 0.0:
            self._watch_duty(state, now_s)
        elif state.burst_start_s is None:  # off and asked for nothing: most of a walk's ticks
            state.delivered_ma = 0.0
            return
        target = 0.0 if state.blocked or (state.trimming and state.optional) else state.target_ma
        if target > state.output_ma:
            if state.burst_start_s is None:
                state.burst_start_s = now_s
            step = self._ramp_step(state, self._config.ramp_up_s, dt)
            state.output_ma = min(target, state.output_ma + step)
        elif target < state.output_ma:
            ramp_down_s = self._config.ramp_down_s
            if state.trimming:
                ramp_down_s = min(ramp_down_s, TRIMMED_RAMP_DOWN_S)
            step = self._ramp_step(state, ramp_down_s, dt)
            state.output_ma = max(target, state.output_ma - step)
        if state.output_ma > 0.0 and state.burst_start_s is not None:
            self.delivered_charge_uc[state.limits.channel] += (
                charge_per_phase_uc(state.delivered_ma, state.limits.pulse_width_us)
                * self._config.frequency_hz * dt)
            if now_s - state.burst_start_s >= self._config.max_burst_s:
                self._force_off(state, now_s, "burst_limit",
                                f"on for {now_s - state.burst_start_s:.2f} s "
                                f"(max {self._config.max_burst_s} s)")
            elif state.on_time_in_window(now_s, self._limits.duty_window_s) > (
                    self._config.duty_cycle_max * self._limits.duty_window_s):
                self._force_off(state, now_s, "duty_cycle_limit",
                                f"over {100 * self._config.duty_cycle_max:.0f} % on-time in "
                                f"{self._limits.duty_window_s:.0f} s")
        if state.output_ma == 0.0:
            self._end_burst(state, now_s)
        state.delivered_ma = self._quantised(state.output_ma)

    def _watch_duty(self, state: _ChannelState, now_s: float) -> None:
        """Trim optional output while on-time is near the limit, with hysteresis, and say
        so in the record when trimming starts and stops."""
        window_s = self._limits.duty_window_s
        share = state.on_time_in_window(now_s, window_s) / window_s
        limit = self._config.duty_cycle_max
        channel = state.limits.channel
        if not state.trimming and share > limit - TRIM_MARGIN:
            state.trimming = True
            self._log.notice(now_s, "duty_cycle_trim",
                             f"channel {channel}: on {100 * share:.0f} % of the last "
                             f"{window_s:.0f} s (limit {100 * limit:.0f} %): extension and "
                             "ramp-down shortened, swings kept")
        elif state.trimming and share < limit - 2 * TRIM_MARGIN:
            state.trimming = False
            self._log.notice(now_s, "duty_cycle_trim_end",
                             f"channel {channel}: on {100 * share:.0f} % of the last "
                             f"{window_s:.0f} s: full extension and ramp-down again")

    def _quantised(self, amplitude_ma: float) -> float:
        """Rounded down to the device's step, so quantising never raises the charge."""
        if self._step_ma <= 0.0:
            return amplitude_ma
        return math.floor(amplitude_ma / self._step_ma + 1e-9) * self._step_ma

    def _ramp_step(self, state: _ChannelState, ramp_s: float, dt: float) -> float:
        if ramp_s <= 0.0:
            return math.inf
        return state.setting_ma / ramp_s * dt

    def _force_off(self, state: _ChannelState, now_s: float, kind: str, detail: str) -> None:
        state.output_ma = 0.0
        state.blocked = True
        self._log.notice(now_s, kind, f"channel {state.limits.channel} forced off: {detail}")

    def _end_burst(self, state: _ChannelState, now_s: float) -> None:
        if state.burst_start_s is not None:
            state.bursts.append((state.burst_start_s, now_s))
            state.bursts_on_s += now_s - state.burst_start_s
            state.burst_start_s = None

    def _send(self, now_s: float) -> None:
        amplitudes = {ch: state.delivered_ma for ch, state in self._channels.items()}
        for ch, amplitude in amplitudes.items():
            state = self._channels[ch]
            charge = charge_per_phase_uc(amplitude, state.limits.pulse_width_us)
            if amplitude > min(state.limits.amplitude_max_ma, self._limits.amplitude_max_ma) or \
                    charge > min(self._config.charge_per_phase_max_uc,
                                 self._limits.charge_per_phase_max_uc):
                self.fault(FaultKind.LIMIT_REJECTED, now_s,
                           f"channel {ch}: {amplitude:g} mA / {charge:g} µC refused")
                return
        self._log.command(now_s, amplitudes)
        try:
            self._stimulator.update(amplitudes)
        except DeviceError as exc:
            self._stimulator_connected = False
            self.fault(FaultKind.STIMULATOR_ERROR, now_s, str(exc))

    def _bring_up_stimulator(self, now_s: float) -> None:
        problem = self._bring_up_device(not self._stimulator_connected)
        self._stimulator_connected = self._stimulator_configured = problem is None
        if problem is not None:
            self.fault(FaultKind.STIMULATOR_ERROR, now_s, f"bring-up failed: {problem}")

    def _bring_up_device(self, connect: bool) -> str | None:
        """Connect (if ``connect``) and configure the stimulator; what went wrong, if
        anything. It touches no state of the supervisor, so it may run on another thread;
        the caller records the outcome (connected and configured, or neither)."""
        setups: Sequence[ChannelSetup] = [
            ChannelSetup(state.limits.channel, state.limits.pulse_width_us)
            for state in self._channels.values()]
        try:
            if connect:
                self._stimulator.connect()
            self._stimulator.configure(setups, self._config.frequency_hz)
        except DeviceError as exc:
            return str(exc)
        return None
