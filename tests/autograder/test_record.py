"""Record: nbgrader gradebook, grades CSV, Gradescope results and feedback pages."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder import feedback, record
from autograder.course import Results
from autograder.judge import CheckResult
from autograder.spec import Curves
from autograder.task import Outcome

CURVES = Curves("history", ("loss", "accuracy"))


def graded_cell(source, cell_type="code", **meta):
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, **meta}
    return cell


@pytest.fixture
def source(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        graded_cell(
            "### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
            grade_id="answer",
            solution=True,
            grade=False,
            locked=False,
        ),
        graded_cell(
            "assert x == 1", grade_id="test_x", grade=True, solution=False, locked=True, points=3
        ),
        graded_cell(
            "Report here",
            "markdown",
            grade_id="report",
            grade=True,
            solution=True,
            locked=False,
            points=4,
        ),
    ]
    path = tmp_path / "source" / "toy.ipynb"
    path.parent.mkdir()
    nbformat.write(notebook, path)
    return path


def outcome(student="alice", passed=True, executed=None) -> Outcome:
    return Outcome(
        student=student,
        assignment="toy",
        digest="abc",
        status="graded",
        message="The notebook ran.",
        notes=["restored locked cell 'test_x'"],
        run={"status": "ok"},
        checks=[
            CheckResult(
                name="test_value",
                title="x is one",
                grade_cell="test_x",
                max_points=2.0,
                points=2.0 if passed else 0.0,
                message="" if passed else "x should be 1 <b>",
            ),
            CheckResult(
                name="test_type",
                title="x is an int",
                grade_cell="test_x",
                max_points=1.0,
                points=1.0,
                message="",
            ),
        ],
        learning_curves=feedback.learning_curves_png(
            {"lstm": {"loss": [0.7, 0.5], "val_loss": [0.72, 0.6], "accuracy": [0.5, 0.8]}},
            CURVES,
        ),
        seconds=1.0,
        executed=executed,
    )


def test_record_writes_every_output(tmp_path, source):
    out = Results(tmp_path / "out")
    record.register_assignment(out, "toy", source)
    executed = tmp_path / "executed.ipynb"
    executed.write_text("{}")
    record.record(out, outcome("alice", executed=executed), source)
    record.record(out, outcome("bob", passed=False), source)

    assert (out.autograded("alice", "toy") / "toy.ipynb").read_text() == "{}"
    assert record.recorded(out, "alice", "toy").score == 3.0
    results = json.loads((out.autograded("bob", "toy") / "results.json").read_text())
    assert results["score"] == 1.0
    assert results["tests"][0] == {
        "name": "x is one",
        "number": "test_x",
        "score": 0.0,
        "max_score": 2.0,
        "output": "x should be 1 <b>",
        "visibility": "visible",
    }

    grades = pd.read_csv(out.grades_csv)
    assert list(grades.columns) == [
        "student",
        "assignment",
        "status",
        "total",
        "max",
        "test_value",
        "test_type",
    ]
    assert grades.set_index("student").loc["bob", "test_value"] == 0.0

    page = (out.feedback("bob", "toy") / "feedback.html").read_text()
    assert "toy: 1 / 3" in page and "x should be 1 &lt;b&gt;" in page
    assert "data:image/png;base64," in page and "restored locked cell" in page
    assert "graded by hand (4 points)" in page
    assert "assert" not in page


def test_feedback_mentions_hand_grading_only_when_the_notebook_has_it():
    assert "by hand" not in feedback.feedback_html(outcome(), manual_points=0)
    assert "by hand (7 points)" in feedback.feedback_html(outcome(), manual_points=7)


def test_gradebook_gets_cell_scores_and_keeps_the_report_manual(tmp_path, source):
    out = Results(tmp_path / "out")
    record.register_assignment(out, "toy", source)
    record.record(out, outcome("bob", passed=False), source)
    with Gradebook(out.db_url) as gradebook:
        assert gradebook.find_grade("test_x", "toy", "toy", "bob").score == 1.0
        report = gradebook.find_grade("report", "toy", "toy", "bob")
        assert report.needs_manual_grade and report.max_score == 4
        assert gradebook.find_submission("toy", "bob").score == 1.0


def test_regrading_replaces_the_scores(tmp_path, source):
    out = Results(tmp_path / "out")
    record.register_assignment(out, "toy", source)
    record.record(out, outcome("bob", passed=False), source)
    record.register_assignment(out, "toy", source)
    record.record(out, outcome("bob", passed=True), source)
    with Gradebook(out.db_url) as gradebook:
        assert gradebook.find_grade("test_x", "toy", "toy", "bob").score == 3.0
        assert len(gradebook.find_assignment("toy").submissions) == 1
    assert len(pd.read_csv(out.grades_csv)) == 1


def test_learning_curves_need_a_history():
    assert feedback.learning_curves_png({"notes": "no curves"}, CURVES) is None


def test_learning_curves_plot_the_declared_metrics():
    history = {"lstm": {"loss": [3.1, 2.2], "val_loss": [3.0, 2.4], "bits": [4.4, 3.2]}}
    assert feedback.learning_curves_png(history, Curves("history", ("bits",))) is not None
    assert feedback.learning_curves_png(history, Curves("history", ("mae",))) is None
