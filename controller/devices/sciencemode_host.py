"""The controller's side of a ScienceMode 2 conversation, without any I/O.

In the style of h11's ``Connection``: bytes from the device go in through
:meth:`ScienceModeHost.receive_data`, commands are asked for by method calls, and the
bytes to write come out of :meth:`ScienceModeHost.data_to_send`. Time is passed in, never
read. Everything about the conversation lives here: the handshake (the device repeats
Init until it is answered), packet numbers, acknowledgements pending with their deadlines,
the keep-alive (only while the control loop's heartbeat is recent), channel list mode
initialised again after a stop, the refusal of output after an emergency stop, and what a
second Init during output means (the device reset itself).

Two drivers run this same object: the serial driver (:mod:`controller.devices.rehastim2`,
a port and a reader thread around it) and the in-memory twin (:mod:`simulator.inmemory`,
the device model on the session clock), so the two cannot drift apart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.devices import sciencemode as sm
from controller.devices.base import ChannelSetup, StimulatorError

ACK_TIMEOUT_S = 0.1
KEEPALIVE_S = 0.5


@dataclass(eq=False)
class PendingAck:
    """A command waiting for its acknowledgement."""

    name: str
    ack: sm.Command
    deadline_s: float
    result: int | None = None


class ScienceModeHost:
    def __init__(self, *, ack_timeout_s: float = ACK_TIMEOUT_S,
                 keepalive_s: float = KEEPALIVE_S) -> None:
        self.ack_timeout_s = ack_timeout_s
        self.keepalive_s = keepalive_s
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
        self.heartbeat(now_s)
        self.halted = False
        waiting = []
        if self.output is not None:
            waiting.append(self._command(sm.StopChannelListMode(), "stop before reconfiguring",
                                         now_s))
            self.output = None
            self._list_ready = False
        self._channels = tuple(sorted(channels, key=lambda setup: setup.channel))
        self._main_interval_ms = 1000.0 / frequency_hz
        waiting.append(self._init_channel_list(now_s))
        return waiting

    def update(self, amplitudes_ma: Mapping[int, float], now_s: float) -> None:
        """New amplitudes (rounded down to the device's step); sent only when they change,
        with channel list mode initialised again first if a stop ended it. Not waited for:
        a late or refused answer is raised by :meth:`check`."""
        self.check(now_s)
        self._require_connection()
        if self.halted:
            raise StimulatorError("output halted by an emergency stop; configure again first")
        unknown = set(amplitudes_ma) - {setup.channel for setup in self._channels}
        if unknown:
            raise StimulatorError(f"channels {sorted(unknown)} were not configured")
        pulses = tuple(
            sm.ChannelPulse(setup.pulse_width_us,
                            sm.current_code_ma(amplitudes_ma.get(setup.channel, 0.0)))
            for setup in self._channels)
        if pulses == self.output:
            return
        if not self._list_ready:
            self._init_channel_list(now_s)
        self._command(sm.StartChannelListMode(pulses), "update", now_s)
        self.output = pulses

    def stop(self, now_s: float) -> PendingAck:
        """Stop all output; the caller waits for the answer."""
        self.output = None
        self._list_ready = False
        pending = self._command(sm.StopChannelListMode(), "stop", now_s)
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

        After a stop (or an emergency stop), the keep-alive is a Stop rather than a
        Watchdog, so a stop the device never heard (a line that dropped it, a device that
        was silent for a moment) is repeated within ``keepalive_s`` instead of the
        device's output being kept alive by us."""
        if self.connected and now_s - self._last_sent_s >= self.keepalive_s and \
                now_s - self._heartbeat_s < self.keepalive_s:
            self._send(sm.Watchdog() if self._list_ready else sm.StopChannelListMode(), now_s)

    def check(self, now_s: float) -> None:
        """Raise the first trouble since the last call: an error answer, a StimulationError
        from the device, a restart, or a command unanswered past its deadline."""
        self.heartbeat(now_s)
        error, self._error = self._error, None
        if error is None and self.pending and now_s > self.pending[0].deadline_s:
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
        pending = PendingAck(name, sm.ACK_OF[sm.Command(sm.command_of(message))],
                             now_s + self.ack_timeout_s)
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
                if result != sm.Result.OK and pending.name == "update":
                    self.fail(StimulatorError(f"stimulator refused update: "
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
