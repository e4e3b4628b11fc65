"""``fes report``: what a therapist files — session and progress figures, an HTML summary
and a PDF of the same, read through the record reader from a station's record or the
clinic database.

The GUI's review screen uses :func:`session_figure`, :func:`progress_figure` and
:func:`build_report`; :func:`session_outcome` gives the numbers behind them.
"""

from controller.report.build import (
    ProgressCallback,
    build_report,
    select_sessions,
    session_outcomes,
)
from controller.report.figures import progress_figure, session_figure
from controller.report.outcomes import SessionOutcome, session_outcome

__all__ = ["ProgressCallback", "SessionOutcome", "build_report", "progress_figure",
           "select_sessions", "session_figure", "session_outcome", "session_outcomes"]
