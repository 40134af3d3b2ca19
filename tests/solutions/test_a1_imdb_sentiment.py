"""Assignment 1: reference solution, notebook, release and hidden checks agree."""

import json
import os
import sys
from collections import Counter
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

from assignments.a1_imdb_sentiment.helpers import CELL_TYPES, end_to_end, export_models
from assignments.data import DataError, locate
from autograder import spec as specs
from autograder.course import Course
from solutions import a1_imdb_sentiment as solution

ROOT = Path(__file__).resolve().parents[2]
ID = "a1_imdb_sentiment"
NOTEBOOK = ROOT / "source" / ID / f"{ID}.ipynb"
RECURRENT = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
# vocab 1000 x 8 embedding + recurrent layer of 16 units on 8 inputs + Dense(1)
PARAMS = {"simple_rnn": 8000 + 400 + 17, "lstm": 8000 + 1600 + 17, "gru": 8000 + 1248 + 17}


def grade_cells(notebook=NOTEBOOK) -> dict[str, dict]:
    cells = nbformat.read(notebook, as_version=4).cells
    return {
        c.metadata["nbgrader"]["grade_id"]: {**c.metadata["nbgrader"], "type": c.cell_type}
        for c in cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_build_model(cell_type):
    model = solution.build_model(cell_type, vocab_size=1000, embedding_dim=8, units=16)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Embedding", RECURRENT[cell_type], "Dense"]
    assert model.count_params() == PARAMS[cell_type]
    assert model(np.ones((3, 7), dtype="int32")).shape == (3, 1)


def test_build_model_refuses_unknown_cell():
    with pytest.raises(ValueError, match="cell_type"):
        solution.build_model("transformer", 10, 2, 2)


def test_notebook_build_model_matches_reference():
    cell = next(
        c
        for c in nbformat.read(NOTEBOOK, as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == "build_model"
    )
    namespace = {"keras": keras}
    exec(cell.source, namespace)
    spec = specs.load(ID)
    for probe in spec.probes:
        mine = namespace["build_model"](**probe.kwargs)
        reference = solution.build_model(**probe.kwargs)
        assert [type(x) for x in mine.layers] == [type(x) for x in reference.layers]
        assert mine.count_params() == reference.count_params()


def test_spec_contract():
    spec = specs.load(ID)
    assert spec.artifact_paths == {
        **{name: f"models/{name}.keras" for name in CELL_TYPES},
        "history": "models/history.json",
    }
    assert sorted(p.name for p in spec.probes) == sorted(f"build_model_{c}" for c in CELL_TYPES)
    for name in CELL_TYPES:
        assert spec.thresholds[f"accuracy_basic_{name}"] < spec.thresholds[f"accuracy_{name}"]


def test_calibration_is_committed_and_above_baselines():
    calibration = json.loads((specs.load(ID).folder / "calibration.json").read_text())
    best_baseline = max(calibration["baselines"].values())
    assert len({run["seed"] for run in calibration["runs"]}) >= 3
    for name in CELL_TYPES:
        worst = min(r["value"] for r in calibration["runs"] if r["model"] == name)
        target = calibration["thresholds"][f"accuracy_{name}"]
        assert best_baseline + 0.1 < calibration["thresholds"][f"accuracy_basic_{name}"] < target
        assert target == pytest.approx(worst - calibration["margin"], abs=1e-3)
    assert specs.load(ID).thresholds["accuracy_lstm"] == calibration["thresholds"]["accuracy_lstm"]


def test_notebook_grade_cells():
    cells = grade_cells()
    assert {k: v["points"] for k, v in cells.items()} == {
        "preprocessing_choices": 2,
        "test_build_model": 6,
        "report": 5,
        "test_export": 13,
        "test_accuracy": 9,
    }
    for grade_id in ("test_build_model", "test_export", "test_accuracy"):
        assert cells[grade_id]["locked"] and cells[grade_id]["type"] == "code"
    for grade_id in ("preprocessing_choices", "report"):
        assert cells[grade_id]["solution"] and cells[grade_id]["type"] == "markdown"


def test_release_has_no_solution(tmp_path, monkeypatch):
    from autograder.release import find_leaks, generate

    # nbgrader runs alembic from the interpreter's bin folder
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "source" / ID).mkdir(parents=True)
    (tmp_path / "source" / ID / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    generate(ID, Course(tmp_path))
    released = tmp_path / "release" / ID / NOTEBOOK.name
    assert find_leaks(NOTEBOOK, released) == []
    text = released.read_text()
    secrets = (
        "BEGIN SOLUTION",
        "recurrent[cell_type](units)",
        "restore_best_weights=True",
        "len(text.split())",
        "additive cell state",
    )
    assert [secret for secret in secrets if secret in text] == []
    release = nbformat.read(released, as_version=4)
    stubs = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert all(
        "raise NotImplementedError()" in c.source or c.source == "YOUR ANSWER HERE" for c in stubs
    )
    points = {grade_id: cell["points"] for grade_id, cell in grade_cells().items()}
    assert {k: v["points"] for k, v in grade_cells(released).items()} == points


# --------------------------------------------------------------------------- hidden checks


def tiny_submission(root: Path, swap: bool = False) -> Path:
    """A well-formed but untrained submission in the run stage's output layout."""
    texts = np.array(["a good film", "a bad film", "good acting, bad plot"], dtype=object)
    vectorizer = solution.make_vectorizer(texts, vocab_size=50, seq_len=10)
    models = {c: end_to_end(vectorizer, solution.build_model(c, 50, 4, 4)) for c in CELL_TYPES}
    curve = {key: [0.7, 0.6] for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    export_models(
        models, {c: {**curve, "seconds_per_epoch": 1.0} for c in CELL_TYPES}, root / "models"
    )
    if swap:
        solution.swap_models(root / "models")
    (root / "artifacts").mkdir()
    (root / "models").rename(root / "artifacts" / "models")
    return write_probes(root)


def write_probes(root: Path) -> Path:
    """The probe outputs of the reference build_model, as the run stage writes them."""
    (root / "probes").mkdir()
    index = {}
    for probe in specs.load(ID).probes:
        solution.build_model(**probe.kwargs).save(root / "probes" / f"{probe.name}.keras")
        index[probe.name] = {"ok": True, "file": f"{probe.name}.keras"}
    (root / "probes" / "index.json").write_text(json.dumps(index))
    return root


@pytest.fixture(scope="module")
def imdb():
    """Skip the judge's checks where the IMDB data (hidden sample) is not available."""
    try:
        locate("imdb", download=False)
    except DataError as err:
        pytest.skip(str(err).splitlines()[0])


@pytest.fixture(scope="module")
def untrained_results(imdb, tmp_path_factory):
    from autograder.judge import judge

    root = tiny_submission(tmp_path_factory.mktemp("untrained"))
    return {r.name: r for r in judge(specs.load(ID), root)}


def test_hidden_checks_on_untrained_submission(untrained_results):
    failed = {name for name, r in untrained_results.items() if not r.passed}
    assert failed == {
        f"test_accuracy_{tier}[{c}]" for tier in ("basic", "target") for c in CELL_TYPES
    }
    message = untrained_results["test_accuracy_target[lstm]"].message
    assert "hidden test reviews" in message and "full credit needs" in message
    totals = Counter()
    for result in untrained_results.values():
        totals[result.grade_cell] += result.max_points
    autograded = {
        grade_id: cell["points"]
        for grade_id, cell in grade_cells().items()
        if cell["type"] == "code" and not cell.get("solution")
    }
    assert dict(totals) == autograded  # the checks' points add up to each grade cell's


def test_hidden_checks_catch_swapped_architecture(imdb, tmp_path, untrained_results):
    from autograder.judge import judge

    results = {r.name: r for r in judge(specs.load(ID), tiny_submission(tmp_path, swap=True))}
    failed = {name for name, r in results.items() if not r.passed}
    failed_anyway = {name for name, r in untrained_results.items() if not r.passed}
    assert failed - failed_anyway == {"test_architecture[lstm]"}  # exactly that check
    assert "LSTM" in results["test_architecture[lstm]"].message
    assert results["test_architecture[gru]"].passed


@pytest.mark.slow
def test_quick_reference_passes_hidden_checks(imdb, tmp_path):
    from autograder.judge import judge

    solution.train_reference(seed=0, out_dir=tmp_path / "artifacts" / "models", quick=True)
    results = judge(specs.load(ID), write_probes(tmp_path))
    assert [r.name for r in results if not r.passed] == []
