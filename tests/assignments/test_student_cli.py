"""``rnn-course-student``: ``check`` on good and broken submissions, wrong arguments, data."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

from assignments import check, cli, data
from assignments.a1_imdb_sentiment import helpers
from assignments.a1_imdb_sentiment.helpers import CELL_TYPES, end_to_end, export_models

ASSIGNMENT = "a1_imdb_sentiment"
REPO = Path(__file__).resolve().parents[2]
RELEASE_NOTEBOOK = REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SENTENCES = ["a good film", "a bad film", "good acting, bad plot", "great fun", "dull"]
RECURRENT = {
    "simple_rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}
#: words the lexicon models read as positive and negative
POSITIVE, NEGATIVE = ("good", "great", "fun"), ("bad", "dull", "awful")
#: reviews the lexicon models classify right, as (text, label)
CRAFTED_SAMPLE = (
    ("a good film", 1),
    ("great fun", 1),
    ("the plot is fun", 1),
    ("a bad film", 0),
    ("dull", 0),
    ("awful acting and a dull plot", 0),
)
ESTIMATE_SAMPLE = helpers.estimate_sample


def tiny_model(cell_type: str, outputs: int = 1) -> keras.Model:
    """An untrained string-input model: TextVectorization -> Embedding -> RNN -> Dense."""
    vectorizer = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorizer.adapt(SENTENCES)
    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int64"),
            keras.layers.Embedding(20, 4, mask_zero=True),
            RECURRENT[cell_type](3),
            keras.layers.Dense(outputs, activation="sigmoid"),
        ],
        name=cell_type,
    )
    return end_to_end(vectorizer, model)


def lexicon_model(cell_type: str) -> keras.Model:
    """A built model whose recurrent layer adds up +1 per positive and -1 per negative word."""
    vocabulary = [*POSITIVE, *NEGATIVE]
    vectorizer = keras.layers.TextVectorization(vocabulary=vocabulary, output_sequence_length=8)
    layers = {
        "simple_rnn": keras.layers.SimpleRNN(1, activation="linear"),
        "lstm": keras.layers.LSTM(1),
        "gru": keras.layers.GRU(1),
    }
    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int64"),
            keras.layers.Embedding(2 + len(vocabulary), 1, mask_zero=True),
            layers[cell_type],
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name=cell_type,
    )
    embedding, recurrent, dense = model.layers
    polarity = [0, 0] + [1] * len(POSITIVE) + [-1] * len(NEGATIVE)
    embedding.set_weights([np.array(polarity, dtype="float32")[:, None]])
    weights = {  # kernel, recurrent kernel, bias; LSTM gates i f c o, GRU gates z r h
        "simple_rnn": [[[1]], [[1]], [0]],
        "lstm": [[[0, 0, 1, 0]], [[0, 0, 0, 0]], [10, 10, 0, 10]],
        "gru": [[[0, 0, 1]], [[0, 0, 1]], [[0, 10, 0], [0, 0, 0]]],
    }[cell_type]
    recurrent.set_weights([np.array(w, dtype="float32") for w in weights])
    dense.set_weights([np.array([[10]], dtype="float32"), np.zeros(1, dtype="float32")])
    return end_to_end(vectorizer, model)


def ran_notebook(path: Path) -> nbformat.NotebookNode:
    """The release notebook with every stub answered and every code cell run once, in order."""
    notebook = nbformat.read(path, as_version=4)
    count = 0
    for cell in notebook.cells:
        cell.source = cell.source.replace(check.STUB_RAISE, "pass")
        if not cell.metadata.get("nbgrader", {}).get("locked"):
            cell.source = cell.source.replace(check.TEXT_STUB, "An answer.")
        if cell.cell_type == "code" and cell.source.strip():
            count += 1
            cell.execution_count = count
    return notebook


def history() -> dict:
    curve = {key: [0.69, 0.68] for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    return {**curve, "seconds_per_epoch": 0.5}


@pytest.fixture(scope="module")
def good_submission(tmp_path_factory) -> Path:
    """A good submission: the release notebook answered and run, three lexicon models."""
    folder = tmp_path_factory.mktemp("good") / ASSIGNMENT
    folder.mkdir()
    models = {name: lexicon_model(name) for name in CELL_TYPES}
    export_models(models, {name: history() for name in CELL_TYPES}, folder / "models")
    nbformat.write(ran_notebook(RELEASE_NOTEBOOK), folder / RELEASE_NOTEBOOK.name)
    return folder


@pytest.fixture(autouse=True)
def crafted_sample(monkeypatch):
    """The accuracy estimates read the crafted reviews, not the test split."""
    texts, labels = zip(*CRAFTED_SAMPLE, strict=True)
    sample = (np.array(texts, dtype=object), np.array(labels))
    monkeypatch.setattr(helpers, "estimate_sample", lambda: sample)


@pytest.fixture
def submission(good_submission, tmp_path) -> Path:
    """A copy of the good submission to break."""
    return Path(shutil.copytree(good_submission, tmp_path / ASSIGNMENT))


def run_check(capsys, *args) -> tuple[int, list[str], str]:
    code = cli.main(["check", ASSIGNMENT, *map(str, args)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


def test_good_submission_passes(good_submission, capsys):
    code, lines, _ = run_check(capsys, good_submission)
    assert code == 0, "\n".join(lines)
    assert failures(lines) == []
    checks = [line for line in lines if line.startswith("PASS")]
    # notebook, ran, stubs, four artifacts, export times, three models predict, history,
    # three accuracy estimates
    assert len(checks) == 15, "\n".join(lines)
    assert any(f"notebook {ASSIGNMENT}.ipynb" in line for line in checks)
    assert any(line.startswith("PASS  lstm predicts") and "(6, 1)" in line for line in checks)
    assert any(line.startswith("PASS  the notebook ran top to bottom") for line in checks)
    assert any(line.startswith("PASS  gru accuracy on 6 of your test reviews") for line in checks)
    assert lines[-1].startswith("15 of 15 checks passed")


def test_default_folder_is_the_current_directory(good_submission, capsys, monkeypatch):
    monkeypatch.chdir(good_submission)
    assert cli.main(["check", ASSIGNMENT]) == 0
    assert "15 of 15 checks passed" in capsys.readouterr().out


def test_unfilled_release_notebook_with_models_from_elsewhere(submission, capsys):
    """The release notebook as handed out, beside models it did not export: its stubs and
    that no cell ran are reported, and the check fails."""
    shutil.copy(RELEASE_NOTEBOOK, submission)
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    [ran] = [line for line in lines if "the notebook ran top to bottom" in line]
    assert ran.startswith("FAIL") and "none of its 14 code cells has run" in ran
    [stubs] = [line for line in lines if "every answer is filled in" in line]
    assert stubs.startswith("FAIL  every answer is filled in: 8 cells still hold")
    for answer in ("explore", "build_model", "train", "report"):
        assert f"({answer})" in stubs
    [times] = [line for line in lines if "come from the notebook's last run" in line]
    assert times.startswith("FAIL") and "did not export these files" in times
    assert "3 failed" in lines[-1]


def test_models_older_than_the_recorded_run(submission, capsys):
    """A notebook that records its cells' execution times, run after the models were written."""
    notebook = nbformat.read(submission / RELEASE_NOTEBOOK.name, as_version=4)
    later = "2999-01-01T10:00:00.000000Z"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.metadata["execution"] = {
                "iopub.execute_input": later,
                "shell.execute_reply": later,
            }
    nbformat.write(notebook, submission / RELEASE_NOTEBOOK.name)
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    [line] = failures(lines)
    assert line.startswith("FAIL  the exported files come from the notebook's last run: 4 of 4")
    assert "recorded execution times" in line and "earlier run" in line


@pytest.mark.slow
def test_untrained_models_on_the_test_split(submission, capsys, monkeypatch):
    """Untrained models, measured on the real test split, are at chance: no accuracy points."""
    monkeypatch.setattr(helpers, "estimate_sample", ESTIMATE_SAMPLE)
    models = {name: tiny_model(name) for name in CELL_TYPES}
    export_models(models, {name: history() for name in CELL_TYPES}, submission / "models")
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    estimates = [line for line in lines if "of your test reviews (an estimate)" in line]
    assert len(estimates) == 3, "\n".join(lines)
    for line in estimates:
        assert line.startswith("FAIL") and "2,000 of your test reviews" in line
        assert "chance level" in line and "this earns none of its accuracy points" in line


def test_missing_model(submission, capsys):
    (submission / "models" / "lstm.keras").unlink()
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    assert any(line.startswith("FAIL  models/lstm.keras: missing") for line in lines)
    assert all("lstm" in line for line in failures(lines))
    assert "2 failed" in lines[-1]


def test_broken_keras_file(submission, capsys):
    (submission / "models" / "gru.keras").write_bytes(b"not a zip archive")
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    [line] = [line for line in failures(lines) if line.startswith("FAIL  models/gru.keras")]
    assert "does not load as keras" in line
    assert any(line.startswith("FAIL  gru predicts") and "does not load" in line for line in lines)


def test_wrong_output_shape(submission, capsys):
    tiny_model("lstm", outputs=2).save(submission / "models" / "lstm.keras")
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    assert any(line.startswith("PASS  models/lstm.keras: loads") for line in lines)
    [line] = failures(lines)
    assert line.startswith("FAIL  lstm predicts")
    assert "shape (n, 1); got (6, 2)" in line


def test_integer_model_instead_of_end_to_end(submission, capsys):
    integer = tiny_model("gru").layers[-1]  # the Sequential behind the TextVectorization
    integer.save(submission / "models" / "gru.keras")
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    [line] = failures(lines)
    assert line.startswith("FAIL  gru predicts") and "end_to_end(vectorizer, model)" in line


def test_bad_history_and_notebook(submission, capsys):
    records = json.loads((submission / "models" / "history.json").read_text())
    del records["gru"]["val_accuracy"]
    (submission / "models" / "history.json").write_text(json.dumps(records))
    (submission / f"{ASSIGNMENT}.ipynb").write_text('{"cells": [')
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    notebook, history_line = failures(lines)
    assert notebook.startswith(f"FAIL  notebook {ASSIGNMENT}.ipynb: is not valid JSON")
    assert history_line.startswith("FAIL  history.json") and "'val_accuracy'" in history_line


def test_notebook_under_another_name(submission, capsys):
    (submission / f"{ASSIGNMENT}.ipynb").rename(submission / "mine.ipynb")
    code, lines, _ = run_check(capsys, submission)
    assert code == 1
    [line] = failures(lines)
    assert "found mine.ipynb" in line and "rename" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["check", "a9_nothing", "."],
            f"unknown assignment 'a9_nothing'; known: {', '.join(check.known_ids())}",
        ),
        (["check", ASSIGNMENT, "/no/such/folder"], "no folder /no/such/folder"),
    ],
)
def test_wrong_arguments_exit_2_with_one_line(args, expected, capsys):
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"rnn-course-student: {expected}"]


def test_folder_without_notebook_exits_2(tmp_path, capsys):
    assert cli.main(["check", ASSIGNMENT, str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "no notebook in" in err


def test_help_and_errors_import_no_tensorflow():
    """Start-up is light: --help and argument errors answer without importing TensorFlow."""
    code = (
        "import sys; from assignments import cli; "
        "assert cli.main(['check', 'a9_nothing']) == 2; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)
    result = subprocess.run(
        [sys.executable, "-m", "assignments.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert all(word in result.stdout for word in ("check", "data", "--data-dir"))


def test_data_verify_and_fetch(tmp_path, monkeypatch, capsys):
    """The data commands on a folder with one good file: verified, and copied by fetch."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.txt").write_text("tiny data set\n")
    digest = hashlib.sha256((mirror / "tiny.txt").read_bytes()).hexdigest()
    tiny = data.DataSet("tiny", "tiny.txt", "https://example.invalid/tiny.txt", (digest,))
    monkeypatch.setattr(data, "DATASETS", {"tiny": tiny})
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(data.MIRROR_ENV, "")  # no mirror; restored after --data-dir sets it

    assert cli.main(["data", "verify"]) == 1
    assert "0 of 1 data sets verified" in capsys.readouterr().out

    assert cli.main(["--data-dir", str(mirror), "data", "verify"]) == 0
    assert "1 of 1 data sets verified" in capsys.readouterr().out

    assert cli.main(["--data-dir", str(mirror), "data", "fetch", "--to", str(tmp_path / "to")]) == 0
    assert (tmp_path / "to" / "tiny.txt").read_text() == "tiny data set\n"
    assert cli.fetch_data(tmp_path / "to") == 0  # present and verified: left in place
