"""Batch: what a rerun regrades, and a dying worker failing only its own submission."""

from __future__ import annotations

import json
from pathlib import Path

from autograder import batch, record
from autograder.course import Results
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
