"""Stage 4, record (trusted): graded notebook, gradebook, feedback, results.json, grades CSV.

Everything a grading run writes lives under one output folder (by default the
course folder), in nbgrader's layout (:class:`autograder.core.course.Results`).
Each file is written atomically (a temporary file renamed into place) as soon
as a submission is judged, so a killed batch loses nothing it had recorded.

The feedback page, ``results.json`` and the CSV row come from the submission's
:class:`autograder.term.gradebook.Marks`: its checks and what the gradebook adds (hand
grades from formgrader, the late penalty). :func:`restore` writes them again
(``rnn-course feedback`` after hand grading). The page is written beside the graded
notebook too, from where nbgrader's ``generate_feedback``, which empties the
feedback folder it writes, copies it back.

The outcome and the graded notebook are also kept under ``.records/<student>/<id>/``,
which no nbgrader command deletes: :func:`recover` puts back a record whose files in
``autograded/`` have gone, and names the students whose record is lost.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.core.course import Results
from autograder.core.results import Outcome
from autograder.term import gradebook, history, review
from autograder.term.feedback import feedback_html
from autograder.term.gradebook import Marks


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(partial, path)


def recorded(results: Results, student: str, assignment_id: str) -> Outcome | None:
    """The outcome recorded earlier for this student, if any."""
    return Outcome.read(results.grading_file(student, assignment_id))


def record(
    results: Results, outcome: Outcome, source_notebook: Path, policy
) -> history.Change | None:
    """Write every output of one judged submission; the grading file goes last.

    A regrade keeps the previous record in the history and returns what changed.
    ``policy`` is the course's :class:`autograder.term.late.LatePolicy`.
    """
    from nbgrader.api import MissingEntry

    judged, outcome = outcome, review.applied(results, outcome)
    previous = recorded(results, outcome.student, outcome.assignment)
    notebook = results.autograded(outcome.student, outcome.assignment) / source_notebook.name
    kept = results.kept(outcome.student, outcome.assignment)
    seen = None if outcome.status == "failed" else gradebook.answers(notebook)
    if outcome.executed is not None and outcome.executed.is_file():
        graded = annotated(outcome.executed, gradebook.check_report(outcome))
        for folder in (kept, notebook.parent):
            atomic_write(folder / notebook.name, graded)
    elif outcome.status == "rejected":
        for folder in (kept, notebook.parent):  # formgrader must not show an older submission
            (folder / notebook.name).unlink(missing_ok=True)
    with gradebook.opened(results) as book:
        try:
            earlier = review.applied(results, previous) if previous else None
            old = gradebook.settle(book, earlier, policy).total if earlier else None
        except MissingEntry:
            old = previous.score
        cleared = gradebook.write_scores(book, outcome, source_notebook.stem, seen)
        marks = gradebook.settle(book, outcome, policy)
    write_pages(results, marks)
    history.keep(results, outcome.student, outcome.assignment)
    text = json.dumps(judged.to_json(), indent=2, sort_keys=True)  # decisions apply when read
    atomic_write(kept / results.GRADING_FILE, text)
    atomic_write(results.grading_file(outcome.student, outcome.assignment), text)
    write_grades_csv(results, [marks])
    if previous is None:
        return None
    return history.change(previous, outcome, old, marks.total, cleared)


def restore(results: Results, outcome: Outcome, source_notebook: Path, policy) -> Marks:
    """Write what derives from a recorded outcome and the gradebook; return its marks.

    A resumed run calls it for every submission it does not grade again, so that the
    class-level files always agree with the per-submission records (a run killed
    between two writes loses nothing); ``rnn-course feedback`` calls it to merge the
    hand grades. Hand grades stay as they are.
    """
    outcome = review.applied(results, outcome)
    with gradebook.opened(results) as book:
        gradebook.write_scores(book, outcome, source_notebook.stem, seen=None)
        marks = gradebook.settle(book, outcome, policy)
    write_pages(results, marks)
    return marks


def merge(
    results: Results,
    assignment_id: str,
    source_notebook: Path,
    policy,
    students: Sequence[str] = (),
) -> tuple[list[Marks], list[str]]:
    """Write the pages and rows of the recorded submissions again, hand grades merged.

    Returns their marks and the students whose feedback page was missing (restored).
    """
    outcomes = [
        outcome
        for path in results.grading_files(assignment_id)
        if (outcome := Outcome.read(path)) and (not students or outcome.student in students)
    ]
    missing = [
        outcome.student
        for outcome in outcomes
        if not (results.feedback(outcome.student, assignment_id) / results.FEEDBACK_PAGE).is_file()
    ]
    marks = [restore(results, outcome, source_notebook, policy) for outcome in outcomes]
    write_grades_csv(results, marks)
    return marks, missing


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` found: records put back, and records lost for good."""

    restored: list[str]
    lost: list[str]


def recover(
    results: Results, assignment_id: str, source_notebook: Path, students: Sequence[str] = ()
) -> Recovery:
    """Put back, from the kept copy, each record whose files in ``autograded/`` are gone.

    A record is expected for each submission of the gradebook and each ``grading.json``
    (``students``, when given, limits the search). Its outcome and graded notebook come
    back from ``.records/``; :func:`restore` then writes its pages again (``grade`` and
    :func:`merge` do). A record kept before the copies existed gets its copy now.
    Students with no copy to restore from are listed as lost.
    """
    expected = _submitted(results, assignment_id) | {
        path.parent.parent.name for path in results.grading_files(assignment_id)
    }
    names = (results.GRADING_FILE, source_notebook.name)
    restored, lost = [], []
    for student in sorted(expected):
        if students and student not in students:
            continue
        graded = results.autograded(student, assignment_id)
        kept = results.kept(student, assignment_id)
        if not (kept / results.GRADING_FILE).is_file():
            if (graded / results.GRADING_FILE).is_file():  # recorded before copies were kept
                _copy_missing(graded, kept, names)
            else:
                lost.append(student)
        elif _copy_missing(kept, graded, names):
            restored.append(student)
    return Recovery(restored, lost)


def _copy_missing(source: Path, target: Path, names: Sequence[str]) -> bool:
    """Copy each file of ``names`` that ``source`` has and ``target`` lacks; say if any."""
    missing = [name for name in names if (source / name).is_file() and not (target / name).exists()]
    for name in missing:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target / name)
    return bool(missing)


def _submitted(results: Results, assignment_id: str) -> set[str]:
    """The students with a submission of the assignment in the gradebook (if there is one)."""
    from nbgrader.api import MissingEntry

    if not results.gradebook.is_file():
        return set()
    with gradebook.opened(results) as book:
        try:
            return {s.student.id for s in book.find_assignment(assignment_id).submissions}
        except MissingEntry:
            return set()


def annotated(executed: Path, report: dict[str, str]) -> str:
    """The notebook with each autograded cell's check report added to that cell's output."""
    notebook = nbformat.read(executed, as_version=4)
    for cell in notebook.cells:
        text = report.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if text and cell.cell_type == "code":
            cell.outputs.append(
                nbformat.v4.new_output("stream", name="stdout", text=f"Hidden checks:\n{text}\n")
            )
    return nbformat.writes(notebook)


def write_pages(results: Results, marks: Marks) -> None:
    """The feedback page (in both places) and ``results.json`` of one submission."""
    outcome = marks.outcome
    graded = results.autograded(outcome.student, outcome.assignment)
    atomic_write(graded / "results.json", json.dumps(gradescope_results(marks), indent=2))
    by_hand = any(grade.points is not None for grade in marks.hand_grades)
    page = feedback_html(
        outcome, marks.manual_max, marks.hand_grades if by_hand else None, marks.adjustments
    )
    for folder in (graded, results.feedback(outcome.student, outcome.assignment)):
        atomic_write(folder / results.FEEDBACK_PAGE, page)
    from autograder.term import nbgrader_tools

    nbgrader_tools.mirror_timestamp(results, outcome.student, outcome.assignment, marks.timestamp)


def write_grades_csv(results: Results, marks: list[Marks]) -> None:
    """Put the rows of ``marks`` into the grades CSV (:mod:`autograder.term.grades`).

    The file is read, merged and replaced under its lock (:func:`gradebook.locked`), so
    that concurrent runs keep each other's rows.
    """
    from autograder.term import grades

    with gradebook.locked(results.grades_csv):
        table = grades.table(marks, grades.read(results.grades_csv))
        atomic_write(results.grades_csv, table.to_csv(index=False))


def gradescope_results(marks: Marks) -> dict:
    """The Gradescope autograder ``results.json`` of one submission, hand grades included."""
    outcome = marks.outcome
    tests = [
        {
            "name": check.title,
            "number": check.grade_cell,
            "score": check.points,
            "max_score": check.max_points,
            "output": check.message,
        }
        for check in outcome.checks
    ]
    tests += [
        {
            "name": f"Graded by hand: {grade.cell}",
            "number": grade.cell,
            "score": grade.points or 0,
            "max_score": grade.max_points,
            "output": grade.comment if grade.points is not None else "not graded yet",
        }
        for grade in marks.hand_grades
    ]
    tests += [
        {"name": adjustment.reason, "score": adjustment.points, "max_score": 0, "output": ""}
        for adjustment in marks.adjustments
    ]
    return {
        "score": marks.total,
        "output": "\n".join([outcome.message, *outcome.notes]).strip(),
        "tests": [{**test, "visibility": "visible"} for test in tests],
    }
