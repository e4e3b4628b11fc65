"""The compiled hot path: the install compiled it, and an edited source is never shadowed
by its older compiled copy (controller/compiled_modules.py)."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from controller import compiled_modules
from controller.compiled_modules import COMPILED_MODULES

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def test_the_install_compiled_the_hot_path() -> None:
    """A failed compilation is only a warning in pip's output; it halves the throughput."""
    if os.environ.get("FES_PURE_PYTHON") == "1":
        pytest.skip("installed with FES_PURE_PYTHON=1")
    if "changed since" in compiled_modules.COMPILED_STATE:
        pytest.skip(f"a source was edited after the install: {compiled_modules.COMPILED_STATE}")
    assert compiled_modules.COMPILED, compiled_modules.COMPILED_STATE
    import controller.safety
    assert Path(controller.safety.__file__).suffix != ".py"


def fake_install(root: Path, compiled: bool = True) -> None:
    """A checkout whose every compiled module has a source saying so and a 'compiled' copy
    that cannot load: importing one proves which of the two Python chose. ``compiled``:
    the library and the checksums of what it was built from are there too."""
    (root / "controller").mkdir()
    shutil.copy(ROOT / "controller" / "compiled_modules.py", root / "controller")
    shutil.copy(ROOT / "controller" / "__init__.py", root / "controller")
    checksums = {}
    for module in COMPILED_MODULES:
        source = root.joinpath(*module.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        init = source.parent / "__init__.py"
        if not init.exists():
            init.write_text("")
        source.write_text("FROM = 'source'\n")
        source.with_suffix(SUFFIX).write_bytes(b"not a library")
        checksums[module] = zlib.crc32(source.read_bytes())
    if compiled:
        (root / "controller" / ("compiled__mypyc" + SUFFIX)).write_bytes(b"not a library")
        (root / "controller" / "compiled_sources.json").write_text(json.dumps(checksums))


def imported_from(root: Path, module: str) -> tuple[str, str]:
    """What the guard said, and where ``module`` came from ('source', or the error)."""
    code = ("import controller.compiled_modules as c\nprint(c.COMPILED_STATE, flush=True)\n"
            f"import {module} as m\nprint(m.FROM)")
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, timeout=60, check=False,
                            env={**os.environ, "PYTHONPATH": str(root)})
    lines = result.stdout.splitlines()
    state = lines[0] if lines else result.stderr
    return state, lines[1] if len(lines) > 1 else result.stderr.strip().splitlines()[-1]


def test_an_edited_source_is_imported_from_source_with_its_whole_group(
        tmp_path: Path) -> None:
    fake_install(tmp_path)
    (tmp_path / "controller" / "safety.py").write_text("FROM = 'source'  # edited\n")
    state, origin = imported_from(tmp_path, "controller.safety")
    assert "changed since" in state and "controller.safety" in state
    assert origin == "source"
    assert imported_from(tmp_path, "simulator.inmemory")[1] == "source"


def test_the_compiled_library_is_imported_while_every_source_is_as_compiled(
        tmp_path: Path) -> None:
    """Whatever the files' times: an installed wheel's are the order it was unpacked."""
    fake_install(tmp_path)
    os.utime(tmp_path / "controller" / ("compiled__mypyc" + SUFFIX), (1e9, 1e9))
    state, origin = imported_from(tmp_path, "controller.safety")
    assert "compiled with mypyc" in state
    assert "ImportError" in origin, "the (unloadable) compiled copy was chosen"


@pytest.mark.parametrize("missing", ["compiled__mypyc" + SUFFIX, "compiled_sources.json"])
def test_compiled_copies_left_without_their_library_or_checksums_never_load(
        tmp_path: Path, missing: str) -> None:
    """A group library that failed to build, or a pure install (FES_PURE_PYTHON=1) over
    an earlier compiled one: the modules' compiled copies are still beside the sources."""
    fake_install(tmp_path)
    (tmp_path / "controller" / missing).unlink()
    state, origin = imported_from(tmp_path, "controller.safety")
    assert "installed without mypyc" in state
    assert origin == "source"
