"""``build_report``: sessions from a record (station SQLite or clinic PostgreSQL) to files.

Two passes over the sessions: the first computes every outcome (the progress figure and
the overview tables need all of them before the first page), the second loads each
session again to draw it. Only one session's samples are in memory at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from controller.record.reader import (
    RecordSource,
    SessionInfo,
    find_session,
    has_patient,
    list_sessions,
    load_session,
)
from controller.report.document import (
    DISCLAIMER,
    ReportContent,
    SessionPart,
    overview_tables,
    session_tables,
    table_pages,
    write_html,
)
from controller.report.figures import progress_figure, session_figure
from controller.report.outcomes import SessionOutcome, session_outcome

ProgressCallback = Callable[[int, int], None]
"""Called with (steps done, steps in all) as the report is made."""
PNG_DPI = 120
HTML_NAME = "report.html"
PDF_NAME = "report.pdf"


def build_report(source: RecordSource, out_dir: Path, *, patient: str | None = None,
                 session: str | int | None = None,
                 progress: ProgressCallback | None = None) -> list[Path]:
    """Write the report of one session (``session``: its number or UUID), of one patient's
    sessions (``patient``), or of every session in ``source``, into ``out_dir``:
    ``report.html``, ``report.pdf``, a ``session-N.png`` per session and a
    ``progress-PATIENT.png`` per patient (not for a single session). Returns the paths
    written. Raises ``LookupError`` for a session or patient the source does not hold, or
    a session that is not the given patient's."""
    infos = select_sessions(source, patient=patient, session=session)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 2 * len(infos) + 1
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    outcomes = session_outcomes(source, infos, lambda _done, _total: step())
    content = ReportContent(
        title=_title(patient, infos if session is not None else None),
        subtitle=_subtitle(outcomes),
        overview=overview_tables(outcomes), progress_pngs=[], sessions=[],
        empty=None if infos else ("No sessions recorded for patient " + patient if patient
                                  else "No sessions in this record."))
    pdf_path = out_dir / PDF_NAME
    with PdfPages(pdf_path, metadata={"Title": content.title, "Creator": "fes-footdrop"}
                  ) as pdf:
        intro = [(content.subtitle, "#444444"), (DISCLAIMER, "#a50f15")]
        for page in table_pages(content.overview, content.title,
                                intro + [(content.empty, "#111111")] if content.empty else intro):
            _add_page(pdf, page)
        if session is None:
            for name, group in _by_patient(outcomes).items():
                png = out_dir / f"progress-{name}.png"
                _save(progress_figure(group), png, pdf)
                content.progress_pngs.append(png)
        for info, outcome in zip(infos, outcomes, strict=True):
            png = out_dir / f"session-{info.id}.png"
            _save(session_figure(load_session(source, info)), png, pdf)
            tables = session_tables(outcome)
            for page in table_pages(tables, f"Session {info.id}: {info.protocol_name}"):
                _add_page(pdf, page)
            content.sessions.append(SessionPart(outcome, png, tables))
            step()
    html_path = out_dir / HTML_NAME
    write_html(html_path, content)
    step()
    return [html_path, pdf_path, *content.progress_pngs,
            *(p.figure_png for p in content.sessions if p.figure_png)]


def session_outcomes(source: RecordSource, infos: Sequence[SessionInfo],
                     progress: ProgressCallback | None = None) -> list[SessionOutcome]:
    """Each session's outcome, read one session at a time (an hour of samples each);
    ``progress(done, total)`` after each."""
    outcomes = []
    for done, info in enumerate(infos, start=1):
        outcomes.append(session_outcome(load_session(source, info)))
        if progress is not None:
            progress(done, len(infos))
    return outcomes


def select_sessions(source: RecordSource, *, patient: str | None = None,
                    session: str | int | None = None) -> list[SessionInfo]:
    """The sessions a report covers, oldest first; ``LookupError`` naming what is not
    there."""
    if session is not None:
        info = find_session(source, str(session))
        if patient is not None and info.patient != patient:
            owner = f"patient {info.patient}'s" if info.patient else "recorded without a patient"
            raise LookupError(f"session {session} is not patient {patient}'s (it is {owner})")
        return [info]
    infos = list_sessions(source, patient)
    if patient is not None and not infos and not has_patient(source, patient):
        raise LookupError(f"no patient {patient!r} in this record: fes sessions lists the "
                          "patients it holds")
    return infos


def _title(patient: str | None, single: list[SessionInfo] | None) -> str:
    if single:
        return f"FES report: session {single[0].id}"
    if patient:
        return f"FES report: patient {patient}"
    return "FES report: all sessions in the record"


def _subtitle(outcomes: list[SessionOutcome]) -> str:
    patients = sorted({o.info.patient for o in outcomes if o.info.patient})
    who = f"patient {', '.join(patients)} · " if patients else ""
    made = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"{who}{len(outcomes)} session(s) · made {made}"


def _by_patient(outcomes: list[SessionOutcome]) -> dict[str, list[SessionOutcome]]:
    groups: dict[str, list[SessionOutcome]] = {}
    for o in outcomes:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", o.info.patient or "unassigned")
        groups.setdefault(name, []).append(o)
    return groups


def _save(figure: Figure, png: Path, pdf: PdfPages) -> None:
    figure.savefig(png, dpi=PNG_DPI)
    _add_page(pdf, figure)


def _add_page(pdf: PdfPages, figure: Figure) -> None:
    pdf.savefig(figure)  # type: ignore[no-untyped-call]  # backend_pdf ships no types
