"""Assignment 2: reference solution, notebook, release, held-out view and hidden checks agree.

The hidden checks are run on small crafted submissions (the run stage's output
layout: ``artifacts/models/`` and ``probes/``): untrained, constant, a Dense n-gram
model, a shortcut around the LSTM, a sampler that ignores the temperature, one that
returns ids outside the vocabulary, a model with too many outputs. Each gets its
expected score; none of the bad models earns more than a quarter of the points.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

from assignments.a2_text_generation.helpers import (
    CELL_TYPES,
    SAMPLE_LENGTH,
    TEMPERATURES,
    export_all,
    windows_to_array,
)
from assignments.data import DataError, load_shakespeare, locate
from autograder import spec as specs
from autograder.course import Course
from solutions import a2_text_generation as solution

ROOT = Path(__file__).resolve().parents[2]
ID = "a2_text_generation"
NOTEBOOK = ROOT / "source" / ID / f"{ID}.ipynb"
AUTOGRADED = 39


def grade_cells(notebook=NOTEBOOK) -> dict[str, dict]:
    cells = nbformat.read(notebook, as_version=4).cells
    return {
        c.metadata["nbgrader"]["grade_id"]: {**c.metadata["nbgrader"], "type": c.cell_type}
        for c in cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


def notebook_cell(grade_id: str) -> str:
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    return next(
        c.source for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


# --------------------------------------------------------------------------- reference functions


def test_vocab_encode_decode():
    vocab = solution.build_vocab("hello world\n")
    assert vocab == ["\n", " ", "d", "e", "h", "l", "o", "r", "w"]
    ids = solution.encode("hold", vocab)
    assert ids.dtype == np.int32 and ids.tolist() == [4, 6, 5, 2]
    assert solution.decode(ids, vocab) == "hold"
    shuffled = list("dlo h")
    assert solution.encode("hold", shuffled).tolist() == [4, 2, 1, 0]


def test_make_windows_shift_and_stride():
    pairs = windows_to_array(solution.make_windows(np.arange(41), 6, 4))
    assert pairs.shape == (9, 2, 6)
    assert pairs[2, 0].tolist() == [8, 9, 10, 11, 12, 13]
    assert pairs[2, 1].tolist() == [9, 10, 11, 12, 13, 14]
    batched = windows_to_array(solution.make_windows(np.arange(41), 6, 4).batch(4))
    assert np.array_equal(batched, pairs)


def test_split_is_contiguous():
    train, val = solution.split_text("abcdefghij", 0.2)
    assert (train, val) == ("abcdefgh", "ij")


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_build_model(cell_type):
    model = solution.build_model(cell_type, vocab_size=30, embedding_dim=8, units=16)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Embedding", cell_type.upper(), "Dense"]
    assert model(np.ones((3, 7), dtype="int32")).shape == (3, 7, 30)
    assert model(np.ones((1, 100), dtype="int32")).shape == (1, 100, 30)


def test_sample_next_greedy_distribution_and_large_logits():
    rng = np.random.default_rng(0)
    logits = np.array([0.5, 2.5, -1.0, 1.0])
    assert set(solution.sample_next(np.tile(logits, (50, 1)), 0.0, rng)) == {1}
    draws = solution.sample_next(np.tile(logits, (40_000, 1)), 1.0, rng)
    expected = np.exp(logits) / np.exp(logits).sum()
    assert np.allclose(np.bincount(draws, minlength=4) / len(draws), expected, atol=0.01)
    hot = solution.sample_next(np.tile(logits, (40_000, 1)), 3.0, rng)
    assert np.bincount(hot, minlength=4).min() > np.bincount(draws, minlength=4).min()
    large = solution.sample_next(np.tile([1000.0, 999.0, -1000.0], (2000, 1)), 1.0, rng)
    assert set(large) == {0, 1} and 0.6 < np.mean(large == 0) < 0.78
    assert solution.sample_next(logits, 1.0, rng).shape == (1,)


def test_generate_gives_the_asked_length_in_the_vocabulary():
    vocab = solution.build_vocab("ROMEO:\nthe quick brown fox")
    model = solution.build_model("gru", len(vocab), 4, 8)
    rng = np.random.default_rng(0)
    text = solution.generate(model, vocab, "ROMEO:\n", 40, 1.0, rng, window=16)
    assert len(text) == 40 and set(text) <= set(vocab)


def test_notebook_functions_match_reference():
    namespace = {"np": np, "keras": keras, "tf": __import__("tensorflow"), "print": lambda *a: 0}
    namespace["EVAL_WINDOW"] = 100
    namespace["text"] = "ROMEO:\nBefore we proceed any further, hear me speak.\n" * 30
    exec(notebook_cell("vocab"), namespace)
    exec(notebook_cell("windows"), namespace)
    exec(notebook_cell("build_model"), namespace)
    exec(notebook_cell("sampler"), namespace)
    vocab = namespace["vocab"]
    assert vocab == solution.build_vocab(namespace["text"])
    assert np.array_equal(namespace["encode"]("hear me", vocab), solution.encode("hear me", vocab))
    mine = windows_to_array(namespace["make_windows"](np.arange(30), 5, 3))
    assert np.array_equal(mine, windows_to_array(solution.make_windows(np.arange(30), 5, 3)))
    for cell_type in CELL_TYPES:
        model = namespace["build_model"](cell_type, 40, 8, 16)
        reference = solution.build_model(cell_type, 40, 8, 16)
        assert [type(x) for x in model.layers] == [type(x) for x in reference.layers]
        assert model.count_params() == reference.count_params()
    logits = np.tile([0.5, 2.5, -1.0, 1.0], (1000, 1))
    for temperature in (0.0, 0.7, 1.5):
        mine = namespace["sample_next"](logits, temperature, np.random.default_rng(3))
        same = solution.sample_next(logits, temperature, np.random.default_rng(3))
        assert np.array_equal(mine, same)


# --------------------------------------------------------------------------- spec and notebook


def test_spec_contract():
    spec = specs.load(ID)
    assert spec.artifact_paths == {
        "lstm": "models/lstm.keras",
        "gru": "models/gru.keras",
        "vocab": "models/vocab.json",
        "samples": "models/samples.json",
        "history": "models/history.json",
    }
    assert {p.function for p in spec.probes} == {
        "encode",
        "decode",
        "probe_windows",
        "probe_sampler",
    }
    for name in CELL_TYPES:
        assert spec.thresholds[f"bpc_{name}"] < spec.thresholds[f"bpc_basic_{name}"]
    assert spec.calibration.better == "lower" and spec.calibration.metric == "bpc"


def test_notebook_grade_cells():
    cells = grade_cells()
    assert {k: v["points"] for k, v in cells.items()} == {
        "test_text": 2,
        "windows_explanation": 3,
        "test_sampler": 4,
        "temperature_discussion": 3,
        "experiment_report": 5,
        "test_export": 1,
        "test_models": 4,
        "test_heldout": 28,
    }
    for grade_id in ("test_text", "test_sampler", "test_export", "test_models", "test_heldout"):
        assert cells[grade_id]["locked"] and cells[grade_id]["type"] == "code"
    for grade_id in ("windows_explanation", "temperature_discussion", "experiment_report"):
        assert cells[grade_id]["solution"] and cells[grade_id]["type"] == "markdown"


def test_notebook_and_twin_agree():
    import jupytext

    twin = jupytext.read(NOTEBOOK.with_suffix(".py"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert [(c.cell_type, c.source) for c in twin.cells] == [
        (c.cell_type, c.source) for c in notebook.cells
    ]


def test_release_has_no_solution(tmp_path, monkeypatch):
    from autograder.release import find_leaks, generate

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "source" / ID).mkdir(parents=True)
    (tmp_path / "source" / ID / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    generate(ID, Course(tmp_path))
    released = tmp_path / "release" / ID / NOTEBOOK.name
    assert find_leaks(NOTEBOOK, released) == []
    text = released.read_text()
    secrets = (
        "BEGIN SOLUTION",
        "scaled -= scaled.max(axis=-1, keepdims=True)",
        "restore_best_weights=True",
        "return_sequences=True)",
        "memorisation",
    )
    assert [secret for secret in secrets if secret in text] == []
    points = {grade_id: cell["points"] for grade_id, cell in grade_cells().items()}
    assert {k: v["points"] for k, v in grade_cells(released).items()} == points


# --------------------------------------------------------------------------- held-out view


@pytest.fixture(scope="module")
def shakespeare():
    """Skip what needs Tiny Shakespeare where it is not available."""
    try:
        locate("shakespeare", download=False)
        locate("republic", download=False)
    except DataError as err:
        pytest.skip(str(err).splitlines()[0])
    return load_shakespeare()


@pytest.fixture(scope="module")
def plugin(shakespeare):
    return specs.load(ID).plugin()


def test_student_view_holds_the_corpus_without_the_held_out_stretch(plugin, shakespeare, tmp_path):
    from assignments.data import load_republic

    view = plugin.student_view(tmp_path / "view")
    seen = load_shakespeare(data_dir=view)
    held_out = plugin.held_out_text()
    assert seen + held_out == shakespeare
    assert 0.09 < len(held_out) / len(shakespeare) < 0.11 and seen.endswith("\n")
    assert held_out[:200] not in seen
    assert load_republic(data_dir=view) == load_republic()
    plugin.student_view(tmp_path / "view")  # a second call keeps the view
    assert load_shakespeare(data_dir=view) == seen


def test_metric_counts_unknown_characters(plugin, tmp_path):
    text = plugin.held_out_text()
    vocab = sorted(set(text) - {"z"})
    model = solution.build_model("gru", len(vocab), 4, 4)
    score = plugin.bits_per_character(model, text, vocab)
    targets = "".join(text[s + 1 : s + 101] for s in range(0, (len(text) - 1) // 100 * 100, 200))
    assert score.characters == len(targets) > 55_000  # every second window of 100
    assert score.unknown == targets.count("z") > 0
    assert abs(score.bpc - math.log2(len(vocab))) < 0.05  # an untrained model: about uniform
    wrong = solution.build_model("gru", len(vocab) + 3, 4, 4)
    with pytest.raises(ValueError, match="logits of shape"):
        plugin.bits_per_character(wrong, text, vocab)


def test_baselines_are_the_count_models(plugin):
    baselines = plugin.baselines()
    assert set(baselines) == {"unigram", "bigram"}
    assert 4.7 < baselines["unigram"] < 5.0 and 3.4 < baselines["bigram"] < 3.8
    assert baselines["unigram"] == pytest.approx(plugin.unigram_bpc(), abs=1e-3)


# --------------------------------------------------------------------------- hidden checks


def correct_sampler(logits, temperature, rng):
    return solution.sample_next(logits, temperature, rng)


def sampler_ignoring_temperature(logits, temperature, rng):
    return solution.sample_next(logits, 1.0, rng)


def sampler_off_by_one(logits, temperature, rng):
    """Ids 1..V instead of 0..V-1 (as if id 0 were reserved for padding)."""
    return solution.sample_next(logits, temperature, rng) + 1


def write_probes(root: Path, sampler=correct_sampler) -> None:
    """The probe outputs of the reference functions (and ``sampler``), as the run stage writes."""
    folder = root / "probes"
    folder.mkdir()
    index = {}
    for probe in specs.load(ID).probes:
        kwargs = probe.kwargs
        if probe.function == "encode":
            value = solution.encode(**kwargs)
        elif probe.function == "decode":
            value = solution.decode(**kwargs)
        elif probe.function == "probe_windows":
            ids = np.asarray(kwargs["ids"], dtype=np.int32)
            value = windows_to_array(
                solution.make_windows(ids, kwargs["seq_len"], kwargs["stride"])
            )
        else:
            rng = np.random.default_rng(kwargs["seed"])
            rows = np.tile(np.asarray(kwargs["logits"], dtype=np.float32), (kwargs["n"], 1))
            value = sampler(rows, kwargs["temperature"], rng)
        filename = f"{probe.name}.npz"
        with open(folder / filename, "wb") as handle:
            np.savez(handle, value=np.asarray(value))
        index[probe.name] = {"ok": True, "file": filename}
    (folder / "index.json").write_text(json.dumps(index))


def write_submission(root: Path, models: dict, vocab, sampler=correct_sampler) -> Path:
    """A submission in the run stage's output layout: exported files and probe outputs."""
    rng = np.random.default_rng(0)
    samples = {}
    for name in CELL_TYPES:
        samples[name] = {}
        for temperature in TEMPERATURES:
            ids = sampler(np.zeros((SAMPLE_LENGTH, len(vocab))), temperature, rng)
            samples[name][temperature] = "".join(
                vocab[i] if i < len(vocab) else "\N{REPLACEMENT CHARACTER}" for i in ids
            )
    curve = {"loss": [2.0, 1.8], "val_loss": [2.1, 1.9], "seconds_per_epoch": 3.0}
    export_all(
        models, vocab, samples, {c: curve for c in CELL_TYPES}, root / "artifacts" / "models"
    )
    write_probes(root, sampler)
    return root


def judge(root: Path) -> dict:
    from autograder.judge import judge as run_checks

    return {r.name: r for r in run_checks(specs.load(ID), root)}


def score(results: dict) -> float:
    return sum(r.points for r in results.values())


@pytest.fixture(scope="module")
def vocab(plugin, shakespeare):
    return solution.build_vocab(shakespeare[: -len(plugin.held_out_text())])


@pytest.fixture(scope="module")
def tiny_trained(vocab, plugin, shakespeare):
    """A tiny LSTM and GRU trained for a few seconds: better than the unigram model only."""
    seen = shakespeare[: -len(plugin.held_out_text())]
    config = solution.Config(
        seq_len=50, stride=50, embedding_dim=16, units=32, batch_size=32, learning_rate=1e-2,
        epochs=1, max_chars=60_000, time_budget_s=120,
    )  # fmt: skip
    _, train_ids, val_ids = solution.prepare(config, seen)
    return {
        c: solution.train_model(c, train_ids, val_ids[:20_000], len(vocab), config)[0]
        for c in CELL_TYPES
    }


@pytest.fixture(scope="module")
def untrained_results(vocab, tmp_path_factory):
    keras.utils.set_random_seed(0)
    models = {c: solution.build_model(c, len(vocab), 8, 16) for c in CELL_TYPES}
    return judge(write_submission(tmp_path_factory.mktemp("untrained"), models, vocab))


def test_untrained_models_earn_at_most_a_quarter(untrained_results):
    failed = {name for name, r in untrained_results.items() if not r.passed}
    assert failed == {
        f"{check}[{c}]"
        for check in ("test_heldout_basic", "test_heldout_target", "test_generation")
        for c in CELL_TYPES
    }
    assert score(untrained_results) == 9 <= AUTOGRADED / 4
    message = untrained_results["test_heldout_target[lstm]"].message
    assert "held-out 6." in message and "bits per character" in message and "target tier" in message
    assert "no better than counting characters" in message
    assert untrained_results["test_generation[gru]"].message.startswith("not graded")
    totals = Counter()
    for result in untrained_results.values():
        totals[result.grade_cell] += result.max_points
    autograded = {
        grade_id: cell["points"]
        for grade_id, cell in grade_cells().items()
        if cell["type"] == "code" and not cell.get("solution")
    }
    assert dict(totals) == autograded  # the checks' points add up to each grade cell's
    assert sum(autograded.values()) == AUTOGRADED


def constant_model(cell_type: str, vocab, frequencies) -> keras.Model:
    """The taught architecture whose logits ignore the text: the unigram distribution."""
    model = solution.build_model(cell_type, len(vocab), 4, 4)
    dense = model.layers[-1]
    kernel, _ = dense.get_weights()
    dense.set_weights([np.zeros_like(kernel), np.log(frequencies).astype("float32")])
    return model


def test_constant_models_earn_at_most_a_quarter(vocab, shakespeare, tmp_path):
    counts = np.bincount(solution.encode(shakespeare, vocab), minlength=len(vocab)) + 1
    models = {c: constant_model(c, vocab, counts / counts.sum()) for c in CELL_TYPES}
    results = judge(write_submission(tmp_path, models, vocab))
    assert score(results) == 9
    assert "held-out 4.8" in results["test_heldout_basic[gru]"].message
    assert "no better than a unigram model" in results["test_generation[lstm]"].message


def dense_ngram(vocab, context: int = 5) -> keras.Model:
    """No recurrence: a causal convolution over the last ``context`` characters, then Dense."""
    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(len(vocab), 16),
            keras.layers.Conv1D(64, context, padding="causal", activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(len(vocab)),
        ]
    )


def test_a_dense_ngram_model_earns_no_model_points(vocab, tmp_path):
    results = judge(write_submission(tmp_path, {c: dense_ngram(vocab) for c in CELL_TYPES}, vocab))
    assert score(results) == 7  # the functions, the samples file and the export
    assert "no recurrent layer" in results["test_architecture[lstm]"].message
    assert "Conv1D" in results["test_architecture[gru]"].message
    for check in ("test_heldout_basic", "test_heldout_target", "test_generation"):
        message = results[f"{check}[lstm]"].message
        assert message.startswith("not graded: the model did not pass its architecture check")


def test_a_shortcut_around_the_recurrent_layer_is_refused(vocab, tmp_path):
    ids = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(len(vocab), 8)(ids)
    side = keras.layers.LSTM(8, return_sequences=True)(embedded)
    direct = keras.layers.Dense(8)(embedded)
    model = keras.Model(ids, keras.layers.Dense(len(vocab))(keras.layers.Add()([side, direct])))
    models = {"lstm": model, "gru": solution.build_model("gru", len(vocab), 8, 16)}
    results = judge(write_submission(tmp_path, models, vocab))
    assert not results["test_architecture[lstm]"].passed
    assert "around it" in results["test_architecture[lstm]"].message
    assert results["test_architecture[gru]"].passed


def test_trained_models_pass_generation_whatever_the_student_sampler(tiny_trained, vocab, tmp_path):
    results = judge(write_submission(tmp_path, tiny_trained, vocab, sampler_ignoring_temperature))
    failed = {name for name, r in results.items() if not r.passed}
    assert {"test_sampler_greedy", "test_sampler_temperature"} <= failed
    assert results["test_sampler_large_logits"].passed and results["test_samples_file"].passed
    assert results["test_generation[lstm]"].passed and results["test_generation[gru]"].passed
    assert "distinct characters" in results["test_generation[gru]"].message
    assert "at temperature 0.0, sample_next drew" in results["test_sampler_greedy"].message
    assert "divide the logits by the temperature" in results["test_sampler_temperature"].message
    assert "held-out" in results["test_heldout_basic[lstm]"].message  # measured either way


def test_a_sampler_outside_the_vocabulary_loses_the_sampler_points(
    untrained_results, vocab, tmp_path
):
    keras.utils.set_random_seed(0)
    models = {c: solution.build_model(c, len(vocab), 8, 16) for c in CELL_TYPES}
    results = judge(write_submission(tmp_path, models, vocab, sampler_off_by_one))
    assert score(results) == score(untrained_results) - 4
    assert "outside [0, 8)" in results["test_sampler_temperature"].message
    assert "outside the vocabulary" in results["test_samples_file"].message


def test_a_model_with_more_outputs_than_characters_is_not_scored(
    untrained_results, vocab, tmp_path
):
    root = write_submission(
        tmp_path, {c: solution.build_model(c, len(vocab), 8, 16) for c in CELL_TYPES}, vocab
    )
    for name in CELL_TYPES:  # saved by hand: the export helper refuses such a model
        solution.build_model(name, len(vocab) + 5, 8, 16).save(
            root / "artifacts" / "models" / f"{name}.keras"
        )
    results = judge(root)
    assert score(results) == score(untrained_results) - 1  # the export contract
    assert "logits of shape" in results["test_export_contract"].message
    message = results["test_heldout_basic[lstm]"].message
    assert "could not be scored" in message and f"(2, 7, {len(vocab)})" in message
    with pytest.raises(Exception, match="logits of shape"):
        curve = {"loss": [2.0], "val_loss": [2.1], "seconds_per_epoch": 3.0}
        export_all(
            {c: solution.build_model(c, len(vocab) + 5, 8, 16) for c in CELL_TYPES},
            vocab,
            {},
            {c: curve for c in CELL_TYPES},
            tmp_path / "refused",
        )
