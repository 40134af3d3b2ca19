"""nbgrader's gradebook: what grading writes there, and what hand grading adds to it.

Grading writes, per submission: the auto score of each autograded cell (the sum of
its checks) and the checks' messages as that cell's ``auto_comment``; the
submission's time (nbgrader's ``timestamp``). Hand grading in formgrader adds a
``manual_score`` and a comment to each written answer (a cell that is both a
solution and graded), or a score over an autograded cell's. :func:`settle` reads
all of it back as :class:`Marks`, and sets nbgrader's ``late_submission_penalty``.

A regrade keeps a hand grade while the answer is the one the grader saw (the
answer in the autograded notebook formgrader showed); a new or changed answer
needs grading by hand again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import warnings
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import nbformat

from autograder.core.course import Results
from autograder.core.results import Outcome
from autograder.term.feedback import Adjustment, HandGrade


@dataclass(frozen=True)
class Marks:
    """One submission's points in full: its checks, its hand grades and the adjustments."""

    outcome: Outcome
    autograded_max: float
    manual_max: float
    hand_grades: list[HandGrade] = field(default_factory=list)
    overrides: list[Adjustment] = field(default_factory=list)  # autograded cells rescored by hand
    late: Adjustment | None = None
    timestamp: datetime | None = None

    @property
    def autograded(self) -> float:
        return self.outcome.score

    @property
    def manual(self) -> float:
        return sum(grade.points or 0 for grade in self.hand_grades)

    @property
    def adjustments(self) -> list[Adjustment]:
        return [*self.overrides, *([self.late] if self.late else [])]

    @property
    def late_penalty(self) -> float:
        return -self.late.points if self.late and self.late.points else 0.0

    @property
    def total(self) -> float:
        return self.autograded + self.manual + sum(a.points for a in self.adjustments)

    @property
    def max(self) -> float:
        return self.autograded_max + self.manual_max

    @property
    def needs_manual_grade(self) -> bool:
        return any(grade.points is None for grade in self.hand_grades)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock of the shared file ``path`` against every other grading process.

    Two runs (of different assignments, or ``grade`` and ``feedback``) write the same
    gradebook and grades CSV: each read-modify-write holds this lock, an exclusive
    ``flock`` of ``.<name>.lock`` beside the file, so that no run loses another's rows.
    Not re-entrant: a process takes it once at a time.
    """
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def opened(results: Results) -> Iterator:
    """nbgrader's Gradebook of ``results``, locked (:func:`locked`), without SQLAlchemy warnings."""
    with locked(results.gradebook), _gradebook(results) as gradebook:
        yield gradebook


@contextlib.contextmanager
def _gradebook(results: Results) -> Iterator:
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        with Gradebook(results.db_url) as gradebook:
            yield gradebook


def register_assignment(
    results: Results, assignment_id: str, source_notebook: Path, duedate: datetime | None = None
) -> None:
    """Register the assignment (with its due date, if given), notebook and cells (SaveCells)."""
    from nbgrader.preprocessors import SaveCells

    from autograder.core.course import ensure_venv_on_path

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
    with locked(results.gradebook):
        with _gradebook(results) as gradebook:
            gradebook.update_or_create_assignment(
                assignment_id, **({"duedate": duedate} if duedate else {})
            )
        SaveCells().preprocess(notebook, resources)


def answers(notebook: Path) -> dict[str, str]:
    """The digest of each hand-graded answer of ``notebook`` by grade id ({} without one)."""
    try:
        cells = nbformat.read(notebook, as_version=4).cells
    except (OSError, ValueError, AttributeError):
        return {}
    return {
        meta["grade_id"]: hashlib.sha256(cell.source.encode()).hexdigest()
        for cell in cells
        if (meta := cell.get("metadata", {}).get("nbgrader", {})).get("grade")
        and meta.get("solution")
        and "grade_id" in meta
    }


def check_report(outcome: Outcome) -> dict[str, str]:
    """What each autograded cell's checks said: one line per check, by grade id."""
    lines: dict[str, list[str]] = defaultdict(list)
    for check in outcome.checks:
        line = f"{check.title}: {check.points:g} / {check.max_points:g}"
        lines[check.grade_cell].append(f"{line}. {check.message}" if check.message else line)
    heading = [outcome.message] if outcome.status != "graded" and outcome.message else []
    return {cell: "\n".join(heading + rows) for cell, rows in lines.items()}


def write_scores(
    gradebook, outcome: Outcome, notebook_name: str, seen: dict[str, str] | None
) -> list[HandGrade]:
    """Write the outcome's scores, comments and time; return the hand grades it cleared.

    ``seen`` holds the answers the hand grader saw (:func:`answers` of the previous
    autograded notebook); a hand grade whose answer is not the one seen is cleared
    (a rejected submission's answers score 0). ``seen=None`` leaves hand grades alone.
    """
    from nbgrader.api import Comment

    gradebook.update_or_create_student(outcome.student)
    gradebook.update_or_create_submission(
        outcome.assignment,
        outcome.student,
        **({"timestamp": outcome.timestamp} if outcome.timestamp else {}),
    )
    notebook = gradebook.find_submission_notebook(
        notebook_name, outcome.assignment, outcome.student
    )
    by_hand = {cell.name for cell in notebook.notebook.solution_cells}
    scores = cell_scores(outcome)
    report = check_report(outcome)
    comments = {comment.cell_id: comment for comment in notebook.comments}
    cleared = []
    for grade in notebook.grades:
        if grade.name not in by_hand:
            grade.auto_score = scores.get(grade.name, 0.0)
            grade.needs_manual_grade = False
            comment = comments.get(grade.cell_id)
            if comment is None:  # nbgrader makes none for a cell that is no answer
                comment = Comment(cell_id=grade.cell_id, notebook=notebook)
                gradebook.db.add(comment)
            comment.auto_comment = report.get(grade.name, outcome.message) or None
        elif seen is not None and not _same_answer(grade.name, seen, outcome.answers):
            cleared += _clear(grade, rejected=outcome.status == "rejected")
    gradebook.db.commit()
    return cleared


def _same_answer(cell: str, seen: dict[str, str], answers: dict[str, str]) -> bool:
    return seen.get(cell) is not None and seen.get(cell) == answers.get(cell)


def _clear(grade, rejected: bool) -> list[HandGrade]:
    """Clear a hand grade: to grade again, or 0 for a rejected submission."""
    earlier = (
        [HandGrade(grade.name, grade.max_score, grade.manual_score)]
        if grade.manual_score is not None
        else []
    )
    grade.manual_score = grade.extra_credit = None
    grade.auto_score = 0.0 if rejected else None
    grade.needs_manual_grade = not rejected
    return earlier


def cell_scores(outcome: Outcome) -> dict[str, float]:
    scores: dict[str, float] = defaultdict(float)
    for check in outcome.checks:
        scores[check.grade_cell] += check.points
    return dict(scores)


def settle(gradebook, outcome: Outcome, policy) -> Marks:
    """Read the submission's hand grades, set its late penalty, and return its :class:`Marks`.

    The penalty is ``policy``'s (:class:`autograder.term.late.LatePolicy`) for nbgrader's
    ``total_seconds_late``, at most the points earned, as nbgrader caps it.
    """
    from autograder.term.late import lateness

    submission = gradebook.find_submission(outcome.assignment, outcome.student)
    hand_grades, overrides = [], []
    autograded_max = manual_max = 0.0
    for notebook in submission.notebooks:
        by_hand = {cell.name for cell in notebook.notebook.solution_cells}
        comments = {comment.name: comment.comment for comment in notebook.comments}
        for grade in sorted(notebook.grades, key=lambda grade: grade.name):
            if grade.name in by_hand:
                manual_max += grade.max_score
                points = None if grade.needs_manual_grade else grade.score
                comment = comments.get(grade.name) or ""
                hand_grades.append(HandGrade(grade.name, grade.max_score, points, comment))
                continue
            autograded_max += grade.max_score
            if grade.manual_score is not None or grade.extra_credit:
                auto = grade.auto_score or 0.0
                overrides.append(
                    Adjustment(
                        f"'{grade.name}' rescored by hand: {auto:g} -> {grade.score:g}",
                        grade.score - auto,
                    )
                )
    marks = Marks(outcome, autograded_max, manual_max, hand_grades, overrides)
    seconds = submission.total_seconds_late
    penalty = policy.late_submission_penalty(outcome.student, marks.total, seconds) or 0.0
    penalty = min(max(penalty, 0.0), marks.total)
    for index, notebook in enumerate(submission.notebooks):
        notebook.late_submission_penalty = penalty if index == 0 and penalty else None
    gradebook.db.commit()
    late = None
    if seconds > 0:
        late = Adjustment(
            f"submitted {lateness(seconds)} late (due {submission.duedate:%Y-%m-%d %H:%M} UTC; "
            f"late policy: {policy.describe()})",
            -penalty or 0.0,
        )
    return replace(marks, late=late, timestamp=submission.timestamp)
