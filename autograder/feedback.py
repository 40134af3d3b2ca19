"""The feedback page a student gets for one graded submission (self-contained HTML)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass

from autograder.spec import Curves
from autograder.task import Outcome

esc = html.escape


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
    """A self-contained page: the score, what happened, each check, the learning curves.

    ``manual_points`` is the notebook's hand-graded maximum. Without ``hand_grades``
    the page says those points are added later; with them, the heading's total adds
    the hand-graded points (and ``adjustments`` in every case).
    """
    rows = []
    for check in outcome.checks:
        mark = "pass" if check.passed else "fail"
        rows.append(
            f'<tr class="{mark}"><td>{esc(check.grade_cell)}</td><td>{esc(check.title)}</td>'
            f"<td>{check.points:g} / {check.max_points:g}</td>"
            f"<td>{esc(check.message)}</td></tr>"
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
    plot = (
        f'<h2>Your learning curves</h2><img alt="learning curves" src="{curves}">' if curves else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Feedback: {esc(outcome.assignment)} for {esc(outcome.student)}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }}
tr.pass td:nth-child(3) {{ color: #1a7f37; }} tr.fail td:nth-child(3) {{ color: #cf222e; }}
</style></head><body>
<h1>{esc(outcome.assignment)}: {total:g} / {maximum:g}</h1>
<p>Student: {esc(outcome.student)}. {esc(outcome.message)}</p>
{f"<ul>{notes}</ul>" if notes else ""}
{manual}
<table><tr><th>part</th><th>check</th><th>points</th><th>message</th></tr>
{"".join(rows)}
</table>
{adjustments_list(adjustments)}
{plot}
</body></html>
"""


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
    """A data URL of the declared curves (training solid, validation dashed) of each model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = curves.metrics
    models = {
        name: series
        for name, series in history.items()
        if isinstance(series, dict) and any(isinstance(series.get(m), list) for m in metrics)
    }
    if not models:
        return None
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    axes = axes[0]
    for name, series in models.items():
        for axis, key in zip(axes, metrics, strict=True):
            for prefix, style in (("", "-"), ("val_", "--")):
                values = series.get(prefix + key)
                if isinstance(values, list) and values:
                    axis.plot(
                        range(1, len(values) + 1), values, style, label=f"{name} {prefix}{key}"
                    )
    for axis, key in zip(axes, metrics, strict=True):
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
