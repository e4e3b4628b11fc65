"""Figures of one session and of a patient's progress, for the report and the review screen.

Plain :class:`matplotlib.figure.Figure` objects on the Agg canvas, never pyplot: no global
state, so the GUI's review screen and a report built on a worker thread can draw at once.
The caller saves or embeds the figure (``figure.savefig(path)``).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from controller.detect.calibration import CalibrationError, sagittal_axis
from controller.detect.exercise import ExercisePhaseDetector
from controller.exercise_control import COMPLETE_SHARE
from controller.outcomes.gait import BoutSummary
from controller.record.reader import SessionData
from controller.report.outcomes import SessionOutcome, event_times_s, session_protocol
from controller.types import Sample
from protocols import ExerciseProtocol

PHASE_COLOURS = {
    "heel_off": "#fdd49e", "swing": "#a1d99b", "extension": "#c6dbef",
    "cue": "#e0e0e0", "rise": "#c7e9c0", "hold": "#74c476", "lower": "#fdd0a2",
}
"""Background bands; stance and rest are left white."""
PHASE_NAMES = {"heel_off": "heel-off", "extension": "after heel strike"}
EVENT_STYLES = {
    "heel_strike": ("v", "#08519c", "heel strike"),
    "toe_off": ("^", "#a63603", "toe-off"),
    "onset": (">", "#a63603", "onset"),
    "reached": ("o", "#006d2c", "top reached"),
    "at_rest": ("s", "#08519c", "back at rest"),
}
"""Event kinds marked on the signal: marker, colour, legend text."""
NOTICE_STYLES = {
    "pause": ("--", "#636363", "output paused"), "resume": ("--", "#31a354", "output resumed"),
    "nudge": (":", "#3182bd", "intensity changed"),
    "stop": ("-.", "#636363", "stopped by the operator"),
    "reset": ("-.", "#e6550d", "fault reset"),
}
"""Operator actions drawn across the whole-session panel: line style, colour, legend."""
FAULT_COLOUR = "#cb181d"
GAIT_WINDOW_S = 10.0
EXERCISE_WINDOW_MAX_S = 40.0
SESSION_SIZE_IN = (11.0, 7.5)
PAGE_WIDTH_IN = 11.0
LEGEND_WIDTH_CHARS = 32
HEADROOM = 1.3
"""Room above the tallest mark of a panel for its legend."""


def new_figure(size_in: tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas (no pyplot), laid out without overlapping text."""
    figure = Figure(figsize=size_in, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


# -- one session -----------------------------------------------------------------------------


def session_figure(data: SessionData, *, window_s: tuple[float, float] | None = None
                   ) -> Figure:
    """The session as the controller saw it: the sagittal signal with its phase bands and
    detected events over a detail window (the first steps or repetitions unless
    ``window_s`` is given), the stimulation delivered per channel under it, and, when the
    session is longer than the window, the whole session's stimulation above both."""
    figure = new_figure(SESSION_SIZE_IN)
    t_s = data.samples.t_s
    if len(t_s) == 0:
        figure.suptitle(_session_title(data))
        figure.text(0.5, 0.5, "No samples were recorded in this session.", ha="center")
        return figure
    span = (float(t_s[0]), float(t_s[-1]))
    window = _clip(window_s or _default_window(data, span), span)
    whole = window[1] - window[0] >= 0.95 * (span[1] - span[0])
    heights = [2.0, 1.0] if whole else [1.0, 2.0, 1.0]
    axes = figure.subplots(len(heights), 1, gridspec_kw={"height_ratios": heights})
    figure.suptitle(_session_title(data), fontsize=11)
    if not whole:
        overview = axes[0]
        _draw_stimulation(overview, data, span)
        overview.axvspan(*window, color="#fee391", alpha=0.6, zorder=0,
                         label="shown in detail below")
        overview.set_title("Whole session: stimulation delivered", fontsize=10, loc="left")
        _draw_faults(overview, data, span)
        _draw_notices(overview, data, span)
        _legend(overview)
    signal_ax, stim_ax = axes[-2], axes[-1]
    stim_ax.sharex(signal_ax)
    _draw_signal(signal_ax, data, window)
    _draw_stimulation(stim_ax, data, window)
    for ax in (signal_ax, stim_ax):
        _draw_phases(ax, data, window)
        _draw_faults(ax, data, window)
        _draw_notices(ax, data, window)
    signal_ax.set_xlim(*window)
    signal_ax.tick_params(labelbottom=False)
    stim_ax.set_xlabel("time in session (s)")
    signal_ax.set_title(f"Detail, {window[0]:.0f}–{window[1]:.0f} s: movement, phases and "
                        "detected events", fontsize=10, loc="left")
    _legend(signal_ax, _phase_handles(data, window))
    _legend(stim_ax)
    return figure


def _session_title(data: SessionData) -> str:
    info = data.info
    who = f"patient {info.patient}" if info.patient else "no patient"
    return (f"Session {info.id} · {who} · {info.protocol_name} · "
            f"{local_time(info.started_at)} · {info.status}")


def local_time(iso: str) -> str:
    """A recorded (UTC) time as the local time of the machine making the report."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def _clip(window: tuple[float, float], span: tuple[float, float]) -> tuple[float, float]:
    start = min(max(window[0], span[0]), span[1])
    return start, max(min(window[1], span[1]), start + 1e-3)


def _default_window(data: SessionData, span: tuple[float, float]) -> tuple[float, float]:
    """The first steps of a walk; the first two repetitions of an exercise."""
    if data.info.mode == "exercise":
        first = next((t for t, phase in data.phases if phase == "cue"), span[0])
        reps = data.repetitions
        end = reps[min(1, len(reps) - 1)]["end_s"] + 1.0 if reps else first + 30.0
        return first - 1.0, min(end, first + EXERCISE_WINDOW_MAX_S)
    first = min((e.t_s for e in data.events), default=span[0])
    return first - 1.0, first - 1.0 + GAIT_WINDOW_S


def sagittal_signal(data: SessionData, until_s: float = math.inf) -> tuple[np.ndarray, str]:
    """The signal a therapist reads the movement from, and its axis label: an exercise's
    angle from rest as the session's detector followed it (replayed up to ``until_s``
    only, as it costs a detector update per sample; NaN after), or a walk's angular
    velocity about the sagittal axis (swing positive)."""
    samples = data.samples
    protocol = session_protocol(data)
    if isinstance(protocol, ExerciseProtocol):
        ex = protocol.exercise
        detector = ExercisePhaseDetector(
            ex.onset_threshold_deg,
            min_rom_deg=max(2 * ex.onset_threshold_deg, COMPLETE_SHARE * ex.target_rom_deg),
            axis=ex.axis)
        angle_deg = np.full(len(samples.t_s), np.nan)
        end = int(np.searchsorted(samples.t_s, until_s, side="right"))
        for i, (t, acc, gyro) in enumerate(zip(samples.t_s[:end], samples.acc_mps2[:end],
                                               samples.gyro_dps[:end], strict=True)):
            detector.update(Sample(float(t), tuple(acc), tuple(gyro)))
            angle_deg[i] = detector.angle_deg
        return angle_deg, f"{ex.placement} angle from rest (°)"
    gyro = samples.gyro_dps
    period_s = float(np.median(np.diff(samples.t_s))) if len(samples.t_s) > 1 else 0.01
    strikes = np.searchsorted(samples.t_s, event_times_s(data, "heel_strike"))
    try:
        axis = sagittal_axis(gyro, [int(i) for i in strikes], period_s)
        label = "sagittal angular velocity\n(°/s, positive in swing)"
    except CalibrationError:
        axis = np.eye(3)[int(np.argmax(gyro.var(axis=0)))]
        label = "angular velocity about the\nmost moving axis (°/s)"
    return gyro @ axis, label


def _draw_signal(ax: Axes, data: SessionData, window: tuple[float, float]) -> None:
    t_s = data.samples.t_s
    values, label = sagittal_signal(data, until_s=window[1])
    inside = (t_s >= window[0]) & (t_s <= window[1])
    ax.plot(t_s[inside], values[inside], color="black", linewidth=0.9, label="movement")
    ax.axhline(0.0, color="#969696", linewidth=0.5)
    ax.set_ylabel(label)
    for kind, (marker, colour, name) in EVENT_STYLES.items():
        times = np.array([t for t in event_times_s(data, kind) if window[0] <= t <= window[1]])
        if times.size:
            ax.plot(times, np.interp(times, t_s, values), linestyle="none", marker=marker,
                    color=colour, markersize=6, label=name)
    for rep in data.repetitions:
        peak_s, peak_deg = rep["peak_s"], rep["peak_angle_deg"]
        if peak_s is not None and peak_deg is not None and window[0] <= peak_s <= window[1]:
            ax.annotate(f"{rep_name(rep)}: {peak_deg:.0f}°", (peak_s, peak_deg),
                        xytext=(0, 8), textcoords="offset points", ha="center", fontsize=8)
    ax.margins(y=0.15)


def rep_name(rep: dict[str, Any]) -> str:
    """``rep 3``, or ``set 2 rep 3`` past the first set."""
    set_text = f"set {rep['set_index'] + 1} " if rep["set_index"] else ""
    return f"{set_text}rep {rep['rep_index'] + 1}"


def _draw_stimulation(ax: Axes, data: SessionData, window: tuple[float, float]) -> None:
    protocol = session_protocol(data)
    sites = {ch.channel: ch.site for ch in protocol.channels} if protocol else {}
    channels = sorted({c.channel for c in data.commands} | set(sites))
    for channel in channels:
        points = [(c.t_s, c.amplitude_ma) for c in data.commands if c.channel == channel]
        t = [window[0], *[p[0] for p in points], window[1]]
        amplitude = [0.0, *[p[1] for p in points]]
        amplitude.append(amplitude[-1])
        site = f": {sites[channel]}" if sites.get(channel) else ""
        ax.step(t, amplitude, where="post", linewidth=1.0,
                label=textwrap.fill(f"channel {channel}{site}", LEGEND_WIDTH_CHARS))
    ax.set_ylabel("amplitude (mA)")
    ax.set_xlim(*window)
    ax.set_ylim(bottom=0.0)
    if not data.commands:
        ax.text(0.5, 0.5, "no stimulation was delivered", transform=ax.transAxes,
                ha="center", va="center", color="#636363")


def _draw_phases(ax: Axes, data: SessionData, window: tuple[float, float]) -> None:
    for start, end, phase in _phase_spans(data, window):
        if phase in PHASE_COLOURS:
            ax.axvspan(start, end, color=PHASE_COLOURS[phase], alpha=0.7, zorder=0,
                       linewidth=0)


def _phase_spans(data: SessionData, window: tuple[float, float]
                 ) -> list[tuple[float, float, str]]:
    ends = [t for t, _ in data.phases[1:]] + [float(data.samples.t_s[-1])]
    return [(max(t, window[0]), min(end, window[1]), phase)
            for (t, phase), end in zip(data.phases, ends, strict=True)
            if end > window[0] and t < window[1]]


def _phase_handles(data: SessionData, window: tuple[float, float]) -> list[Patch]:
    seen = {p for _, _, p in _phase_spans(data, window)}
    return [Patch(color=colour, alpha=0.7, label=PHASE_NAMES.get(p, p))
            for p, colour in PHASE_COLOURS.items() if p in seen]


def _draw_faults(ax: Axes, data: SessionData, window: tuple[float, float]) -> None:
    for fault in data.faults:
        if window[0] <= fault.t_s <= window[1]:
            ax.axvline(fault.t_s, color=FAULT_COLOUR, linewidth=1.5,
                       label=f"fault: {fault.kind}")


def _draw_notices(ax: Axes, data: SessionData, window: tuple[float, float]) -> None:
    """The operator's actions as lines across the panel, so a gap in the stimulation has
    its reason beside it."""
    for kind, (style, colour, name) in NOTICE_STYLES.items():
        for t_s in (n.t_s for n in data.notices
                    if n.kind == kind and window[0] <= n.t_s <= window[1]):
            ax.axvline(t_s, linestyle=style, color=colour, linewidth=1.2, label=name)


def _legend(ax: Axes, extra: Sequence[Patch | Line2D] = ()) -> None:
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    for handle in extra:
        unique[str(handle.get_label())] = handle
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize=8, frameon=False)


# -- progress across sessions ---------------------------------------------------------------


def progress_figure(outcomes: Sequence[SessionOutcome]) -> Figure:
    """One patient's sessions in time order: for walks the steps, cadence, dorsiflexion in
    swing and toe clearance; for exercises the repetitions against the prescription, range
    of motion and hold per repetition. Only the panels the sessions have are drawn."""
    gait = [o for o in outcomes if o.gait is not None]
    exercise = [o for o in outcomes if o.exercise is not None]
    rows = 2 * (bool(gait) + bool(exercise))
    figure = new_figure((PAGE_WIDTH_IN, 1.0 + 2.9 * max(rows, 1)))
    patients = sorted({o.info.patient or "no patient" for o in outcomes})
    figure.suptitle(f"Progress across sessions · {', '.join(patients) or 'no sessions'}",
                    fontsize=11)
    if not rows:
        figure.text(0.5, 0.5, "No sessions to show.", ha="center")
        return figure
    grid = figure.add_gridspec(rows, 2)
    row = 0
    if gait:
        _gait_panels(figure, grid, row, gait)
        row += 2
    if exercise:
        _exercise_panels(figure, grid, row, exercise)
    return figure


def _session_axis(ax: Axes, outcomes: Sequence[SessionOutcome]) -> None:
    """Sessions as evenly spaced categories, labelled with number and date; thinned when
    there are too many to read."""
    step = max(1, math.ceil(len(outcomes) / 12))
    ticks = list(range(0, len(outcomes), step))
    infos = [outcomes[i].info for i in ticks]
    marks = ax.set_xticks(ticks, [
        f"#{info.id}\n{local_time(info.started_at)[:10]}"
        + ("" if info.status == "completed" else f"\n{info.status}") for info in infos],
        fontsize=7)
    for mark, info in zip(marks, infos, strict=True):
        if info.status != "completed":
            mark.label1.set_color(FAULT_COLOUR)
    ax.set_xlim(-0.6, len(outcomes) - 0.4)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)


def _median_iqr(ax: Axes, x: Sequence[float], summaries: Sequence[BoutSummary], *,
                scale: float = 1.0, colour: str, label: str) -> None:
    """Medians with their quartiles as bars; groups with no strides are left out."""
    kept = [(xi, s) for xi, s in zip(x, summaries, strict=True) if s.count]
    if not kept:
        return
    xs = [k[0] for k in kept]
    med = np.array([k[1].median for k in kept]) * scale
    low = med - np.array([k[1].q25 for k in kept]) * scale
    high = np.array([k[1].q75 for k in kept]) * scale - med
    ax.errorbar(xs, med, yerr=[low, high], fmt="o-", color=colour, capsize=3, markersize=5,
                linewidth=1.0, label=label)


def _nothing(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            color="#636363", fontsize=9)


def _gait_panels(figure: Figure, grid: GridSpec, row: int,
                 outcomes: Sequence[SessionOutcome]) -> None:
    gaits = [o.gait for o in outcomes if o.gait is not None]
    x = list(range(len(outcomes)))
    steps_ax = figure.add_subplot(grid[row, 0])
    steps_ax.bar(x, [g.steps for g in gaits], width=0.6, color="#c6dbef", label="steps")
    steps_ax.bar(x, [g.stimulated_steps for g in gaits], width=0.35, color="#2171b5",
                 label="stimulated steps")
    steps_ax.set_title("Walking: steps per session", fontsize=10, loc="left")
    steps_ax.set_ylabel("steps")

    cadence_ax = figure.add_subplot(grid[row, 1])
    _median_iqr(cadence_ax, x, [g.summary("cadence_spm") for g in gaits], colour="#2171b5",
                label="median, bar = middle half of strides")
    cadence_ax.set_title("Walking: cadence", fontsize=10, loc="left")
    cadence_ax.set_ylabel("steps/min")

    angle_ax = figure.add_subplot(grid[row + 1, 0])
    comparisons = [g.comparison["peak_dorsiflexion_deg"] for g in gaits]
    compared = any(c.unstimulated.count for c in comparisons)
    _median_iqr(angle_ax, [xi - 0.08 for xi in x], [c.stimulated for c in comparisons],
                colour="#238b45", label="stimulated strides" if compared else
                "stimulated strides (none unstimulated to compare)")
    _median_iqr(angle_ax, [xi + 0.08 for xi in x], [c.unstimulated for c in comparisons],
                colour="#737373", label="unstimulated strides")
    shank = any(g.placement == "shank" for g in gaits)
    angle_ax.set_title("Walking: peak dorsiflexion in swing"
                       + (" (shank sensor: shank angle)" if shank else ""),
                       fontsize=10, loc="left")
    angle_ax.set_ylabel("toe-up angle from\nfoot-flat (°)")

    clearance_ax = figure.add_subplot(grid[row + 1, 1])
    clearances = [g.summary("min_toe_clearance_m") for g in gaits]
    _median_iqr(clearance_ax, x, clearances, scale=100.0, colour="#6a51a3",
                label="median, bar = middle half of strides")
    if not any(c.count for c in clearances):
        _nothing(clearance_ax, "not measured (needs a foot sensor and measured strides)")
    clearance_ax.set_title("Walking: minimum toe clearance in swing", fontsize=10, loc="left")
    clearance_ax.set_ylabel("cm above foot-flat")

    for ax in (steps_ax, cadence_ax, angle_ax, clearance_ax):
        _session_axis(ax, outcomes)
        if not any(g.strides for g in gaits) and ax is not steps_ax:
            _nothing(ax, "no strides could be measured")
        _legend_on_top(ax)


def _exercise_panels(figure: Figure, grid: GridSpec, row: int,
                     outcomes: Sequence[SessionOutcome]) -> None:
    exercises = [o.exercise for o in outcomes if o.exercise is not None]
    x = np.arange(len(outcomes), dtype=float)
    reps_ax = figure.add_subplot(grid[row, :])
    reps_ax.bar(x, [e.reps_done for e in exercises], width=0.6, color="#74c476",
                label="repetitions done")
    reps_ax.bar(x, [e.assisted_reps for e in exercises], width=0.6, color="#238b45",
                hatch="//", label="of which assisted by stimulation")
    prescribed = [(xi, e.reps_prescribed) for xi, e in zip(x, exercises, strict=True)
                  if e.reps_prescribed]
    if prescribed:
        reps_ax.plot(*zip(*prescribed, strict=True), linestyle="none", marker="_",
                     markersize=28, markeredgewidth=2.5, color="#525252")
    reps_ax.set_title("Exercise: repetitions done and prescribed", fontsize=10, loc="left")
    reps_ax.set_ylabel("repetitions")

    rom_ax = figure.add_subplot(grid[row + 1, 0])
    hold_ax = figure.add_subplot(grid[row + 1, 1])
    names = list(dict.fromkeys(e.exercise for e in exercises))
    for colour_index, name in enumerate(names):
        colour = f"C{colour_index}"
        own = [(xi, e) for xi, e in zip(x, exercises, strict=True) if e.exercise == name]
        label = name.replace("_", " ")
        _per_rep(rom_ax, [(xi, e.rom_per_rep_deg, e.target_rom_deg) for xi, e in own],
                 colour, label)
        _per_rep(hold_ax, [(xi, e.hold_per_rep_s, e.target_hold_s) for xi, e in own],
                 colour, label)
    rom_ax.set_title("Exercise: range of motion per repetition", fontsize=10, loc="left")
    rom_ax.set_ylabel("peak angle from rest (°)")
    hold_ax.set_title("Exercise: hold time per repetition", fontsize=10, loc="left")
    hold_ax.set_ylabel("hold (s)")
    target = Line2D([], [], linestyle="none", marker="_", markersize=14, color="#525252",
                    markeredgewidth=2, label="prescribed")
    for ax in (reps_ax, rom_ax, hold_ax):
        _session_axis(ax, outcomes)
        ax.set_ylim(bottom=0.0)
        _legend_on_top(ax, [target])


def _legend_on_top(ax: Axes, extra: Sequence[Line2D] = ()) -> None:
    """A legend in a band of room made above the data, so it hides no mark."""
    handles = [*ax.get_legend_handles_labels()[0], *extra]
    if not handles:
        return
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + (HEADROOM - 1.0) * (high - low))
    ax.legend(handles, [str(h.get_label()) for h in handles], fontsize=7, frameon=False,
              loc="upper left", ncols=2)


def _per_rep(ax: Axes, sessions: Sequence[tuple[float, list[float], float | None]],
             colour: str, label: str) -> None:
    """Each repetition as a dot, the session mean as a joined marker, the prescription as
    a grey dash."""
    means = [(xi, float(np.mean(values))) for xi, values, _ in sessions if values]
    for xi, values, target in sessions:
        if values:
            spread = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
            ax.plot(xi + np.asarray(spread), values, linestyle="none", marker=".",
                    color=colour, alpha=0.45, markersize=5)
        if target is not None:
            ax.plot([xi], [target], linestyle="none", marker="_", markersize=14,
                    markeredgewidth=2, color="#525252")
    if means:
        ax.plot(*zip(*means, strict=True), marker="D", color=colour, linewidth=1.2,
                markersize=6, label=f"{label} (session mean; dots: each rep)")
