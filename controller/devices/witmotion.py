"""Sans-I/O codec for WitMotion serial IMUs (WT901 / BWT901 family).

The sensor streams 11-byte packets ``55 TYPE D0..D7 SUM``: four little-endian int16 values
and a byte sum. We use three types: acceleration (0x51), angular velocity (0x52) and
angle (0x53); others (time, magnetometer, quaternion...) are checked and skipped. The host
configures the sensor with 5-byte commands ``FF AA REG L H``. Both directions are here, so
the simulator can stream what a sensor streams and understand what a host sends.

Values stay in the sensor's own units (g, deg/s, deg): converting to SI is the driver's job,
where the choice of g is made once.

As in :mod:`controller.devices.sciencemode`, bad bytes are counted and skipped, never raised:
a packet is accepted only with a known header, a full length and a correct sum; anything
else drops one byte and the search for the next 0x55 starts again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from controller.types import Vector3

HEADER = 0x55
PACKET_BYTES = 11
CONFIG_PREFIX = b"\xff\xaa"
CONFIG_BYTES = 5

ACC_FULL_SCALE_G = 16.0
GYRO_FULL_SCALE_DPS = 2000.0
ANGLE_FULL_SCALE_DEG = 180.0
TEMPERATURE_SCALE_C = 100.0
_INT16_SPAN = 32768

_KNOWN_TYPES = frozenset(range(0x50, 0x5B))
"""Types the sensor family can send (time ... GPS accuracy); anything else is garbage."""


class PacketType(IntEnum):
    ACCELERATION = 0x51
    ANGULAR_VELOCITY = 0x52
    ANGLE = 0x53


class Register(IntEnum):
    SAVE = 0x00
    CALSW = 0x01
    RSW = 0x02
    """Output content: bit n switches packet type 0x50 + n on."""
    RATE = 0x03
    BAUD = 0x04
    UNLOCK = 0x69


UNLOCK_KEY = 0xB588
RATE_CODES_HZ: dict[int, float] = {
    0x01: 0.2, 0x02: 0.5, 0x03: 1.0, 0x04: 2.0, 0x05: 5.0, 0x06: 10.0, 0x07: 20.0,
    0x08: 50.0, 0x09: 100.0, 0x0A: 125.0, 0x0B: 200.0,
}
BAUD_CODES: dict[int, int] = {
    0x01: 4800, 0x02: 9600, 0x03: 19200, 0x04: 38400, 0x05: 57600, 0x06: 115200,
    0x07: 230400, 0x08: 460800, 0x09: 921600,
}


@dataclass(frozen=True, slots=True)
class Acceleration:
    acc_g: Vector3
    temperature_c: float


@dataclass(frozen=True, slots=True)
class AngularVelocity:
    gyro_dps: Vector3
    temperature_c: float


@dataclass(frozen=True, slots=True)
class Angle:
    """Roll, pitch, yaw from the sensor's own fusion."""

    angle_deg: Vector3
    version: int


DataPacket = Acceleration | AngularVelocity | Angle


@dataclass(frozen=True, slots=True)
class ConfigCommand:
    register: int
    value: int


def checksum(body: bytes | bytearray) -> int:
    return sum(body) & 0xFF


def _int16(code: float) -> int:
    """Round to an int16 code, saturating as the sensor does."""
    return max(-_INT16_SPAN, min(_INT16_SPAN - 1, round(code)))


def _raw(value: float, full_scale: float) -> int:
    return _int16(value / full_scale * _INT16_SPAN)


def _scaled(codes: tuple[int, ...], full_scale: float) -> Vector3:
    return (codes[0] * full_scale / _INT16_SPAN, codes[1] * full_scale / _INT16_SPAN,
            codes[2] * full_scale / _INT16_SPAN)


def encode(packet: DataPacket) -> bytes:
    """One 11-byte packet as the sensor sends it."""
    match packet:
        case Acceleration(acc, temperature):
            kind = PacketType.ACCELERATION
            values = [_raw(v, ACC_FULL_SCALE_G) for v in acc]
            values.append(_int16(temperature * TEMPERATURE_SCALE_C))
        case AngularVelocity(gyro, temperature):
            kind = PacketType.ANGULAR_VELOCITY
            values = [_raw(v, GYRO_FULL_SCALE_DPS) for v in gyro]
            values.append(_int16(temperature * TEMPERATURE_SCALE_C))
        case Angle(angle, version):
            kind = PacketType.ANGLE
            values = [_raw(v, ANGLE_FULL_SCALE_DEG) for v in angle]
            values.append(_int16(version - 65536 if version >= 32768 else version))
    body = bytes((HEADER, kind)) + struct.pack("<4h", *values)
    return body + bytes((checksum(body),))


def encode_config(command: ConfigCommand) -> bytes:
    return CONFIG_PREFIX + struct.pack("<BH", command.register, command.value)


def _parse(kind: int, data: bytes) -> DataPacket | None:
    codes = struct.unpack("<4h", data)
    temperature = codes[3] / TEMPERATURE_SCALE_C
    if kind == PacketType.ACCELERATION:
        return Acceleration(_scaled(codes, ACC_FULL_SCALE_G), temperature)
    if kind == PacketType.ANGULAR_VELOCITY:
        return AngularVelocity(_scaled(codes, GYRO_FULL_SCALE_DPS), temperature)
    if kind == PacketType.ANGLE:
        return Angle(_scaled(codes, ANGLE_FULL_SCALE_DEG), codes[3] & 0xFFFF)
    return None


class Decoder:
    """Incremental decoder of the sensor's stream; the buffer stays under one packet."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.garbage_bytes = 0
        self.garbage_run_bytes = 0
        """Bytes dropped since the last good packet: a long run means the line is broken."""
        self.longest_garbage_run_bytes = 0
        """The longest run of dropped bytes so far, also one that a good packet has ended."""
        self.skipped_packets = 0
        """Good packets of types we do not use (magnetometer, time, ...)."""

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[DataPacket]:
        buffer = self._buffer
        buffer += data
        packets: list[DataPacket] = []
        while buffer:
            start = buffer.find(HEADER)
            if start != 0:
                self._drop(len(buffer) if start < 0 else start)
                continue
            if len(buffer) < PACKET_BYTES:
                break
            kind = buffer[1]
            if kind not in _KNOWN_TYPES or checksum(buffer[:10]) != buffer[10]:
                self._drop(1)
                continue
            packet = _parse(kind, bytes(buffer[2:10]))
            del buffer[:PACKET_BYTES]
            self.garbage_run_bytes = 0
            if packet is None:
                self.skipped_packets += 1
            else:
                packets.append(packet)
        return packets

    def _drop(self, count: int) -> None:
        del self._buffer[:count]
        self.garbage_bytes += count
        self.garbage_run_bytes += count
        self.longest_garbage_run_bytes = max(self.longest_garbage_run_bytes,
                                             self.garbage_run_bytes)


class ConfigDecoder:
    """The sensor's side: finds ``FF AA REG L H`` commands in what the host sends."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.garbage_bytes = 0

    def feed(self, data: bytes) -> list[ConfigCommand]:
        buffer = self._buffer
        buffer += data
        commands: list[ConfigCommand] = []
        while buffer:
            start = buffer.find(CONFIG_PREFIX)
            if start < 0:
                keep = 1 if buffer[-1] == CONFIG_PREFIX[0] else 0
                start = len(buffer) - keep
                if start == 0:
                    break
            if start > 0:
                del buffer[:start]
                self.garbage_bytes += start
                continue
            if len(buffer) < CONFIG_BYTES:
                break
            register, value = struct.unpack("<BH", bytes(buffer[2:CONFIG_BYTES]))
            commands.append(ConfigCommand(register, value))
            del buffer[:CONFIG_BYTES]
        return commands
