"""Batch: what a rerun regrades, a dying worker failing only its own submission, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.core.course import Results
from autograder.core.results import GradingTask, Outcome
from autograder.core.spec import Spec
from autograder.grading import batch, record
from autograder.grading.collect import Submission
from autograder.term import gradebook
from autograder.term.late import LatePolicy

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
    from autograder.core.course import Course
    from autograder.core.results import CheckResult
    from autograder.grading.collect import digest

    course = tmp_path / "course"
    shutil.copytree(Path(__file__).resolve().parents[2] / "files" / "toy_course", course)
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


# --------------------------------------------------------------------------- Ctrl-C


def sleepy(task: GradingTask) -> Outcome:
    """A stand-in worker: bob's submission takes a while, and says when it starts and ends."""
    import time

    (task.work.parent / f"{task.student}.started").touch()
    if task.student == "bob":
        time.sleep(3)
        (task.work.parent / "bob.finished").touch()
    return Outcome.of(task, "graded", {"status": "ok"})


def test_stopping_the_batch_ends_the_running_and_queued_work_at_once(tmp_path):
    import time

    tasks = [
        GradingTask(TOY, name, tmp_path, "d", tmp_path / "toy.ipynb", tmp_path / name)
        for name in ("alice", "bob", "carol")
    ]
    outcomes = batch._execute(tasks, 1, None, worker=sleepy)
    assert next(outcomes)[0].student == "alice"
    while not (tmp_path / "bob.started").exists():
        time.sleep(0.05)
    outcomes.close()  # what Ctrl-C does to the run
    time.sleep(4)  # longer than bob's submission would take, had its worker been left running
    assert not (tmp_path / "bob.finished").exists()
    assert not (tmp_path / "carol.started").exists()


@pytest.fixture
def toy_class(tmp_path) -> Path:
    """The toy course, released, with the release notebook submitted by alice and bob."""
    import shutil

    from autograder import cli

    course = tmp_path / "course"
    shutil.copytree(Path(__file__).resolve().parents[2] / "files" / "toy_course", course)
    assert cli.main(["--course", str(course), "release", "toy_sum"]) == 0
    for student in ("alice", "bob"):
        folder = course / "submitted" / student / "toy_sum"
        folder.mkdir(parents=True)
        shutil.copy(course / "release" / "toy_sum" / "toy_sum.ipynb", folder)
    return course


def judged_then(stop: bool, message: str = "ok"):
    """A stand-in for the workers: alice is judged with ``message``, then bob, or Ctrl-C."""
    from autograder.core.results import CheckResult

    def execute(tasks, jobs, scheduler, worker=None):
        for task in tasks:
            if stop and task.student == "bob":
                raise KeyboardInterrupt
            check = CheckResult("test_add_one", "add_one(2) is 3", "test_toy", 1.0, 0.0, message)
            yield task, Outcome.of(task, "graded", {"status": "ok"}, checks=[check])

    return execute


def test_ctrl_c_says_what_is_recorded_and_exits_130(toy_class, monkeypatch, capsys):
    from autograder import cli

    monkeypatch.setattr(batch, "_execute", judged_then(stop=True))
    try:
        code = cli.main(
            ["--course", str(toy_class), "grade", "toy_sum", "--no-execute", "--no-progress"]
        )
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command as a traceback")
    assert code == 130
    error = capsys.readouterr().err.strip()
    assert error == (
        "rnn-course: interrupted: 1 of the 2 submission(s) to grade were recorded; "
        "run the same command again to grade the other 1 (it resumes)"
    )
    assert record.recorded(Results(toy_class), "alice", "toy_sum") is not None
    (log,) = (toy_class / "logs").glob("toy_sum-*.log")
    assert "stopped  interrupted: 1 of the 2" in log.read_text()


def test_text_that_is_not_unicode_in_a_message_cannot_stop_the_recording(toy_class, monkeypatch):
    """What student code raised reaches the messages; an unpaired surrogate there is escaped."""
    import pandas as pd

    from autograder.core.course import Course

    monkeypatch.setattr(batch, "_execute", judged_then(stop=False, message="raised '\udcff'"))
    course = Course(toy_class)
    results = Results(toy_class)
    spec = course.spec("toy_sum")
    summary = batch.run_batch(spec, course, toy_class / "submitted", results, progress=False)
    assert summary.graded == ["alice", "bob"]
    assert len(pd.read_csv(results.grades_csv)) == 2
    page = (results.feedback("alice", "toy_sum") / "feedback.html").read_text()
    assert "raised &#x27;\\udcff&#x27;" in page or "raised '\\udcff'" in page


@pytest.mark.parametrize(
    "history", ["[1, 2]", "5", '{"rnn": {"loss": [null, {}]}}', "[" * 5000 + "]" * 5000]
)
def test_a_history_of_any_shape_leaves_the_page_without_curves(tmp_path, history):
    """The learning curves are drawn from student data: a bad file draws none, and fails nothing."""
    from autograder.core.course import Course, Judged

    spec = Course(Path(__file__).resolve().parents[2] / "files" / "toy_course").spec("toy_sum")
    judged = Judged(tmp_path)
    path = judged.artifact(spec.artifact_paths[spec.curves.artifact])
    path.parent.mkdir(parents=True)
    path.write_text(history)
    assert batch._learning_curves(spec, judged) is None
