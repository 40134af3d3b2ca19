"""Intake: find, limit, parse, repair and restore a submitted notebook."""

from __future__ import annotations

import dataclasses
import json

import nbformat
import pytest

from autograder import intake
from autograder.spec import Limits, Spec


def cell(source, cell_type="code", **meta):
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    new = make(source)
    if meta:
        new.metadata["nbgrader"] = {"schema_version": 3, **meta}
    return new


def release_notebook():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        cell("# Toy", "markdown"),
        cell("import math", grade_id="imports", locked=True, grade=False, solution=False),
        cell("raise NotImplementedError()", grade_id="answer", solution=True, grade=False),
        cell("assert square(3) == 9", grade_id="test_square", grade=True, locked=True, points=2),
        cell(
            "YOUR ANSWER HERE", "markdown", grade_id="report", solution=True, grade=True, points=3
        ),
        cell("export()", grade_id="export", locked=True, grade=False, solution=False),
    ]
    return notebook


@pytest.fixture
def course(tmp_path):
    releases = tmp_path / "release"
    (releases / "toy").mkdir(parents=True)
    (releases / "other").mkdir()
    nbformat.write(release_notebook(), releases / "toy" / "toy.ipynb")
    other = nbformat.v4.new_notebook()
    other.cells = [cell("x", grade_id="other_a", solution=True), cell("y", grade_id="other_b")]
    nbformat.write(other, releases / "other" / "other.ipynb")
    spec = Spec(
        id="toy",
        title="Toy",
        notebook="toy.ipynb",
        datasets={},
        limits=Limits(),
        artifacts=(),
        probes=(),
        thresholds={},
        folder=tmp_path,
    )
    submission = tmp_path / "submitted" / "alice" / "toy"
    submission.mkdir(parents=True)
    return spec, releases / "toy" / "toy.ipynb", submission, tmp_path / "scratch"


def student_notebook():
    notebook = release_notebook()
    notebook.cells[2].source = "def square(x):\n    return x * x"
    notebook.cells[4].source = "LSTM wins because of its gates."
    return notebook


def run(course, notebook=None):
    spec, release, submission, scratch = course
    if notebook is not None:
        nbformat.write(notebook, submission / "toy.ipynb")
    result = intake.intake(submission, spec, release, scratch)
    return result, nbformat.read(result.notebook, as_version=4)


def test_clean_submission_is_unchanged(course):
    result, notebook = run(course, student_notebook())
    assert result.notes == []
    assert [c.source for c in notebook.cells] == [c.source for c in student_notebook().cells]


def test_edited_locked_cells_and_metadata_are_restored(course):
    tampered = student_notebook()
    tampered.cells[3].source = "pass  # no more test"
    tampered.cells[2].metadata["nbgrader"]["points"] = 100
    tampered.cells.insert(3, cell("print('my own exploration')"))
    result, notebook = run(course, tampered)
    assert "restored locked cell 'test_square'" in result.notes
    assert notebook.cells[4].source == "assert square(3) == 9"
    assert "points" not in notebook.cells[2].metadata["nbgrader"]
    assert notebook.cells[2].source == "def square(x):\n    return x * x"
    assert notebook.cells[3].source == "print('my own exploration')"


def test_deleted_cells_are_put_back_in_place(course):
    pruned = student_notebook()
    del pruned.cells[3]  # the test cell
    del pruned.cells[4]  # the export cell (after the first deletion)
    result, notebook = run(course, pruned)
    assert result.notes == [
        "re-inserted deleted cell 'test_square'",
        "re-inserted deleted cell 'export'",
    ]
    ids = [intake.grade_id(c) for c in notebook.cells]
    assert ids == [None, "imports", "answer", "test_square", "report", "export"]


def test_missing_and_duplicate_ids_are_repaired(course):
    spec, release, submission, scratch = course
    notebook = student_notebook()
    notebook.cells[1]["id"] = notebook.cells[0]["id"]
    del notebook.cells[2]["id"]
    (submission / "toy.ipynb").write_text(json.dumps(notebook))  # as an editor might
    result, repaired = run(course)
    assert result.notes == ["repaired 2 missing or duplicate cell id(s)"]
    assert len({c["id"] for c in repaired.cells}) == len(repaired.cells)


def test_invalid_json_names_the_place(course):
    spec, release, submission, scratch = course
    (submission / "toy.ipynb").write_text('{"cells": [ {"cell_type": "code",')
    with pytest.raises(intake.IntakeError, match=r"toy.ipynb is not valid JSON \(line 1"):
        intake.intake(submission, spec, release, scratch)


def test_not_a_notebook(course):
    spec, release, submission, scratch = course
    (submission / "toy.ipynb").write_text('{"hello": "world"}')
    with pytest.raises(
        intake.IntakeError, match="is not a Jupyter notebook: it has no list of cells"
    ):
        intake.intake(submission, spec, release, scratch)


def test_size_limit(course):
    spec, release, submission, scratch = course
    nbformat.write(student_notebook(), submission / "toy.ipynb")
    (submission / "big.bin").write_bytes(b"0" * 3 * intake.MB)
    small = dataclasses.replace(spec, limits=Limits(max_notebook_mb=1, max_artifacts_mb=1))
    with pytest.raises(intake.IntakeError, match="over the limit of 2 MB"):
        intake.intake(submission, small, release, scratch)


def test_renamed_notebook_is_accepted_with_a_note(course):
    spec, release, submission, scratch = course
    nbformat.write(student_notebook(), submission / "toy (1).ipynb")
    result = intake.intake(submission, spec, release, scratch)
    assert result.notes == ["graded toy (1).ipynb as toy.ipynb"]
    assert result.notebook == scratch / "toy.ipynb"


def test_wrong_assignment_is_named(course):
    spec, release, submission, scratch = course
    nbformat.write(
        nbformat.read(release.parent.parent / "other" / "other.ipynb", 4),
        submission / "other.ipynb",
    )
    with pytest.raises(intake.IntakeError, match="assignment 'other', not of 'toy'"):
        intake.intake(submission, spec, release, scratch)


def test_no_notebook(course):
    spec, release, submission, scratch = course
    with pytest.raises(intake.IntakeError, match="expected toy.ipynb in the submission, found no"):
        intake.intake(submission, spec, release, scratch)


def test_only_regular_files_are_copied(course, tmp_path):
    spec, release, submission, scratch = course
    nbformat.write(student_notebook(), submission / "toy.ipynb")
    (submission / "models").mkdir()
    (submission / "models" / "lstm.keras").write_bytes(b"zip")
    (submission / "secret").symlink_to(tmp_path / "release")
    (submission / ".ipynb_checkpoints").mkdir()
    (submission / ".ipynb_checkpoints" / "toy-checkpoint.ipynb").write_text("{}")
    intake.intake(submission, spec, release, scratch)
    copied = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
    assert copied == ["models", "models/lstm.keras", "toy.ipynb"]
