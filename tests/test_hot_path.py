"""What the replay-speed work changed underneath the session: the record's many-row
inserts and the ScienceMode codec's remembered frames give exactly what they replaced."""

from __future__ import annotations

import random
from pathlib import Path

from controller.compiled_modules import COMPILED
from controller.devices import sciencemode as sm
from controller.record import SessionRecord, read_rows
from controller.record.writer import MAX_ROWS_PER_STATEMENT
from controller.types import Sample, SessionSummary


def test_rows_inserted_many_to_a_statement_are_the_rows_given_in_their_order(
        tmp_path: Path) -> None:
    """More samples than one statement takes, with and without angles, in one flush."""
    path = tmp_path / "record.sqlite"
    record = SessionRecord(path, protocol_name="p", protocol_toml="name = 'p'", mode="gait",
                           sensor="test", stimulator="test", clock=(0.01, 0.0), paced=False)
    rng = random.Random(7)
    count = 2 * MAX_ROWS_PER_STATEMENT + 37
    given = []
    for i in range(count):
        angle = None if i % 3 else (rng.uniform(-90, 90), rng.uniform(-90, 90), -0.0)
        sample = Sample(i / 100, (rng.gauss(0, 9), rng.gauss(0, 9), rng.gauss(9.8, 1)),
                        (rng.gauss(0, 200), rng.gauss(0, 200), rng.gauss(0, 200)), angle)
        record.on_sample(sample)
        given.append((sample.t_s, *sample.acc_mps2, *sample.gyro_dps,
                      *(angle or (None, None, None))))
    record.on_command(0.5, {1: 12.0, 2: 0.0})
    record.on_finish(SessionSummary(record.session_id, str(path), "completed", count / 100,
                                    count))
    stored = read_rows(path, "SELECT t_s, acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z, "
                             "angle_x, angle_y, angle_z FROM samples ORDER BY rowid")
    assert stored == given
    assert read_rows(path, "SELECT t_s, channel, amplitude_ma FROM commands ORDER BY rowid") \
        == [(0.5, 1, 12.0), (0.5, 2, 0.0)]


def test_a_remembered_frame_decodes_as_it_did_and_a_damaged_copy_is_still_refused() -> None:
    message = sm.StartChannelListMode((sm.ChannelPulse(300, 24), sm.ChannelPulse(250, 10)))
    frame = sm.encode(message, 17)
    first, again = sm.Decoder().feed(frame), sm.Decoder().feed(frame)
    assert first == again == [sm.Packet(17, message)]
    damaged = bytearray(frame)
    damaged[-3] ^= 0x01  # a data byte: the checksum no longer matches
    decoder = sm.Decoder()
    assert decoder.feed(bytes(damaged)) == [] and decoder.garbage_bytes > 0


def test_a_message_that_cannot_be_remembered_is_encoded_all_the_same() -> None:
    """A list where the message wants a tuple: compiled, the message refuses it when made;
    as pure Python it is made, and encoded as the tuple would be."""
    pulses = [sm.ChannelPulse(300, 24)]
    try:
        unhashable = sm.StartChannelListMode(pulses)  # type: ignore[arg-type]
    except TypeError:
        assert COMPILED, "only compiled code checks a field's type when it is set"
        return
    assert sm.encode(unhashable, 3) == sm.encode(sm.StartChannelListMode(tuple(pulses)), 3)


def test_the_remembered_frames_stay_bounded() -> None:
    decoder = sm.Decoder()
    for number in range(256):
        for current_ma in range(0, 2 * (sm.FRAMES_REMEMBERED // 256 + 2), 2):
            decoder.feed(sm.encode(sm.StartChannelListMode((sm.ChannelPulse(300, current_ma),)),
                                   number))
    assert 0 < len(sm._DECODED) <= sm.FRAMES_REMEMBERED
    assert sm._encode_remembered.cache_info().currsize <= sm.FRAMES_REMEMBERED
