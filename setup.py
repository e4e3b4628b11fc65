"""Install step: compile the control loop's hot modules with mypyc (about twice the replay
throughput; the list and why are in controller/compiled_modules.py).

``FES_PURE_PYTHON=1 pip install ...`` installs without compiling. A failed compilation
(no C compiler, say) is a warning, and the package runs as pure Python.
"""

import json
import os
import runpy
from pathlib import Path

from setuptools import setup

plan = runpy.run_path("controller/compiled_modules.py")
checksums = Path(plan["CHECKSUMS"])
ext_modules = []
if os.environ.get("FES_PURE_PYTHON") == "1":
    checksums.unlink(missing_ok=True)  # compiled copies left from before must not load
else:
    from mypyc.build import mypycify

    modules = plan["COMPILED_MODULES"]
    checksums.write_text(json.dumps({m: plan["checksum"](m) for m in modules}, indent=1))
    ext_modules = mypycify([m.replace(".", "/") + ".py" for m in modules],
                           group_name=plan["GROUP"], opt_level="3")
    for extension in ext_modules:
        extension.optional = True

setup(ext_modules=ext_modules)
