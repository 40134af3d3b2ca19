"""Record: graded notebook, nbgrader gradebook, grades CSV, Gradescope results, feedback pages."""

from __future__ import annotations

import json
import shutil

import nbformat
import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder.core.course import Results, nbgrader_api
from autograder.core.results import CheckResult, Outcome
from autograder.core.spec import Curves
from autograder.grading import record
from autograder.term import feedback, gradebook
from autograder.term.late import LatePolicy

CURVES = Curves("history", ("loss", "accuracy"))
NO_PENALTY = LatePolicy()


def graded_cell(source, cell_type="code", **meta):
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, **meta}
    return cell


@pytest.fixture
def source(tmp_path):
    return toy_notebook(tmp_path)


def toy_notebook(tmp_path):
    """A source notebook: an answer, a test cell worth 3 points, a report graded by hand."""
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
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("alice", executed=source), source, NO_PENALTY)
    record.record(out, outcome("bob", passed=False), source, NO_PENALTY)

    assert (
        nbformat.read(out.autograded("alice", "toy") / "toy.ipynb", 4)
        .cells[0]
        .source.startswith("### BEGIN SOLUTION")
    )
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
        "timestamp",
        "autograded",
        "autograded_max",
        "manual",
        "manual_max",
        "adjustments",
        "late_penalty",
        "total",
        "max",
        "needs_manual_grade",
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
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("bob", passed=False), source, NO_PENALTY)
    with Gradebook(out.db_url) as book:
        assert book.find_grade("test_x", "toy", "toy", "bob").score == 1.0
        report = book.find_grade("report", "toy", "toy", "bob")
        assert report.needs_manual_grade and report.max_score == 4
        assert book.find_submission("toy", "bob").score == 1.0


def test_regrading_replaces_the_scores(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("bob", passed=False), source, NO_PENALTY)
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("bob", passed=True), source, NO_PENALTY)
    with Gradebook(out.db_url) as book:
        assert book.find_grade("test_x", "toy", "toy", "bob").score == 3.0
        assert len(book.find_assignment("toy").submissions) == 1
    assert len(pd.read_csv(out.grades_csv)) == 1


def test_learning_curves_need_a_history():
    assert feedback.learning_curves_png({"notes": "no curves"}, CURVES) is None


def test_learning_curves_plot_the_declared_metrics():
    history = {"lstm": {"loss": [3.1, 2.2], "val_loss": [3.0, 2.4], "bits": [4.4, 3.2]}}
    assert feedback.learning_curves_png(history, Curves("history", ("bits",))) is not None
    assert feedback.learning_curves_png(history, Curves("history", ("mae",))) is None


def test_nbgrader_generate_feedback_keeps_our_page(tmp_path, source):
    """nbgrader empties feedback/<student>/<id>/ and copies the page back from autograded/."""
    out = Results(tmp_path / "course")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("alice", executed=source), source, NO_PENALTY)
    with Gradebook(out.db_url) as book:  # graded by hand in formgrader
        grade = book.find_grade("report", "toy", "toy", "alice")
        grade.manual_score, grade.needs_manual_grade = 3.0, False
        book.find_comment("report", "toy", "toy", "alice").manual_comment = "Cite your table."
        book.db.commit()
    record.merge(out, "toy", source, NO_PENALTY)  # rnn-course feedback toy
    assert nbgrader_api(out.root).generate_feedback("toy", force=True)["success"]
    folder = out.feedback("alice", "toy")
    assert sorted(path.name for path in folder.iterdir()) == [
        "feedback.html",
        "results.json",
        "toy.html",
    ]
    page = (folder / "feedback.html").read_text()
    assert "<h1>toy: 6 / 7</h1>" in page and "Cite your table." in page
    results = json.loads((folder / "results.json").read_text())
    assert results["score"] == 6 and results["tests"][-1]["output"] == "Cite your table."


def test_the_graded_notebook_shows_the_checks_in_their_cell(tmp_path, source):
    """Formgrader shows the graded notebook: each autograded cell's output says its checks."""
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("bob", passed=False, executed=source), source, NO_PENALTY)
    cells = nbformat.read(out.autograded("bob", "toy") / "toy.ipynb", 4).cells
    assert cells[1].outputs[-1]["text"] == (
        "Hidden checks:\nx is one: 0 / 2. x should be 1 <b>\nx is an int: 1 / 1\n"
    )


# ----------------------------------------------------------------- a record lost from autograded/


def graded_files(results: Results, student: str) -> dict[str, bytes]:
    folder = results.autograded(student, "toy")
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def test_a_record_deleted_from_autograded_is_restored_from_its_copy(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("alice", executed=source), source, NO_PENALTY)
    record.record(out, outcome("bob", passed=False, executed=source), source, NO_PENALTY)
    before = graded_files(out, "alice")
    shutil.rmtree(out.autograded("alice", "toy"))  # what nbgrader autograde did
    (out.autograded("bob", "toy") / "toy.ipynb").unlink()

    recovery = record.recover(out, "toy", source)
    assert (recovery.restored, recovery.lost) == (["alice", "bob"], [])
    assert graded_files(out, "alice") == {
        name: before[name] for name in ("grading.json", "toy.ipynb")
    }
    record.merge(out, "toy", source, NO_PENALTY)  # the pages derive from the record
    assert graded_files(out, "alice") == before
    assert (out.autograded("bob", "toy") / "toy.ipynb").is_file()
    assert record.recover(out, "toy", source) == record.Recovery([], [])


def test_a_record_gone_with_its_copy_is_lost(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("alice", executed=source), source, NO_PENALTY)
    record.record(out, outcome("bob", executed=source), source, NO_PENALTY)
    for folder in (out.autograded("alice", "toy"), out.kept("alice", "toy")):
        shutil.rmtree(folder)
    assert record.recover(out, "toy", source) == record.Recovery([], ["alice"])  # the gradebook's
    assert record.recover(out, "toy", source, students=["bob"]) == record.Recovery([], [])


def test_a_record_made_before_copies_were_kept_gets_its_copy(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("alice", executed=source), source, NO_PENALTY)
    shutil.rmtree(out.kept("alice", "toy"))
    assert record.recover(out, "toy", source) == record.Recovery([], [])
    kept = out.kept("alice", "toy")
    assert sorted(path.name for path in kept.iterdir()) == ["grading.json", "toy.ipynb"]


def test_the_history_survives_the_removal_of_autograded(tmp_path, source):
    out = Results(tmp_path / "out")
    gradebook.register_assignment(out, "toy", source)
    record.record(out, outcome("alice", passed=False, executed=source), source, NO_PENALTY)
    record.record(out, outcome("alice", executed=source), source, NO_PENALTY)
    shutil.rmtree(out.root / "autograded")
    kept = list(out.history("alice", "toy").glob("*.json"))
    assert [json.loads(path.read_text())["score"] for path in kept] == [1.0]
