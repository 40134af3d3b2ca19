"""Grade tables: grades_by_check.csv and `nbgrader export` give the same totals and statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from nbgrader.api import Gradebook
from test_gradebook import hand_grade, notebook, submit

from autograder import gradebook, late, record
from autograder.course import Course, Results

TOY_CONFIG = Path(__file__).resolve().parents[1] / "files" / "toy_course" / "nbgrader_config.py"
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
