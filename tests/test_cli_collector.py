"""What `fes` changes in its own process to start faster, and that it is undone in time:
the garbage collector is off only while a command sets up (a session always runs with it
on), and OpenBLAS gets one thread unless the user chose otherwise."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from controller.cli import EXIT_BAD_INPUT, EXIT_OK, main
from controller.runner import SessionRunner


def test_a_session_runs_with_the_collector_on(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    start = SessionRunner.start

    def noting_start(runner: SessionRunner) -> None:
        seen.append(gc.isenabled())
        start(runner)

    monkeypatch.setattr(SessionRunner, "start", noting_start)
    assert main(["simulate", "--duration", "0.2", "--db", str(tmp_path / "r.sqlite")]) == EXIT_OK
    assert seen == [True]
    assert gc.isenabled()


def test_a_refused_command_leaves_the_collector_on(tmp_path: Path) -> None:
    code = main(["simulate", "--protocol", str(tmp_path / "missing.toml"), "--db",
                 str(tmp_path / "r.sqlite")])
    assert code == EXIT_BAD_INPUT
    assert gc.isenabled()


@pytest.mark.parametrize(("given", "kept"), [(None, "1"), ("3", "3")])
def test_openblas_threads_default_to_one_and_a_users_choice_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str | None, kept: str) -> None:
    if given is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", given)
    assert main(["protocol", "list"]) == EXIT_OK
    assert os.environ["OPENBLAS_NUM_THREADS"] == kept
