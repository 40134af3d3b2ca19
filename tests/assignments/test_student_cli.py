"""``rnn-course-student``: ``check`` on good and broken submissions, wrong arguments, data."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from assignments import check, cli, data
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


def history() -> dict:
    curve = {key: [0.69, 0.68] for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    return {**curve, "seconds_per_epoch": 0.5}


@pytest.fixture(scope="module")
def good_submission(tmp_path_factory) -> Path:
    """A valid submission: the release notebook and the three exported models."""
    folder = tmp_path_factory.mktemp("good") / ASSIGNMENT
    folder.mkdir()
    shutil.copy(RELEASE_NOTEBOOK, folder)
    models = {name: tiny_model(name) for name in CELL_TYPES}
    export_models(models, {name: history() for name in CELL_TYPES}, folder / "models")
    return folder


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
    # notebook, four artifacts, three models predict, history
    assert len(checks) == 9
    assert any(f"notebook {ASSIGNMENT}.ipynb" in line for line in checks)
    assert any(line.startswith("PASS  lstm predicts") and "(6, 1)" in line for line in checks)
    assert lines[-1].startswith("9 of 9 public checks passed")


def test_default_folder_is_the_current_directory(good_submission, capsys, monkeypatch):
    monkeypatch.chdir(good_submission)
    assert cli.main(["check", ASSIGNMENT]) == 0
    assert "9 of 9 public checks passed" in capsys.readouterr().out


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
