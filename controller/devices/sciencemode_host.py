"""The controller's side of a ScienceMode 2 conversation, without any I/O.

In the style of h11's ``Connection``: bytes from the device go in through
:meth:`ScienceModeHost.receive_data`, commands are asked for by method calls, and the
bytes to write come out of :meth:`ScienceModeHost.data_to_send`. Time is passed in, never
read. Everything about the conversation lives here: the handshake (the device repeats
Init until it is answered), packet numbers, acknowledgements pending with their deadlines,
the keep-alive (only while the control loop's heartbeat is recent), channel list mode
initialised again after a stop, the refusal of output after an emergency stop, and what a
second Init during output means (the device reset itself).

Two guards live here too, because both drivers run this object and a caller above the
driver may be broken: a request beyond the hard limits of :mod:`controller.safety`
(amplitude, charge per phase, pulse width, frequency) is refused and stops the output, and
while output is on the link is polled (GetStimulationMode, acknowledged by the device)
whenever nothing else is waiting for an answer, so a device that stops answering at a
steady amplitude is noticed within ``poll_s`` + ``ack_timeout_s`` instead of at the next
change.

Two drivers run this same object: the serial driver (:mod:`controller.devices.rehastim2`,
a port and a reader thread around it) and the in-memory twin (:mod:`simulator.inmemory`,
the device model on the session clock), so the two cannot drift apart.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.devices import sciencemode as sm
from controller.devices.base import ChannelSetup, StimulatorError
from controller.safety_limits import HARD_LIMITS, charge_per_phase_uc, is_finite_number

ACK_TIMEOUT_S = 0.1
"""DESIGN: a command unanswered within 100 ms is a stimulator fault; a driver may only
ask for less."""
KEEPALIVE_S = 0.5
"""DESIGN: a Watchdog after 0.5 s of silence, half the device's 1 s watchdog; a driver
may only keep alive more often."""
POLL_S = 0.05
"""While output is on and nothing waits for an answer, ask the device for its mode this
often: with the 100 ms answer deadline a silent link is a fault within about 150 ms."""
LIMIT_TOLERANCE = 1e-9
"""Relative slack on the hard limits for float rounding in the caller's arithmetic
(100 mA x 500 µs must not be refused as 50.000000001 µC)."""
_LINK_CHECK = "link check"
_FAULT_STOP = "stop at a fault"
_UNWAITED = frozenset({"update", _LINK_CHECK, _FAULT_STOP})
"""Commands nobody blocks on: their refusal is kept for :meth:`ScienceModeHost.check`."""


def check_timing(name: str, value_s: object, max_s: float) -> float:
    """A timing setting, refused unless finite and in (0, ``max_s``]: an infinite or NaN
    deadline would switch the check it sets off. Any object: compiled code would turn a
    bool into a number, or raise TypeError, before this check."""
    if not is_finite_number(value_s) or not 0.0 < value_s <= max_s:
        raise ValueError(f"{name} must be a number of seconds in (0, {max_s:g}], "
                         f"not {value_s!r}")
    return float(value_s)


@dataclass(eq=False)
class PendingAck:
    """A command waiting for its acknowledgement."""

    name: str
    ack: sm.Command
    deadline_s: float
    result: int | None = None


class ScienceModeHost:
    def __init__(self, *, ack_timeout_s: object = ACK_TIMEOUT_S,
                 keepalive_s: object = KEEPALIVE_S, poll_s: object = POLL_S) -> None:
        """Timings are any object, refused unless a number of seconds in range (see
        :func:`check_timing`)."""
        self.ack_timeout_s = check_timing("ack_timeout_s", ack_timeout_s, ACK_TIMEOUT_S)
        self.keepalive_s = check_timing("keepalive_s", keepalive_s, KEEPALIVE_S)
        self.poll_s = check_timing("poll_s", poll_s, ACK_TIMEOUT_S)
        self.decoder = sm.Decoder()
        self.device_init_number: int | None = None
        """The packet number of the device's Init, once one was heard."""
        self.connected = False
        self.halted = False
        """After :meth:`emergency_stop`: no output until :meth:`configure` again."""
        self.output: tuple[sm.ChannelPulse, ...] | None = None
        """What the device was last told to put out; None while channel list mode is off."""
        self.pending: deque[PendingAck] = deque()
        self._list_ready = False
        """Channel list mode was initialised and not stopped since: Start may follow."""
        self._error: StimulatorError | None = None
        self._channels: tuple[ChannelSetup, ...] = ()
        self._channel_numbers: frozenset[int] = frozenset()
        self._main_interval_ms = 0.0
        self._number = 0
        self._outbox = bytearray()
        self._last_sent_s = float("-inf")
        self._heartbeat_s = float("-inf")

    # -- bytes in and out -------------------------------------------------------------------

    def receive_data(self, data: bytes, now_s: float) -> None:
        """Everything the device sent; answers are matched to the commands waiting."""
        for packet in self.decoder.feed(data):
            self._handle(packet, now_s)

    def data_to_send(self) -> bytes:
        if not self._outbox:
            return b""
        out, self._outbox = bytes(self._outbox), bytearray()
        return out

    # -- the conversation -------------------------------------------------------------------

    def accept_device(self, now_s: float) -> None:
        """Answer the device's Init (the handshake); it must have been heard first."""
        if self.device_init_number is None:
            raise StimulatorError("no Init heard from the device")
        self._send(sm.InitAck(sm.Result.OK), now_s, number=self.device_init_number)
        self.connected = True
        self.heartbeat(now_s)

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float,
                  now_s: float) -> list[PendingAck]:
        """Channel list mode for ``channels`` (stopping a running one first); also lifts
        an emergency stop. Returns the commands whose answers the caller waits for."""
        self._require_connection()
        _check_setup(channels, frequency_hz)
        self.heartbeat(now_s)
        self.halted = False
        waiting = []
        if self.output is not None:
            waiting.append(self._command(sm.StopChannelListMode(), "stop before reconfiguring",
                                         now_s))
            self.output = None
            self._list_ready = False
        self._channels = tuple(sorted(channels, key=lambda setup: setup.channel))
        self._channel_numbers = frozenset(setup.channel for setup in self._channels)
        self._main_interval_ms = 1000.0 / frequency_hz
        waiting.append(self._init_channel_list(now_s))
        return waiting

    def update(self, amplitudes_ma: Mapping[int, object], now_s: float) -> None:
        """New amplitudes (rounded down to the device's step); sent only when they change,
        with channel list mode initialised again first if a stop ended it. Not waited for:
        a late or refused answer is raised by :meth:`check`.

        An amplitude that is not a finite number in [0, the hard maximum], or whose charge
        per phase exceeds the hard limit, is refused and stops the output (queued here,
        like every command): the caller that asked for it cannot be trusted with the
        output it had."""
        self.check(now_s)
        self._require_connection()
        if self.halted:
            raise StimulatorError("output halted by an emergency stop; configure again first")
        if not self._channel_numbers.issuperset(amplitudes_ma):
            unknown = set(amplitudes_ma) - self._channel_numbers
            raise StimulatorError(f"channels {sorted(unknown)} were not configured")
        checked = [(setup, _within_limits(setup, amplitudes_ma.get(setup.channel, 0.0)))
                   for setup in self._channels]
        beyond = [problem for _, problem in checked if isinstance(problem, str)]
        if beyond:
            self._outbox += self.emergency_stop()
            raise StimulatorError("refused beyond the hard limits, output stopped: "
                                  + "; ".join(beyond))
        pulses = tuple(sm.ChannelPulse(setup.pulse_width_us, sm.current_code_ma(amplitude_ma))
                       for setup, amplitude_ma in checked if isinstance(amplitude_ma, float))
        if pulses == self.output:
            return
        if not self._list_ready:
            self._init_channel_list(now_s)
        self._command(sm.StartChannelListMode(pulses), "update", now_s)
        self.output = pulses

    def stop(self, now_s: float, waited: bool = True) -> PendingAck:
        """Stop all output. A ``waited`` stop's caller blocks on the answer; any other's
        lateness or refusal is raised by :meth:`check`, like an update's."""
        self.output = None
        self._list_ready = False
        pending = self._command(sm.StopChannelListMode(), "stop" if waited else _FAULT_STOP,
                                now_s)
        self._number = 0
        return pending

    def emergency_stop(self) -> bytes:
        """The Stop frame to write at once, outside the conversation's order (a signal, a
        watchdog, an exit path); output is refused from now until :meth:`configure`."""
        self.halted = True
        self.output = None
        self._list_ready = False
        return sm.encode(sm.StopChannelListMode(), self._number)

    def heartbeat(self, now_s: float) -> None:
        """The control loop is alive: the keep-alive may go on for another ``keepalive_s``."""
        self._heartbeat_s = now_s

    def keep_alive(self, now_s: float) -> None:
        """Queue a keep-alive when the line was quiet for ``keepalive_s``, but only while
        the loop's heartbeat is recent: a stuck loop lets the device's own watchdog stop it.

        While output is on, the keep-alive is an acknowledged GetStimulationMode every
        ``poll_s`` whenever no answer is awaited, so a link that died at a steady amplitude
        misses a deadline within ``poll_s`` + ``ack_timeout_s``.

        After a stop (or an emergency stop), the keep-alive is a Stop rather than a
        Watchdog, so a stop the device never heard (a line that dropped it, a device that
        was silent for a moment) is repeated within ``keepalive_s`` instead of the
        device's output being kept alive by us."""
        if not self.connected or now_s - self._heartbeat_s >= self.keepalive_s:
            return
        quiet_s = now_s - self._last_sent_s
        if self.output is not None and not self.pending and quiet_s >= self.poll_s:
            self._command(sm.GetStimulationMode(), _LINK_CHECK, now_s)
        elif quiet_s >= self.keepalive_s:
            self._send(sm.Watchdog() if self._list_ready else sm.StopChannelListMode(), now_s)

    def check(self, now_s: float, unread_answers: bool = False) -> None:
        """Raise the first trouble since the last call: an error answer, a StimulationError
        from the device, a restart, or a command unanswered past its deadline.

        ``unread_answers``: the driver has bytes from the device it has not handed over
        yet (its reader thread was not scheduled in time); an answer among them is not
        late, so the deadline is judged at a later call, once they are read, but no later
        than one more ``ack_timeout_s`` (a line that never stops bringing noise must not
        hold a deadline off for good)."""
        self.heartbeat(now_s)
        error, self._error = self._error, None
        if error is None and self.pending and now_s > self.pending[0].deadline_s and not (
                unread_answers and now_s <= self.pending[0].deadline_s + self.ack_timeout_s):
            late = self.pending.popleft()
            error = self.late(late)
        if error is not None:
            raise error

    def late(self, pending: PendingAck) -> StimulatorError:
        return StimulatorError(f"stimulator did not acknowledge {pending.name} within "
                               f"{self.ack_timeout_s * 1000:g} ms")

    def outcome(self, pending: PendingAck) -> None:
        """Raise unless ``pending`` was acknowledged OK (for a caller that waited for it)."""
        if pending in self.pending:
            self.pending.remove(pending)
        if pending.result is None:
            raise self.late(pending)
        if pending.result != sm.Result.OK:
            raise StimulatorError(f"stimulator refused {pending.name}: "
                                  f"{_result_text(pending.result)}")

    def fail(self, error: StimulatorError) -> None:
        """Keep the first error for :meth:`check` (the line itself failed, for instance)."""
        if self._error is None:
            self._error = error

    @property
    def has_error(self) -> bool:
        return self._error is not None

    # -- internals --------------------------------------------------------------------------

    def _require_connection(self) -> None:
        if not self.connected:
            raise StimulatorError("the RehaStim 2 is not connected")

    def _init_channel_list(self, now_s: float) -> PendingAck:
        if not self._channels:
            raise StimulatorError("configure() the channels before stimulating")
        channels = tuple(setup.channel for setup in self._channels)
        self._list_ready = True
        return self._command(sm.InitChannelListMode(channels, self._main_interval_ms),
                             "channel list mode init", now_s)

    def _command(self, message: sm.Message, name: str, now_s: float) -> PendingAck:
        pending = PendingAck(name, _ack_of(message), now_s + self.ack_timeout_s)
        self.pending.append(pending)
        self._send(message, now_s)
        return pending

    def _send(self, message: sm.Message, now_s: float, number: int | None = None) -> None:
        self._outbox += sm.encode(message, self._number if number is None else number)
        self._last_sent_s = now_s
        self._number = (self._number + 1) % 256

    def _handle(self, packet: sm.Packet, now_s: float) -> None:
        match packet.message:
            case sm.Init():
                self._on_device_init(packet.number, now_s)
            case sm.Ack(command, result):
                self._on_ack(command, result)
            case sm.GetStimulationModeAck(result, mode):
                self._on_ack(sm.Command.GET_STIMULATION_MODE_ACK, result)
                if result == sm.Result.OK and mode != sm.StimulationMode.CHANNEL_LIST_MODE \
                        and self.output is not None:
                    self.output = None
                    self._list_ready = False
                    self.fail(StimulatorError("stimulator left channel list mode on its own"))
            case sm.StimulationError(code):
                self.output = None
                self._list_ready = False
                self.fail(StimulatorError(f"stimulator stopped: {_error_text(code)}"))
            case sm.UnknownCommandAck():
                self.fail(StimulatorError("stimulator did not understand a command"))
            case _:
                pass

    def _on_ack(self, command: int, result: int) -> None:
        for pending in self.pending:
            if pending.ack == command:
                pending.result = result
                self.pending.remove(pending)
                if result != sm.Result.OK and command == sm.Command.INIT_CHANNEL_LIST_MODE_ACK:
                    self._list_ready = False
                if result != sm.Result.OK and pending.name in _UNWAITED:
                    self.fail(StimulatorError(f"stimulator refused {pending.name}: "
                                              f"{_result_text(result)}"))
                return

    def _on_device_init(self, number: int, now_s: float) -> None:
        """At connection, or again after the device reset itself (its watchdog expired):
        then whatever was configured is gone, which is a fault if it was putting out."""
        first = self.device_init_number is None
        self.device_init_number = number
        if first or not self.connected:
            return
        self._send(sm.InitAck(sm.Result.OK), now_s, number=number)
        self._list_ready = False
        if self.output is not None:
            self.output = None
            self.fail(StimulatorError("stimulator restarted and stopped its output"))


_ACK_OF_TYPE: dict[type, sm.Command] = {}
"""The acknowledgement each kind of command is answered with, as found (encoding a
message only to read its command cost more than the rest of queueing it)."""
_OWN_COMMAND = (sm.Ack, sm.UnknownMessage)
"""Messages that carry their command in a field: one kind, many commands."""


def _ack_of(message: sm.Message) -> sm.Command:
    kind = type(message)
    ack = _ACK_OF_TYPE.get(kind)
    if ack is None:
        ack = sm.ACK_OF[sm.Command(sm.command_of(message))]
        if not isinstance(message, _OWN_COMMAND):
            _ACK_OF_TYPE[kind] = ack
    return ack


def _check_setup(channels: Sequence[ChannelSetup], frequency_hz: float) -> None:
    """Refuse a block the hard limits do not allow, before anything is sent."""
    limits = HARD_LIMITS
    problems = [f"channel {setup.channel} is not 1-{sm.MAX_CHANNELS}" for setup in channels
                if not 1 <= setup.channel <= sm.MAX_CHANNELS]
    problems += [f"pulse width {setup.pulse_width_us!r} µs on channel {setup.channel} is "
                 f"outside {limits.pulse_width_min_us}-{limits.pulse_width_max_us} µs"
                 for setup in channels
                 if not limits.pulse_width_min_us <= setup.pulse_width_us
                 <= limits.pulse_width_max_us]
    if not (math.isfinite(frequency_hz)
            and limits.frequency_min_hz <= frequency_hz <= limits.frequency_max_hz):
        problems.append(f"frequency {frequency_hz!r} Hz is outside "
                        f"{limits.frequency_min_hz:g}-{limits.frequency_max_hz:g} Hz")
    if not channels:
        problems.append("no channels")
    if problems:
        raise StimulatorError("configuration refused by the hard limits: "
                              + "; ".join(problems))


def _within_limits(setup: ChannelSetup, amplitude_ma: object) -> float | str:
    """``amplitude_ma`` on ``setup`` as a number of mA, or why it is beyond the hard
    limits. Any object, checked here: compiled code would turn a bool into a number, or
    raise TypeError without stopping the output, before this check."""
    limits = HARD_LIMITS
    slack = 1.0 + LIMIT_TOLERANCE
    if not is_finite_number(amplitude_ma) or amplitude_ma < 0.0:
        return f"channel {setup.channel}: amplitude {amplitude_ma!r} mA is not a finite " \
               f"number >= 0"
    if amplitude_ma > limits.amplitude_max_ma * slack:
        return f"channel {setup.channel}: {amplitude_ma:g} mA above the hard " \
               f"{limits.amplitude_max_ma:g} mA"
    charge_uc = charge_per_phase_uc(amplitude_ma, setup.pulse_width_us)
    if charge_uc > limits.charge_per_phase_max_uc * slack:
        return f"channel {setup.channel}: {charge_uc:g} µC per phase above the hard " \
               f"{limits.charge_per_phase_max_uc:g} µC"
    return float(amplitude_ma)


def _result_text(result: int) -> str:
    try:
        return sm.Result(result).name.lower().replace("_", " ")
    except ValueError:
        return f"result code {result}"


def _error_text(code: int) -> str:
    try:
        return sm.StimulationErrorCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"error code {code}"
