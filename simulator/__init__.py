"""Hardware simulator: a RehaStim 2 twin, recorded and synthetic motion, fault injection.

Runs in-process (tests, ``fes simulate``) or as a separate process on pseudo-terminals
(``fes-sim``).
"""
