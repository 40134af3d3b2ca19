"""Stage 4, record (trusted): gradebook, grades CSV, feedback HTML, results.json.

Everything a grading run writes lives under one output folder (by default the
course folder), in nbgrader's layout:

    gradebook.db                               nbgrader's gradebook (formgrader, export)
    grades_by_check.csv                        one row per student and assignment
                                               (not grades.csv: `nbgrader export` writes that)
    autograded/<student>/<id>/<notebook>       the executed notebook
    autograded/<student>/<id>/results.json     Gradescope-style results
    autograded/<student>/<id>/grading.json     the full outcome (used to resume)
    feedback/<student>/<id>/feedback.html      what the student reads

Each file is written atomically (a temporary file renamed into place) as soon
as a submission is judged, so a killed batch loses nothing it had recorded.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import warnings
from collections import defaultdict
from pathlib import Path

import nbformat

GRADING_FILE = "grading.json"
GRADES_FILE = "grades_by_check.csv"


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(partial, path)


def submission_dir(out: Path, kind: str, student: str, assignment_id: str) -> Path:
    return out / kind / student / assignment_id


def recorded(out: Path, student: str, assignment_id: str) -> dict | None:
    """The outcome recorded earlier for this student, if any."""
    path = submission_dir(out, "autograded", student, assignment_id) / GRADING_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def record(out: Path, outcome: dict, source_notebook: Path, executed: Path | None) -> None:
    """Write every output of one judged submission; the grading file goes last."""
    student, assignment_id = outcome["student"], outcome["assignment"]
    graded = submission_dir(out, "autograded", student, assignment_id)
    if executed is not None and executed.is_file():
        atomic_write(graded / source_notebook.name, executed.read_bytes())
    atomic_write(graded / "results.json", json.dumps(gradescope_results(outcome), indent=2))
    feedback = submission_dir(out, "feedback", student, assignment_id) / "feedback.html"
    atomic_write(feedback, feedback_html(outcome))
    write_gradebook(out, outcome, source_notebook)
    atomic_write(graded / GRADING_FILE, json.dumps(outcome, indent=2, sort_keys=True))
    write_grades_csv(out)


# --------------------------------------------------------------------------- gradebook


def register_assignment(out: Path, assignment_id: str, source_notebook: Path) -> None:
    """Register the assignment, notebook and grade cells (nbgrader SaveCells)."""
    from nbgrader.preprocessors import SaveCells

    from autograder.course import ensure_venv_on_path

    ensure_venv_on_path()
    out.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(source_notebook, as_version=4)
    resources = {
        "nbgrader": {
            "db_url": db_url(out),
            "assignment": assignment_id,
            "notebook": source_notebook.stem,
        }
    }
    with _gradebook(out) as gradebook:
        gradebook.update_or_create_assignment(assignment_id)
    SaveCells().preprocess(notebook, resources)


def db_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'gradebook.db'}"


@contextlib.contextmanager
def _gradebook(out: Path):
    """nbgrader's Gradebook, without the SQLAlchemy warnings its own code triggers."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        with Gradebook(db_url(out)) as gradebook:
            yield gradebook


def write_gradebook(out: Path, outcome: dict, source_notebook: Path) -> None:
    """Set the auto score of each graded cell from the checks that count towards it."""
    scores = cell_scores(outcome)
    with _gradebook(out) as gradebook:
        gradebook.update_or_create_student(outcome["student"])
        gradebook.update_or_create_submission(outcome["assignment"], outcome["student"])
        submission = gradebook.find_submission_notebook(
            source_notebook.stem, outcome["assignment"], outcome["student"]
        )
        for grade in submission.grades:
            if grade.name in scores:
                grade.auto_score = scores[grade.name]
                grade.needs_manual_grade = False
            elif grade.cell.cell_type == "markdown":
                grade.needs_manual_grade = True
        gradebook.db.commit()


def cell_scores(outcome: dict) -> dict[str, float]:
    scores: dict[str, float] = defaultdict(float)
    for check in outcome["checks"]:
        scores[check["grade_cell"]] += check["points"]
    return dict(scores)


# --------------------------------------------------------------------------- tables


def write_grades_csv(out: Path) -> None:
    """:data:`GRADES_FILE`: a row per student and assignment, a column per check, total, max."""
    import pandas as pd

    rows = []
    for path in sorted((out / "autograded").glob(f"*/*/{GRADING_FILE}")):
        outcome = json.loads(path.read_text())
        row = {
            "student": outcome["student"],
            "assignment": outcome["assignment"],
            "status": outcome["status"],
            "total": outcome["score"],
            "max": outcome["max_score"],
        }
        row.update({check["name"]: check["points"] for check in outcome["checks"]})
        rows.append(row)
    frame = pd.DataFrame(rows)
    atomic_write(out / GRADES_FILE, frame.to_csv(index=False))


def gradescope_results(outcome: dict) -> dict:
    """The Gradescope autograder ``results.json`` of one submission."""
    return {
        "score": outcome["score"],
        "output": "\n".join([outcome["message"], *outcome["notes"]]).strip(),
        "tests": [
            {
                "name": check["title"],
                "number": check["grade_cell"],
                "score": check["points"],
                "max_score": check["max_points"],
                "output": check["message"],
                "visibility": "visible",
            }
            for check in outcome["checks"]
        ],
    }


# --------------------------------------------------------------------------- feedback


def feedback_html(outcome: dict) -> str:
    """A self-contained page: the score, what happened, each check, the learning curves."""
    esc = html.escape
    rows = []
    for check in outcome["checks"]:
        mark = "pass" if check["points"] == check["max_points"] else "fail"
        rows.append(
            f'<tr class="{mark}"><td>{esc(check["grade_cell"])}</td><td>{esc(check["title"])}</td>'
            f"<td>{check['points']:g} / {check['max_points']:g}</td>"
            f"<td>{esc(check['message'])}</td></tr>"
        )
    notes = "".join(f"<li>{esc(note)}</li>" for note in outcome["notes"])
    curves = outcome.get("learning_curves")
    plot = (
        f'<h2>Your learning curves</h2><img alt="learning curves" src="{curves}">' if curves else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Feedback: {esc(outcome["assignment"])} for {esc(outcome["student"])}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }}
tr.pass td:nth-child(3) {{ color: #1a7f37; }} tr.fail td:nth-child(3) {{ color: #cf222e; }}
</style></head><body>
<h1>{esc(outcome["assignment"])}: {outcome["score"]:g} / {outcome["max_score"]:g}</h1>
<p>Student: {esc(outcome["student"])}. {esc(outcome["message"])}</p>
{f"<ul>{notes}</ul>" if notes else ""}
<p>Autograded checks only; the written report is graded by hand and added later.</p>
<table><tr><th>part</th><th>check</th><th>points</th><th>message</th></tr>
{"".join(rows)}
</table>
{plot}
</body></html>
"""


def learning_curves_png(history: dict) -> str | None:
    """A data URL of the loss/accuracy curves in a Keras-style history document."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {
        name: curves
        for name, curves in history.items()
        if isinstance(curves, dict) and isinstance(curves.get("loss"), list)
    }
    if not models:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, curves in models.items():
        for axis, key in zip(axes, ("loss", "accuracy"), strict=True):
            for prefix, style in (("", "-"), ("val_", "--")):
                values = curves.get(prefix + key)
                if isinstance(values, list) and values:
                    axis.plot(
                        range(1, len(values) + 1), values, style, label=f"{name} {prefix}{key}"
                    )
    for axis, key in zip(axes, ("loss", "accuracy"), strict=True):
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
