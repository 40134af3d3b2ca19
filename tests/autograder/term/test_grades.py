"""Grade tables: grades_by_check.csv and `nbgrader export` give the same totals and statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from nbgrader.api import Gradebook
from test_gradebook import hand_grade, notebook, submit

from autograder.core.course import Course, Results
from autograder.grading import record
from autograder.term import gradebook, late

TOY_CONFIG = Path(__file__).resolve().parents[2] / "files" / "toy_course" / "nbgrader_config.py"
LATE_POLICY = """
c.LatePolicy.duedates = {"toy": "2025-03-01 12:00:00 UTC"}
c.LatePolicy.penalty_method = "per_hour"
c.LatePolicy.points = 1
"""


def test_every_export_says_the_same_total_and_status(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    (root / "nbgrader_config.py").write_text(TOY_CONFIG.read_text() + LATE_POLICY)
    course, results = Course(root), Results(root)
    policy = late.policy(course)
    source = notebook(root / "source" / "toy" / "toy.ipynb", "YOUR ANSWER HERE")
    gradebook.register_assignment(results, "toy", source, policy.duedate("toy"))
    on_time, an_hour_late = "2025-03-01 11:00:00", "2025-03-01 12:30:00"
    for outcome in (
        submit(tmp_path, "alice", timestamp=on_time),
        submit(tmp_path, "bob", passed=False, timestamp=an_hour_late),
        submit(tmp_path, "dave", status="rejected", timestamp=on_time),
    ):
        record.record(results, outcome, source, policy)
    hand_grade(results, "alice", 3.0, "")
    with Gradebook(results.db_url) as book:
        book.update_or_create_student("zoe")  # enrolled, never submitted
    record.merge(results, "toy", source, policy)

    ours = pd.read_csv(results.grades_csv).set_index("student")
    subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--to", "exported.csv"],
        cwd=root,
        check=True,
        capture_output=True,
    )
    theirs = pd.read_csv(root / "exported.csv").set_index("student_id")

    assert ours.loc["alice", ["autograded", "manual", "total", "max"]].tolist() == [3, 3, 6, 7]
    assert ours.loc["bob", ["late_penalty", "total", "needs_manual_grade"]].tolist() == [1, 0, True]
    assert ours.loc["dave", ["status", "total"]].tolist() == ["rejected", 0]
    for student in ("alice", "bob", "dave"):
        assert theirs.loc[student, "score"] == ours.loc[student, "total"]
        assert theirs.loc[student, "max_score"] == ours.loc[student, "max"] == 7
        assert theirs.loc[student, "status"] == ours.loc[student, "status"]
    assert theirs.loc["bob", ["raw_score", "late_submission_penalty"]].tolist() == [1, 1]
    assert theirs.loc["zoe", ["status", "score", "max_score"]].tolist() == ["not submitted", 0, 7]


def write_rows(folder: Path, assignment: str, students: list[str], start) -> None:
    """A grading run's writes of the grades CSV, one submission at a time, on a slow disk."""
    import time

    from autograder.core.results import Outcome
    from autograder.term import grades
    from autograder.term.gradebook import Marks

    read = grades.read

    def slow_read(path):
        table = read(path)
        time.sleep(0.2)  # the other run reads the same file meanwhile, unless it waits
        return table

    grades.read = slow_read
    start.wait()
    for student in students:
        outcome = Outcome(student, assignment, "digest", "graded")
        record.write_grades_csv(Results(folder), [Marks(outcome, 4.0, 0.0)])


def test_two_runs_writing_the_grades_csv_at_once_lose_no_row(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    classes = {
        "a1": [f"a1-student-{n}" for n in range(4)],
        "a3": [f"a3-student-{n}" for n in range(4)],
    }
    runs = [
        context.Process(target=write_rows, args=(tmp_path, assignment, students, start))
        for assignment, students in classes.items()
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert [run.exitcode for run in runs] == [0, 0]
    table = pd.read_csv(tmp_path / "grades_by_check.csv")
    rows = sorted(zip(table["assignment"], table["student"], strict=True))
    assert rows == sorted((a, s) for a, students in classes.items() for s in students)
