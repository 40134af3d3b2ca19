"""Batch: what a rerun regrades, and a dying worker failing only its own submission."""

from __future__ import annotations

import json
from pathlib import Path

from autograder import batch, gradebook, record
from autograder.course import Results
from autograder.late import LatePolicy
from autograder.spec import Spec
from autograder.submissions import Submission
from autograder.task import GradingTask, Outcome

TOY = Spec(id="toy", title="Toy", notebook="toy.ipynb", folder=Path("/nonexistent"))


def test_pending_regrades_only_new_changed_or_failed(tmp_path):
    out = Results(tmp_path / "out")
    subs = [
        Submission(name, tmp_path, digest)
        for name, digest in [("same", "d1"), ("changed", "d2"), ("failed", "d3"), ("new", "d4")]
    ]
    for student, digest, status in [
        ("same", "d1", "graded"),
        ("changed", "old", "graded"),
        ("failed", "d3", "failed"),
    ]:
        outcome = Outcome(student=student, assignment="toy", digest=digest, status=status)
        record.atomic_write(out.grading_file(student, "toy"), json.dumps(outcome.to_json()))
    todo, done = batch.pending(TOY, subs, out, force=False)
    assert [s.student for s in todo] == ["changed", "failed", "new"]
    assert [s.student for s in done] == ["same"]
    todo, done = batch.pending(TOY, subs, out, force=True)
    assert len(todo) == 4 and not done


def crash_for_mallory(task: GradingTask) -> Outcome:
    """A stand-in worker that dies (like an out-of-memory kill) on one student's task."""
    import os

    if task.student == "mallory":
        os._exit(1)
    return Outcome.of(task, "graded", {"status": "ok"})


def test_a_dying_worker_fails_only_its_own_submission(tmp_path):
    tasks = [
        GradingTask(TOY, name, tmp_path, "d", tmp_path / "toy.ipynb", tmp_path / name)
        for name in ("alice", "mallory", "bob", "carol")
    ]
    results = {
        task.student: outcome.status
        for task, outcome in batch._execute(tasks, 2, None, worker=crash_for_mallory)
    }
    assert results == {"alice": "graded", "bob": "graded", "carol": "graded", "mallory": "failed"}


def test_a_resumed_run_rebuilds_the_class_files_from_the_records(tmp_path):
    import shutil

    import pandas as pd

    from autograder import cli
    from autograder.course import Course
    from autograder.judge import CheckResult
    from autograder.submissions import digest

    course = tmp_path / "course"
    shutil.copytree(Path(__file__).resolve().parents[1] / "files" / "toy_course", course)
    assert cli.main(["--course", str(course), "release", "toy_sum"]) == 0
    course_ = Course(course)
    spec = course_.spec("toy_sum")
    folder = course / "submitted" / "alice" / "toy_sum"
    folder.mkdir(parents=True)
    (folder / "toy_sum.ipynb").write_text("{}")
    results = Results(course)
    source = course_.source_notebook(spec)
    gradebook.register_assignment(results, "toy_sum", source)
    check = CheckResult("test_mae", "close", "test_toy", 2.0, 2.0, "")
    outcome = Outcome("alice", "toy_sum", digest(folder, 1 << 30)[0], "graded", checks=[check])
    record.record(results, outcome, source, LatePolicy())
    # a crash between two writes: the CSV lost its row, the feedback page is gone
    results.grades_csv.write_text("student,assignment,status,total,max\n")
    (results.feedback("alice", "toy_sum") / "feedback.html").unlink()

    summary = batch.run_batch(spec, course_, course / "submitted", results, progress=False)
    assert summary.skipped == ["alice"] and not summary.graded
    assert pd.read_csv(results.grades_csv).set_index("student")["total"].to_dict() == {"alice": 2}
    assert (results.feedback("alice", "toy_sum") / "feedback.html").is_file()
