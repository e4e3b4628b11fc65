"""The WitMotion driver's cross-check of a sample's gyro against its accelerometer.

A byte swap inside the gyro packet passes the sum checksum and leaves the acceleration
packet alone; a real limb never turns much faster from one sample to the next without its
accelerometer moving too. The check must reject nothing on real recordings (every shared
walk and exercise, at its recorded rate and resampled), catch swaps the slow-field check
cannot, and work in the real driver on a pty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.devices import witmotion as wm
from controller.devices.recording import load_recording
from controller.devices.witmotion_imu import (
    GYRO_STEP_ALONE_MAX_DPS,
    SLOW_FIELD_REBASE,
    SampleAssembler,
    WitMotionImu,
)
from controller.types import Sample
from simulator import BUNDLED_WALK
from simulator.pty_imu import load_walk, packets
from tests.sim_process import SimProcess, running_simulator, wait_for
from tests.test_end_to_end import SIM_ARGS
from tests.test_sensor_evidence import swapped_byte_figures

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
    imu.read()
    wait_for(imu.read, timeout_s=WAIT_S)
