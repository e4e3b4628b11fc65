"""Real-time core of the FES controller: sensing, detection, phase machines, safety, record.

Nothing in this package imports Qt; the GUI drives it from outside.
"""

from controller.compiled_modules import guard

guard()  # before any compiled module is imported: see controller/compiled_modules.py
