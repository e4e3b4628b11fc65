"""Session record: write throughput, size on disk per hour of 100 Hz, report and export time.

A real simulated session (the bundled walk resampled to 100 Hz and repeated, on the default
gait protocol) is run once with an observer that keeps every call the record would hear:
samples with the events, phases, commands, steps and notices a session emits alongside.
Those calls are then played straight into :class:`SessionRecord`, ``--sessions`` times into
one record (one patient), and the benchmark prints:

* write throughput: samples per second of wall time, from the record's creation until
  ``on_finish`` has returned and the session's last row is on disk (so the writer thread's
  backlog counts), and whether the record kept up (``problem()`` asked every tick, as the
  session does);
* size on disk per hour of 100 Hz: the record file plus its WAL after a checkpoint, over
  the hours of samples in it;
* report time: ``build_report`` over those sessions (HTML, PDF, PNGs), and export of them
  to CSV and to Parquet.

    python benchmarks/record_throughput.py [--sessions 10] [--minutes 30] [--quick]
                                           [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.session_throughput import long_walk
from controller.assembly import build_simulated_session
from controller.exchange import export_sessions
from controller.observe import SessionObserver
from controller.record import SessionRecord, SqliteSource, list_sessions, read_rows
from controller.report import build_report
from controller.types import Cue, DetectorEvent, Fault, Sample, SessionSummary, Unit
from protocols import Protocol, dump_protocol, load_protocol
from protocols.loader import LIBRARY

RATE_HZ = 100.0
PATIENT = "P-bench"
PROTOCOL = LIBRARY / "peroneal_gait_gyro.toml"


class Capture(SessionObserver):
    """Every call the record hears, in order, to be played into a record later."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.summary: SessionSummary | None = None

    def on_sample(self, sample: Sample) -> None:
        self.calls.append(("on_sample", (sample,)))

    def on_event(self, event: DetectorEvent) -> None:
        self.calls.append(("on_event", (event,)))

    def on_phase(self, t_s: float, phase: str) -> None:
        self.calls.append(("on_phase", (t_s, phase)))

    def on_unit(self, unit: Unit) -> None:
        self.calls.append(("on_unit", (unit,)))

    def on_cue(self, cue: Cue) -> None:
        self.calls.append(("on_cue", (cue,)))

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self.calls.append(("on_command", (t_s, dict(amplitudes_ma))))

    def on_fault(self, fault: Fault) -> None:
        self.calls.append(("on_fault", (fault,)))

    def on_notice(self, t_s: float, kind: str, detail: str) -> None:
        self.calls.append(("on_notice", (t_s, kind, detail)))

    def on_tick(self, t_s: float) -> None:
        self.calls.append(("on_tick", (t_s,)))

    def on_finish(self, summary: SessionSummary) -> None:
        self.summary = summary


def capture_session(protocol: Protocol, minutes: float) -> tuple[Capture, tuple[float, float]]:
    """One unrecorded session's calls, and its control clock (tick, start) in seconds."""
    capture = Capture()
    rig = build_simulated_session(protocol, long_walk(minutes, RATE_HZ), None,
                                  source="benchmark", duration_s=minutes * 60 + 1,
                                  observers=[capture])
    clock = (rig.clock.tick_s, rig.clock.now())
    rig.runner().run()
    return capture, clock


def write_session(capture: Capture, clock: tuple[float, float], protocol: Protocol,
                  db: Path) -> tuple[float, str | None]:
    """Play the captured calls into a new session of ``db``: wall seconds until the
    session's last row is on disk, and the first problem the record reported."""
    assert capture.summary is not None
    started = time.perf_counter()
    record = SessionRecord(db, protocol_name=protocol.name,
                           protocol_toml=dump_protocol(protocol), mode=protocol.mode,
                           sensor="benchmark", stimulator="sim://rehastim2", clock=clock,
                           patient=PATIENT, paced=False)
    problem = None
    for hook, args in capture.calls:
        getattr(record, hook)(*args)
        if hook == "on_tick" and problem is None:
            problem = record.problem()
    record.on_finish(capture.summary)
    while read_rows(db, "SELECT status FROM sessions WHERE id = ?",
                    (record.session_id,))[0][0] == "running":
        time.sleep(0.005)
    return time.perf_counter() - started, problem


def size_on_disk_bytes(db: Path) -> int:
    """The record and its WAL after a checkpoint (what stays on disk between sessions)."""
    with closing(sqlite3.connect(db)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of each session")
    parser.add_argument("--quick", action="store_true", help="3 sessions of 3 minutes")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    sessions, minutes = (3, 3.0) if args.quick else (args.sessions, args.minutes)
    protocol = load_protocol(PROTOCOL)
    capture, clock = capture_session(protocol, minutes)
    samples = sum(hook == "on_sample" for hook, _ in capture.calls)
    others = sum(hook not in ("on_sample", "on_tick") for hook, _ in capture.calls)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "record.sqlite"
        writes = [write_session(capture, clock, protocol, db) for _ in range(sessions)]
        wall_s = np.array([w[0] for w in writes])
        problems = [w[1] for w in writes if w[1] is not None]
        hours = sessions * samples / RATE_HZ / 3600
        size_mb_per_h = size_on_disk_bytes(db) / 1e6 / hours
        source = SqliteSource(db)
        infos = list_sessions(source, patient=PATIENT)
        report_s = timed(lambda: build_report(source, Path(folder) / "report",
                                              patient=PATIENT))
        csv_s = timed(lambda: export_sessions(source, infos, Path(folder) / "csv", fmt="csv"))
        parquet_s = timed(lambda: export_sessions(source, infos, Path(folder) / "parquet",
                                                  fmt="parquet"))
    figures = {
        "sessions": sessions, "minutes_per_session": minutes, "rate_hz": RATE_HZ,
        "samples_per_session": samples, "other_rows_per_session": others,
        "write_samples_per_s_median": float(samples / np.median(wall_s)),
        "write_samples_per_s_min": float(samples / wall_s.max()),
        "record_kept_up": not problems, "record_problems": problems,
        "size_mb_per_hour": size_mb_per_h,
        "report_s": report_s, "export_csv_s": csv_s, "export_parquet_s": parquet_s,
    }
    label = f"{sessions} sessions of {minutes:g} min"
    median, slowest = figures["write_samples_per_s_median"], figures["write_samples_per_s_min"]
    rows = [
        ("session", (f"{samples} samples at {RATE_HZ:g} Hz + {others} other rows "
                     "(events, phases, commands, steps, notices)")),
        ("write throughput", f"{median:,.0f} samples/s median, {slowest:,.0f} slowest"),
        ("record kept up", "yes" if not problems else f"no: {problems[0]}"),
        ("size on disk", (f"{size_mb_per_h:.1f} MB per hour of {RATE_HZ:g} Hz "
                          "(record + WAL after checkpoint)")),
        (f"report, {label}", f"{report_s:.1f} s (build_report: HTML, PDF, PNGs)"),
        (f"export CSV, {label}", f"{csv_s:.1f} s"),
        (f"export Parquet, {label}", f"{parquet_s:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
