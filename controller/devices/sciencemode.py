"""Sans-I/O codec for the Hasomed RehaStim 2 ScienceMode 2 serial protocol.

No port, no clock and no thread here: :func:`encode` turns a message into the bytes of one
frame and :class:`Decoder` turns any chunks of received bytes back into messages. The serial
driver (controller side) and the pseudo-terminal simulator (device side) both use it, so the
two directions cannot disagree about the wire format.

Frame (see ``research/devices.md`` 1.2)::

    F0 | 81 CRC^55 | 81 LEN^55 | payload (LEN bytes, stuffed) | 0F
    payload = packet number, command, data...

Every payload byte in :data:`STUFFED_BYTES` is sent as ``81, byte ^ 55``; the CRC-8
(polynomial 0x07, initial value 0) covers the payload *after* stuffing, and LEN counts the
stuffed bytes. The wider stuffed set (0x55 and 0x0A besides F0/0F/81) is what the one public
client library sends; a receiver that unstuffs every escaped byte accepts both forms.

That library XORs a packet number or command in the stuffed set with the key *without* the
escape byte (so its packet number 0x55 arrives as 0x00). We escape those too: a frame is
self-describing either way, and a receiver never has to guess.

Bad input is never an exception: bytes that do not form a frame with a correct checksum are
counted in :attr:`Decoder.garbage_bytes` and skipped, byte by byte, so a real frame hidden
behind garbage is still found. A frame whose checksum is right but whose content is not a
message we know comes out as :class:`UnknownMessage`, for the receiver to answer or to fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

START_BYTE = 0xF0
STOP_BYTE = 0x0F
STUFFING_BYTE = 0x81
STUFFING_KEY = 0x55
STUFFED_BYTES = frozenset({START_BYTE, STOP_BYTE, STUFFING_BYTE, STUFFING_KEY, 0x0A})
PROTOCOL_VERSION = 0x01

MAX_CHANNELS = 8
MAX_DATA_BYTES = 4 * MAX_CHANNELS
"""The longest data field: StartChannelListMode with all eight channels."""
MAX_STUFFED_PAYLOAD_BYTES = 2 * (2 + MAX_DATA_BYTES)
_HEADER_BYTES = 5
MAX_FRAME_BYTES = _HEADER_BYTES + MAX_STUFFED_PAYLOAD_BYTES + 1
FRAMES_REMEMBERED = 4096
"""Valid frames whose encoding or decoding is remembered (each way a few hundred kB)."""

CURRENT_STEP_MA = 2
MAX_CURRENT_MA = 126


class Command(IntEnum):
    INIT = 1
    INIT_ACK = 2
    UNKNOWN_COMMAND = 3
    WATCHDOG = 4
    GET_STIMULATION_MODE = 10
    GET_STIMULATION_MODE_ACK = 11
    INIT_CHANNEL_LIST_MODE = 30
    INIT_CHANNEL_LIST_MODE_ACK = 31
    START_CHANNEL_LIST_MODE = 32
    START_CHANNEL_LIST_MODE_ACK = 33
    STOP_CHANNEL_LIST_MODE = 34
    STOP_CHANNEL_LIST_MODE_ACK = 35
    SINGLE_PULSE = 36
    SINGLE_PULSE_ACK = 37
    STIMULATION_ERROR = 38


class Result(IntEnum):
    """Result codes of the acknowledgements (signed byte on the wire)."""

    OK = 0
    TRANSFER_ERROR = -1
    PARAMETER_ERROR = -2
    WRONG_MODE = -3
    BUSY = -8


class StimulationErrorCode(IntEnum):
    """Codes of the unsolicited StimulationError message."""

    EMERGENCY_SWITCH = -1
    ELECTRODE_ERROR = -2
    STIMULATION_MODULE_ERROR = -3


class PulseMode(IntEnum):
    SINGLE = 0
    DOUBLET = 1
    TRIPLET = 2


class StimulationMode(IntEnum):
    """Payload of GetStimulationModeAck: what the device is doing now."""

    START_MODE = 0
    CHANNEL_LIST_MODE = 1


@dataclass(frozen=True, slots=True)
class Init:
    """Sent by the device, first, to announce itself; the host answers :class:`InitAck`."""

    version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class InitAck:
    result: int = Result.OK


@dataclass(frozen=True, slots=True)
class UnknownCommandAck:
    """The device's answer to a command it does not know."""


@dataclass(frozen=True, slots=True)
class Watchdog:
    """Keep-alive from the host; feeds the device's watchdog, never answered."""


@dataclass(frozen=True, slots=True)
class GetStimulationMode:
    pass


@dataclass(frozen=True, slots=True)
class GetStimulationModeAck:
    result: int
    mode: int


@dataclass(frozen=True, slots=True)
class InitChannelListMode:
    """Fixes the active channels and the pulse train period for a whole block.

    Intervals are coded in 0.5 ms steps on the wire: main interval 1-1025 ms (the current
    firmware wants >= 8 ms), inter-pulse interval (doublets, triplets) 1.5-129 ms.
    """

    channels: tuple[int, ...]
    main_interval_ms: float
    inter_pulse_interval_ms: float = 2.0
    low_frequency_factor: int = 0
    low_frequency_channels: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelPulse:
    """What one channel puts out: pulse width in µs, current in whole mA."""

    pulse_width_us: int
    current_ma: int
    mode: int = PulseMode.SINGLE


@dataclass(frozen=True, slots=True)
class StartChannelListMode:
    """Starts output, and every later one updates it: one entry per active channel, in
    ascending channel order (the wire carries no channel numbers)."""

    pulses: tuple[ChannelPulse, ...]


@dataclass(frozen=True, slots=True)
class StopChannelListMode:
    pass


@dataclass(frozen=True, slots=True)
class SinglePulse:
    """One pulse on one channel (1-8); the wire carries the channel as 0-7."""

    channel: int
    pulse_width_us: int
    current_ma: int


@dataclass(frozen=True, slots=True)
class Ack:
    """Acknowledgement of a channel-list-mode or single-pulse command."""

    command: Command
    result: int = Result.OK

    @property
    def ok(self) -> bool:
        return self.result == Result.OK


@dataclass(frozen=True, slots=True)
class StimulationError:
    """Sent by the device on its own when output had to stop (electrode, emergency switch)."""

    code: int


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A frame with a correct checksum whose command or data we cannot interpret."""

    command: int
    data: bytes


Message = (
    Init | InitAck | UnknownCommandAck | Watchdog | GetStimulationMode | GetStimulationModeAck
    | InitChannelListMode | StartChannelListMode | StopChannelListMode | SinglePulse | Ack
    | StimulationError | UnknownMessage
)

ACK_OF: dict[Command, Command] = {
    Command.INIT_CHANNEL_LIST_MODE: Command.INIT_CHANNEL_LIST_MODE_ACK,
    Command.START_CHANNEL_LIST_MODE: Command.START_CHANNEL_LIST_MODE_ACK,
    Command.STOP_CHANNEL_LIST_MODE: Command.STOP_CHANNEL_LIST_MODE_ACK,
    Command.SINGLE_PULSE: Command.SINGLE_PULSE_ACK,
    Command.GET_STIMULATION_MODE: Command.GET_STIMULATION_MODE_ACK,
}
"""Which acknowledgement answers which host command."""

_ACK_COMMANDS = frozenset(ACK_OF.values()) - {Command.GET_STIMULATION_MODE_ACK}


@dataclass(frozen=True, slots=True)
class Packet:
    number: int
    message: Message


def _crc8_table() -> tuple[int, ...]:
    table = []
    for value in range(256):
        crc = value
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8_TABLE = _crc8_table()


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial value 0, no reflection (the protocol's checksum),
    a byte at a time from a table."""
    crc = 0
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


def stuff(raw: bytes) -> bytes:
    out = bytearray()
    for byte in raw:
        if byte in STUFFED_BYTES:
            out += bytes((STUFFING_BYTE, byte ^ STUFFING_KEY))
        else:
            out.append(byte)
    return bytes(out)


def unstuff(stuffed: bytes) -> bytes | None:
    """The raw bytes, or None if an escape byte has nothing after it or a bare special byte
    (which a sender never emits) appears."""
    out = bytearray()
    escaped = False
    for byte in stuffed:
        if escaped:
            out.append(byte ^ STUFFING_KEY)
            escaped = False
        elif byte == STUFFING_BYTE:
            escaped = True
        elif byte in (START_BYTE, STOP_BYTE):
            return None
        else:
            out.append(byte)
    return None if escaped else bytes(out)


def main_interval_code(main_interval_ms: float) -> int:
    """The wire code of a main stimulation interval: (T - 1 ms) / 0.5 ms, rounded."""
    return round((main_interval_ms - 1.0) * 2)


def current_code_ma(amplitude_ma: float) -> int:
    """Whole mA the device can deliver: rounded *down* to its 2 mA step, so quantising never
    raises the charge, and never above the device maximum."""
    if amplitude_ma <= 0:
        return 0
    return min(int(amplitude_ma // CURRENT_STEP_MA) * CURRENT_STEP_MA, MAX_CURRENT_MA)


def _bitmask(channels: tuple[int, ...]) -> int:
    return sum(1 << (channel - 1) for channel in set(channels))


def _channels(bitmask: int) -> tuple[int, ...]:
    return tuple(channel for channel in range(1, MAX_CHANNELS + 1)
                 if bitmask & (1 << (channel - 1)))


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def _body(message: Message) -> tuple[int, bytes]:
    """The command id and raw data bytes of a message."""
    match message:
        case Init(version):
            return Command.INIT, bytes((version,))
        case InitAck(result):
            return Command.INIT_ACK, bytes((result & 0xFF,))
        case UnknownCommandAck():
            return Command.UNKNOWN_COMMAND, b""
        case Watchdog():
            return Command.WATCHDOG, b""
        case GetStimulationMode():
            return Command.GET_STIMULATION_MODE, b""
        case GetStimulationModeAck(result, mode):
            return Command.GET_STIMULATION_MODE_ACK, bytes((result & 0xFF, mode))
        case InitChannelListMode():
            code = main_interval_code(message.main_interval_ms)
            return Command.INIT_CHANNEL_LIST_MODE, bytes((
                message.low_frequency_factor,
                _bitmask(message.channels),
                _bitmask(message.low_frequency_channels),
                round((message.inter_pulse_interval_ms - 1.5) * 2),
                code >> 8,
                code & 0xFF,
                0,
            ))
        case StartChannelListMode(pulses):
            pulse_bytes = bytearray()  # not ``data``: compiled, a name keeps one type
            for pulse in pulses:
                width = pulse.pulse_width_us
                pulse_bytes += bytes((pulse.mode, width >> 8, width & 0xFF, pulse.current_ma))
            return Command.START_CHANNEL_LIST_MODE, bytes(pulse_bytes)
        case StopChannelListMode():
            return Command.STOP_CHANNEL_LIST_MODE, b""
        case SinglePulse(channel, width, current):
            return Command.SINGLE_PULSE, bytes((channel - 1, width >> 8, width & 0xFF, current))
        case Ack(command, result):
            return command, bytes((result & 0xFF,))
        case StimulationError(code):
            return Command.STIMULATION_ERROR, bytes((code & 0xFF,))
        case UnknownMessage(command, data):
            return command, data
    raise TypeError(f"not a ScienceMode 2 message: {message!r}")


def command_of(message: Message) -> int:
    return _body(message)[0]


def encode(message: Message, number: int = 0) -> bytes:
    """One complete frame carrying ``message`` with packet number ``number`` (mod 256).

    Raises ValueError for a message whose fields do not fit the wire (a caller's bug, not
    line noise): out-of-range bytes would otherwise be silently truncated. Frames are
    remembered (messages are immutable; a link repeats a few hundred frames over and over,
    and the in-memory twin encodes on every change of output).
    """
    try:
        return _encode_remembered(message, number % 256)
    except TypeError:  # a field that cannot be hashed (a list for a tuple): not remembered
        return _encode(message, number)


@lru_cache(maxsize=FRAMES_REMEMBERED)
def _encode_remembered(message: Message, number: int) -> bytes:
    return _encode(message, number)


def _encode(message: Message, number: int) -> bytes:
    try:
        command, data = _body(message)
        payload = stuff(bytes((number % 256, command)) + data)
    except ValueError as exc:
        raise ValueError(f"{message!r} does not fit the ScienceMode 2 wire format") from exc
    check = crc8(payload)
    return bytes((
        START_BYTE,
        STUFFING_BYTE, check ^ STUFFING_KEY,
        STUFFING_BYTE, len(payload) ^ STUFFING_KEY,
    )) + payload + bytes((STOP_BYTE,))


def parse(command: int, data: bytes) -> Message:
    """The message a (command, raw data) pair stands for; :class:`UnknownMessage` if none."""
    size = len(data)
    if command == Command.INIT and size == 1:
        return Init(data[0])
    if command == Command.INIT_ACK and size == 1:
        return InitAck(_signed(data[0]))
    if command == Command.UNKNOWN_COMMAND and size == 0:
        return UnknownCommandAck()
    if command == Command.WATCHDOG and size == 0:
        return Watchdog()
    if command == Command.GET_STIMULATION_MODE and size == 0:
        return GetStimulationMode()
    if command == Command.GET_STIMULATION_MODE_ACK and size == 2:
        return GetStimulationModeAck(_signed(data[0]), data[1])
    if command == Command.INIT_CHANNEL_LIST_MODE and size == 7:
        return InitChannelListMode(
            channels=_channels(data[1]),
            main_interval_ms=((data[4] << 8) | data[5]) / 2 + 1.0,
            inter_pulse_interval_ms=data[3] / 2 + 1.5,
            low_frequency_factor=data[0],
            low_frequency_channels=_channels(data[2]),
        )
    if command == Command.START_CHANNEL_LIST_MODE and 0 < size <= MAX_DATA_BYTES \
            and size % 4 == 0:
        return StartChannelListMode(tuple(
            ChannelPulse(mode=data[i], pulse_width_us=(data[i + 1] << 8) | data[i + 2],
                         current_ma=data[i + 3])
            for i in range(0, size, 4)
        ))
    if command == Command.STOP_CHANNEL_LIST_MODE and size == 0:
        return StopChannelListMode()
    if command == Command.SINGLE_PULSE and size == 4:
        return SinglePulse(data[0] + 1, (data[1] << 8) | data[2], data[3])
    if command in _ACK_COMMANDS and size == 1:
        return Ack(Command(command), _signed(data[0]))
    if command == Command.STIMULATION_ERROR and size == 1:
        return StimulationError(_signed(data[0]))
    return UnknownMessage(command, data)


_DECODED: dict[bytes, Packet] = {}
"""Valid frames already decoded, by their exact bytes (a packet is immutable)."""


class Decoder:
    """Incremental frame decoder with a bounded buffer.

    ``feed`` any slice of the byte stream, in any chunking; it returns the packets completed
    by that slice. The buffer never holds more than one frame's worth of bytes
    (:data:`MAX_FRAME_BYTES`): whatever cannot start a frame is dropped at once and counted.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.garbage_bytes = 0
        """Bytes dropped since this decoder was made."""
        self.garbage_run_bytes = 0
        """Bytes dropped since the last good frame: a long run means the line is broken."""
        self.packets = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes held back as the possible start of a frame (never above MAX_FRAME_BYTES)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        self._buffer += data
        packets: list[Packet] = []
        while True:
            status = self._next_frame()
            if status is None:
                return packets
            if isinstance(status, Packet):
                packets.append(status)

    def _drop(self, count: int) -> bool:
        del self._buffer[:count]
        self.garbage_bytes += count
        self.garbage_run_bytes += count
        return False

    def _next_frame(self) -> Packet | bool | None:
        """A packet, False after dropping garbage (call again), None when more bytes are needed."""
        buffer = self._buffer
        start = buffer.find(START_BYTE)
        if start < 0:
            return self._drop(len(buffer)) if buffer else None
        if start > 0:
            return self._drop(start)
        if len(buffer) < _HEADER_BYTES:
            return None
        if buffer[1] != STUFFING_BYTE or buffer[3] != STUFFING_BYTE:
            return self._drop(1)
        length = buffer[4] ^ STUFFING_KEY
        if not 2 <= length <= MAX_STUFFED_PAYLOAD_BYTES:
            return self._drop(1)
        end = _HEADER_BYTES + length
        if len(buffer) <= end:
            return None
        frame = bytes(buffer[:end + 1])
        packet = _DECODED.get(frame)
        if packet is None:
            payload = frame[_HEADER_BYTES:end]
            raw = unstuff(payload) if frame[end] == STOP_BYTE else None
            if raw is None or len(raw) < 2 or crc8(payload) != frame[2] ^ STUFFING_KEY:
                return self._drop(1)
            packet = Packet(raw[0], parse(raw[1], raw[2:]))
            if len(_DECODED) >= FRAMES_REMEMBERED:
                _DECODED.clear()
            _DECODED[frame] = packet
        del buffer[:end + 1]
        self.garbage_run_bytes = 0
        self.packets += 1
        return packet

