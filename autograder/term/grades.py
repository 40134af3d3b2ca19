"""The class's grades as tables: ``grades_by_check.csv``, and ``nbgrader export``'s CSV.

Both come from each submission's :class:`autograder.term.gradebook.Marks`, so they give
the same total out of the same maximum (the notebook's points, autograded and by hand):

    status              graded, rejected or failed (nbgrader's export: also "not submitted")
    autograded          the hidden checks' points, out of autograded_max
    manual              the points graded by hand in formgrader, out of manual_max
    adjustments         autograded cells rescored by hand in formgrader
    late_penalty        points off for lateness (nbgrader's late_submission_penalty)
    total               autograded + manual + adjustments - late_penalty, out of max
    needs_manual_grade  True while an answer waits for its hand grade

``grades_by_check.csv`` adds the submission's time and a column per check.
``nbgrader export`` (whose plugin :func:`autograder.core.course.configure` makes
:class:`GradesExport`) writes nbgrader's own columns, its ``score`` and ``max_score``
being ``total`` and ``max``, with the parts beside them.
"""

from __future__ import annotations

from pathlib import Path

from nbgrader.api import MissingEntry
from nbgrader.plugins import ExportPlugin

from autograder.core.course import Results
from autograder.core.results import Outcome
from autograder.term.gradebook import Marks, settle

COLUMNS = [
    "student",
    "assignment",
    "status",
    "timestamp",
    "autograded",
    "autograded_max",
    "manual",
    "manual_max",
    "adjustments",
    "late_penalty",
    "total",
    "max",
    "needs_manual_grade",
]
EXPORT_COLUMNS = [
    "assignment",
    "duedate",
    "timestamp",
    "student_id",
    "last_name",
    "first_name",
    "email",
    "status",
    "autograded",
    "manual",
    "adjustments",
    "raw_score",
    "late_submission_penalty",
    "score",
    "max_score",
    "needs_manual_grade",
]
KEYS = {"student": str, "assignment": str, "timestamp": str}


def parts(marks: Marks) -> dict:
    """The columns both tables share."""
    outcome = marks.outcome
    return {
        "status": outcome.status,
        "timestamp": str(marks.timestamp or ""),  # UTC, written as nbgrader writes it
        "autograded": marks.autograded,
        "manual": marks.manual,
        "adjustments": sum((adjustment.points for adjustment in marks.overrides), 0.0),
        "needs_manual_grade": marks.needs_manual_grade,
    }


def row(marks: Marks) -> dict:
    """The row of ``grades_by_check.csv``: the parts, the total, each check's points."""
    outcome = marks.outcome
    return {
        "student": outcome.student,
        "assignment": outcome.assignment,
        **parts(marks),
        "autograded_max": marks.autograded_max,
        "manual_max": marks.manual_max,
        "late_penalty": marks.late_penalty,
        "total": marks.total,
        "max": marks.max,
        **{check.name: check.points for check in outcome.checks},
    }


def read(path: Path):
    """The table in ``path`` (student and assignment names as text), None without one."""
    import pandas as pd

    if not path.is_file():
        return None
    return pd.read_csv(path, dtype=KEYS, keep_default_na=False)


def table(marks: list[Marks], earlier=None):
    """The rows of ``marks``, in place of theirs in the ``earlier`` table (from :func:`read`)."""
    import pandas as pd

    frame = pd.DataFrame([row(m) for m in marks], columns=None if marks else COLUMNS)
    if earlier is not None:
        replaced = set(zip(frame["student"], frame["assignment"], strict=True))
        keys = zip(earlier["student"], earlier["assignment"], strict=True)
        kept = earlier[[key not in replaced for key in keys]]
        if len(kept):
            frame = pd.concat([kept, frame], ignore_index=True) if len(frame) else kept
    frame = frame.sort_values(["assignment", "student"])
    return frame.reindex(columns=[*COLUMNS, *(c for c in frame.columns if c not in COLUMNS)])


def export_table(
    gradebook, results: Results, policy, assignments: list[str], students: list[str]
) -> list[dict]:
    """nbgrader export's rows (every student of the gradebook), with the course's columns."""
    rows = []
    for assignment in gradebook.assignments:
        if assignments and assignment.name not in assignments:
            continue
        for student in gradebook.students:
            if students and student.id not in students:
                continue
            rows.append(
                {
                    "assignment": assignment.name,
                    "duedate": assignment.duedate or "",
                    "student_id": student.id,
                    "last_name": student.last_name or "",
                    "first_name": student.first_name or "",
                    "email": student.email or "",
                    **_scores(gradebook, results, policy, assignment, student.id),
                }
            )
    return rows


def _scores(gradebook, results: Results, policy, assignment, student: str) -> dict:
    try:
        submission = gradebook.find_submission(assignment.name, student)
    except MissingEntry:
        return {
            "status": "not submitted",
            "raw_score": 0.0,
            "late_submission_penalty": 0.0,
            "score": 0.0,
            "max_score": assignment.max_score,
        }
    outcome = Outcome.read(results.grading_file(student, assignment.name))
    if outcome is None:  # graded by other means: nbgrader's own numbers
        penalty = submission.late_submission_penalty
        return {
            "status": "not graded by rnn-course",
            "timestamp": submission.timestamp or "",
            "raw_score": submission.score,
            "late_submission_penalty": penalty,
            "score": max(0.0, submission.score - penalty),
            "max_score": assignment.max_score,
        }
    marks = settle(gradebook, outcome, policy)
    return {
        **parts(marks),
        "raw_score": marks.total + marks.late_penalty,
        "late_submission_penalty": marks.late_penalty,
        "score": marks.total,
        "max_score": marks.max,
    }


class GradesExport(ExportPlugin):
    """``nbgrader export``: nbgrader's CSV, with each submission's status and parts."""

    def export(self, gradebook) -> None:
        import pandas as pd
        from sqlalchemy.engine import make_url

        from autograder.term.late import LatePolicy

        database = make_url(self.parent.coursedir.db_url).database  # the records lie beside it
        results = Results(Path(database).parent if database else Path(self.parent.coursedir.root))
        rows = export_table(
            gradebook,
            results,
            LatePolicy(parent=self),
            [str(name) for name in self.assignment],
            [str(name) for name in self.student],
        )
        destination = self.to or "grades.csv"
        self.log.info("Exporting grades to %s", destination)
        pd.DataFrame(rows, columns=EXPORT_COLUMNS).to_csv(destination, index=False)
