"""Hardware simulator: a RehaStim 2 twin, recorded and synthetic motion, fault injection.

Runs in-process (tests, ``fes simulate``) or as a separate process on pseudo-terminals
(``fes-sim``).
"""

from pathlib import Path

import controller  # noqa: F401 - its guard runs before any compiled simulator module loads

BUNDLED_WALK = Path(__file__).resolve().parent / "data" / "walk1_2x20m_foot_imu.csv"
"""The short recorded walk shipped with the project: the default input of every demo."""
