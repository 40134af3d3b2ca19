"""Review: withheld points stay out of the total until the instructor releases them."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from test_record import NO_PENALTY, outcome, toy_notebook

from autograder.core.course import Results
from autograder.core.results import CheckResult
from autograder.grading import record
from autograder.term import gradebook, report, review
from autograder.term.runlog import RunLog

REASON = "accuracy 0.990 on the hidden data against visible test reviews 0.850"


def flagged(student="alice", digest="abc"):
    """An outcome whose 5-point metric check passed but waits for review."""
    held = CheckResult(
        name="test_accuracy",
        title="accuracy on hidden reviews",
        grade_cell="test_x",
        max_points=5.0,
        points=0.0,
        message=f"{review.WITHHELD}: {REASON}. accuracy 0.990",
        withheld=5.0,
        review=REASON,
    )
    judged = outcome(student)
    return dataclasses.replace(judged, digest=digest, checks=[*judged.checks, held])


@pytest.fixture
def source(tmp_path):
    return toy_notebook(tmp_path)


def total(out: Results, student: str) -> float:
    return pd.read_csv(out.grades_csv).set_index("student").loc[student, "autograded"]


def test_withheld_points_count_only_after_release(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, flagged(), source, NO_PENALTY)
    assert total(out, "alice") == 3.0
    page = (out.feedback("alice", "toy") / "feedback.html").read_text()
    assert "5 point(s) of your score are withheld until the instructor has reviewed" in page
    assert REASON in page
    [(waiting, decision)] = review.waiting(out, "toy")
    assert waiting.student == "alice" and decision is None

    review.decide(out, waiting, released=True, note="looked at the notebook")
    record.merge(out, "toy", source, NO_PENALTY, ["alice"])
    assert total(out, "alice") == 8.0
    results = json.loads((out.autograded("alice", "toy") / "results.json").read_text())
    assert results["score"] == 8.0
    [released] = [test for test in results["tests"] if test["name"] == "accuracy on hidden reviews"]
    assert released["score"] == 5.0 and released["output"].startswith(review.RELEASED)


def test_the_decision_holds_across_regrades_of_the_same_submission_only(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, flagged(), source, NO_PENALTY)
    review.decide(out, flagged(), released=True)
    record.record(out, flagged(), source, NO_PENALTY)  # regraded, unchanged: still released
    assert total(out, "alice") == 8.0
    record.record(out, flagged(digest="new"), source, NO_PENALTY)  # resubmitted: reviewed anew
    assert total(out, "alice") == 3.0
    assert review.waiting(out, "toy")[0][1] is None


def test_a_kept_decision_leaves_the_points_withheld(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, flagged(), source, NO_PENALTY)
    review.decide(out, flagged(), released=False, note="trained on the test reviews")
    record.merge(out, "toy", source, NO_PENALTY, ["alice"])
    assert total(out, "alice") == 3.0
    assert review.waiting(out, "toy")[0][1].note == "trained on the test reviews"


def test_the_run_log_lists_withheld_points_and_files_left_out(tmp_path):
    log = RunLog.start(Results(tmp_path), "toy", "settings")
    note = "left out 1 submitted file(s) (data/tail.txt): only the notebook enters the run"
    log.outcome(dataclasses.replace(flagged(), notes=["restored locked cell 'x'", note]))
    log.close()
    text = log.path.read_text()
    assert "alice 3 / 8, 5 point(s) withheld for review in" in text
    assert f"alice: {note}" in text and "restored locked cell" not in text


def test_the_class_report_lists_withheld_points_and_signals(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, flagged("alice"), source, NO_PENALTY)
    signal = "the submitted files hold runs of 12 or more words of the hidden data: x.txt (9)"
    record.record(out, dataclasses.replace(outcome("bob"), signals=[signal]), source, NO_PENALTY)
    record.record(out, outcome("carol"), source, NO_PENALTY)
    review.decide(out, flagged("alice"), released=True)
    table = report.held_for_review(report.load_record(out, "toy"), out, "toy")
    assert table.to_dict("records") == [
        {"student": "alice", "withheld": 5.0, "decision": "released", "review": REASON},
        {"student": "bob", "withheld": 0.0, "decision": "", "review": signal},
    ]
