"""Intake: find, limit, parse, repair and restore a submitted notebook."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import nbformat
import pytest

from autograder.core.spec import Allowance, Artifact, Limits, Spec
from autograder.grading import intake


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


@pytest.mark.parametrize("depth", [101, 50_000])
def test_a_notebook_nested_too_deep_is_rejected_with_a_message(course, depth):
    spec, release, submission, scratch = course
    notebook = json.loads(nbformat.writes(student_notebook()))
    notebook["metadata"]["deep"] = "DEEP"
    text = json.dumps(notebook).replace('"DEEP"', "[" * depth + "]" * depth)
    (submission / "toy.ipynb").write_text(text)
    with pytest.raises(intake.IntakeError, match="^toy.ipynb is nested more than 100 levels deep$"):
        intake.intake(submission, spec, release, scratch)


def test_a_notebook_with_text_that_is_not_unicode_is_rejected(course):
    spec, release, submission, scratch = course
    text = nbformat.writes(student_notebook()).replace("return x * x", "return '\\udcff'")
    (submission / "toy.ipynb").write_text(text)
    with pytest.raises(intake.IntakeError, match="not valid Unicode"):
        intake.intake(submission, spec, release, scratch)


@pytest.mark.parametrize("inside", [False, True])
def test_a_notebook_that_is_a_symbolic_link_is_refused(course, tmp_path, inside):
    spec, release, submission, scratch = course
    target = submission / "mine.txt" if inside else tmp_path / "source.ipynb"
    nbformat.write(student_notebook(), target)
    (submission / "toy.ipynb").symlink_to(target)
    where = "inside" if inside else "outside"
    with pytest.raises(
        intake.IntakeError, match=f"symbolic link to a file {where} the submission, not a notebook"
    ):
        intake.intake(submission, spec, release, scratch)


def test_other_symbolic_links_are_left_out_with_a_note(course, tmp_path):
    spec, release, submission, scratch = course
    nbformat.write(student_notebook(), submission / "toy.ipynb")
    (tmp_path / "hidden.csv").write_text("secret")
    (submission / "data.csv").symlink_to(tmp_path / "hidden.csv")
    result, _ = run(course)
    assert result.notes == [
        "left out 1 symbolic link(s) (data.csv): links are not followed, "
        "submit the files themselves"
    ]
    assert not (scratch / "data.csv").exists()


def test_another_assignments_notebook_under_this_name_is_rejected(course):
    spec, release, submission, scratch = course
    other = nbformat.read(release.parent.parent / "other" / "other.ipynb", 4)
    nbformat.write(other, submission / "toy.ipynb")
    with pytest.raises(intake.IntakeError, match="assignment 'other', not of 'toy': was it"):
        intake.intake(submission, spec, release, scratch)


def test_a_notebook_sharing_ids_with_no_release_is_still_graded(course):
    """A notebook whose metadata and ids an editor replaced is restored, not refused."""
    notebook = student_notebook()
    for index, each in enumerate(notebook.cells):
        each.metadata = {}
        each.id = f"fresh-{index}"
    result, restored = run(course, notebook)
    assert "restored the grading metadata" in result.notes[0]
    assert intake.grade_id(restored.cells[2]) == "answer"


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
    spec = dataclasses.replace(spec, artifacts=(Artifact("lstm", "models/lstm.keras", "keras"),))
    nbformat.write(student_notebook(), submission / "toy.ipynb")
    (submission / "models").mkdir()
    (submission / "models" / "lstm.keras").write_bytes(b"zip")
    (submission / "secret").symlink_to(tmp_path / "release")
    (submission / ".ipynb_checkpoints").mkdir()
    (submission / ".ipynb_checkpoints" / "toy-checkpoint.ipynb").write_text("{}")
    intake.intake(submission, spec, release, scratch, execute=False)
    copied = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
    assert copied == ["models", "models/lstm.keras", "toy.ipynb"]


def test_undeclared_files_stay_out_of_the_run(course):
    """Hidden data shipped under an innocent name never reaches the sandbox; the note says so."""
    spec, release, submission, scratch = course
    nbformat.write(student_notebook(), submission / "toy.ipynb")
    (submission / "data").mkdir()
    (submission / "data" / "stopwords.txt").write_text("the end of the corpus " * 1000)
    (submission / "helper.py").write_text("X = 1\n")
    (submission / "timestamp.txt").write_text("2025-03-01 10:00:00")
    (submission / "models").mkdir()
    (submission / "models" / "lstm.keras").write_bytes(b"zip")
    result = intake.intake(submission, spec, release, scratch, execute=True)
    assert sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")) == ["toy.ipynb"]
    assert any(
        "ignored 1 model file(s) the submission shipped (models/lstm.keras)" in note
        for note in result.notes
    )
    left_out = [note for note in result.notes if note.startswith("left out")]
    assert left_out == [
        "left out 2 submitted file(s) (data/stopwords.txt, helper.py): only the notebook enters "
        "the grading run; get data from the course's loaders"
    ]


def test_the_spec_allowance_lets_small_files_in(course):
    spec, release, submission, scratch = course
    spec = dataclasses.replace(spec, allowance=Allowance(patterns=("*.py",), max_kb=1))
    nbformat.write(student_notebook(), submission / "toy.ipynb")
    (submission / "a_helper.py").write_text("X = 1\n")
    (submission / "b_big.py").write_text("#" * 2000)
    (submission / "c.csv").write_text("1,2\n")
    result = intake.intake(submission, spec, release, scratch, execute=True)
    assert sorted(p.name for p in scratch.iterdir()) == ["a_helper.py", "toy.ipynb"]
    assert "(b_big.py, c.csv)" in result.notes[-1]
    assert "(and *.py files up to 1 KB in all)" in result.notes[-1]


def test_a_notebook_saved_as_nbformat_4_0_without_ids_is_read(course):
    spec, release, submission, scratch = course
    raw = json.loads(nbformat.writes(student_notebook()))
    raw["nbformat_minor"] = 0  # as Colab saves it
    for cell in raw["cells"]:
        cell.pop("id", None)
    (submission / "toy.ipynb").write_text(json.dumps(raw))
    result = intake.intake(submission, spec, release, scratch)
    assert nbformat.read(result.notebook, as_version=4).nbformat_minor == 5


# Notebooks whose cells lost their nbgrader metadata (VS Code, Colab, nbconvert's
# ClearMetadataPreprocessor, cells pasted into a fresh notebook).

A1_RELEASE = (
    Path(__file__).resolve().parents[3] / "release/a1_imdb_sentiment/a1_imdb_sentiment.ipynb"
)
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
A1_ANSWERS = {
    "explore": "print(train_labels.mean())\nlengths = [len(t) for t in train_texts]",
    "preprocessing_choices": "A vocabulary of 20,000 words covers 97% of the tokens.",
    "train": "models, histories = {}, {}\nfor name in CELL_TYPES:\n    models[name] = fit(name)",
    "evaluate": "# YOUR CODE HERE\ncomparison = pd.DataFrame(rows).set_index('cell')",
    "curves": "# YOUR CODE HERE\nfor name, history in histories.items():\n    plt.plot(history)",
    "report": "GRU wins on accuracy at a third of the LSTM's training time: its gates ...",
}
METADATA_NOTE = (
    "restored the grading metadata of {} cells (matched by {}: "
    "your notebook's cells had lost it, as some editors do)"
)


def a1_answers(release):
    """The a1 answers by grade id, with those that keep part of their stub."""
    stubs = {intake.grade_id(c): c.source for c in release.cells}
    return {
        **A1_ANSWERS,
        "preprocess": stubs["preprocess"].replace(STUB, "vectorizer = make_vectorizer()"),
        "build_model": stubs["build_model"].replace(
            "    # YOUR CODE HERE\n    raise NotImplementedError()",
            "    return keras.Sequential([keras.layers.Embedding(vocab_size, embedding_dim)])",
        ),
    }


@pytest.fixture
def a1(tmp_path):
    spec = Spec(
        id="a1_imdb_sentiment",
        title="IMDB",
        notebook="a1_imdb_sentiment.ipynb",
        datasets={},
        limits=Limits(),
        artifacts=(),
        probes=(),
        thresholds={},
        folder=tmp_path,
    )
    submission = tmp_path / "submitted" / "alice" / "a1"
    submission.mkdir(parents=True)
    return spec, A1_RELEASE, submission, tmp_path / "scratch"


def stripped_a1():
    """The a1 release, answered, with every cell's nbgrader metadata dropped."""
    notebook = nbformat.read(A1_RELEASE, as_version=4)
    answers = a1_answers(notebook)
    for cell in notebook.cells:
        cell.source = answers.get(intake.grade_id(cell), cell.source)
        cell.metadata.pop("nbgrader", None)
    return notebook


def submit_a1(a1, notebook, keep_ids):
    spec, release, submission, scratch = a1
    if not keep_ids:
        notebook = copy.deepcopy(notebook)
        for cell in notebook.cells:
            del cell["id"]
    (submission / spec.notebook).write_text(json.dumps(notebook))  # as an editor might
    result = intake.intake(submission, spec, release, scratch)
    return result, nbformat.read(result.notebook, as_version=4)


def assert_graded_like_the_release(notebook, extra=()):
    """The graded cells, in the release's order, hold the answers once, with its metadata."""
    release = nbformat.read(A1_RELEASE, as_version=4)
    answers = a1_answers(release)
    graded = [c for c in notebook.cells if intake.grade_id(c)]
    assert [intake.grade_id(c) for c in graded] == [
        intake.grade_id(c) for c in release.cells if intake.grade_id(c)
    ]
    for cell, original in zip(
        graded, [c for c in release.cells if intake.grade_id(c)], strict=True
    ):
        assert cell.metadata["nbgrader"] == original.metadata["nbgrader"]
        assert cell.cell_type == original.cell_type
        assert cell.source == answers.get(intake.grade_id(cell), original.source)
    sources = [c.source for c in notebook.cells]
    for answer in answers.values():
        assert sources.count(answer) == 1
    ungraded = [c.source for c in notebook.cells if not intake.grade_id(c)]
    expected = [c.source for c in release.cells if not intake.grade_id(c)]
    assert [s for s in ungraded if s not in extra] == expected


@pytest.mark.parametrize("keep_ids", [True, False], ids=["cell-ids", "no-cell-ids"])
def test_lost_metadata_is_restored_from_the_release(a1, keep_ids):
    result, notebook = submit_a1(a1, stripped_a1(), keep_ids)
    assert_graded_like_the_release(notebook)
    assert len(notebook.cells) == len(nbformat.read(A1_RELEASE, as_version=4).cells)
    note = METADATA_NOTE.format(14, "cell id" if keep_ids else "content and position")
    assert result.notes == (
        [note] if keep_ids else ["repaired 27 missing or duplicate cell id(s)", note]
    )


def test_lost_metadata_with_cells_added_in_between(a1):
    stripped = stripped_a1()
    at = {intake.grade_id(c): i for i, c in enumerate(nbformat.read(A1_RELEASE, 4).cells)}
    added = {  # release index -> the cell added after it, the later ones first
        len(stripped.cells) - 1: nbformat.v4.new_code_cell("print('my last experiment')"),
        at["report"]: nbformat.v4.new_markdown_cell("*Notes to self: cite the paper.*"),
        # between two answers: the answers kept the stub's "# YOUR CODE HERE", this did not
        at["evaluate"]: nbformat.v4.new_code_cell("comparison.plot.bar()"),
        at["explore"]: nbformat.v4.new_code_cell("print(train_texts[0])"),
        at["explore"] - 1: nbformat.v4.new_markdown_cell("My plan: count the labels first."),
    }
    for index, extra in added.items():
        stripped.cells.insert(index + 1, extra)
    result, notebook = submit_a1(a1, stripped, keep_ids=False)
    assert_graded_like_the_release(notebook, extra=[c.source for c in added.values()])
    assert [c.source for c in notebook.cells] == [c.source for c in stripped.cells]
    assert result.notes == [
        "repaired 32 missing or duplicate cell id(s)",
        METADATA_NOTE.format(14, "content and position"),
    ]


def test_lost_metadata_and_edited_locked_cells_give_one_note_each(a1):
    stripped = stripped_a1()
    release = nbformat.read(A1_RELEASE, as_version=4)
    for each, original in zip(stripped.cells, release.cells, strict=True):
        locked = intake.grade_id(original) and not intake.is_answer(original)
        if locked and original.cell_type == "code":
            each.source += "  # edited"
    stripped.cells[0].source += "\n\n"  # only whitespace: nothing to say
    result, notebook = submit_a1(a1, stripped, keep_ids=False)
    assert_graded_like_the_release(notebook)
    assert result.notes == [
        "repaired 27 missing or duplicate cell id(s)",
        METADATA_NOTE.format(14, "content and position"),
        "restored 5 locked cells: 'setup', 'test_build_model', 'export', 'test_export', "
        "'test_accuracy'",
    ]
    assert len(notebook.cells) == len(release.cells)


def test_lost_metadata_and_a_deleted_answer(a1):
    stripped = stripped_a1()
    release = nbformat.read(A1_RELEASE, as_version=4)
    train = next(i for i, c in enumerate(release.cells) if intake.grade_id(c) == "train")
    del stripped.cells[train]
    result, notebook = submit_a1(a1, stripped, keep_ids=False)
    assert result.notes == [
        "repaired 26 missing or duplicate cell id(s)",
        METADATA_NOTE.format(13, "content and position"),
        "re-inserted deleted cell 'train'",
    ]
    assert len(notebook.cells) == len(release.cells)
    assert intake.grade_id(notebook.cells[train]) == "train"
    assert notebook.cells[train].source == release.cells[train].source  # the stub, back in place
    expected = {intake.grade_id(c): c.source for c in release.cells} | a1_answers(release)
    for cell in notebook.cells:
        key = intake.grade_id(cell)
        if key and key != "train":
            assert cell.source == expected[key]


def test_matching_lost_metadata_earns_nothing(course):
    stripped = student_notebook()
    for each in stripped.cells:
        each.metadata.pop("nbgrader", None)
    stripped.cells[3].source = "assert square(3)==9"  # the test, edited: still the test
    stripped.cells[4].metadata["nbgrader"] = {"solution": True, "grade": True, "points": 100}
    result, notebook = run(course, stripped)
    released = release_notebook()
    assert [c.source for c in notebook.cells] == [c.source for c in student_notebook().cells]
    for cell, original in zip(notebook.cells, released.cells, strict=True):
        assert cell.metadata.get("nbgrader") == original.metadata.get("nbgrader")
    assert result.notes == [
        METADATA_NOTE.format(5, "content and position"),
        "restored locked cell 'test_square'",
    ]


def test_a_cell_in_place_of_a_deleted_test_stays_ungraded(course):
    stripped = student_notebook()
    for each in stripped.cells:
        each.metadata.pop("nbgrader", None)
    stripped.cells[3].source = "assert True  # my own test"
    result, notebook = run(course, stripped)
    assert [intake.grade_id(c) for c in notebook.cells] == [
        None,
        "imports",
        "answer",
        "test_square",
        None,
        "report",
        "export",
    ]
    assert notebook.cells[3].source == "assert square(3) == 9"  # back, after the answer
    assert notebook.cells[4].source == "assert True  # my own test"
    assert "nbgrader" not in notebook.cells[4].metadata
    assert result.notes == [
        METADATA_NOTE.format(4, "content and position"),
        "re-inserted deleted cell 'test_square'",
    ]
