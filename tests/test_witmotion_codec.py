"""The WitMotion codec: scaling, checksums, config commands, and hostile byte streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.devices import witmotion as wm


def codes(full_scale: float) -> st.SearchStrategy[float]:
    """Values that sit exactly on the sensor's int16 grid, so round trips are exact."""
    return st.integers(-32768, 32767).map(lambda code: code * full_scale / 32768)


def vectors(full_scale: float) -> st.SearchStrategy[tuple[float, float, float]]:
    return st.tuples(codes(full_scale), codes(full_scale), codes(full_scale))


temperatures = st.integers(-4000, 8500).map(lambda code: code / 100)
data_packets = st.one_of(
    st.builds(wm.Acceleration, acc_g=vectors(wm.ACC_FULL_SCALE_G), temperature_c=temperatures),
    st.builds(wm.AngularVelocity, gyro_dps=vectors(wm.GYRO_FULL_SCALE_DPS),
              temperature_c=temperatures),
    st.builds(wm.Angle, angle_deg=vectors(wm.ANGLE_FULL_SCALE_DEG),
              version=st.integers(0, 65535)),
)
SENTINEL = wm.Acceleration((0.0, 0.0, 1.0), 25.0)


def test_acceleration_packet_layout_and_scaling() -> None:
    raw = bytes.fromhex("55 51 00 08 00 F8 00 08 C4 09")
    packet = raw + bytes([wm.checksum(raw)])
    assert wm.Decoder().feed(packet) == [wm.Acceleration((1.0, -1.0, 1.0), 25.0)]
    assert wm.encode(wm.Acceleration((1.0, -1.0, 1.0), 25.0)) == packet


def test_gyro_and_angle_scaling() -> None:
    gyro = wm.encode(wm.AngularVelocity((2000.0, -2000.0, 1000.0), 0.0))
    assert gyro[2:8] == bytes.fromhex("FF 7F 00 80 00 40")
    angle = wm.encode(wm.Angle((90.0, -90.0, 0.0), 0x1234))
    assert angle[2:10] == bytes.fromhex("00 40 00 C0 00 00 34 12")


def test_config_command_layout() -> None:
    unlock = wm.encode_config(wm.ConfigCommand(wm.Register.UNLOCK, wm.UNLOCK_KEY))
    assert unlock == bytes.fromhex("FF AA 69 88 B5")
    assert wm.ConfigDecoder().feed(b"\x00\xff" + unlock[:3]) == []


@given(st.lists(st.tuples(st.sampled_from([0x01, 0x03, 0x04, 0x69]),
                          st.integers(0, 65535)).map(lambda rv: wm.ConfigCommand(*rv))),
       st.integers(0, 40))
def test_config_commands_round_trip_in_any_chunking(commands: list[wm.ConfigCommand],
                                                    cut: int) -> None:
    stream = b"".join(wm.encode_config(command) for command in commands)
    decoder = wm.ConfigDecoder()
    assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == commands


@given(data_packets)
def test_every_packet_round_trips(packet: wm.DataPacket) -> None:
    assert wm.Decoder().feed(wm.encode(packet)) == [packet]


def test_values_beyond_full_scale_saturate_like_the_sensor() -> None:
    packet = wm.Decoder().feed(wm.encode(wm.Acceleration((40.0, -40.0, 0.0), 0.0)))[0]
    assert isinstance(packet, wm.Acceleration)
    assert packet.acc_g[0] == pytest.approx(16.0, abs=1e-3)
    assert packet.acc_g[1] == -16.0


def test_packets_of_types_we_do_not_use_are_skipped_not_counted_as_garbage() -> None:
    magnetometer = bytes([0x55, 0x54]) + bytes(8)
    magnetometer += bytes([wm.checksum(magnetometer)])
    decoder = wm.Decoder()
    assert decoder.feed(magnetometer + wm.encode(SENTINEL)) == [SENTINEL]
    assert (decoder.skipped_packets, decoder.garbage_bytes) == (1, 0)


@given(st.lists(data_packets, min_size=1, max_size=6), st.data())
def test_split_anywhere_decodes_the_same(sent: list[wm.DataPacket],
                                         data: st.DataObject) -> None:
    stream = b"".join(wm.encode(packet) for packet in sent)
    for cut in range(len(stream) + 1):
        decoder = wm.Decoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == sent
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)))))
    decoder = wm.Decoder()
    decoded: list[wm.DataPacket] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoded += decoder.feed(stream[start:end])
    assert decoded == sent


@given(st.binary(max_size=500))
def test_random_bytes_never_raise_and_stay_bounded(garbage: bytes) -> None:
    decoder = wm.Decoder()
    for i in range(0, len(garbage), 7):
        decoder.feed(garbage[i:i + 7])
        assert decoder.pending_bytes < wm.PACKET_BYTES


@given(st.lists(data_packets, min_size=1, max_size=5), st.data())
def test_a_corrupted_byte_never_yields_a_packet_that_was_not_sent_whole(
        sent: list[wm.DataPacket], data: st.DataObject) -> None:
    """The byte sum catches any single changed byte in place; what the decoder may still
    find is only ever 11 bytes of the stream whose sum is right. The padding keeps such a
    chance find from reaching into the sentinel."""
    victim = data.draw(st.integers(0, len(sent) - 1))
    frames = [wm.encode(packet) for packet in sent]
    position = data.draw(st.integers(0, wm.PACKET_BYTES - 1))
    broken = bytearray(frames[victim])
    broken[position] = data.draw(st.integers(0, 255).filter(lambda b: b != broken[position]))
    frames[victim] = bytes(broken)
    stream = b"".join(frames) + bytes(wm.PACKET_BYTES - 1) + wm.encode(SENTINEL)
    decoder = wm.Decoder()
    decoded = decoder.feed(stream)
    assert all(wm.encode(packet) in stream for packet in decoded)
    assert decoded[:victim] == sent[:victim]
    assert decoded[-1] == SENTINEL
    assert decoder.garbage_bytes >= 1


@given(st.lists(st.tuples(data_packets, st.binary(max_size=25).map(
    lambda b: b.replace(b"\x55", b""))), min_size=1, max_size=6))
def test_packets_are_found_between_garbage_and_garbage_is_counted(
        sent: list[tuple[wm.DataPacket, bytes]]) -> None:
    decoder = wm.Decoder()
    stream = b"".join(noise + wm.encode(packet) for packet, noise in sent)
    assert decoder.feed(stream) == [packet for packet, _ in sent]
    assert decoder.garbage_bytes == sum(len(noise) for _, noise in sent)
    assert decoder.garbage_run_bytes == 0
    assert decoder.longest_garbage_run_bytes == max(len(noise) for _, noise in sent)
