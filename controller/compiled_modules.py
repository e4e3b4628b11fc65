"""The modules compiled with mypyc at install time, and the guard that keeps an edited
source from being shadowed by its older compiled copy.

The control loop's hot path (per sample: sensor watch, detector, phase machine, supervisor,
stimulator twin, record) is plain Python calls; compiled with mypyc it runs about twice as
fast (``benchmarks/session_throughput.py`` prints which one ran). ``setup.py`` compiles
:data:`COMPILED_MODULES` into one library, ``controller/compiled__mypyc*.so`` plus a small
extension per module beside its source.

Python prefers an extension module to the source beside it. In an editable install an
edited (or pulled) safety rule would then be silently ignored until the next install, and
tests would pass against the old rule. So ``setup.py`` writes a checksum of every source it
compiled (:data:`CHECKSUMS`), and when any source differs from what was compiled, or the
library or the checksums are missing, the whole group is imported from source: the
modules of one compiled group call each other natively, so they cannot be mixed.
Checksums rather than file times: an installed wheel's files get the time they were
unpacked, in no useful order.

This file is read by ``setup.py`` on its own (not as part of the package): standard
library only.

Not compiled: the data types of ``controller.types`` (compiled frozen dataclasses cannot be
unpickled, and the GUI's session process sends them through a pipe; compiling them gained
nothing measurable), and modules off the hot path.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

COMPILED_MODULES = (
    "controller.clock",
    "controller.sensor_units",
    "controller.sensor_watch",
    "controller.safety",
    "controller.session",
    "controller.machine",
    "controller.gait_control",
    "controller.detect.axis_watch",
    "controller.detect.gait",
    "controller.devices.sciencemode",
    "controller.devices.sciencemode_host",
    "controller.record.writer",
    "simulator.rehastim_model",
    "simulator.pty_rehastim",
    "simulator.inmemory",
    "simulator.motion",
)
GROUP = "controller.compiled"
"""The library's module name (mypyc adds ``__mypyc``): inside the package, so an editable
install finds it where it finds the package."""

ROOT = Path(__file__).resolve().parent.parent
"""Where the ``controller`` and ``simulator`` packages sit (the checkout, or site-packages)."""
CHECKSUMS = ROOT / "controller" / "compiled_sources.json"
"""Written by ``setup.py`` when it compiles: module name -> :func:`checksum` of its source."""


def source_path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def checksum(module: str) -> int:
    """Tells an edited source from the one compiled (not a security measure)."""
    return zlib.crc32(source_path(module).read_bytes())


def _library() -> Path | None:
    folder, name = source_path(GROUP).parent, GROUP.rsplit(".", 1)[1] + "__mypyc"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if (candidate := folder / (name + suffix)).exists():
            return candidate
    return None


def _state() -> tuple[bool, str]:
    try:
        compiled = json.loads(CHECKSUMS.read_text())
    except (OSError, ValueError):
        compiled = None
    if _library() is None or not isinstance(compiled, dict):
        return False, "not compiled (pure Python): installed without mypyc"
    changed = [module for module in COMPILED_MODULES if compiled.get(module) != checksum(module)]
    if changed:
        return False, (f"not compiled (pure Python): {', '.join(changed)} changed since "
                       "`pip install` compiled it; install again to compile")
    return True, f"compiled with mypyc ({len(COMPILED_MODULES)} modules)"


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds the compiled group's modules as their ``.py`` sources only."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


COMPILED, COMPILED_STATE = _state()
"""Whether the hot path runs compiled, and a sentence saying so (benchmarks print it)."""


def guard() -> None:
    """Import the group from source unless it runs compiled: compiled copies left beside
    the sources (an earlier install) must not load."""
    if not COMPILED and not any(isinstance(finder, _FromSource) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FromSource())
