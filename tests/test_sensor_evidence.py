"""Sensor evidence: a degraded or lying IMU is a fault, not a quiet success.

The watch on a hand-driven clock (a value stuck at full scale, a jump no limb makes, a
thinned stream), the same checks on real recordings (they must raise nothing there), the
WitMotion driver against swapped bytes, an in-process session on a thinned walk, and the
real serial drivers against ``fes-sim`` with the fault injected on the wire.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.assembly import build_simulated_session
from controller.devices import witmotion as wm
from controller.devices.base import SensorError
from controller.devices.recording import load_recording
from controller.devices.witmotion_imu import SampleAssembler, WitMotionImu
from controller.record import read_rows
from controller.safety import SafetySupervisor
from controller.sensor_watch import GYRO_STEP_MAX_DPS, SensorLimits, SensorWatch
from controller.types import GRAVITY_MPS2, FaultKind, Sample
from protocols import load_protocol
from simulator import BUNDLED_WALK
from simulator.inmemory import InMemoryStimulator
from simulator.pty_imu import load_walk, packets
from tests.sim_process import SimProcess, running_simulator, wait_for
from tests.test_end_to_end import (  # noqa: F401  (rig and timed_steps are fixtures)
    GAIT,
    SIM_ARGS,
    Rig,
    at_plateau,
    fes_run,
    output_changes,
    rig,
    timed_steps,
)
from tests.test_safety import MemoryLog, config

RATE_HZ = 100.0
WAIT_S = 15.0
"""Generous: other test runs share the two cores."""
OFF_WITHIN_S = 0.5
"""Output zero at the simulated stimulator this soon after the first fault in the record
(one 10 ms tick when the machine is quiet; the fault matrix benchmark measures it)."""
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class Watched:
    """A sensor watch, its supervisor and the in-memory stimulator on a hand-driven clock,
    with bursts asked for on channel 1 (0.8 s in every 2 s, as steps would)."""

    def __init__(self, sensor_rate_hz: float | None = None) -> None:
        self.now = 0.0
        self.log = MemoryLog()
        self.supervisor = SafetySupervisor(InMemoryStimulator(lambda: self.now), config(),
                                           self.log)
        self.watch = SensorWatch(self.supervisor, SensorLimits(), log=self.log,
                                 sensor_rate_hz=sensor_rate_hz)
        self.supervisor.start(self.now)
        self.watch.start(self.now)

    def feed(self, seconds: float, every: int = 1, **override: float) -> list[bool]:
        """``seconds`` of a gently moving limb at 100 Hz, keeping one sample in ``every``;
        ``acc_x`` or ``gyro_y`` pins that value. Returns the watch's verdicts."""
        verdicts = []
        for k in range(round(seconds * RATE_HZ)):
            self.now = round(self.now + 1 / RATE_HZ, 9)
            if k % every == 0:
                gyro_y = override.get("gyro_y", 50.0 * math.sin(7.0 * self.now))
                sample = Sample(self.now, (override.get("acc_x", 0.0), 0.0, GRAVITY_MPS2),
                                (0.0, gyro_y, 0.0))
                verdicts.append(self.watch.observe(sample, self.now))
            self.supervisor.request(self.now, 1, 1.0 if self.now % 2.0 < 0.8 else 0.0)
            self.watch.tick(self.now)
            self.supervisor.tick(self.now)
        return verdicts

    def kinds(self) -> list[FaultKind]:
        return [f.kind for f in self.log.faults]

    def assert_latched_alone(self, kind: FaultKind, words: str) -> None:
        """``kind`` is the one fault, its detail says ``words``, and output is off."""
        assert self.kinds() == [kind]
        assert words in self.log.faults[0].detail
        assert self.supervisor.output_ma(1) == 0.0

    def stimulated(self) -> bool:
        return any(amplitudes.get(1, 0.0) > 0 for _, amplitudes in self.log.commands)


FULL_SCALE_MPS2 = wm.ACC_FULL_SCALE_G * GRAVITY_MPS2 * 32767 / 32768
"""The largest acceleration a WitMotion int16 can carry: where a stuck sensor sits."""


def test_a_value_stuck_at_full_scale_latches_a_fault_an_impact_does_not() -> None:
    w = Watched()
    w.feed(2.0)
    w.feed(0.02, acc_x=FULL_SCALE_MPS2)  # an impact: two samples at the end of the range
    w.feed(0.3)
    assert w.kinds() == [] and w.stimulated()
    assert w.supervisor.output_ma(1) > 0, "mid-burst"
    w.feed(0.1, acc_x=FULL_SCALE_MPS2)
    w.assert_latched_alone(FaultKind.IMPLAUSIBLE_VALUE, "end of the sensor's range")
    assert w.supervisor.reset(w.now), "refused while the value is still stuck"
    w.feed(0.1)
    assert w.supervisor.reset(w.now) == []


def test_a_jump_no_limb_makes_is_rejected_counted_and_a_run_of_them_latches() -> None:
    w = Watched()
    w.feed(3.0)
    assert w.feed(0.01, gyro_y=GYRO_STEP_MAX_DPS + 100.0) == [False]
    assert w.feed(0.05) == [True] * 5, "the stream goes on from the last believable sample"
    w.feed(1.0)
    assert w.kinds() == [] and w.watch.rejected_samples == 1
    assert any(kind == "sensor_rejected" and "1 samples rejected" in detail
               for _, kind, detail in w.log.notices)
    assert any("1 sensor samples rejected" in text for text in w.watch.warnings())
    w.feed(0.1, gyro_y=1900.0)
    w.assert_latched_alone(FaultKind.IMPLAUSIBLE_VALUE, "jumped more than")


def test_a_thinned_stream_latches_sensor_degraded_until_the_rate_is_back() -> None:
    w = Watched()
    w.feed(4.0)
    assert w.kinds() == [] and w.stimulated()
    w.feed(2.5, every=3)  # 33 usable samples a second, below gait's 50
    w.assert_latched_alone(FaultKind.SENSOR_DEGRADED, "33 usable samples/s")
    assert w.supervisor.reset(w.now), "refused while the stream is thin"
    w.feed(3.0, every=2)  # 50 a second: at the minimum, not clear of it
    assert w.supervisor.reset(w.now), "refused while the rate hovers at the limit"
    w.feed(2.0)  # a whole stream again: cleared within two windows
    assert w.supervisor.reset(w.now) == []
    assert any("fell to 33 samples/s" in text for text in w.watch.warnings())


@pytest.mark.parametrize(("sensor_rate_hz", "cleared"), [
    (50.0, True),  # a 50 Hz sensor measured before the session: whole again at 50
    (51.0, True),  # ... measured a little fast (a packet's worth of bytes at the start)
    (None, False),  # a rate unknown: the margin over the minimum, as before
    (139.0, False),  # 30 % of a 100 Hz sensor's packets damaged from the start
])
def test_a_stream_at_the_sensors_own_rate_clears_degraded_only_if_that_rate_is_known(
        sensor_rate_hz: float | None, cleared: bool) -> None:
    w = Watched(sensor_rate_hz)
    w.feed(4.0, every=2)  # 50 a second
    assert w.kinds() == [] and w.stimulated()
    w.feed(2.5, every=4)
    w.assert_latched_alone(FaultKind.SENSOR_DEGRADED, "25 usable samples/s")
    assert w.supervisor.reset(w.now), "refused while the stream is thin"
    w.feed(3.0, every=2)
    refusals = w.supervisor.reset(w.now)
    assert (refusals == []) is cleared, refusals


@pytest.mark.parametrize("sensor_rate_hz", [0.0, -50.0, math.nan, math.inf])
def test_a_sensor_rate_that_is_no_rate_is_refused(sensor_rate_hz: float) -> None:
    with pytest.raises(ValueError, match="positive number of samples/s"):
        Watched(sensor_rate_hz)


def test_lost_samples_are_a_silence_a_sample_clock_running_ahead_is_a_time_jump() -> None:
    lost = Watched()
    lost.feed(3.0)
    lost.now += 0.15  # samples lost on the line: both clocks move on together
    assert lost.watch.observe(Sample(lost.now, (0.0, 0.0, GRAVITY_MPS2), (0.0, 1.0, 0.0)),
                              lost.now)
    assert lost.kinds() == [FaultKind.SENSOR_SILENT]
    jumped = Watched()
    jumped.feed(3.0)
    ahead = Sample(jumped.now + 0.5, (0.0, 0.0, GRAVITY_MPS2), (0.0, 1.0, 0.0))
    jumped.now += 0.01
    jumped.watch.observe(ahead, jumped.now)
    assert jumped.kinds() == [FaultKind.TIME_JUMP]


def test_a_stall_in_the_first_seconds_is_a_silence_not_a_sensor_too_slow() -> None:
    """The rate judged on the first seconds must not take a stall inside them for a slow
    sensor (that fault is for good: no reset clears it)."""
    w = Watched()
    w.feed(0.3)
    w.feed(1.5, every=150)  # one sample, then nothing for 1.49 s
    w.feed(4.0)
    assert w.kinds() == [FaultKind.SENSOR_SILENT]
    assert w.supervisor.reset(w.now) == []


def _recordings() -> list[tuple[Path, str]]:
    files = [BUNDLED_WALK, *sorted((SHARED / "gait").glob("*_imu.csv")),
             *sorted((SHARED / "exercise").glob("*_imu.csv"))]
    return [(path, foot) for path in files for foot in ("left", "right")]


@pytest.mark.parametrize(("path", "foot"), _recordings(),
                         ids=lambda value: value.name if isinstance(value, Path) else value)
def test_real_recordings_are_believed_in_full(path: Path, foot: str) -> None:
    """Heel strikes saturate walk 1's accelerometer for a sample and turn the gyro by up to
    940 °/s between samples: none of it may be taken for a lying sensor."""
    samples = load_recording(path, foot).samples()
    mode = "exercise" if "exercise" in path.parts else "gait"
    log = MemoryLog()
    supervisor = SafetySupervisor(InMemoryStimulator(lambda: 0.0), config(), log)
    watch = SensorWatch(supervisor, load_protocol(GAIT).sensor_limits() if mode == "gait"
                        else SensorLimits(min_rate_hz=25.0), log=log)
    watch.start(samples[0].t_s)
    verdicts = [watch.observe(s, s.t_s) for s in samples]
    assert all(verdicts) and watch.rejected_samples == 0
    assert log.faults == []


def swapped_byte_figures(trials: int = 3000, seed: int = 11) -> dict[str, int]:
    """Swap two different data bytes in one packet of a real 100 Hz walk, many times over,
    and count what the driver's slow-field check and the watch's jump check reject."""
    walk = load_walk(BUNDLED_WALK, "left", RATE_HZ)
    rng = random.Random(seed)
    counts = dict.fromkeys(("tried", "wrong_values", "rejected_by_driver",
                            "rejected_by_watch", "accepted_wrong", "accepted_wrong_10dps",
                            "accepted_wrong_100dps"), 0)
    for _ in range(trials):
        k = rng.randrange(30, len(walk) - 1)
        stream = bytearray(b"".join(packets(s) for s in walk[k - 30:k + 1]))
        start = 30 * 3 * wm.PACKET_BYTES + rng.randrange(3) * wm.PACKET_BYTES
        pairs = [(i, j) for i in range(2, 10) for j in range(i + 1, 10)
                 if stream[start + i] != stream[start + j]]
        i, j = rng.choice(pairs)
        clean = bytes(stream)
        stream[start + i], stream[start + j] = stream[start + j], stream[start + i]
        counts["tried"] += 1
        truth = _samples(clean)[-1]
        assembler = SampleAssembler()
        got = _samples(bytes(stream), assembler)
        if len(got) < 31:
            counts["rejected_by_driver"] += 1
            continue
        if got[-1] == truth:
            continue  # the swap only touched the angle or the temperature
        counts["wrong_values"] += 1
        supervisor = SafetySupervisor(InMemoryStimulator(lambda: 0.0), config(), MemoryLog())
        watch = SensorWatch(supervisor, SensorLimits())
        if not all(watch.observe(s, s.t_s) for s in got):
            counts["rejected_by_watch"] += 1
            continue
        counts["accepted_wrong"] += 1
        error_dps = max(abs(a - b) for a, b in zip(got[-1].gyro_dps, truth.gyro_dps,
                                                     strict=True))
        counts["accepted_wrong_10dps"] += error_dps > 10.0
        counts["accepted_wrong_100dps"] += error_dps > 100.0
    return counts


def _samples(data: bytes, assembler: SampleAssembler | None = None) -> list[Sample]:
    """The stream as the driver groups it, stamped 10 ms apart."""
    assembler = assembler or SampleAssembler()
    groups = [g for p in wm.Decoder().feed(data) if (g := assembler.add(p)) is not None]
    return [Sample(n / RATE_HZ, tuple(a * GRAVITY_MPS2 for a in acc), gyro, angle)  # type: ignore[arg-type]
            for n, (acc, gyro, angle) in enumerate(groups)]


def test_swapped_bytes_are_caught_where_the_checksum_cannot_see_them() -> None:
    clean = load_walk(BUNDLED_WALK, "left", RATE_HZ)
    assembler = SampleAssembler()
    assert len(_samples(b"".join(packets(s) for s in clean), assembler)) == len(clean)
    assert assembler.rejected_packets == 0, "nothing rejected on a clean stream"
    figures = swapped_byte_figures()
    print("swapped bytes:", figures)
    caught = figures["rejected_by_driver"] + figures["rejected_by_watch"]
    assert figures["rejected_by_driver"] > 0.2 * figures["tried"]
    assert figures["rejected_by_watch"] > 0
    assert caught + figures["accepted_wrong"] <= figures["tried"]


# -- an in-process session on a thinned walk ----------------------------------------------

def test_a_session_on_a_thinned_stream_faults_and_the_record_says_so(tmp_path: Path) -> None:
    samples = load_recording(BUNDLED_WALK, "left").samples()
    thinned = [s for k, s in enumerate(samples) if s.t_s - samples[0].t_s < 10.0 or k % 5 == 0]
    db = tmp_path / "record.sqlite"
    summary = build_simulated_session(load_protocol(GAIT), thinned, db,
                                      source="thinned").runner().run()
    assert summary.status == "faulted"
    kinds = [f["kind"] for f in summary.faults]
    assert kinds[0] == FaultKind.SENSOR_DEGRADED.value, summary.faults
    fault_s = summary.faults[0]["t_s"]
    assert isinstance(fault_s, float) and 10.0 < fault_s - samples[0].t_s < 12.5
    recorded = read_rows(db, "SELECT t_s, kind FROM faults")
    assert ("sensor_degraded" in [kind for _, kind in recorded])
    after = read_rows(db, "SELECT MAX(amplitude_ma) FROM commands WHERE t_s > ?", (fault_s,))
    assert after[0][0] in (None, 0.0)


# -- the real drivers against fes-sim -------------------------------------------------------

def test_fes_run_refuses_an_imu_too_slow_for_the_protocol(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    with running_simulator(tmp_path, *SIM_ARGS, "--imu-rate", "20") as sim:
        done = subprocess.run(fes_run(sim, GAIT, db, "--duration", "5"),
                              check=False, capture_output=True, text=True, timeout=60)
        delivered = sim.delivered()
    assert done.returncode == 2, done.stdout + done.stderr
    streams = re.search(r"the IMU streams (\d+) usable samples/s", done.stderr)
    assert streams and int(streams[1]) <= 25, done.stderr
    assert "needs at least 50" in done.stderr
    assert "Traceback" not in done.stderr
    assert [e for e in delivered if e["current_ma"] > 0] == []


@pytest.mark.parametrize(("command", "kind", "detail"), [
    ("imu rate 30", "sensor_degraded", "usable samples/s"),
    ("imu corrupt 0.35", "sensor_degraded", "usable samples/s"),
    ("imu saturate", "implausible_value", "end of the sensor's range"),
])
def test_a_degraded_or_lying_imu_on_the_wire_stops_the_output(
        rig: Rig, command: str, kind: str, detail: str) -> None:  # noqa: F811
    wait_for(lambda: _at_plateau_unfaulted(rig), timeout_s=WAIT_S)
    injected_s = time.monotonic()
    rig.sim.command(command)

    def latched() -> list[tuple[float, str, str]]:
        return [f for f in rig.faults() if f[1] == kind and f[0] >= injected_s]

    _, _, found = wait_for(latched, timeout_s=WAIT_S)[0]
    assert detail in found
    first_fault_s = min(t for t, _, _ in rig.faults() if t >= injected_s)
    changes = wait_for(lambda: [c for c in output_changes(rig.sim) if c[0] >= injected_s
                                and c[1] == 0], timeout_s=WAIT_S)
    assert changes[0][0] <= first_fault_s + OFF_WITHIN_S, (changes[0], first_fault_s)
    assert rig.device_session.session.supervisor.output_ma(1) == 0.0


def _at_plateau_unfaulted(rig: Rig) -> bool:  # noqa: F811
    """At full output with nothing latched; a fault the loaded machine caused before the
    injection (a late first sample) is reset, so the injection is what is tested."""
    if rig.device_session.session.supervisor.latched:
        rig.runner.reset_faults()
        return False
    return at_plateau(rig.sim)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    with running_simulator(tmp_path, *SIM_ARGS) as process:
        yield process


def test_the_driver_drops_packets_with_swapped_bytes(sim: SimProcess,
                                                     imu: WitMotionImu) -> None:
    wait_for(imu.read)
    sim.command("imu swap 0.3")
    wait_for(lambda: imu.assembler.rejected_packets >= 20, timeout_s=WAIT_S)
    sim.command("imu ok")
    wait_for(lambda: trusted_samples(imu), timeout_s=WAIT_S)  # the stream goes on


def trusted_samples(imu: WitMotionImu) -> list[Sample]:
    """What the driver reads, or nothing while it says the line damages its packets."""
    try:
        return imu.read()
    except SensorError as exc:
        assert "cannot be trusted" in str(exc)
        return []


def test_the_rate_a_sensor_sends_counts_the_packets_damaged_on_the_line(
        sim: SimProcess) -> None:
    """30 % of the packets damaged leaves about half the samples usable; the rate sent,
    which a degraded stream must come back near to be cleared, is not taken down with them."""
    sim.command("imu corrupt 0.3")
    imu = WitMotionImu(sim.imu)
    try:
        usable_hz = imu.measured_rate_hz(1.0, WAIT_S)
        sent_hz = imu.measured_rate_hz(1.0, WAIT_S, counting_damaged=True)
    finally:
        imu.close()
    print(f"usable {usable_hz:.0f}/s, sent {sent_hz:.0f}/s")
    assert usable_hz < 0.7 * RATE_HZ < 0.9 * RATE_HZ < sent_hz
