"""The report a therapist prints or files: one HTML page and a PDF of the same content.

Both are made from the same :class:`Table` values and figures, so the two never disagree.
The HTML is self-contained (figures embedded), so the one file can be filed or mailed; its
print stylesheet starts each session on a new page. The PDF is written with matplotlib's
``PdfPages``: the figures as vector pages, the tables as table pages.
"""

from __future__ import annotations

import base64
import html
import math
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from controller.outcomes.gait import BoutSummary
from controller.record.reader import Note
from controller.report.figures import PAGE_WIDTH_IN, local_time, rep_name
from controller.report.outcomes import SessionOutcome

DISCLAIMER = "Research tool, not a certified medical device."
MEASURE_NAMES = {
    "stride_time_s": ("stride time", "s", 1.0, 2),
    "cadence_spm": ("cadence", "steps/min", 1.0, 0),
    "swing_fraction": ("swing share of stride", "%", 100.0, 0),
    "peak_dorsiflexion_deg": ("peak dorsiflexion in swing", "°", 1.0, 1),
    "heel_strike_angle_deg": ("angle at heel strike", "°", 1.0, 1),
    "min_toe_clearance_m": ("minimum toe clearance", "cm", 100.0, 1),
}
"""Per-stride measures: name, unit, scale from the stored unit, decimals."""
PDF_PAGE_IN = (PAGE_WIDTH_IN, 8.5)
PDF_CELL_CHARS = 40
"""Longer table cells (fault details) are wrapped onto more lines in the PDF."""
NONE = "–"


@dataclass(frozen=True)
class Table:
    """A titled table of text cells, rendered alike to HTML and to PDF pages."""

    title: str
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    empty: str = "none"
    """What the table says when it has no rows."""


@dataclass(frozen=True)
class SessionPart:
    """One session's part of the report: its outcome, figure file and tables."""

    outcome: SessionOutcome
    figure_png: Path | None
    tables: list[Table]


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows, in the order it shows it."""

    title: str
    subtitle: str
    overview: list[Table]
    progress_pngs: list[Path]
    sessions: list[SessionPart]
    empty: str | None
    """What the report says instead of sessions, when it has none."""


# -- numbers as text -------------------------------------------------------------------------


def number(value: float | None, decimals: int = 1, scale: float = 1.0) -> str:
    """A value for a table cell; a dash when there is none."""
    if value is None or math.isnan(value):
        return NONE
    return f"{value * scale:.{decimals}f}"


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _median_text(summary: BoutSummary, scale: float, decimals: int) -> str:
    if not summary.count:
        return NONE
    return (f"{number(summary.median, decimals, scale)} "
            f"({number(summary.q25, decimals, scale)} to {number(summary.q75, decimals, scale)})")


# -- tables ----------------------------------------------------------------------------------


def overview_tables(outcomes: Sequence[SessionOutcome]) -> list[Table]:
    """The sessions side by side: one table of walks, one of exercises (only those there
    are)."""
    walks = [o for o in outcomes if o.gait is not None]
    exercises = [o for o in outcomes if o.exercise is not None]
    tables = []
    if walks:
        tables.append(Table(
            "Walking sessions (medians over measured strides, middle half in brackets)",
            ("session", "started", "protocol", "status", "duration", "steps", "stimulated",
             "missed heel strikes", "cadence (steps/min)", "peak dorsiflexion (°)",
             "toe clearance (cm)", "faults"),
            [_walk_row(o) for o in walks]))
    if exercises:
        tables.append(Table(
            "Exercise sessions (prescription in brackets)",
            ("session", "started", "protocol", "status", "duration", "reps done",
             "mean range of motion (°)", "mean hold (s)", "reps stimulated / assisted",
             "faults"),
            [_exercise_row(o) for o in exercises]))
    return tables


def _common(o: SessionOutcome) -> tuple[str, ...]:
    return (str(o.info.id), local_time(o.info.started_at), o.info.protocol_name,
            o.info.status, duration_text(o.info.duration_s))


def _walk_row(o: SessionOutcome) -> tuple[str, ...]:
    assert o.gait is not None
    g = o.gait
    missed = str(g.missed_heel_strikes) if g.missed_heel_strikes is not None else NONE
    return (*_common(o), str(g.steps), str(g.stimulated_steps), missed,
            _median_text(g.summary("cadence_spm"), 1.0, 0),
            _median_text(g.summary("peak_dorsiflexion_deg"), 1.0, 1),
            _median_text(g.summary("min_toe_clearance_m"), 100.0, 1), str(len(o.faults)))


def _exercise_row(o: SessionOutcome) -> tuple[str, ...]:
    assert o.exercise is not None
    e = o.exercise
    prescribed = str(e.reps_prescribed) if e.reps_prescribed is not None else NONE
    return (*_common(o), f"{e.reps_done} ({prescribed})",
            f"{number(e.mean_rom_deg)} ({number(e.target_rom_deg, 0)})",
            f"{number(e.mean_hold_s)} ({number(e.target_hold_s)})",
            f"{e.stimulated_reps} / {e.assisted_reps}", str(len(o.faults)))


def session_tables(o: SessionOutcome) -> list[Table]:
    """One session's detail: key figures, then per stride or per repetition, then what
    went wrong or was changed during it."""
    tables = [_key_figures(o)]
    if o.gait is not None:
        g = o.gait
        tables.append(Table(
            "Stimulated against unstimulated strides: median (middle half), strides counted",
            ("measure", "stimulated", "n", "unstimulated", "n", "difference"),
            [(f"{name} ({unit})", _median_text(c.stimulated, scale, decimals),
              str(c.stimulated.count), _median_text(c.unstimulated, scale, decimals),
              str(c.unstimulated.count), number(c.effect, decimals, scale))
             for measure, c in g.comparison.items()
             for name, unit, scale, decimals in [MEASURE_NAMES[measure]]],
            empty=g.not_measured or "no strides measured"))
        tables.append(Table(
            "Per stride (from one heel strike to the next of the same foot)",
            ("stride", "heel strike (s)", *(f"{n} ({u})" for n, u, _, _ in
                                              MEASURE_NAMES.values()), "stimulated"),
            [(str(i + 1), number(s.heel_strike_s, 2),
              *(number(getattr(s, m), d, k) for m, (_, _, k, d) in MEASURE_NAMES.items()),
              "yes" if s.stimulated else "no")
             for i, s in enumerate(g.strides)],
            empty=g.not_measured or "no strides measured"))
    if o.exercise is not None:
        tables.append(Table(
            "Per repetition",
            ("repetition", "onset (s)", "range of motion (°)", "time to peak (s)",
             "hold (s)", "stimulated", "assisted", "charge (µC)"),
            [(rep_name(r), number(r["onset_s"], 1), number(r["peak_angle_deg"]),
              number(r["time_to_peak_s"], 2), number(r["hold_s"]),
              "yes" if r["stimulated"] else "no", "yes" if r["assisted"] else "no",
              number(r["charge_uc"], 0)) for r in o.exercise.repetitions],
            empty="no repetition was completed"))
    tables.append(_notes_table("Faults (output stopped)", o.faults))
    tables.append(Table("Warnings", ("warning",), [(w,) for w in o.warnings]))
    tables.append(_notes_table("Notices (operator actions and supervisor decisions)",
                               o.notices))
    return tables


def _key_figures(o: SessionOutcome) -> Table:
    info = o.info
    rows = [("patient", info.patient or "none recorded"), ("protocol", info.protocol_name),
            ("started", local_time(info.started_at)), ("status", info.status),
            ("duration", f"{duration_text(info.duration_s)} (min:s)"),
            ("result", info.units_text), ("sensor", info.sensor),
            ("stimulator", info.stimulator), ("session UUID", info.uuid)]
    rows += [(f"charge, channel {ch}", f"{uc / 1000:.2f} mC")
             for ch, uc in sorted(o.charge_uc.items())]
    return Table("Session", ("", ""), rows)


def _notes_table(title: str, notes: Sequence[Note]) -> Table:
    return Table(title, ("time (s)", "kind", "detail"),
                 [(number(n.t_s, 2), n.kind, n.text) for n in notes])


# -- HTML ------------------------------------------------------------------------------------

_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; margin: 2em;
       color: #111; max-width: 1200px; }
h1 { font-size: 16pt; margin-bottom: 0.2em; }
h2 { font-size: 13pt; border-bottom: 1px solid #999; margin-top: 1.6em; }
h3 { font-size: 11pt; margin-bottom: 0.3em; }
.subtitle { color: #444; }
.disclaimer { color: #a50f15; font-weight: bold; }
figure { margin: 0.8em 0; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.3em 0 1em; font-size: 9pt; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; }
.empty { color: #555; font-style: italic; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { margin: 0; max-width: none; font-size: 9pt; }
  section.session, section.patient { break-before: page; }
  figure, tr { break-inside: avoid; }
  thead { display: table-header-group; }
}
"""


def write_html(path: Path, content: ReportContent) -> None:
    """The report as one self-contained HTML page."""
    parts = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{_e(content.title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{_e(content.title)}</h1>",
             f"<p class=\"subtitle\">{_e(content.subtitle)}</p>",
             f"<p class=\"disclaimer\">{_e(DISCLAIMER)}</p>"]
    if content.empty:
        parts.append(f"<p class=\"empty\">{_e(content.empty)}</p>")
    parts += [_html_table(t) for t in content.overview]
    parts += [_html_figure(p, "Progress across sessions") for p in content.progress_pngs]
    for part in content.sessions:
        info = part.outcome.info
        parts.append(f"<section class=\"session\"><h2>Session {info.id}: "
                     f"{_e(info.protocol_name)} ({_e(local_time(info.started_at))})"
                     "</h2>")
        if part.figure_png is not None:
            parts.append(_html_figure(part.figure_png, f"Session {info.id}"))
        parts += [_html_table(t) for t in part.tables]
        parts.append("</section>")
    parts.append("</body></html>\n")
    path.write_text("\n".join(parts), encoding="utf-8")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_figure(png: Path, alt: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{_e(alt)}\">"
            f"<figcaption class=\"empty\">{_e(png.name)}</figcaption></figure>")


def _html_table(table: Table) -> str:
    title = f"<h3>{_e(table.title)}</h3>"
    if not table.rows:
        return f"{title}<p class=\"empty\">{_e(table.empty)}</p>"
    header = "".join(f"<th>{_e(h)}</th>" for h in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if _numeric(c) else ''}>{_e(c)}</td>"
                         for c in row) + "</tr>"
        for row in table.rows)
    head = f"<thead><tr>{header}</tr></thead>" if any(table.header) else ""
    return f"{title}<table>{head}<tbody>{body}</tbody></table>"


def _numeric(cell: str) -> bool:
    return cell[:1].isdigit() or cell[:1] == "-" and cell[1:2].isdigit()


# -- PDF -------------------------------------------------------------------------------------


PDF_MAX_ROWS = 60
"""Rows of one table the PDF holds: an hour's walk has some 3000 strides, which belong in
the HTML and an export, not on fifty printed pages."""


def table_pages(tables: Sequence[Table], heading: str,
                intro: Sequence[tuple[str, str]] = ()) -> Iterator[Figure]:
    """Tables flowed onto PDF pages under ``heading`` and, on the first page, the
    ``intro`` lines (text, colour): a table that does not fit goes on over the next page
    with its header repeated; long cells are wrapped; a long table is cut at
    :data:`PDF_MAX_ROWS`, saying so."""
    page = _TablePage(heading)
    for text, colour in intro:
        page.line(text, colour)
    for table in map(_cut_for_print, tables):
        header = tuple(textwrap.fill(h, PDF_HEADER_CHARS) for h in table.header)
        rows = [tuple(textwrap.fill(c, PDF_CELL_CHARS) for c in row) for row in table.rows]
        title = table.title
        while True:
            fitted = page.fit(header, rows)
            if not page.fresh and fitted == 0 and (
                    rows or not page.room_for(_TITLE_IN + _LINE_IN)):
                yield page.figure
                page = _TablePage(heading)
                continue
            fitted = max(fitted, min(1, len(rows)))
            page.draw(title, header, rows[:fitted], table.empty)
            rows = rows[fitted:]
            title = f"{table.title} (continued)"
            if not rows:
                break
    yield page.figure


def _cut_for_print(table: Table) -> Table:
    if len(table.rows) <= PDF_MAX_ROWS:
        return table
    return replace(table, title=f"{table.title}: the first {PDF_MAX_ROWS} of "
                   f"{len(table.rows)} (report.html and fes export hold them all)",
                   rows=table.rows[:PDF_MAX_ROWS])


PDF_HEADER_CHARS = 14
_MARGIN_IN = 0.45
_TITLE_IN = 0.32
_LINE_IN = 0.16
_GAP_IN = 0.15


def _lines(row: tuple[str, ...]) -> int:
    return max((c.count("\n") + 1 for c in row), default=1)


class _TablePage:
    """One PDF page being filled with tables from the top down (sizes in inches)."""

    def __init__(self, heading: str) -> None:
        self.figure = Figure(figsize=PDF_PAGE_IN)
        FigureCanvasAgg(self.figure)
        self.figure.text(_MARGIN_IN / PDF_PAGE_IN[0], 1 - _MARGIN_IN / PDF_PAGE_IN[1],
                         heading, fontsize=11, fontweight="bold", va="top")
        self.top_in = PDF_PAGE_IN[1] - _MARGIN_IN - _TITLE_IN
        self.fresh = True

    def line(self, text: str, colour: str) -> None:
        """A line of text across the page."""
        self.figure.text(_MARGIN_IN / PDF_PAGE_IN[0], self.top_in / PDF_PAGE_IN[1], text,
                         fontsize=9, color=colour, va="top")
        self.top_in -= _TITLE_IN

    def room_for(self, height_in: float) -> bool:
        return self.top_in - height_in >= _MARGIN_IN

    def fit(self, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> int:
        """How many of ``rows`` fit under a title and the header on what is left."""
        used_in = _TITLE_IN + (_lines(header) * _LINE_IN if any(header) else 0.0)
        count = 0
        for row in rows:
            used_in += _lines(row) * _LINE_IN
            if not self.room_for(used_in):
                break
            count += 1
        return count

    def draw(self, title: str, header: tuple[str, ...], rows: list[tuple[str, ...]],
             empty: str) -> None:
        width_in, height_in = PDF_PAGE_IN
        left = _MARGIN_IN / width_in
        self.fresh = False
        self.figure.text(left, (self.top_in - 0.05) / height_in, title, fontsize=9,
                         fontweight="bold", va="top")
        self.top_in -= _TITLE_IN
        if not rows:
            self.figure.text(left, self.top_in / height_in, empty, fontsize=8,
                             style="italic", va="top")
            self.top_in -= _LINE_IN + _GAP_IN
            return
        shown_rows = [header, *rows] if any(header) else rows
        lines = [_lines(r) for r in shown_rows]
        table_in = sum(lines) * _LINE_IN
        ax = self.figure.add_axes((left, (self.top_in - table_in) / height_in,
                                   1 - 2 * left, table_in / height_in))
        ax.axis("off")
        shown = ax.table(cellText=[list(r) for r in rows],
                         colLabels=list(header) if any(header) else None,
                         loc="upper left", cellLoc="left")
        shown.auto_set_font_size(False)
        shown.set_fontsize(7)
        shown.auto_set_column_width(list(range(len(header))))
        for (row, _), cell in shown.get_celld().items():
            cell.set_height(lines[row] * _LINE_IN / table_in)
            cell.set_linewidth(0.4)
            if row == 0 and any(header):
                cell.set_facecolor("#eeeeee")
        self.top_in -= table_in + _GAP_IN
