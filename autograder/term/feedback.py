"""The feedback page a student gets for one graded submission (self-contained HTML)."""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autograder.core.results import RUN_OK, Outcome
from autograder.core.spec import Curves
from autograder.grading.judge.extras import PNG_URL

if TYPE_CHECKING:
    from matplotlib.figure import Figure

esc = html.escape
NOT_GRADED = "not graded: see the problem above"
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
BEST_EPOCH = "best-epoch"
CURVES_ALT = (
    "Your learning curves: per epoch, training (solid) and validation (dashed) of each model "
    "in its own colour; a dotted line marks the epoch of lowest validation loss."
)


@dataclass(frozen=True)
class HandGrade:
    """A cell graded by hand in nbgrader's formgrader."""

    cell: str  # the grade_id of the cell
    max_points: float
    points: float | None  # None: not graded yet
    comment: str = ""


@dataclass(frozen=True)
class Adjustment:
    """A change to the total outside the checks, e.g. a late penalty."""

    reason: str
    points: float  # negative for a penalty


def feedback_html(
    outcome: Outcome,
    manual_points: float = 0,
    hand_grades: list[HandGrade] | None = None,
    adjustments: Sequence[Adjustment] = (),
) -> str:
    """A self-contained page: the score, what went wrong, each check, the limits, the curves,
    and what the judge made for it (figures, texts such as its own samples).

    ``manual_points`` is the notebook's hand-graded maximum. Without ``hand_grades``
    the page says those points are added later; with them, the heading's total adds
    the hand-graded points (and ``adjustments`` in every case).
    """
    rows = []
    for check in outcome.checks:
        mark = "pass" if check.passed else "fail"
        message = NOT_GRADED if check.cause and not check.passed else check.message
        rows.append(
            f'<tr class="{mark}"><td>{esc(check.grade_cell)}</td><td>{esc(check.title)}</td>'
            f"<td>{check.points:g} / {check.max_points:g}</td>"
            f"<td>{esc(message)}</td></tr>"
        )
    notes = "".join(f"<li>{esc(note)}</li>" for note in outcome.notes)
    total = outcome.score + sum(adjustment.points for adjustment in adjustments)
    maximum = outcome.max_score
    if hand_grades is None:
        manual = (
            f"<p>Autograded checks only; the answers graded by hand ({manual_points:g} points) "
            "are added later.</p>"
            if manual_points
            else ""
        )
    else:
        total += sum(grade.points or 0 for grade in hand_grades)
        maximum += manual_points or sum(grade.max_points for grade in hand_grades)
        manual = hand_grades_table(hand_grades)
    curves = outcome.learning_curves
    plot = f'<h2>Your learning curves</h2><img alt="{CURVES_ALT}" src="{curves}">' if curves else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Feedback: {esc(outcome.assignment)} for {esc(outcome.student)}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }}
tr.pass td:nth-child(3) {{ color: #1a7f37; }} tr.fail td:nth-child(3) {{ color: #cf222e; }}
.problem {{ border-left: .4em solid #cf222e; background: #fff5f5; padding: .2em 1em; }}
img {{ max-width: 100%; }}
pre.sample {{ white-space: pre-wrap; background: #f6f8fa; padding: .5em; }}
</style></head><body>
<h1>{esc(outcome.assignment)}: {total:g} / {maximum:g}</h1>
<p>Student: {esc(outcome.student)}.</p>
{problems_section(outcome)}
{review_section(outcome)}
{f"<ul>{notes}</ul>" if notes else ""}
{manual}
<h2>Checks</h2>
<table><tr><th>part</th><th>check</th><th>points</th><th>message</th></tr>
{"".join(rows)}
</table>
{adjustments_list(adjustments)}
{limits_section(outcome.run)}
{plot}
{judge_section(outcome)}
</body></html>
"""


def review_section(outcome: Outcome) -> str:
    """The points that wait for the instructor's review, and why ('' when none)."""
    held = [check for check in outcome.checks if check.withheld]
    if not held:
        return ""
    points = sum(check.withheld for check in held)
    reasons = "".join(f"<li>{esc(reason)}</li>" for reason in sorted({c.review for c in held}))
    return (
        f'<div class="problem"><p>{points:g} point(s) of your score are withheld until the '
        "instructor has reviewed your model: they are not lost, and they count as soon as the "
        f"review releases them. Why:</p><ul>{reasons}</ul></div>"
    )


def problems(outcome: Outcome) -> list[str]:
    """What went wrong for the whole submission: the run's problem, then the checks' causes."""
    failed_run = outcome.status != "graded" or outcome.run.get("status") not in RUN_OK
    found = [outcome.message] if failed_run and outcome.message else []
    for check in outcome.checks:
        if check.cause and not check.passed and check.cause not in found:
            found.append(check.cause)
    return found


def problems_section(outcome: Outcome) -> str:
    """The run's message, and each problem once with how many checks it left ungraded."""
    found = problems(outcome)
    message = "" if outcome.message in found else f"<p>{esc(outcome.message)}</p>"
    if not found:
        return message
    items = "".join(f"<li>{esc(problem)}</li>" for problem in found)
    ungraded = sum(1 for check in outcome.checks if check.cause and not check.passed)
    because = (
        f"<p>Because of this, {ungraded} check(s) below could not be graded.</p>"
        if ungraded
        else ""
    )
    return (
        f'{message}<section class="problem" aria-labelledby="problem">'
        f'<h2 id="problem">What went wrong</h2><ul>{items}</ul>{because}</section>'
    )


def judge_section(outcome: Outcome) -> str:
    """What the judge made for the page: figures (PNG data URLs only) and texts, escaped."""
    figures = "".join(
        f'<figure><img alt="{esc(title)}" src="{url}"><figcaption>{esc(title)}</figcaption>'
        "</figure>"
        for title, url in outcome.figures.items()
        if isinstance(url, str) and PNG_URL.fullmatch(url)
    )
    texts = "".join(
        f'<h3>{esc(title)}</h3><pre class="sample">{esc(text)}</pre>'
        for title, text in outcome.texts.items()
    )
    if not figures and not texts:
        return ""
    return f"<h2>What the judge saw your models do on the hidden data</h2>{figures}{texts}"


def time_limit(seconds: int, limits: dict) -> str:
    """A time limit as the run counted it: CPU time on each core, a wall-clock backstop."""
    cores, factor = limits.get("cpu_cores"), limits.get("wall_clock_factor")
    if not cores or not factor:  # recorded before limits counted CPU time
        return f"{seconds} s"
    return (
        f"{seconds} s of CPU time on each of {cores} cores ({seconds * cores} s in all); "
        f"stopped anyway after {seconds * factor} s of wall-clock time"
    )


def limits_section(run: dict) -> str:
    """The limits this run had (the time limit may be a grader's or a student's own)."""
    limits = run.get("limits")
    if not limits:
        return ""
    rows = []
    if run.get("status") != "not_executed":
        notebook = limits["notebook_timeout_s"]
        rows += [
            ("Time for the whole notebook", time_limit(notebook, limits)),
            ("Time for one cell", time_limit(min(notebook, limits["cell_timeout_s"]), limits)),
            ("Memory", f"{limits['memory_mb']} MB"),
            ("Disk (the notebook's folder and /tmp)", f"{limits['max_scratch_mb']} MB"),
            ("Processes", f"{limits['max_processes']}"),
        ]
    rows += [
        ("Exported files, in all", f"{limits['max_artifacts_mb']} MB"),
        (
            "The judge: loading your models and predicting on the hidden data",
            f"{time_limit(limits['judge_timeout_s'], limits)}; {limits['judge_memory_mb']} MB",
        ),
    ]
    cells = "".join(f"<tr><th>{esc(what)}</th><td>{esc(value)}</td></tr>" for what, value in rows)
    return f"<h2>Limits of this run</h2><table>{cells}</table>"


def hand_grades_table(hand_grades: list[HandGrade]) -> str:
    """The cells graded by hand: points out of the maximum and the grader's comment."""
    rows = "".join(
        f"<tr><td>{esc(grade.cell)}</td>"
        + (
            f"<td>{grade.points:g} / {grade.max_points:g}</td>"
            if grade.points is not None
            else f"<td>not graded yet (out of {grade.max_points:g})</td>"
        )
        + f"<td>{esc(grade.comment)}</td></tr>"
        for grade in hand_grades
    )
    return (
        "<h2>Graded by hand</h2>"
        "<table><tr><th>cell</th><th>points</th><th>comment</th></tr>"
        f"{rows}</table>"
    )


def adjustments_list(adjustments: Sequence[Adjustment]) -> str:
    """The changes to the total outside the checks, each with its reason."""
    if not adjustments:
        return ""
    items = "".join(
        f"<li>{adjustment.points:+g} points: {esc(adjustment.reason)}</li>"
        for adjustment in adjustments
    )
    return f"<h2>Adjustments to the total</h2><ul>{items}</ul>"


def learning_curves_png(history: dict, curves: Curves) -> str | None:
    """A data URL of :func:`learning_curves_figure` as a PNG, or None without curves."""
    figure = learning_curves_figure(history, curves)
    if figure is None:
        return None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def learning_curves_figure(history: dict, curves: Curves) -> Figure | None:
    """A panel per declared metric: a colour per model, training solid, validation dashed.

    Epochs are whole numbers; where training went on after the lowest validation loss
    (the epoch early stopping restores), a dotted line and a dot on each validation
    curve, in the model's colour, mark it.
    The legend sits outside the panels, so it never hides a line.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    metrics = curves.metrics
    models = {
        name: series
        for name, series in history.items()
        if isinstance(series, dict) and any(isinstance(series.get(m), list) for m in metrics)
    }
    if not models:
        return None
    figure = Figure(figsize=(4.5 * len(metrics) + 2, 3.5), layout="constrained")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    handles, marked, longest = [], False, 1
    for colour, (name, series) in zip(itertools.cycle(COLOURS), models.items(), strict=False):
        best = best_epoch(series)
        for axis, key in zip(axes, metrics, strict=True):
            for prefix, style in (("", "-"), ("val_", "--")):
                values = series.get(prefix + key)
                if isinstance(values, list) and values:
                    epochs = range(1, len(values) + 1)
                    longest = max(longest, len(values))
                    # a marker per epoch: a history of one epoch is a point, not nothing
                    axis.plot(
                        epochs,
                        values,
                        style,
                        marker=".",
                        color=colour,
                        label=f"{name} {prefix}{key}",
                    )
            if best is not None:
                axis.axvline(best, color=colour, linestyle=":", gid=BEST_EPOCH)
                restored = series.get("val_" + key)
                if isinstance(restored, list) and len(restored) >= best:
                    axis.plot(best, restored[best - 1], "o", color=colour, gid=BEST_EPOCH)
        marked = marked or best is not None
        label = f"{name} (best epoch {best})" if best is not None else name
        handles.append(Line2D([], [], color=colour, linewidth=3, label=label))
    handles += [
        Line2D([], [], color="grey", linestyle="-", label="training"),
        Line2D([], [], color="grey", linestyle="--", label="validation"),
    ]
    if marked:
        handles.append(
            Line2D([], [], color="grey", linestyle=":", marker="o", label="lowest val_loss")
        )
    for axis, key in zip(axes, metrics, strict=True):
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.set_xlim(0.5, longest + 0.5)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axis.grid(alpha=0.3)
    figure.legend(handles=handles, loc="outside right upper", fontsize=8)
    return figure


def best_epoch(series: dict) -> int | None:
    """The epoch (from 1) of the lowest validation loss, if training went on after it."""
    values = series.get("val_loss")
    if not isinstance(values, list):
        return None
    finite = [
        (value, epoch)
        for epoch, value in enumerate(values, 1)
        if isinstance(value, int | float) and math.isfinite(value)
    ]
    if not finite:
        return None
    best = min(finite)[1]
    return best if best < len(values) else None
