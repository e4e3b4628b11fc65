"""Fuzz every byte decoder and file loader: escaped exceptions, memory, damaged packets.

Targets (what bytes from outside the program meet first):

* ``witmotion``: the WitMotion stream decoder (what the IMU driver reads);
* ``witmotion_config``: the sensor's side, finding ``FF AA`` commands (what the simulator hears);
* ``sciencemode``: the ScienceMode 2 frame decoder and message parser;
* ``sm_host``: the controller's conversation fed device answers (:class:`ScienceModeHost`);
* ``sm_device``: the simulated RehaStim 2 fed controller commands (:class:`RehaStimDevice`);
* ``protocol``: the protocol TOML loader; ``calibration``: the calibration TOML loader;
  ``recording``: the CSV recording loader and ``fes import``'s check.

Three engines: our own mutator (random bytes, and valid inputs with bit flips, byte swaps,
truncations, insertions, deletions, splices and, for text, hostile tokens), hypothesis
(structured values: a valid protocol or calibration with one field replaced by any TOML
value; CSV tables of hostile cells) and, where it is installed, atheris (coverage-guided,
one subprocess per target).

An *escaped* exception is anything but the target's documented refusal (ProtocolError,
CalibrationFileError, RecordingFormatError, StimulatorError from the host's check); a byte
decoder documents none, it counts and resyncs. A decoder's buffer growing past one frame,
or a result that depends on how the bytes were chunked, is counted as escaped too.

*Damaged packets*: one valid packet in a stream of valid ones gets exactly one mutation;
the decode either drops it (rejected), still yields the original packets (harmless, e.g.
a byte inserted before a header) or yields a packet that was never sent (accepted with
wrong values). The same for the IMU driver's *samples*: one packet of a real 100 Hz walk
mutated once, decoded and grouped as the driver does (with its checks on what the packets
carry); a sample accepted with wrong values is also counted by its gyro error.

    python benchmarks/fuzz.py [--quick] [--json FILE] [--seed N] [--engines own,hypothesis,atheris]
                              [--targets NAME,...] [--scale X]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Decode = Callable[[bytes], list[Any]]
"""Feeds bytes to a fresh decoder; the list of what it decoded (for comparisons)."""

MUTATIONS = ("bit_flip", "set_byte", "byte_swap", "adjacent_swap", "truncate", "insert",
             "delete")
HOSTILE_TOKENS = ("nan", "inf", "-inf", "1e400", "-1e400", "9" * 400, "-" + "9" * 30, "0",
                  "-0", "true", '"x"', "[]", "{}", "1979-05-27T07:32:00Z", "[" * 3000,
                  "{a=" * 600, "\x00", "\ud800", "1_0", "0x7f", '""""""', "'''", ",", "\n",
                  "\r", ";", "#")
INTERESTING_BYTES = (0x00, 0x0A, 0x0F, 0x50, 0x51, 0x52, 0x53, 0x55, 0x7F, 0x80, 0x81,
                     0xAA, 0xF0, 0xFF)


def rss_mb() -> float:
    """Resident memory now (not the peak), from /proc."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- mutation ----------------------------------------------------------------------------------


def mutate_once(rng: random.Random, data: bytes, kind: str) -> bytes:
    """``data`` with one mutation of ``kind`` (a swap of two equal bytes changes nothing)."""
    b = bytearray(data)
    if not b:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
    i = rng.randrange(len(b))
    if kind == "bit_flip":
        b[i] ^= 1 << rng.randrange(8)
    elif kind == "set_byte":
        b[i] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
    elif kind == "byte_swap":
        j = rng.randrange(len(b))
        b[i], b[j] = b[j], b[i]
    elif kind == "adjacent_swap" and len(b) > 1:
        i = min(i, len(b) - 2)
        b[i], b[i + 1] = b[i + 1], b[i]
    elif kind == "truncate":
        del b[i:]
    elif kind == "insert":
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
    elif kind == "delete":
        del b[i:i + rng.randrange(1, 5)]
    return bytes(b)


def mutate_text(rng: random.Random, data: bytes) -> bytes:
    """A hostile token in place of a word, number or punctuation of a text file."""
    text = data.decode("utf-8", "surrogateescape")
    spans = [m.span() for m in re.finditer(r"[A-Za-z0-9_.+-]+|[\[\]{}=\",]", text)]
    if not spans:
        return data
    start, end = rng.choice(spans)
    token = rng.choice(HOSTILE_TOKENS)
    return (text[:start] + token + text[end:]).encode("utf-8", "surrogatepass")


def fuzz_input(rng: random.Random, seeds: Sequence[bytes], text: bool) -> bytes:
    """Random bytes now and then; mostly a seed with a few stacked mutations or a splice."""
    roll = rng.random()
    if roll < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 96)))
    if roll < 0.25:
        return bytes(rng.choice(INTERESTING_BYTES) for _ in range(rng.randrange(0, 96)))
    data = rng.choice(seeds)
    if roll < 0.35:
        other = rng.choice(seeds)
        data = data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]
    for _ in range(rng.randrange(1, 7)):
        if text and rng.random() < 0.5:
            data = mutate_text(rng, data)
        else:
            data = mutate_once(rng, data, rng.choice(MUTATIONS))
    return data


# -- targets -----------------------------------------------------------------------------------


class Invariant(Exception):
    """A decoder broke one of its own promises (bounded buffer, chunking-independent)."""


@dataclass
class Target:
    name: str
    what: str
    run: Callable[[bytes], None]
    """Feeds one input; raises only the documented refusals (or an escape)."""
    documented: tuple[type[BaseException], ...]
    seeds: list[bytes]
    text: bool = False
    decode: Decode | None = None
    """For packet targets: the decoded values, to count damaged packets accepted."""
    packets: list[bytes] = field(default_factory=list)
    """Valid single packets for the damaged-packet count."""
    weight: float = 1.0
    """Share of the inputs (the slow file loaders get fewer)."""


def _chunked(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(3, len(data) - 1))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def stream_target(name: str, what: str, make: Callable[[], Any], limit: int,
                  seeds: list[bytes], packets: list[bytes]) -> Target:
    """A sans-I/O stream decoder: never raises, its buffer stays under ``limit`` bytes, and
    the result does not depend on how the bytes arrive."""
    chunk_rng = random.Random(0)

    def decode(data: bytes) -> list[Any]:
        return list(make().feed(data))

    def run(data: bytes) -> None:
        whole = make()
        out = whole.feed(data)
        pending = len(whole._buffer)  # every decoder's one buffer (not all expose its size)
        if pending > limit:
            raise Invariant(f"buffer holds {pending} bytes (limit {limit})")
        pieces = make()
        chunked = [item for chunk in _chunked(chunk_rng, data) for item in pieces.feed(chunk)]
        if chunked != out:
            raise Invariant("decoded differently when the bytes came in pieces")

    return Target(name, what, run, (), seeds, decode=decode, packets=packets)


def witmotion_targets() -> list[Target]:
    from controller.devices import witmotion as wm

    rng = random.Random(1)
    packets = []
    for _ in range(40):
        packets.append(wm.encode(wm.Acceleration(
            (rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(-1, 3)), rng.uniform(20, 40))))
        packets.append(wm.encode(wm.AngularVelocity(
            (rng.uniform(-500, 500), rng.uniform(-500, 500), rng.uniform(-500, 500)),
            rng.uniform(20, 40))))
        packets.append(wm.encode(wm.Angle(
            (rng.uniform(-180, 180), rng.uniform(-90, 90), rng.uniform(-180, 180)),
            rng.randrange(65536))))
    for kind in (0x50, 0x54, 0x59):
        body = bytes((wm.HEADER, kind)) + bytes(rng.randrange(256) for _ in range(8))
        packets.append(body + bytes((wm.checksum(body),)))
    seeds = [b"".join(packets[i:i + rng.randrange(1, 7)]) for i in range(len(packets))]
    configs = [wm.encode_config(wm.ConfigCommand(rng.choice(list(wm.Register)),
                                                 rng.randrange(65536))) for _ in range(40)]
    config_seeds = [b"".join(configs[i:i + rng.randrange(1, 5)]) for i in range(len(configs))]
    return [
        stream_target("witmotion", "WitMotion stream decoder (IMU -> controller)",
                      wm.Decoder, wm.PACKET_BYTES - 1, seeds, packets),
        stream_target("witmotion_config", "WitMotion config decoder (host -> simulated IMU)",
                      wm.ConfigDecoder, wm.CONFIG_BYTES - 1, config_seeds, configs),
    ]


def _sm_frames() -> tuple[list[bytes], list[bytes]]:
    """Valid frames the device sends, and valid frames the controller sends."""
    from controller.devices import sciencemode as sm

    rng = random.Random(2)
    device: list[bytes] = []
    host: list[bytes] = []
    for number in range(0, 256, 7):
        device += [sm.encode(message, number) for message in (
            sm.Init(), sm.UnknownCommandAck(), sm.StimulationError(-2),
            sm.GetStimulationModeAck(0, 1),
            sm.Ack(sm.Command.INIT_CHANNEL_LIST_MODE_ACK, rng.choice([0, -1, -2, -3])),
            sm.Ack(sm.Command.START_CHANNEL_LIST_MODE_ACK, rng.choice([0, -2, -8])),
            sm.Ack(sm.Command.STOP_CHANNEL_LIST_MODE_ACK), sm.Ack(sm.Command.SINGLE_PULSE_ACK))]
        channels = tuple(sorted(rng.sample(range(1, 9), rng.randrange(1, 9))))
        host += [sm.encode(message, number) for message in (
            sm.InitAck(), sm.Watchdog(), sm.GetStimulationMode(), sm.StopChannelListMode(),
            sm.InitChannelListMode(channels, rng.choice([10.0, 28.5, 33.0, 1025.0])),
            sm.StartChannelListMode(tuple(
                sm.ChannelPulse(rng.randrange(20, 501), rng.randrange(0, 127, 2))
                for _ in channels)),
            sm.SinglePulse(rng.randrange(1, 9), rng.randrange(20, 501), rng.randrange(0, 127)))]
    return device, host


def sciencemode_targets() -> list[Target]:
    from controller.devices import sciencemode as sm
    from controller.devices.base import ChannelSetup, StimulatorError
    from controller.devices.sciencemode_host import ScienceModeHost
    from simulator.pty_rehastim import RehaStimDevice
    from simulator.rehastim_model import RehaStimModel

    device_frames, host_frames = _sm_frames()
    rng = random.Random(3)

    def streams(frames: list[bytes]) -> list[bytes]:
        return [b"".join(rng.sample(frames, rng.randrange(1, 5))) for _ in range(60)]

    init = sm.encode(sm.Init(), 0)

    def host_run(data: bytes) -> None:
        host = ScienceModeHost()
        host.receive_data(init, 0.0)
        host.accept_device(0.0)
        host.configure([ChannelSetup(1, 300), ChannelSetup(2, 250)], 35.0, 0.0)
        host.update({1: 20.0, 2: 10.0}, 0.01)
        host.receive_data(data, 0.02)
        host.keep_alive(0.6)
        try:
            host.check(0.05)
            host.update({1: 30.0}, 0.06)
        except StimulatorError:
            pass
        host.data_to_send()

    connect = sm.encode(sm.InitAck(), 0)

    def device_run(data: bytes) -> None:
        device = RehaStimDevice(RehaStimModel())
        device.outgoing(0.0)
        device.receive(connect, 0.0)
        device.receive(data, 0.01)
        device.outgoing(0.5)
        if device.model.is_delivering and any(
                current > sm.MAX_CURRENT_MA for current, _ in device.model.output.values()):
            raise Invariant("the simulated device delivers more than its maximum current")

    stream = stream_target("sciencemode", "ScienceMode 2 frame decoder and parser",
                           sm.Decoder, sm.MAX_FRAME_BYTES, streams(device_frames + host_frames),
                           device_frames + host_frames)
    return [
        stream,
        Target("sm_host", "ScienceMode 2 host fed device answers (controller side)",
               host_run, (StimulatorError,), streams(device_frames)),
        Target("sm_device", "simulated RehaStim 2 fed controller commands", device_run, (),
               streams(host_frames)),
    ]


class _Files:
    """One scratch file per loader, rewritten for every input (in memory where possible)."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.folder = Path(tempfile.mkdtemp(prefix="fes-fuzz-", dir=base))

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path


def file_targets(files: _Files) -> list[Target]:
    from controller.detect.calibration import GaitCalibration
    from controller.detect.calibration_file import CalibrationFileError, load_calibration
    from controller.devices.recording import RecordingFormatError, load_recording
    from controller.exchange import import_recording, write_recording
    from protocols.loader import ProtocolError, library_protocols, load_protocol, parse_protocol

    protocol_seeds = [path.read_bytes() for path in library_protocols()]

    def protocol_run(data: bytes) -> None:
        if data[:1] == b"\x01":
            load_protocol(files.write("protocol.toml", data))
        else:
            parse_protocol(data.decode("utf-8", "replace"), "fuzz.toml")

    calibration_path = files.folder / "seed_calibration.toml"
    from controller.detect.calibration_file import save_calibration

    save_calibration(calibration_path, GaitCalibration((0.0, 1.0, 0.0), 250.0, 120.0, 25.0,
                                                       1.1), "fuzz seed")
    calibration_seeds = [calibration_path.read_bytes()]

    def calibration_run(data: bytes) -> None:
        load_calibration(files.write("calibration.toml", data))

    walk = (ROOT / "simulator" / "data" / "walk1_2x20m_foot_imu.csv").read_bytes().splitlines(
        keepends=True)
    one_sensor = files.folder / "one_sensor.csv"
    write_recording(load_recording(ROOT / "simulator" / "data" / "walk1_2x20m_foot_imu.csv",
                                   "left").samples()[:400], one_sensor)
    one = one_sensor.read_bytes().splitlines(keepends=True)
    recording_seeds = [b"".join(walk[:40]), b"".join(walk[:3]), b"".join(one[:40]),
                       b"".join(one[:3]), b"".join(one[:400])]

    imu_beside_events = files.write("fuzz_foot_imu.csv", recording_seeds[0])
    events_path = ROOT / "simulator" / "data" / "walk1_2x20m_reference_events.csv"
    events_seeds = [events_path.read_bytes(), b"".join(events_path.read_bytes().splitlines(
        keepends=True)[:8])]

    def events_run(data: bytes) -> None:
        files.write("fuzz_reference_events.csv", data)
        load_recording(imu_beside_events, "right" if len(data) % 2 else "left")

    def recording_run(data: bytes) -> None:
        path = files.write("recording.csv", data)
        foot = "right" if data[-1:] == b"\n" and len(data) % 2 else "left"
        if len(data) % 3:
            load_recording(path, foot)
        else:
            import_recording(path, foot=foot)

    return [
        Target("protocol", "protocol TOML loader", protocol_run, (ProtocolError,),
               protocol_seeds, text=True, weight=0.15),
        Target("calibration", "calibration TOML loader", calibration_run,
               (CalibrationFileError,), calibration_seeds, text=True, weight=0.1),
        Target("recording", "CSV recording loader and import check", recording_run,
               (RecordingFormatError,), recording_seeds, text=True, weight=0.04),
        Target("recording_events", "reference events beside a recording",
               events_run, (RecordingFormatError,), events_seeds, text=True, weight=0.04),
    ]


def all_targets(files: _Files) -> list[Target]:
    return [*witmotion_targets(), *sciencemode_targets(), *file_targets(files)]


# -- bookkeeping -------------------------------------------------------------------------------


@dataclass
class Tally:
    target: str
    engine: str
    inputs: int = 0
    escaped: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    """Escape signature -> the first input that raised it (repr, for a regression test)."""
    seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0

    def feed(self, target: Target, data: bytes) -> None:
        self.inputs += 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                target.run(data)
            except target.documented:
                pass
            except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
                self.record(exc, data)
        for warning in caught[:1]:
            self.record(warning.category(f"printed: {warning.message}"), data,
                        f"{Path(warning.filename).name}:{warning.lineno}")

    def record(self, exc: BaseException, data: bytes, where: str = "?") -> None:
        """One escape (or a warning printed to the user, which is no clear message either)."""
        self.escaped += 1
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else where
        signature = f"{type(exc).__name__} at {where}: {str(exc)[:80]}"
        self.kinds[signature] += 1
        self.examples.setdefault(signature, repr(data[:400]))

    def row(self) -> dict[str, Any]:
        return {"target": self.target, "engine": self.engine, "inputs": self.inputs,
                "escaped": self.escaped, "escapes": dict(self.kinds),
                "examples": self.examples, "seconds": round(self.seconds, 2),
                "inputs_per_s": round(self.inputs / self.seconds) if self.seconds else None,
                "rss_before_mb": round(self.rss_before_mb, 1),
                "rss_after_mb": round(self.rss_after_mb, 1)}


def run_own(target: Target, count: int, seed: int) -> Tally:
    rng = random.Random(seed)
    tally = Tally(target.name, "own", rss_before_mb=rss_mb())
    start = time.perf_counter()
    for _ in range(count):
        tally.feed(target, fuzz_input(rng, target.seeds, target.text))
    tally.seconds = time.perf_counter() - start
    tally.rss_after_mb = rss_mb()
    return tally


def damaged_packets(target: Target, per_kind: int, seed: int) -> dict[str, dict[str, int]]:
    """Per mutation kind: one valid packet mutated once between two valid ones."""
    assert target.decode is not None
    rng = random.Random(seed)
    table: dict[str, dict[str, int]] = {}
    for kind in MUTATIONS:
        counts = Counter[str]()
        for _ in range(per_kind):
            before, packet, after = (rng.choice(target.packets) for _ in range(3))
            damaged = mutate_once(rng, packet, kind)
            if damaged == packet:
                continue
            sent = Counter(map(repr, target.decode(before + packet + after)))
            got = Counter(map(repr, target.decode(before + damaged + after)))
            counts["tried"] += 1
            if got - sent:
                counts["accepted_wrong"] += 1
            elif got == sent:
                counts["unchanged"] += 1
            else:
                counts["rejected"] += 1
        table[kind] = {key: counts[key] for key in
                       ("tried", "rejected", "unchanged", "accepted_wrong")}
    return table


DRIVER_CONTEXT_SAMPLES = 8
"""Clean samples before the damaged one (the driver's checks compare with the last)."""
GYRO_ERRORS_DPS = (10.0, 100.0)


def driver_samples(per_kind: int, seed: int) -> dict[str, dict[str, int]]:
    """Per mutation kind: one packet of one sample of a real walk mutated once, the stream
    decoded into samples by the IMU driver's decoder and assembler."""
    from controller.devices import witmotion as wm
    from controller.devices.witmotion_imu import SampleAssembler
    from simulator import BUNDLED_WALK
    from simulator.pty_imu import load_walk, packets

    streams = [packets(s) for s in load_walk(BUNDLED_WALK, "left", 100.0)]
    rng = random.Random(seed)
    size = wm.PACKET_BYTES
    table: dict[str, dict[str, int]] = {}
    for kind in MUTATIONS:
        counts = Counter[str]()
        for _ in range(per_kind):
            k = rng.randrange(DRIVER_CONTEXT_SAMPLES, len(streams) - 2)
            at = size * rng.randrange(3)
            sample = streams[k]
            damaged = mutate_once(rng, sample[at:at + size], kind)
            if damaged == sample[at:at + size]:
                continue
            before = b"".join(streams[k - DRIVER_CONTEXT_SAMPLES:k])
            after = b"".join(streams[k + 1:k + 3])
            sent = SampleAssembler().take(wm.Decoder(), before + sample + after)
            got = SampleAssembler().take(
                wm.Decoder(), before + sample[:at] + damaged + sample[at + size:] + after)
            counts["tried"] += 1
            pairs = {(acc, gyro) for acc, gyro, _ in sent}  # a lost angle is no wrong value
            wrong = [g for g in (Counter(got) - Counter(sent)).elements()
                     if g[2] is not None or (g[0], g[1]) not in pairs]
            if wrong:
                counts["accepted_wrong"] += 1
                error_dps = max(min(max(abs(a - b) for a, b in zip(g[1], s[1], strict=True))
                                    for s in sent) for g in wrong)
                for limit in GYRO_ERRORS_DPS:
                    counts[f"gyro_error_over_{limit:g}_dps"] += error_dps > limit
            elif got == sent:
                counts["unchanged"] += 1
            else:
                counts["rejected"] += 1  # the sample dropped, or kept without its angle
        table[kind] = {key: counts[key] for key in (
            "tried", "rejected", "unchanged", "accepted_wrong",
            *(f"gyro_error_over_{limit:g}_dps" for limit in GYRO_ERRORS_DPS))}
    return table


# -- hypothesis: structured values -------------------------------------------------------------


def run_hypothesis(target: Target, count: int, seed: int) -> Tally | None:
    """A valid document with one value replaced by any TOML value (protocol, calibration),
    or a table of hostile cells (recording); None for targets without a structure."""
    import tomllib

    import tomli_w
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.booleans(), st.integers(), st.integers(min_value=-2**70, max_value=2**70),
        st.floats(), st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.text(max_size=20), st.datetimes(), st.dates())
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=8)
    tally = Tally(target.name, "hypothesis", rss_before_mb=rss_mb())

    if target.name in ("protocol", "calibration"):
        documents = [tomllib.loads(seed_bytes.decode()) for seed_bytes in target.seeds]

        def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            found = [prefix] if prefix else []
            if isinstance(node, dict):
                for key, value in node.items():
                    found += paths(value, (*prefix, key))
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    found += paths(value, (*prefix, index))
            return found

        @st.composite
        def documents_with_one_change(draw: Any) -> bytes:
            document = json.loads(json.dumps(draw(st.sampled_from(documents)), default=str))
            where = draw(st.sampled_from(paths(document)))
            node = document
            for part in where[:-1]:
                node = node[part]
            if draw(st.booleans()) or not isinstance(node, dict):
                node[where[-1]] = draw(values)
            else:
                node[draw(st.text(min_size=1, max_size=12))] = draw(values)
            return tomli_w.dumps(document).encode()

        strategy: Any = documents_with_one_change()
    elif target.name == "recording":
        cells = st.one_of(st.floats().map(repr), st.integers().map(str), st.text(max_size=6),
                          st.just(""), st.sampled_from(["nan", "inf", "1e400", "-0"]))
        headers = st.one_of(
            st.just("time_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,angle_x,angle_y,angle_z"),
            st.just("time_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"),
            st.just("time_s,left_acc_x,left_acc_y,left_acc_z,left_gyr_x,left_gyr_y,left_gyr_z"),
            st.lists(st.sampled_from(["time_s", "acc_x", "gyro_y", "angle_z", "x", ""]),
                     max_size=12).map(",".join))
        strategy = st.builds(
            lambda header, rows: (header + "\n" + "\n".join(",".join(r) for r in rows)).encode(
                "utf-8", "surrogatepass"),
            headers, st.lists(st.lists(cells, max_size=12), max_size=30))
    else:
        return None

    @hseed(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(data: bytes) -> None:
        tally.feed(target, data)

    start = time.perf_counter()
    one()
    tally.seconds = time.perf_counter() - start
    tally.rss_after_mb = rss_mb()
    return tally


# -- atheris: coverage-guided, one subprocess per target ---------------------------------------


def run_atheris(target: Target, count: int, seed: int, tmp: Path) -> Tally | None:
    """None when atheris is not installed."""
    if importlib.util.find_spec("atheris") is None:
        return None
    out = tmp / f"atheris_{target.name}.json"
    corpus = tmp / f"corpus_{target.name}"
    corpus.mkdir(exist_ok=True)
    for index, seed_bytes in enumerate(target.seeds):
        (corpus / f"seed{index}").write_bytes(seed_bytes)
    before = rss_mb()
    result = subprocess.run(
        [sys.executable, __file__, "--atheris-child", target.name, "--count", str(count),
         "--seed", str(seed), "--json", str(out), str(corpus)],
        check=False, capture_output=True, text=True, timeout=3600)
    if not out.exists():
        tally = Tally(target.name, "atheris")
        tally.record(RuntimeError(f"atheris child failed: {result.stderr[-300:]}"), b"")
        return tally
    row = json.loads(out.read_text())
    return Tally(target.name, "atheris", inputs=row["inputs"], escaped=row["escaped"],
                 kinds=Counter(row["escapes"]), examples=row["examples"],
                 seconds=row["seconds"], rss_before_mb=before, rss_after_mb=row["rss_after_mb"])


def atheris_child(name: str, count: int, seed: int, out: Path, corpus: str) -> None:
    """Runs in its own process: libFuzzer owns the loop and exits the process itself, so
    the figures are written when the last input is done."""
    atheris: Any = importlib.import_module("atheris")
    for library in ("numpy", "pydantic", "tomllib", "tomli_w", "csv", "pyarrow"):
        importlib.import_module(library)  # imported before: only our own code is traced
    with atheris.instrument_imports(include=["controller", "protocols", "simulator"]):
        import controller.detect.calibration_file
        import controller.devices.recording
        import controller.devices.sciencemode
        import controller.devices.sciencemode_host
        import controller.devices.witmotion  # noqa: F401
        import protocols.loader  # noqa: F401
        import simulator.pty_rehastim  # noqa: F401
    files = _Files()
    target = next(t for t in all_targets(files) if t.name == name)
    tally = Tally(name, "atheris", rss_before_mb=rss_mb())
    start = time.perf_counter()

    def one(data: bytes) -> None:
        tally.feed(target, data)
        if tally.inputs >= count:
            tally.seconds = time.perf_counter() - start
            tally.rss_after_mb = rss_mb()
            out.write_text(json.dumps(tally.row()))
            shutil.rmtree(files.folder, ignore_errors=True)
            os._exit(0)

    atheris.Setup([sys.argv[0], f"-seed={seed + 1}", f"-runs={count + 1000}",
                   "-max_len=4096", "-rss_limit_mb=4096", corpus], one)
    atheris.Fuzz()


# -- main --------------------------------------------------------------------------------------


BASE_COUNTS = {"own": 160_000, "hypothesis": 6_000, "atheris": 40_000}
"""Inputs per target and engine at scale 1 (a target's weight scales the own share)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fiftieth of the inputs")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engines", default="own,hypothesis,atheris")
    parser.add_argument("--targets", default="", help="comma-separated names (default: all)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--atheris-child", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("corpus", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.atheris_child:
        atheris_child(args.atheris_child, args.count, args.seed, args.json, args.corpus)
        return 0
    if not (math.isfinite(args.scale) and args.scale > 0):
        parser.error("--scale must be a positive number")
    scale = args.scale / (50 if args.quick else 1)
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(BASE_COUNTS)
    if unknown:
        parser.error(f"unknown engine(s) {sorted(unknown)}: own, hypothesis, atheris")

    files = _Files()
    tallies: list[Tally] = []
    damage: dict[str, dict[str, dict[str, int]]] = {}
    try:
        targets = all_targets(files)
        wanted = [t for t in args.targets.split(",") if t]
        if wanted:
            missing = set(wanted) - {t.name for t in targets}
            if missing:
                parser.error(f"unknown target(s) {sorted(missing)}")
            targets = [t for t in targets if t.name in wanted]
        for target in targets:
            for engine in engines:
                count = max(1, round(BASE_COUNTS[engine] * scale *
                                     (target.weight if engine != "hypothesis" else 1)))
                if engine == "own":
                    tally: Tally | None = run_own(target, count, args.seed)
                elif engine == "hypothesis":
                    tally = run_hypothesis(target, count, args.seed)
                else:
                    tally = run_atheris(target, count, args.seed, files.folder)
                    if tally is None:
                        print("atheris is not installed: skipped (pip install atheris)")
                        engines.remove("atheris")
                if tally is not None:
                    tallies.append(tally)
                    print_row(tally)
            if target.decode is not None and "own" in engines:
                damage[target.name] = damaged_packets(target, max(10, round(4000 * scale)),
                                                      args.seed)
            if target.name == "witmotion" and "own" in engines:
                damage["witmotion driver samples"] = driver_samples(
                    max(10, round(4000 * scale)), args.seed)
    finally:
        shutil.rmtree(files.folder, ignore_errors=True)
    report(targets, tallies, damage, args.json)
    return 1 if any(t.escaped for t in tallies) else 0


def print_row(tally: Tally) -> None:
    rate = tally.inputs / tally.seconds if tally.seconds else 0.0
    print(f"  {tally.target:<17} {tally.engine:<10} {tally.inputs:>9} inputs "
          f"{tally.escaped:>6} escaped  {rate:>8.0f}/s  rss {tally.rss_after_mb:.0f} MB",
          flush=True)


def _gyro_errors(row: dict[str, int]) -> str:
    """The counts of wrong samples by gyro error, with their share of the tried ('-' for a
    decoder of packets, not samples)."""
    cells = [(row[key], 100 * row[key] / row["tried"] if row["tried"] else 0.0)
             for limit in GYRO_ERRORS_DPS if (key := f"gyro_error_over_{limit:g}_dps") in row]
    return " / ".join(f"{n} ({share:.1f} %)" for n, share in cells) or "-"


def report(targets: list[Target], tallies: list[Tally],
           damage: dict[str, dict[str, dict[str, int]]], json_path: Path | None) -> None:
    total = sum(t.inputs for t in tallies)
    escaped = sum(t.escaped for t in tallies)
    print()
    print("| target | engine | inputs | escaped | inputs/s | RSS after (MB) |")
    print("|---|---|---:|---:|---:|---:|")
    for t in tallies:
        rate = f"{t.inputs / t.seconds:.0f}" if t.seconds else "-"
        print(f"| {t.target} | {t.engine} | {t.inputs} | {t.escaped} | {rate} | "
              f"{t.rss_after_mb:.0f} |")
    print(f"| **all** | | **{total}** | **{escaped}** | | peak {peak_rss_mb():.0f} |")
    print("; ".join(f"{t.name}: {t.what}" for t in targets))
    for t in tallies:
        for signature, n in t.kinds.most_common():
            print(f"  escaped ({t.target}, {t.engine}) x{n}: {signature}")
            print(f"      first input: {t.examples[signature]}")
    if damage:
        print()
        print("Damaged packets (one mutation of one packet between two valid ones):")
        print("| decoder | mutation | tried | rejected | unchanged | accepted with wrong values "
              "| of them gyro error > 10 / > 100 °/s |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name, table in damage.items():
            for kind, row in table.items():
                share = 100 * row["accepted_wrong"] / row["tried"] if row["tried"] else 0.0
                print(f"| {name} | {kind} | {row['tried']} | {row['rejected']} | "
                      f"{row['unchanged']} | {row['accepted_wrong']} ({share:.1f} %) | "
                      f"{_gyro_errors(row)} |")
    if json_path is not None:
        json_path.write_text(json.dumps({
            "inputs": total, "escaped": escaped, "peak_rss_mb": round(peak_rss_mb(), 1),
            "rows": [t.row() for t in tallies], "damaged_packets": damage}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
