"""The WitMotion driver's checks on what the packets carry: a sample's gyro against its
accelerometer, and packets paired only when nothing was lost between them.

A byte swap inside the gyro packet passes the sum checksum and leaves the acceleration
packet alone; a real limb never turns much faster from one sample to the next without its
accelerometer moving too. The check must reject nothing on real recordings (every shared
walk and exercise, at its recorded rate and resampled), catch swaps the slow-field check
cannot, and work in the real driver on a pty. With damaged packets dropped, the driver must
keep every sample whose acceleration and gyro packets arrived, and never pair one sample's
acceleration with another's gyro.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.devices import witmotion as wm
from controller.devices.base import SensorError
from controller.devices.recording import load_recording
from controller.devices.witmotion_imu import (
    GYRO_STEP_ALONE_MAX_DPS,
    SLOW_FIELD_REBASE,
    SampleAssembler,
    WitMotionImu,
)
from controller.types import GRAVITY_MPS2, Sample, Vector3
from simulator import BUNDLED_WALK
from simulator.pty_faults import LineFaults
from simulator.pty_imu import load_walk, packets
from tests.sim_process import SimProcess, running_simulator, wait_for
from tests.test_end_to_end import SIM_ARGS, WALK
from tests.test_sensor_evidence import swapped_byte_figures, trusted_samples

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WAIT_S = 15.0
"""Generous: other test runs share the two cores."""


def _assembled(samples: list[Sample]) -> tuple[int, SampleAssembler]:
    """How many of ``samples`` come out of the driver's decoder and assembler."""
    assembler = SampleAssembler()
    stream = b"".join(packets(s) for s in samples)
    return sum(assembler.add(p) is not None for p in wm.Decoder().feed(stream)), assembler


def _recordings() -> list[tuple[Path, str]]:
    files = [BUNDLED_WALK, *sorted((SHARED / "gait").glob("*_imu.csv")),
             *sorted((SHARED / "exercise").glob("*_imu.csv"))]
    return [(path, foot) for path in dict.fromkeys(files) for foot in ("left", "right")]


@pytest.mark.parametrize(("path", "foot"), _recordings(),
                         ids=lambda value: value.name if isinstance(value, Path) else value)
def test_no_sample_of_a_real_recording_is_rejected(path: Path, foot: str) -> None:
    """Heel strikes turn a foot by up to 940 °/s between samples: always with the
    accelerometer moving, at the recorded rate and at the rates the sensor can be set to."""
    streams = [load_recording(path, foot).samples(),
               *(load_walk(path, foot, rate_hz) for rate_hz in (50.0, 100.0, 200.0))]
    for samples in streams:
        count, assembler = _assembled(samples)
        assert (count, assembler.rejected_samples, assembler.rejected_packets) == \
            (len(samples), 0, 0)


def _with_gyro(sample: Sample, gyro_y_dps: float) -> Sample:
    return Sample(sample.t_s, sample.acc_mps2, (sample.gyro_dps[0], gyro_y_dps,
                                                sample.gyro_dps[2]))


def test_a_gyro_leap_with_a_still_accelerometer_is_dropped_and_a_lasting_one_believed() -> None:
    still = [Sample(k / 100, (0.0, 0.0, 9.81), (0.0, 5.0, 0.0)) for k in range(10)]
    leap = _with_gyro(still[0], 5.0 + 2 * GYRO_STEP_ALONE_MAX_DPS)
    count, assembler = _assembled([*still, leap, *still])
    assert (count, assembler.rejected_samples) == (2 * len(still), 1)
    lasting = [leap] * (SLOW_FIELD_REBASE + 2)
    count, assembler = _assembled([*still, *lasting])
    assert assembler.rejected_samples == SLOW_FIELD_REBASE - 1, "then the limb really turns"
    assert count == len(still) + len(lasting) - assembler.rejected_samples
    moving = Sample(0.1, (3.0, 0.0, 9.81), leap.gyro_dps)
    count, assembler = _assembled([*still, moving])
    assert assembler.rejected_samples == 0, "a leap with the accelerometer moving is a limb"


def test_swapped_bytes_accepted_with_a_large_gyro_error_are_rare() -> None:
    """Before the cross-check (and the slow field's tighter limits) 12.3 % of swaps were
    accepted with a gyro error over 100 °/s and 15.6 % over 10 °/s."""
    figures = swapped_byte_figures()
    print("swapped bytes:", figures)
    assert figures["accepted_wrong_100dps"] < 0.07 * figures["tried"]
    assert figures["accepted_wrong_10dps"] < 0.10 * figures["tried"]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    with running_simulator(tmp_path, *SIM_ARGS) as process:
        yield process


def test_the_driver_on_a_pty_drops_gyro_leaps_from_swapped_bytes(
        sim: SimProcess, imu: WitMotionImu) -> None:
    wait_for(lambda: imu.received_samples > 300, timeout_s=WAIT_S)
    assert imu.assembler.rejected_samples == 0, "a clean stream loses nothing"
    sim.command("imu swap 0.3")
    wait_for(lambda: imu.assembler.rejected_samples >= 5, timeout_s=WAIT_S)
    sim.command("imu ok")
    wait_for(lambda: trusted_samples(imu), timeout_s=WAIT_S)


def _true_pairs(walk: list[Sample], acc_unit: float) -> set[tuple[Vector3, Vector3]]:
    """Every (acc, gyro °/s) pair of ``walk`` as the driver decodes it whole; acc in g
    times ``acc_unit``."""
    pairs = set()
    for sample in walk:
        (acc_g, gyro_dps, _), = SampleAssembler().take(wm.Decoder(), packets(sample))
        pairs.add(((acc_g[0] * acc_unit, acc_g[1] * acc_unit, acc_g[2] * acc_unit), gyro_dps))
    return pairs


def test_damaged_packets_lose_only_their_own_sample_and_never_mix_two() -> None:
    """30 % of packets with a broken checksum, as fes-sim's ``imu corrupt 0.3``: before, the
    driver paired an acceleration with the next sample's gyro 148 times in this walk."""
    walk = load_walk(BUNDLED_WALK, "left", 100.0)
    line = LineFaults(checksum_index=wm.PACKET_BYTES - 1, corrupt_fraction=0.3,
                      rng=random.Random(3))
    assembler, decoder, whole, groups = SampleAssembler(), wm.Decoder(), 0, []
    for sample in walk:
        frames = [packets(sample)[i:i + wm.PACKET_BYTES]
                  for i in range(0, 3 * wm.PACKET_BYTES, wm.PACKET_BYTES)]
        sent = [line.apply(frame) for frame in frames]
        whole += sent[0] == frames[0] and sent[1] == frames[1]
        groups += assembler.take(decoder, b"".join(sent))
    truth = _true_pairs(walk, 1.0)
    mixed = [g for g in groups if (g[0], g[1]) not in truth]
    assert 0.4 * len(walk) < whole
    assert whole - 1 <= len(groups) <= whole, "the last may wait for a packet that never came"
    assert len(mixed) <= 10, "a few walk samples share their gyro values: at most those"


def test_the_driver_on_a_pty_never_mixes_two_samples_when_packets_are_damaged(
        sim: SimProcess, imu: WitMotionImu) -> None:
    truth = _true_pairs(load_walk(WALK, "left", 100.0), GRAVITY_MPS2)
    wait_for(lambda: imu.received_samples > 100, timeout_s=WAIT_S)
    imu.read()
    sim.command("imu corrupt 0.3")
    heard: list[Sample] = []

    def enough() -> bool:
        heard.extend(imu.read())
        return len(heard) > 400

    wait_for(enough, timeout_s=WAIT_S * 4)
    sim.command("imu ok")
    mixed = [s for s in heard if (s.acc_mps2, s.gyro_dps) not in truth]
    assert len(mixed) <= 2, mixed[:3]


def test_a_line_that_swaps_bytes_is_raised_while_it_lasts(sim: SimProcess,
                                                         imu: WitMotionImu) -> None:
    """With 30 % of packets swapped, about 45 % of samples are caught damaged and a fifth
    of the rest carry wrong values: the stream is refused, not thinned, until it is clean."""
    wait_for(lambda: imu.received_samples > 300, timeout_s=WAIT_S)
    imu.read()
    sim.command("imu swap 0.3")

    def refused() -> str:
        try:
            imu.read()
        except SensorError as exc:
            return str(exc)
        return ""

    assert "cannot be trusted" in wait_for(refused, timeout_s=WAIT_S)
    sim.command("imu ok")
    wait_for(lambda: trusted_samples(imu), timeout_s=WAIT_S)
    assert wait_for(imu.read, timeout_s=WAIT_S), "the stream is believed again"
