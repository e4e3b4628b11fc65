"""Install step: compile the control loop's hot modules with mypyc (about twice the replay
throughput; the list and why are in controller/compiled_modules.py).

``FES_PURE_PYTHON=1 pip install ...`` installs without compiling. A failed compilation
(no C compiler, say) is a warning, and the package runs as pure Python.
"""

import os
import runpy

from setuptools import setup

ext_modules = []
if os.environ.get("FES_PURE_PYTHON") != "1":
    from mypyc.build import mypycify

    plan = runpy.run_path("controller/compiled_modules.py")
    ext_modules = mypycify([m.replace(".", "/") + ".py" for m in plan["COMPILED_MODULES"]],
                           group_name=plan["GROUP"], opt_level="3")
    for extension in ext_modules:
        extension.optional = True

setup(ext_modules=ext_modules)
