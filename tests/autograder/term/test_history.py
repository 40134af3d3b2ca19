"""Regrading: the previous result is kept, and a change says which checks moved."""

from __future__ import annotations

import json

from autograder.core.course import Results
from autograder.core.results import CheckResult, Outcome
from autograder.term import history
from autograder.term.feedback import HandGrade


def outcome(status="graded", mae=2.0, export=1.0, message="") -> Outcome:
    checks = [
        CheckResult("test_mae", "close sums", "test_toy", 2.0, mae, ""),
        CheckResult("test_export", "loads", "test_toy", 1.0, export, ""),
    ]
    return Outcome("ann", "toy", "d", status, message=message, checks=checks)


def test_a_change_names_the_checks_that_moved():
    change = history.change(outcome(), outcome(mae=0.0), 3, 1, [])
    assert (change.old, change.new, change.why) == (3, 1, "test_mae 2 -> 0")
    assert history.change(outcome(), outcome(), 3, 3, []) is None


def test_a_change_says_the_new_status_and_cleared_hand_grades():
    rejected = outcome("rejected", 0.0, 0.0, "The submission could not be graded: 9 MB")
    change = history.change(outcome(), rejected, 7, 0, [HandGrade("report", 4, 4.0)])
    assert change.why == (
        "graded -> rejected: The submission could not be graded: 9 MB; test_mae 2 -> 0; "
        "test_export 1 -> 0; hand grade of 'report' (4) cleared: the answer changed"
    )
    assert "hand grade of 'report'" in history.table([change])


def test_each_replaced_result_is_kept(tmp_path):
    results = Results(tmp_path)
    history.keep(results, "ann", "toy")  # nothing recorded yet: nothing to keep
    assert not results.history("ann", "toy").exists()
    results.grading_file("ann", "toy").parent.mkdir(parents=True)
    for score in (1.0, 2.0):
        results.grading_file("ann", "toy").write_text(json.dumps({"score": score}))
        history.keep(results, "ann", "toy")
    kept = sorted(results.history("ann", "toy").iterdir())
    assert [json.loads(path.read_text())["score"] for path in kept] == [1.0, 2.0]
