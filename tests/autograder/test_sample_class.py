"""The sample class of assignment 1, graded end to end by ``rnn-course grade``.

Eight golden submissions (``tests/files/make_sample_class.py``): the reference,
a weak but honest one, the empty release, one that raises, one that loops, one
that exhausts memory, a corrupted file and a hostile one. The batch must finish
with each one's expected score and message, and nothing may leak or escape.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from sample_classes import ROOT, SampleClass, needs_data

from assignments import data
from autograder.core import spec as specs
from autograder.core.course import Results

ASSIGNMENT = "a1_imdb_sentiment"
CLASS = SampleClass(ASSIGNMENT, "tests/files/make_sample_class.py")

pytestmark = needs_data


def grade(submissions: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    command = CLASS.command(submissions, out, "--timeout", str(CLASS.timeout_s), *extra)
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def finished(process: subprocess.Popen) -> str:
    output, _ = process.communicate()
    assert process.returncode == 0, output
    return output


def copy_class(target: Path, students: list[str]) -> Path:
    for student in students:
        source = CLASS.submitted / student / ASSIGNMENT
        (target / student / ASSIGNMENT).mkdir(parents=True)
        for path in source.iterdir():
            (target / student / ASSIGNMENT / path.name).write_bytes(path.read_bytes())
    return target


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("class")
    return out, CLASS.grade(out)


def test_sample_class_is_in_sync_with_the_source():
    for path, text in CLASS.generated().items():
        assert path.read_text() == text, f"{path} is stale: run {CLASS.script}"


def test_every_submission_gets_its_expected_score(graded):
    out, output = graded
    grades = pd.read_csv(Results(out).grades_csv).set_index("student")
    assert grades["total"].to_dict() == CLASS.expected
    assert set(grades["autograded_max"]) == {28}
    assert set(grades["max"]) == {35}  # with the points graded by hand
    assert "graded 7, rejected 1, failed 0" in output


def test_weak_submission_loses_exactly_the_accuracy_checks(graded):
    out, _ = graded
    assert CLASS.lost(out, "ben") == {
        f"test_accuracy_{tier}[{cell}]"
        for tier in ("basic", "target")
        for cell in ("simple_rnn", "lstm", "gru")
    }
    message = next(
        c["message"]
        for c in CLASS.outcome(out, "ben")["checks"]
        if c["name"] == "test_accuracy_target[lstm]"
    )
    target = specs.load(ASSIGNMENT).thresholds["accuracy_lstm"]
    assert "accuracy on hidden test reviews is 0." in message
    assert f"target tier {target:.3f}" in message


@pytest.mark.parametrize(
    "student, status, message",
    [
        ("cai", "cell_errors", "raised NotImplementedError"),
        ("dan", "cell_errors", "raised RuntimeError: ran out of time before training"),
        (
            "eve",
            "timeout",
            f"stopped after {3 * CLASS.student_timeouts['eve']} s of wall-clock time",
        ),
        ("fay", "memory", "Memory limit of 8192 MB exceeded"),
        ("gus", "rejected", "a1_imdb_sentiment.ipynb is not valid JSON (line"),
        ("hal", "cell_errors", "URLError"),
    ],
)
def test_failures_are_explained(graded, student, status, message):
    out, _ = graded
    result = CLASS.outcome(out, student)
    assert result["run"]["status"] == status
    assert message in result["message"]
    feedback = (out / "feedback" / student / ASSIGNMENT / "feedback.html").read_text()
    assert message.replace("'", "&#x27;") in feedback
    assert all(c["message"] for c in result["checks"] if c["points"] < c["max_points"])


def test_hostile_submission_reads_and_writes_nothing(graded):
    out, _ = graded
    executed = nbformat.read(out / "autograded" / "hal" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    printed = "".join(  # what the notebook printed, not the grader's report of the checks
        o.get("text", "")
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if not o.get("text", "").startswith("Hidden checks:")
    )
    assert "cannot read" in printed and "check_hidden.py" in printed
    assert "read " not in printed.replace("cannot read", "")
    assert "cannot import autograder" in printed and "cannot import solutions" in printed
    assert "imported" not in printed
    assert "wrote" not in printed
    assert not (ROOT / "autograder" / "hacked.txt").exists()
    assert "cannot write /hacked.txt" in printed
    assert not (data.cache_dir() / "student-view" / ASSIGNMENT / "hacked.txt").exists()


def test_feedback_shows_no_hidden_source_and_has_curves(graded):
    out, _ = graded
    for page, shown in CLASS.hidden_lines_shown(out).items():
        assert not shown, page
    assert (
        "data:image/png;base64,"
        in (out / "feedback/ada" / ASSIGNMENT / "feedback.html").read_text()
    )


def test_gradebook_and_gradescope_results(graded):
    from nbgrader.api import Gradebook

    out, _ = graded
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gradebook:
        assert gradebook.find_grade("test_accuracy", ASSIGNMENT, ASSIGNMENT, "ada").score == 21
        assert gradebook.find_grade("report", ASSIGNMENT, ASSIGNMENT, "ada").needs_manual_grade
        assert gradebook.find_submission(ASSIGNMENT, "ben").score == CLASS.expected["ben"]
        assert len(gradebook.find_assignment(ASSIGNMENT).submissions) == 8
    results = json.loads((out / "autograded/ben" / ASSIGNMENT / "results.json").read_text())
    by_hand = [test for test in results["tests"] if test["name"].startswith("Graded by hand")]
    assert results["score"] == CLASS.expected["ben"]
    assert len(results["tests"]) - len(by_hand) == len(CLASS.outcome(out, "ben")["checks"])
    assert sum(test["max_score"] for test in by_hand) == 7  # not graded yet: 0 of 7
    assert {test["output"] for test in by_hand} == {"not graded yet"}


def test_regrading_gives_identical_results(graded, tmp_path):
    out, _ = graded
    again = tmp_path / "again"
    finished(grade(copy_class(tmp_path / "subs", ["ben", "dan"]), again, "--jobs", "2"))
    for student in ("ben", "dan"):
        assert CLASS.outcome(again, student)["checks"] == CLASS.outcome(out, student)["checks"]


def test_killed_batch_resumes_without_loss(tmp_path):
    students = ["cai", "dan", "gus", "hal"]
    submissions, out = copy_class(tmp_path / "subs", students), tmp_path / "out"
    process = grade(submissions, out, "--jobs", "1", start_new_session=True)
    first = out / "autograded" / "cai" / ASSIGNMENT / "grading.json"
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert first.exists()
    recorded_before = first.read_text()
    output = finished(grade(submissions, out, "--jobs", "1"))
    assert "skipped (already graded) 1" in output or "skipped (already graded) 2" in output
    assert first.read_text() == recorded_before
    grades = pd.read_csv(Results(out).grades_csv)
    assert sorted(grades["student"]) == students
    assert grades.set_index("student")["total"].to_dict() == {
        s: CLASS.expected[s] for s in students
    }


def test_dask_local_cluster_grades_like_the_pool(tmp_path):
    submissions, out = copy_class(tmp_path / "subs", ["cai", "gus"]), tmp_path / "out"
    output = finished(grade(submissions, out, "--scheduler", "local", "--jobs", "1"))
    assert "graded 1, rejected 1, failed 0" in output
    assert (
        CLASS.outcome(out, "cai")["score"] == 0
        and CLASS.outcome(out, "gus")["status"] == "rejected"
    )
