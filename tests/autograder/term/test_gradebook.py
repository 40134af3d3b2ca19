"""The gradebook round trip: check messages, hand grades kept or cleared, times and penalties."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.core.course import Results
from autograder.core.results import CheckResult, Outcome
from autograder.grading import record
from autograder.term import gradebook
from autograder.term.late import LatePolicy

NO_PENALTY = LatePolicy()
ANSWER = "The LSTM beat the SimpleRNN: its gates keep the gradient."


def notebook(path, report=ANSWER):
    """A graded notebook: an autograded test cell (3 points), a hand-graded report (4)."""
    cells = [
        nbformat.v4.new_code_cell("assert x == 1"),
        nbformat.v4.new_markdown_cell(report),
    ]
    cells[0].metadata["nbgrader"] = {
        "schema_version": 3,
        "grade_id": "test_x",
        "grade": True,
        "solution": False,
        "locked": True,
        "points": 3,
    }
    cells[1].metadata["nbgrader"] = {
        "schema_version": 3,
        "grade_id": "report",
        "grade": True,
        "solution": True,
        "locked": False,
        "points": 4,
    }
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A gradebook with the assignment registered, made once (nbgrader takes seconds)."""
    folder = tmp_path_factory.mktemp("registered")
    source = notebook(folder / "source" / "toy.ipynb", "YOUR ANSWER HERE")
    results = Results(folder / "out")
    gradebook.register_assignment(results, "toy", source)
    return results.gradebook, source


@pytest.fixture
def course(tmp_path, registered):
    """(results, source notebook): a copy of the registered gradebook."""
    database, source = registered
    results = Results(tmp_path / "out")
    results.root.mkdir()
    shutil.copy(database, results.gradebook)
    return results, source


def submit(tmp_path, student, report=ANSWER, passed=True, status="graded", timestamp=None):
    """An outcome whose kept notebook has ``report`` as the written answer."""
    executed = notebook(tmp_path / "runs" / student / "toy.ipynb", report)
    judged = status != "rejected"  # a rejected submission fails every check
    return Outcome(
        student=student,
        assignment="toy",
        digest=report,
        status=status,
        message="" if status == "graded" else "The submission could not be graded: too large",
        checks=[
            CheckResult("test_one", "x is one", "test_x", 2.0, 2.0 * (passed and judged), "x is 2"),
            CheckResult("test_int", "x is an int", "test_x", 1.0, 1.0 * judged, ""),
        ],
        timestamp=timestamp,
        answers=gradebook.answers(executed) if judged else {},
        executed=executed if judged else None,
    )


def hand_grade(results, student, points, comment):
    """What a grader does in formgrader: a score and a comment on the report."""
    with Gradebook(results.db_url) as book:
        grade = book.find_grade("report", "toy", "toy", student)
        grade.manual_score, grade.needs_manual_grade = points, False
        book.find_comment("report", "toy", "toy", student).manual_comment = comment
        book.db.commit()


def report_grade(results, student):
    with Gradebook(results.db_url) as book:
        grade = book.find_grade("report", "toy", "toy", student)
        return grade.manual_score, grade.needs_manual_grade


def test_check_messages_are_the_auto_comment_of_their_cell(tmp_path, course):
    results, source = course
    record.record(results, submit(tmp_path, "bob", passed=False), source, NO_PENALTY)
    with Gradebook(results.db_url) as book:
        notebook = book.find_submission_notebook("toy", "toy", "bob")
        comments = {comment.name: comment.auto_comment for comment in notebook.comments}
    assert comments["test_x"] == "x is one: 0 / 2. x is 2\nx is an int: 1 / 1"
    assert comments["report"] is None  # the hand grader's


def test_a_regrade_keeps_the_hand_grade_of_an_unchanged_answer(tmp_path, course):
    results, source = course
    record.record(results, submit(tmp_path, "alice"), source, NO_PENALTY)
    hand_grade(results, "alice", 3.0, "Good, but say why.")
    change = record.record(results, submit(tmp_path, "alice", passed=False), source, NO_PENALTY)
    assert report_grade(results, "alice") == (3.0, False)
    assert change.old == 6 and change.new == 4 and change.why == "test_one 2 -> 0"
    marks = record.restore(results, record.recorded(results, "alice", "toy"), source, NO_PENALTY)
    assert [(g.cell, g.points, g.comment) for g in marks.hand_grades] == [
        ("report", 3.0, "Good, but say why.")
    ]


def test_a_changed_answer_needs_grading_by_hand_again(tmp_path, course):
    results, source = course
    record.record(results, submit(tmp_path, "alice"), source, NO_PENALTY)
    hand_grade(results, "alice", 3.0, "Good.")
    change = record.record(results, submit(tmp_path, "alice", "Rewritten."), source, NO_PENALTY)
    assert report_grade(results, "alice") == (None, True)
    assert change.old == 6 and change.new == 3
    assert change.why == "hand grade of 'report' (3) cleared: the answer changed"


def test_a_rerun_leaves_hand_grading_alone(tmp_path, course):
    results, source = course
    record.record(results, submit(tmp_path, "alice"), source, NO_PENALTY)
    record.restore(results, record.recorded(results, "alice", "toy"), source, NO_PENALTY)
    assert report_grade(results, "alice") == (None, True)
    hand_grade(results, "alice", 4.0, "")
    record.restore(results, record.recorded(results, "alice", "toy"), source, NO_PENALTY)
    assert report_grade(results, "alice") == (4.0, False)


def test_a_rejected_submission_scores_zero_everywhere(tmp_path, course):
    results, source = course
    record.record(results, submit(tmp_path, "dave"), source, NO_PENALTY)
    hand_grade(results, "dave", 4.0, "")
    rejected = submit(tmp_path, "dave", status="rejected")
    change = record.record(results, rejected, source, NO_PENALTY)
    assert report_grade(results, "dave") == (None, False)
    assert not (results.autograded("dave", "toy") / "toy.ipynb").exists()
    assert (
        change.old == 7
        and change.new == 0
        and change.why.startswith("graded -> rejected: The submission could")
    )
    with Gradebook(results.db_url) as book:
        assert book.find_grade("report", "toy", "toy", "dave").score == 0
        assert not book.find_submission("toy", "dave").needs_manual_grade


def test_time_due_date_and_late_penalty_reach_the_gradebook(tmp_path, course):
    results, source = course
    policy = LatePolicy(
        duedates={"toy": "2025-03-01 12:00:00 UTC"}, penalty_method="per_day", points=2
    )
    gradebook.register_assignment(results, "toy", source, policy.duedate("toy"))
    late = submit(tmp_path, "carol", timestamp="2025-03-02 14:30:00")  # 1 d 2 h 30 min late
    record.record(results, late, source, policy)
    with Gradebook(results.db_url) as book:
        submission = book.find_submission("toy", "carol")
        assert submission.timestamp.isoformat() == "2025-03-02T14:30:00"
        assert submission.late_submission_penalty == 3.0  # 2 started days, capped at the score
        marks = gradebook.settle(book, record.recorded(results, "carol", "toy"), policy)
    assert marks.late.points == -3.0 and marks.total == 0 and marks.max == 7
    assert marks.late.reason.startswith("submitted 1 d 2 h late (due 2025-03-01 12:00 UTC")
    hand_grade(results, "carol", 4.0, "")
    marks = record.restore(results, record.recorded(results, "carol", "toy"), source, policy)
    assert (marks.total, marks.late_penalty) == (3.0, 4.0)
    page = (results.feedback("carol", "toy") / "feedback.html").read_text()
    assert "<h1>toy: 3 / 7</h1>" in page and "-4 points: submitted 1 d 2 h late" in page


def test_an_autograded_cell_rescored_in_formgrader_is_an_adjustment(tmp_path, course):
    results, source = course
    record.record(results, submit(tmp_path, "erin", passed=False), source, NO_PENALTY)
    with Gradebook(results.db_url) as book:
        book.find_grade("test_x", "toy", "toy", "erin").manual_score = 2.5
        book.db.commit()
    marks = record.restore(results, record.recorded(results, "erin", "toy"), source, NO_PENALTY)
    assert [(a.reason, a.points) for a in marks.overrides] == [
        ("'test_x' rescored by hand: 1 -> 2.5", 1.5)
    ]
    assert marks.total == 2.5
