"""The record's damage check runs once per file state in a process, not on every open:
the review screen opens the record for every background read, and the check reads the
whole file. A file that changes is checked again."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.assembly.simulated import simulate_walk
from controller.record import RecordOpenError, SqliteSource, list_sessions, read_rows, schema
from protocols import load_protocol
from protocols.loader import LIBRARY
from tests.sim_process import wait_for

GAIT = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Each run of the damage check, by the file's path (the real check still runs)."""
    ran: list[Path] = []
    real = schema.run_quick_check

    def counted(db: sqlite3.Connection) -> str:
        ran.append(Path(db.execute("PRAGMA database_list").fetchone()[2]))
        return real(db)

    monkeypatch.setattr(schema, "run_quick_check", counted)
    yield ran


def settled_record(db: Path) -> None:
    """A recorded session, all of it in the file, and the file left alone long enough that
    a later write shows in its times."""
    assert simulate_walk(GAIT, db, patient="P-001").runner().run().status == "completed"
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    changed_ns = max(db.stat().st_mtime_ns, db.stat().st_ctime_ns)
    wait_for(lambda: time.time_ns() - changed_ns > schema.SETTLED_NS, 5.0)


def test_a_second_open_of_an_unchanged_record_does_not_check_it_again(
        tmp_path: Path, checks: list[Path]) -> None:
    db = tmp_path / "record.sqlite"
    settled_record(db)
    checks.clear()
    for _ in range(3):
        assert len(list_sessions(SqliteSource(db))) == 1
    assert len(checks) == 1 and checks[0].samefile(db)

    settled_record(db)  # a second session: the file changed
    checks.clear()
    assert len(list_sessions(SqliteSource(db))) == 2
    assert len(checks) == 1, "a changed file is checked again"


def test_a_record_damaged_after_its_first_check_is_refused_again(
        tmp_path: Path, checks: list[Path]) -> None:
    db = tmp_path / "record.sqlite"
    settled_record(db)
    checks.clear()
    SqliteSource(db)
    SqliteSource(db)
    assert len(checks) == 1
    page_size = read_rows(db, "PRAGMA page_size")[0][0]
    size_before = db.stat().st_size
    with db.open("r+b") as file:  # in place (same inode, same size), the last page's cell
        file.seek(size_before - page_size + 8)  # pointers: only the full check reads them
        file.write(b"\xa5" * 64)
    assert db.stat().st_size == size_before
    for _ in range(2):  # refused, and refused again: a refusal is never remembered
        with pytest.raises(RecordOpenError, match="damaged"):
            SqliteSource(db)
    assert len(checks) == 3
