"""The ScienceMode 2 codec: worked examples, round trips, and hostile byte streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.devices import sciencemode as sm

STUFFED = sorted(sm.STUFFED_BYTES)
byte_values = st.one_of(st.sampled_from(STUFFED), st.integers(0, 255))
"""Bytes drawn heavily from the ones that need stuffing."""
channel_sets = st.sets(st.integers(1, 8), min_size=1).map(lambda s: tuple(sorted(s)))
pulses = st.builds(sm.ChannelPulse, pulse_width_us=st.integers(0, 500),
                   current_ma=byte_values, mode=st.integers(0, 2))

messages = st.one_of(
    st.builds(sm.Init, version=byte_values),
    st.builds(sm.InitAck, result=st.integers(-128, 127)),
    st.just(sm.UnknownCommandAck()),
    st.just(sm.Watchdog()),
    st.just(sm.GetStimulationMode()),
    st.builds(sm.GetStimulationModeAck, result=st.integers(-128, 127), mode=byte_values),
    st.builds(sm.InitChannelListMode, channels=channel_sets,
              main_interval_ms=st.integers(0, 2048).map(lambda code: code / 2 + 1),
              inter_pulse_interval_ms=st.integers(0, 255).map(lambda code: code / 2 + 1.5),
              low_frequency_factor=st.integers(0, 7),
              low_frequency_channels=st.just(()) | channel_sets),
    st.builds(sm.StartChannelListMode, pulses=st.lists(pulses, min_size=1, max_size=8)
              .map(tuple)),
    st.just(sm.StopChannelListMode()),
    st.builds(sm.SinglePulse, channel=st.integers(1, 8), pulse_width_us=st.integers(0, 500),
              current_ma=byte_values),
    st.builds(sm.Ack, command=st.sampled_from([
        sm.Command.INIT_CHANNEL_LIST_MODE_ACK, sm.Command.START_CHANNEL_LIST_MODE_ACK,
        sm.Command.STOP_CHANNEL_LIST_MODE_ACK, sm.Command.SINGLE_PULSE_ACK]),
        result=st.integers(-128, 127)),
    st.builds(sm.StimulationError, code=st.integers(-128, 127)),
)
packets = st.builds(sm.Packet, number=byte_values, message=messages)
SENTINELS = [sm.Packet(200 + i, sm.Watchdog()) for i in range(10)]
"""Good frames after a damaged one: a frame whose length was damaged upwards can only be
told apart from a slow line once a whole frame's worth of bytes has arrived."""
TRAILER = b"".join(sm.encode(packet.message, packet.number) for packet in SENTINELS)


def frame(packet: sm.Packet) -> bytes:
    return sm.encode(packet.message, packet.number)


def decode_in_chunks(stream: bytes, cuts: list[int]) -> tuple[list[sm.Packet], sm.Decoder]:
    decoder = sm.Decoder()
    decoded: list[sm.Packet] = []
    previous = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        decoded += decoder.feed(stream[previous:cut])
        previous = cut
    return decoded, decoder


def test_stop_channel_list_mode_matches_the_worked_example() -> None:
    assert sm.encode(sm.StopChannelListMode(), 0) == bytes.fromhex("F0 81 BB 81 57 00 22 0F")


def test_watchdog_matches_the_worked_example() -> None:
    assert sm.encode(sm.Watchdog(), 5) == bytes.fromhex("F0 81 08 81 57 05 04 0F")


def test_crc8_is_the_poly_07_check_value() -> None:
    assert sm.crc8(b"123456789") == 0xF4


def test_init_channel_list_mode_codes_channels_and_intervals() -> None:
    message = sm.InitChannelListMode(channels=(1, 4), main_interval_ms=25.0)
    data = sm.encode(message, 1)
    assert data[5:-1] == bytes([1, 30, 0, 0b1001, 0, 1, 0, 48, 0])


def test_special_data_bytes_are_escaped_not_sent_bare() -> None:
    message = sm.StartChannelListMode((sm.ChannelPulse(pulse_width_us=0x0F, current_ma=0x0A),))
    payload = sm.encode(message, 0x55)[5:-1]
    assert payload == bytes([0x81, 0x00, 0x20, 0, 0, 0x81, 0x5A, 0x81, 0x5F])


@given(packets)
def test_every_message_round_trips(packet: sm.Packet) -> None:
    assert sm.Decoder().feed(frame(packet)) == [packet]


@given(st.lists(packets, min_size=1, max_size=5), st.data())
def test_split_anywhere_decodes_the_same(sent: list[sm.Packet], data: st.DataObject) -> None:
    stream = b"".join(frame(packet) for packet in sent)
    for cut in range(len(stream) + 1):
        assert decode_in_chunks(stream, [cut])[0] == sent
    cuts = data.draw(st.lists(st.integers(0, len(stream))))
    assert decode_in_chunks(stream, cuts)[0] == sent


@given(st.binary(max_size=600), st.lists(st.integers(0, 600)))
def test_random_bytes_never_raise_and_stay_bounded(garbage: bytes, cuts: list[int]) -> None:
    decoder = sm.Decoder()
    previous = 0
    for cut in sorted(set(cuts)) + [len(garbage)]:
        decoder.feed(garbage[previous:cut])
        previous = max(previous, cut)
        assert decoder.pending_bytes <= sm.MAX_FRAME_BYTES


@given(st.lists(st.tuples(packets, st.binary(max_size=30).map(
    lambda b: b.replace(b"\xf0", b""))), min_size=1, max_size=6))
def test_frames_are_found_between_garbage_and_garbage_is_counted(
        sent: list[tuple[sm.Packet, bytes]]) -> None:
    stream = b"".join(noise + frame(packet) for packet, noise in sent)
    decoded, decoder = decode_in_chunks(stream, [])
    assert decoded == [packet for packet, _ in sent]
    assert decoder.garbage_bytes == sum(len(noise) for _, noise in sent)
    assert decoder.garbage_run_bytes == 0


@given(st.lists(packets, min_size=1, max_size=4), st.data())
def test_a_corrupted_byte_loses_only_its_own_frame(sent: list[sm.Packet],
                                                   data: st.DataObject) -> None:
    victim = data.draw(st.integers(0, len(sent) - 1))
    frames = [frame(packet) for packet in sent]
    position = data.draw(st.integers(0, len(frames[victim]) - 1))
    original = frames[victim][position]
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != original))
    broken = bytearray(frames[victim])
    broken[position] = replacement
    frames[victim] = bytes(broken)
    decoded, decoder = decode_in_chunks(b"".join(frames) + TRAILER, [])
    assert decoded == sent[:victim] + sent[victim + 1:] + SENTINELS
    assert decoder.garbage_bytes >= 1


@given(st.lists(packets, min_size=1, max_size=4), st.data())
def test_a_dropped_byte_loses_only_its_own_frame(sent: list[sm.Packet],
                                                 data: st.DataObject) -> None:
    victim = data.draw(st.integers(0, len(sent) - 1))
    frames = [frame(packet) for packet in sent]
    position = data.draw(st.integers(0, len(frames[victim]) - 1))
    frames[victim] = frames[victim][:position] + frames[victim][position + 1:]
    decoded, _ = decode_in_chunks(b"".join(frames) + TRAILER, [])
    assert decoded == sent[:victim] + sent[victim + 1:] + SENTINELS


def test_a_frame_with_a_good_checksum_but_unknown_command_is_reported_not_dropped() -> None:
    unknown = sm.UnknownMessage(99, b"\x01\x02")
    assert sm.Decoder().feed(sm.encode(unknown, 3)) == [sm.Packet(3, unknown)]


def test_a_frame_with_the_wrong_data_length_is_an_unknown_message() -> None:
    short_init = sm.UnknownMessage(sm.Command.INIT_CHANNEL_LIST_MODE, b"\x00\x01")
    assert sm.Decoder().feed(sm.encode(short_init)) == [sm.Packet(0, short_init)]


def test_a_value_that_does_not_fit_a_byte_is_refused_by_the_encoder() -> None:
    with pytest.raises(ValueError):
        sm.encode(sm.StartChannelListMode((sm.ChannelPulse(pulse_width_us=100,
                                                           current_ma=300),)))


@pytest.mark.parametrize(("amplitude_ma", "code"), [
    (0.0, 0), (-3.0, 0), (1.9, 0), (2.0, 2), (21.9, 20), (125.0, 124), (400.0, 126)])
def test_current_is_rounded_down_to_the_device_step(amplitude_ma: float, code: int) -> None:
    assert sm.current_code_ma(amplitude_ma) == code
