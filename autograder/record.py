"""Stage 4, record (trusted): gradebook, grades CSV, feedback page, results.json.

Everything a grading run writes lives under one output folder (by default the
course folder), in nbgrader's layout (:class:`autograder.course.Results`).
Each file is written atomically (a temporary file renamed into place) as soon
as a submission is judged, so a killed batch loses nothing it had recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections import defaultdict
from pathlib import Path

import nbformat

from autograder.course import Results
from autograder.feedback import feedback_html
from autograder.task import Outcome

GRADES_COLUMNS = ["student", "assignment", "status", "total", "max"]


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(partial, path)


def recorded(results: Results, student: str, assignment_id: str) -> Outcome | None:
    """The outcome recorded earlier for this student, if any."""
    try:
        return Outcome.from_json(
            json.loads(results.grading_file(student, assignment_id).read_text())
        )
    except (OSError, ValueError, TypeError):
        return None


def record(results: Results, outcome: Outcome, source_notebook: Path) -> None:
    """Write every output of one judged submission; the grading file goes last."""
    graded = results.autograded(outcome.student, outcome.assignment)
    if outcome.executed is not None and outcome.executed.is_file():
        atomic_write(graded / source_notebook.name, outcome.executed.read_bytes())
    restore(results, outcome, source_notebook)
    atomic_write(
        results.grading_file(outcome.student, outcome.assignment),
        json.dumps(outcome.to_json(), indent=2, sort_keys=True),
    )
    write_grades_csv(results)


def restore(results: Results, outcome: Outcome, source_notebook: Path) -> None:
    """Write what derives from a recorded outcome: results.json, feedback, gradebook scores.

    A resumed run calls it for every submission it does not grade again, so that the
    class-level files always agree with the per-submission records (a run killed
    between two writes loses nothing).
    """
    graded = results.autograded(outcome.student, outcome.assignment)
    atomic_write(graded / "results.json", json.dumps(gradescope_results(outcome), indent=2))
    manual = manual_points(source_notebook)
    feedback = results.feedback(outcome.student, outcome.assignment) / "feedback.html"
    atomic_write(feedback, feedback_html(outcome, manual))
    write_gradebook(results, outcome, source_notebook)


# --------------------------------------------------------------------------- gradebook


def register_assignment(results: Results, assignment_id: str, source_notebook: Path) -> None:
    """Register the assignment, notebook and grade cells (nbgrader SaveCells)."""
    from nbgrader.preprocessors import SaveCells

    from autograder.course import ensure_venv_on_path

    ensure_venv_on_path()
    results.root.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(source_notebook, as_version=4)
    resources = {
        "nbgrader": {
            "db_url": results.db_url,
            "assignment": assignment_id,
            "notebook": source_notebook.stem,
        }
    }
    with _gradebook(results) as gradebook:
        gradebook.update_or_create_assignment(assignment_id)
    SaveCells().preprocess(notebook, resources)


@contextlib.contextmanager
def _gradebook(results: Results):
    """nbgrader's Gradebook, without the SQLAlchemy warnings its own code triggers."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        with Gradebook(results.db_url) as gradebook:
            yield gradebook


def write_gradebook(results: Results, outcome: Outcome, source_notebook: Path) -> None:
    """Set the auto score of each graded cell from the checks that count towards it."""
    scores = cell_scores(outcome)
    with _gradebook(results) as gradebook:
        gradebook.update_or_create_student(outcome.student)
        gradebook.update_or_create_submission(outcome.assignment, outcome.student)
        submission = gradebook.find_submission_notebook(
            source_notebook.stem, outcome.assignment, outcome.student
        )
        for grade in submission.grades:
            if grade.name in scores:
                grade.auto_score = scores[grade.name]
                grade.needs_manual_grade = False
            elif grade.cell.cell_type == "markdown":
                grade.needs_manual_grade = True
        gradebook.db.commit()


def cell_scores(outcome: Outcome) -> dict[str, float]:
    scores: dict[str, float] = defaultdict(float)
    for check in outcome.checks:
        scores[check.grade_cell] += check.points
    return dict(scores)


def manual_points(source_notebook: Path) -> float:
    """Points of the cells graded by hand (answer cells with points: nbgrader's manual grading)."""
    notebook = nbformat.read(source_notebook, as_version=4)
    return sum(
        float(meta.get("points", 0))
        for cell in notebook.cells
        if (meta := cell.metadata.get("nbgrader", {})).get("grade") and meta.get("solution")
    )


# --------------------------------------------------------------------------- tables


def write_grades_csv(results: Results) -> None:
    """The grades CSV: a row per student and assignment, a column per check, total, max."""
    import pandas as pd

    rows = []
    for path in results.grading_files():
        outcome = Outcome.from_json(json.loads(path.read_text()))
        row = {
            "student": outcome.student,
            "assignment": outcome.assignment,
            "status": outcome.status,
            "total": outcome.score,
            "max": outcome.max_score,
        }
        row.update({check.name: check.points for check in outcome.checks})
        rows.append(row)
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=GRADES_COLUMNS)
    atomic_write(results.grades_csv, frame.to_csv(index=False))


def gradescope_results(outcome: Outcome) -> dict:
    """The Gradescope autograder ``results.json`` of one submission."""
    return {
        "score": outcome.score,
        "output": "\n".join([outcome.message, *outcome.notes]).strip(),
        "tests": [
            {
                "name": check.title,
                "number": check.grade_cell,
                "score": check.points,
                "max_score": check.max_points,
                "output": check.message,
                "visibility": "visible",
            }
            for check in outcome.checks
        ],
    }
