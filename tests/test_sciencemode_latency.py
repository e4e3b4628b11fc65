"""``benchmarks/sciencemode_latency.py``: its figures stand only if every update issued is
paired with the command the simulator heard for it, so the pairing is tested here, and a
short run of both drivers on a real ``fes-sim`` must pair every update."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import sciencemode_latency as bench  # found through the path set above


def run_of(currents_ma: list[int], start_s: float = 10.0) -> bench.Run:
    issued = [bench.Issued(current, start_s + 0.01 * k, start_s + 0.01 * k + 0.001)
              for k, current in enumerate(currents_ma)]
    return bench.Run("ours", bench.Updates(issued, 0.0), "load")


def test_every_update_of_the_ramp_is_a_change_of_one_step() -> None:
    ramp = bench.ramp_ma(200)
    assert min(ramp) == 2 and max(ramp) == bench.RAMP_TOP_MA
    assert all(abs(b - a) == 2 for a, b in itertools.pairwise(ramp))


def test_updates_pair_in_order_with_what_was_heard() -> None:
    currents = bench.ramp_ma(bench.WARMUP_UPDATES + 3)
    run = run_of(currents)
    heard = [(5.0, 8)]  # an earlier client's command, before the run: not paired
    heard += [(u.issued_s + 0.0005 * (k + 1), u.current_ma) for k, u in enumerate(run.issued)]
    latencies = bench.latencies_s(run, heard)
    assert latencies == pytest.approx([0.0005 * (k + 1) for k in range(len(currents))]
                                      [bench.WARMUP_UPDATES:])


def test_a_lost_or_changed_command_gives_no_figure() -> None:
    run = run_of(bench.ramp_ma(bench.WARMUP_UPDATES + 3))
    heard = [(u.issued_s + 0.0005, u.current_ma) for u in run.issued]
    with pytest.raises(bench.UnsoundMatch, match="commands heard"):
        bench.latencies_s(run, heard[:-1])
    changed = heard[:10] + [(heard[10][0], heard[10][1] + 2)] + heard[11:]
    with pytest.raises(bench.UnsoundMatch, match="heard"):
        bench.latencies_s(run, changed)


def test_both_drivers_have_every_update_heard(tmp_path: Path) -> None:
    psm = pytest.importorskip("pysciencemode")
    updates = bench.WARMUP_UPDATES + 150
    failures: list[str] = []
    runs = bench.measure(psm, tmp_path, updates, 0.01, 1, failures)
    table = bench.report(runs, bench.heard_commands(tmp_path / "trace.jsonl"), 0.01)
    assert [run.driver for run in runs] == ["ours", "pysciencemode"]
    assert table["ours"]["updates"] == table["pysciencemode"]["updates"] == 150
