"""The RehaStim 2's side of ScienceMode 2: bytes in, bytes out, the device model in between.

Sans-I/O like the codec it uses: :meth:`RehaStimDevice.receive` takes what the controller
wrote, :meth:`RehaStimDevice.outgoing` returns what the device puts on the wire by ``now``.
Rules (refusals, watchdog, the delivered log) live in :mod:`simulator.rehastim_model`,
shared with the in-memory twin.

Connection, as the public client expects it: the device sends Init, repeated every
``init_interval_s`` until a host answers InitAck. When the host then stays silent for the
watchdog time the device stops its output and starts announcing itself again, so a new
controller process can connect.

Faults (set by the control channel): ``silent`` ignores everything (a hung device, whose own
watchdog still stops the output), ``late_s`` holds every answer back, ``refuse`` answers
every command with a transfer error and carries none of them out (a transfer error means
the device could not read the command, so it neither changes the output nor feeds the
watchdog: a refused stop leaves the output on until the watchdog stops it),
:meth:`stimulation_error` reports an electrode error and stops output as the device does,
and :attr:`line` damages the bytes on the wire.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from controller.devices import sciencemode as sm
from simulator.pty_faults import LineFaults
from simulator.rehastim_model import (
    MAX_CHANNEL,
    MAX_CURRENT_MA,
    MAX_PULSE_WIDTH_US,
    RESULT_OK,
    RESULT_PARAMETER_ERROR,
    RESULT_TRANSFER_ERROR,
    RESULT_WRONG_MODE,
    Delivered,
    DeviceMode,
    RehaStimModel,
)

INIT_INTERVAL_S = 1.0


class RehaStimDevice:
    def __init__(self, model: RehaStimModel, init_interval_s: float = INIT_INTERVAL_S,
                 on_command: Callable[[float, sm.Message], None] | None = None) -> None:
        self.model = model
        self.init_interval_s = init_interval_s
        self.on_command = on_command
        """Called with every valid command heard (the benchmark's trace hooks in here)."""
        self.decoder = sm.Decoder()
        self.line = LineFaults(checksum_index=2)
        self.silent = False
        self.late_s = 0.0
        self.refuse = False
        self.host_connected = False
        self._next_init_s = 0.0
        self._number = 0
        self._queue: deque[tuple[float, bytes]] = deque()

    def receive(self, data: bytes, now_s: float) -> None:
        if self.silent:
            return
        for packet in self.decoder.feed(data):
            self._handle(packet.message, now_s)

    def outgoing(self, now_s: float) -> bytes:
        """Everything due on the wire by ``now_s``; also lets the device's timers run."""
        if self.host_connected and self.model.last_heard_s is not None \
                and now_s - self.model.last_heard_s > self.model.watchdog_s:
            self.model.tick(now_s)
            self.host_connected = False
            self._next_init_s = now_s
        if not self.host_connected and now_s >= self._next_init_s and not self.silent:
            self._answer(sm.Init(), now_s)
            self._next_init_s = now_s + self.init_interval_s
        out = bytearray()
        while self._queue and self._queue[0][0] <= now_s:
            out += self.line.apply(self._queue.popleft()[1])
        return bytes(out)

    def announce(self, now_s: float) -> None:
        """Forget the host and send Init now, as after the watchdog expired."""
        self.host_connected = False
        self._next_init_s = now_s

    def next_due_s(self) -> float:
        """When :meth:`outgoing` next has something to do on its own."""
        due = [self._next_init_s] if not self.host_connected else []
        if self.host_connected and self.model.last_heard_s is not None:
            due.append(self.model.last_heard_s + self.model.watchdog_s)
        if self._queue:
            due.append(self._queue[0][0])
        return min(due, default=float("inf"))

    def stimulation_error(self, now_s: float,
                          code: sm.StimulationErrorCode = sm.StimulationErrorCode.ELECTRODE_ERROR
                          ) -> None:
        self.model.stop(now_s, code.name.lower().replace("_", " "))
        self._answer(sm.StimulationError(code), now_s)

    def _answer(self, message: sm.Message, now_s: float) -> None:
        self._queue.append((now_s + self.late_s, sm.encode(message, self._number)))
        self._number = (self._number + 1) % 256

    def _ack(self, command: sm.Command, result: int, now_s: float) -> None:
        self._answer(sm.Ack(command, result), now_s)

    def _refuse(self, message: sm.Message, now_s: float) -> None:
        """A transfer error for every command that is answered; nothing is carried out."""
        command = sm.Command(sm.command_of(message)) if sm.command_of(message) in \
            sm.Command._value2member_map_ else None
        if command is sm.Command.GET_STIMULATION_MODE:
            self._answer(sm.GetStimulationModeAck(RESULT_TRANSFER_ERROR, 0), now_s)
        elif command in sm.ACK_OF:
            self._ack(sm.ACK_OF[command], RESULT_TRANSFER_ERROR, now_s)

    def _handle(self, message: sm.Message, now_s: float) -> None:
        if isinstance(message, sm.InitAck):
            self.host_connected = True
            self.model.heard(now_s)
            return
        if not self.host_connected:
            return
        if self.on_command is not None:
            self.on_command(now_s, message)
        if self.refuse:
            self._refuse(message, now_s)
            return
        model = self.model
        match message:
            case sm.Watchdog():
                model.heard(now_s)
            case sm.GetStimulationMode():
                model.heard(now_s)
                mode = sm.StimulationMode.START_MODE if model.mode is DeviceMode.IDLE \
                    else sm.StimulationMode.CHANNEL_LIST_MODE
                self._answer(sm.GetStimulationModeAck(RESULT_OK, mode), now_s)
            case sm.InitChannelListMode(channels, main_interval_ms):
                result = model.init_channel_list(set(channels), main_interval_ms, now_s)
                self._ack(sm.Command.INIT_CHANNEL_LIST_MODE_ACK, result, now_s)
            case sm.StartChannelListMode(pulses):
                self._ack(sm.Command.START_CHANNEL_LIST_MODE_ACK, self._start(pulses, now_s),
                          now_s)
            case sm.StopChannelListMode():
                self._ack(sm.Command.STOP_CHANNEL_LIST_MODE_ACK, model.stop(now_s), now_s)
            case sm.SinglePulse(channel, pulse_width_us, current_ma):
                self._ack(sm.Command.SINGLE_PULSE_ACK,
                          self._single_pulse(channel, pulse_width_us, current_ma, now_s), now_s)
            case _:
                model.heard(now_s)
                self._answer(sm.UnknownCommandAck(), now_s)

    def _start(self, pulses: tuple[sm.ChannelPulse, ...], now_s: float) -> int:
        if len(pulses) != len(self.model.channels) and self.model.mode is not DeviceMode.IDLE:
            self.model.heard(now_s)
            return RESULT_PARAMETER_ERROR
        settings = {channel: (pulse.current_ma, pulse.pulse_width_us)
                    for channel, pulse in zip(self.model.channels, pulses, strict=False)}
        return self.model.start_or_update(settings, now_s)

    def _single_pulse(self, channel: int, pulse_width_us: int, current_ma: int,
                      now_s: float) -> int:
        """One pulse, outside channel list mode; the model has no state for it, so it goes
        straight into the delivered log."""
        self.model.heard(now_s)
        if self.model.mode is not DeviceMode.IDLE:
            return RESULT_WRONG_MODE
        if not 1 <= channel <= MAX_CHANNEL or not 0 <= current_ma <= MAX_CURRENT_MA \
                or not 0 <= pulse_width_us <= MAX_PULSE_WIDTH_US:
            return RESULT_PARAMETER_ERROR
        self.model.delivered.append(
            Delivered(now_s, channel, current_ma, pulse_width_us, "single pulse"))
        return RESULT_OK
