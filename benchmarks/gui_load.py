"""The GUI's frame rate, and whether drawing it changes the control loop's timing.

Runs the same supervised session twice, paced to the wall clock: an exercise on the
synthetic limb streaming at 100 Hz (the stimulator twin, the SQLite record, the full
supervisor), each time in its own session process as the GUI runs it:

* **no GUI**: the session process alone, its output forwarded to nobody;
* **GUI**: the real application window (:class:`gui.main_window.MainWindow`) showing the
  session, its live view plotting the stream at its fixed frame rate.

For each run it prints how late the control ticks ran against their schedule (the wall
time the paced clock set for each tick to the end of that tick: the loop's own work plus
any wait for the processor), median, p99 and max; and for the GUI run, the live view's
redraws per second. DESIGN target: >= 30 fps with no change in control p99.

Qt needs a display: run under ``xvfb-run -a`` for a real X server, or with
``QT_QPA_PLATFORM=offscreen`` (which draws into memory only).

    python benchmarks/gui_load.py [--seconds 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from controller.session_process import SessionProcess, SessionSpec
from gui.main_window import MainWindow
from protocols import load_protocol
from protocols.loader import library_protocols

PROTOCOL = "exercise_seated_dorsiflexion"
"""A long exercise: 3 sets of 10 reps outlast any run of this benchmark."""


def _figures(late_ms: list[float]) -> dict[str, float]:
    late = np.asarray(late_ms)
    return {"ticks": float(len(late)), "median_ms": float(np.median(late)),
            "p99_ms": float(np.percentile(late, 99)), "max_ms": float(late.max())}


def without_gui(seconds: float, db: Path) -> dict[str, float]:
    protocol = load_protocol(next(p for p in library_protocols() if p.stem == PROTOCOL))
    session = SessionProcess(SessionSpec(protocol, db, time_ticks=True))
    session.start()
    time.sleep(seconds)
    session.stop("benchmark")
    session.wait(10.0)
    return _figures(session.tick_late_ms)


def with_gui(seconds: float, db: Path) -> dict[str, float]:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(db)
    window.time_ticks = True
    window.resize(1280, 860)
    window.show()
    window.select_protocol(PROTOCOL)
    window.start_session()
    started_s = time.monotonic()
    frames_at_start = window.live.frames
    QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec()
    fps = (window.live.frames - frames_at_start) / (time.monotonic() - started_s)
    session = window.session
    assert session is not None
    session.stop("benchmark")
    session.wait(10.0)
    window.close()
    return {**_figures(session.tick_late_ms), "fps": fps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path, metavar="FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {"no_gui": without_gui(args.seconds, Path(tmp) / "a.sqlite"),
                   "gui": with_gui(args.seconds, Path(tmp) / "b.sqlite")}
    print(f"100 Hz exercise session, {args.seconds:g} s per run, "
          f"Qt platform {QApplication.platformName()}")
    for name, r in results.items():
        fps = f", live view {r['fps']:.1f} fps" if "fps" in r else ""
        print(f"{name:>7}: {r['ticks']:.0f} ticks late by median {r['median_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms{fps}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
