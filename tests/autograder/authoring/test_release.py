"""Releases: nbgrader strips solutions, and the leak check refuses what it missed."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import release
from autograder.core import spec
from autograder.core.course import Course


def nbgrader_cell(source: str, cell_type: str = "code", **meta):
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, **meta}
    return cell


def toy_source() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Toy assignment"),
        nbgrader_cell(
            "def square(x):\n    ### BEGIN SOLUTION\n    squared_value = x * x\n"
            "    return squared_value\n    ### END SOLUTION",
            grade=False,
            solution=True,
            locked=False,
            grade_id="square",
        ),
        nbgrader_cell(
            "assert square(3) == 9, 'square(3) should be 9'",
            grade=True,
            solution=False,
            locked=True,
            points=2,
            grade_id="test_square",
        ),
        nbgrader_cell(
            "The reference answer explains everything.",
            "markdown",
            grade=True,
            solution=True,
            locked=False,
            points=3,
            grade_id="report",
        ),
    ]
    return notebook


@pytest.fixture
def course(tmp_path):
    folder = tmp_path / "source" / "toy"
    folder.mkdir(parents=True)
    nbformat.write(toy_source(), folder / "toy.ipynb")
    return tmp_path


def test_generate_strips_solutions_and_registers_the_gradebook(course):
    result = release.generate("toy", Course(course))
    assert result.notebooks == (course / "release" / "toy" / "toy.ipynb",)
    released = nbformat.read(result.notebooks[0], as_version=4)
    text = "\n".join(cell.source for cell in released.cells)
    assert "squared_value" not in text and "raise NotImplementedError()" in text
    assert "The reference answer" not in text and "YOUR ANSWER HERE" in text
    assert "square(3) should be 9" in text
    assert (course / "gradebook.db").exists()


def test_find_leaks_names_markers_outputs_and_solution_lines(course, tmp_path):
    source = course / "source" / "toy" / "toy.ipynb"
    leaky = toy_source()
    leaky.cells[1].source = "def square(x):\n    squared_value = x * x\n    return squared_value"
    leaky.cells[2].outputs = [nbformat.v4.new_output("stream", text="ok")]
    leaky.cells[3].source = "### BEGIN SOLUTION\nThe reference answer explains everything."
    path = tmp_path / "leaky.ipynb"
    nbformat.write(leaky, path)
    problems = release.find_leaks(source, path)
    assert "cell 1 contains solution lines, e.g. 'return squared_value'" in problems
    assert "cell 2 has outputs" in problems
    assert "cell 3 still has an nbgrader marker" in problems


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(release.ReleaseError, match="no source notebook"):
        release.generate("absent", Course(tmp_path))


def test_jupytext_twin_and_exported_models_are_not_released(course):
    plugin = course / "plugins" / "toy"
    plugin.mkdir(parents=True)
    (plugin / "spec.toml").write_text(
        'id = "toy"\ntitle = "Toy"\nnotebook = "toy.ipynb"\n[release]\nignore = ["models"]\n'
    )
    twin = course / "source" / "toy" / "toy.py"
    twin.write_text("def square(x):\n    squared_value = x * x\n    return squared_value\n")
    (course / "source" / "toy" / "models").mkdir()
    (course / "source" / "toy" / "models" / "lstm.keras").write_bytes(b"trained by the instructor")
    result = release.generate("toy", Course(course))
    assert sorted(p.name for p in result.folder.iterdir()) == ["toy.ipynb"]


def test_other_release_files_are_checked(course):
    release.generate("toy", Course(course))
    folder = course / "release" / "toy"
    (folder / "notes.txt").write_text("return squared_value\n")
    problems = release.leaks_in_other_files(course / "source" / "toy", folder)
    assert problems == ["notes.txt holds solution or hidden-test lines"]


ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("assignment_id", spec.available())
def test_committed_release_is_in_sync_with_source(assignment_id, tmp_path):
    shutil.copytree(ROOT / "source" / assignment_id, tmp_path / "source" / assignment_id)
    fresh = release.generate(assignment_id, Course(tmp_path))
    committed = ROOT / "release" / assignment_id
    assert sorted(p.name for p in committed.iterdir()) == sorted(
        p.name for p in fresh.folder.iterdir()
    ), "run `rnn-course release` and commit release/"
    for notebook in fresh.notebooks:
        expected = nbformat.read(notebook, as_version=4)
        actual = nbformat.read(committed / notebook.name, as_version=4)
        assert [(c.cell_type, c.source, c.metadata) for c in actual.cells] == [
            (c.cell_type, c.source, c.metadata) for c in expected.cells
        ], f"release/{assignment_id} is stale: run `rnn-course release {assignment_id}`"
        assert (
            release.find_leaks(
                ROOT / "source" / assignment_id / notebook.name, committed / notebook.name
            )
            == []
        )
