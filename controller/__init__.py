"""Real-time core of the FES controller: sensing, detection, phase machines, safety, record.

Nothing in this package imports Qt; the GUI drives it from outside.
"""
