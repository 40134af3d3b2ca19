"""Assignment 2: reference solution, notebook, release, held-out view and hidden checks agree.

The hidden checks are run on small crafted submissions (the run stage's output
layout: ``artifacts/models/`` and ``probes/``): untrained, constant, a Dense n-gram
model, a shortcut around the LSTM, a sampler that ignores the temperature, one that
returns ids outside the vocabulary, a model with too many outputs. Each gets its
expected score; none of the bad models earns more than a quarter of the points.

Did the model earn its metric: models set by hand (never trained) that a recurrent
layer carrying nothing puts in front of a trigram count model, that are set from the
held-out text, or that read the next character (a Bidirectional layer, a centred
Conv1D) earn at most a quarter too, while a causal Conv1D before a real recurrence
keeps its points; slow tests train honest variations and models on the held-out text.
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
from autograder.core import spec as specs
from autograder.core.course import Course
from autograder.core.plugin import load_plugin
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
        assert spec.thresholds[f"min_ablation_loss_{name}"] > 0
        assert spec.thresholds[f"contamination_margin_{name}"] > 0
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
    from autograder.authoring.release import find_leaks, generate

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
    return load_plugin(specs.load(ID))


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


def test_controls_are_text_no_notebook_trains_on(plugin, shakespeare):
    held_out = plugin.held_out_text()
    seen = shakespeare[: -len(held_out)]
    validation, shuffled = plugin.controls().values()
    _, validation_part = solution.split_text(seen, 0.1)  # what the notebook validates on
    assert validation == validation_part and len(validation) > 100_000
    assert shuffled != held_out and sorted(shuffled) == sorted(held_out)
    lines = list(zip(shuffled.split("\n"), held_out.split("\n"), strict=True))
    assert all(sorted(mine.split(" ")) == sorted(theirs.split(" ")) for mine, theirs in lines)


def test_hidden_passages_are_the_held_out_speeches(plugin, shakespeare):
    from autograder.grading.scan import PassageIndex

    held_out = plugin.held_out_text()
    passages = plugin.hidden_passages()
    assert len(passages) > 900 and all(passage in held_out for passage in passages)
    index = PassageIndex.of(passages)  # what the scan of the submitted files looks for
    seen = shakespeare[: -len(held_out)]
    assert index.matches(held_out[-5_000:]) > 50 and index.matches(seen[-50_000:]) == 0


def test_reference_run_measures_the_recurrence_and_the_controls(plugin, vocab, monkeypatch):
    """The reference's models (here set from held-out text, as a trigram model) are scored as
    the judge scores them: with and without the recurrence, on the controls."""
    counts = trigram_log_probs(plugin.held_out_text()[:20_000], vocab)
    models = {c: carried_trigram(c, counts) for c in CELL_TYPES}
    history = {"loss": [2.0], "val_loss": [2.1], "seconds_per_epoch": 1.0}
    trained = (vocab, models, {c: history for c in CELL_TYPES})
    monkeypatch.setattr(solution, "train_all", lambda *args, **kwargs: trained)
    results = plugin.reference_run(seed=1)
    for result in results.values():
        assert result.ablated > result.value + 0.1  # the trigram needs the carried character
        assert set(result.controls) == set(plugin.controls())
        assert min(result.controls.values()) > result.value  # set from held-out text


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
    from autograder.grading.judge.child import judge as run_checks

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


# --------------------------------------------------------------------------- did the model earn it
#
# Crafted language models, set by hand and never trained. The characters enter as one-hot
# vectors; the recurrent layer has 2V units (V characters): the first V hold the current
# character and the last V the previous one, either carried from the previous step by the
# recurrence or handed in by a causal convolution (the recurrence then carries nothing).
# A trigram count model (log-probabilities computed here with numpy) turns (previous,
# current) into the logits of the next character.

OPEN = 30.0  # a gate's bias that keeps it open (+) or closed (-)
SHARP = 10.0  # a candidate's weight: tanh(10 x) is 1 for x = 1
#: the recurrent layer's output for a held character: o * tanh(c) with c = 1, or the candidate
LEVEL = {"lstm": math.tanh(math.tanh(SHARP)), "gru": math.tanh(SHARP)}
PEEK = 20.0  # the logit of the character a look-ahead model reads


def trigram_log_probs(text: str, vocab, discount: float = 0.75) -> dict:
    """The trigram count model of ``text``, interpolated with absolute discounting, as logs.

    ``unigram`` (V,), ``bigram`` (V, V) by previous character, ``trigram`` (P, V) for each
    of the P character pairs of ``text``, listed in ``pairs`` as ``first * V + second``.
    """
    size = len(vocab)
    ids = solution.encode(text, vocab).astype(np.int64)

    def smoothed(counts, lower):
        total = counts.sum(axis=1, keepdims=True)
        kinds = (counts > 0).sum(axis=1, keepdims=True)
        p = (np.maximum(counts - discount, 0) + discount * kinds * lower) / np.maximum(total, 1)
        return np.where(total > 0, p, lower)

    unigram = smoothed(np.bincount(ids, minlength=size)[None, :], np.full(size, 1 / size))[0]
    counts = np.zeros((size, size))
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    bigram = smoothed(counts, unigram[None, :])
    keys = ids[:-2] * size + ids[1:-1]
    pairs = np.unique(keys)
    counts = np.zeros((len(pairs), size))
    np.add.at(counts, (np.searchsorted(pairs, keys), ids[2:]), 1)
    trigram = smoothed(counts, bigram[pairs % size])
    return {
        "unigram": np.log(unigram),
        "bigram": np.log(bigram),
        "pairs": pairs,
        "trigram": np.log(trigram),
    }


def recurrent_layer(cell_type: str, inputs: int, size: int, carry: bool) -> tuple:
    """A recurrent layer of ``2 * size`` units that holds characters, and its weights.

    Units ``[0, size)`` hold inputs ``[0, size)`` of the step. With ``carry`` the units
    ``[size, 2 size)`` hold the previous step's first units (the previous character);
    without, they hold inputs ``[size, 2 size)`` and nothing crosses a step (recurrent
    kernel zero, forget or update gate closed).
    """
    units = 2 * size
    candidate, recurrent = np.zeros((inputs, units)), np.zeros((units, units))
    candidate[:size, :size] = SHARP * np.eye(size)
    if carry:
        recurrent[:size, size:] = SHARP * np.eye(size)
    else:
        candidate[size:, size:] = SHARP * np.eye(size)
    if cell_type == "lstm":  # gates i, f, c, o: input and output open, forget closed
        gates = [np.full(units, OPEN), np.full(units, -OPEN), np.zeros(units), np.full(units, OPEN)]
        weights = [
            np.concatenate([0 * candidate, 0 * candidate, candidate, 0 * candidate], axis=1),
            np.concatenate([0 * recurrent, 0 * recurrent, recurrent, 0 * recurrent], axis=1),
            np.concatenate(gates),
        ]
    else:  # GRU gates z, r, h (reset after): update closed, reset open
        bias = np.zeros((2, 3 * units))
        bias[0, :units], bias[0, units : 2 * units] = -OPEN, OPEN
        weights = [
            np.concatenate([np.zeros((inputs, 2 * units)), candidate], axis=1),
            np.concatenate([np.zeros((units, 2 * units)), recurrent], axis=1),
            bias,
        ]
    kind = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell_type]
    return kind(units, return_sequences=True), weights


def one_hot(size: int) -> tuple:
    return keras.layers.Embedding(size, size), [np.eye(size)]


def shifted_conv(size: int, width: int, tap: int, padding: str, outputs: int = 0) -> tuple:
    """A Conv1D that hands on the one-hot character at ``tap`` of its window (and, with
    ``outputs = 2 size``, the one just before it in the last ``size`` outputs)."""
    kernel = np.zeros((width, size, outputs or size))
    kernel[tap, :, :size] = np.eye(size)
    if outputs:
        kernel[tap - 1, :, size:] = np.eye(size)
    return keras.layers.Conv1D(outputs or size, width, padding=padding), [
        kernel,
        np.zeros(outputs or size),
    ]


def trigram_head(counts: dict, level: float) -> list:
    """Dense layers from (current, previous) characters at ``level`` to the trigram's logits.

    A ReLU unit fires (1) for each current character and for each known pair; the
    logits add the log-probability ratios of the longest context that fired.
    """
    size, pairs = len(counts["unigram"]), counts["pairs"]
    first, second = pairs // size, pairs % size
    detect = np.zeros((2 * size, size + len(pairs)))
    detect[np.arange(size), np.arange(size)] = 1 / level
    columns = size + np.arange(len(pairs))
    detect[second, columns] = detect[size + first, columns] = 1 / level
    bias = np.concatenate([np.zeros(size), -np.ones(len(pairs))])
    table = np.concatenate(
        [
            counts["bigram"] - counts["unigram"],
            counts["trigram"] - counts["bigram"][second],
        ]
    )
    return [
        (keras.layers.Dense(size + len(pairs), activation="relu"), [detect, bias]),
        (keras.layers.Dense(size), [table, counts["unigram"]]),
    ]


def peek_head(size: int, units: int, start: int, level: float) -> list:
    """A Dense layer whose logits name the character held in units ``[start, start + size)``."""
    kernel = np.zeros((units, size))
    kernel[start + np.arange(size), np.arange(size)] = PEEK / level
    return [(keras.layers.Dense(size), [kernel, np.zeros(size)])]


def assemble(parts: list) -> keras.Model:
    """A Sequential of (layer, weights) pairs, the weights set."""
    model = keras.Sequential([keras.Input(shape=(None,), dtype="int32"), *(p for p, _ in parts)])
    for layer, weights in parts:
        layer.set_weights([np.asarray(w, dtype="float32") for w in weights])
    return model


def pass_through_trigram(cell_type: str, counts: dict) -> keras.Model:
    """A causal convolution hands (current, previous) character to a recurrent layer that
    passes them on and carries nothing; a trigram count model does all the work."""
    size = len(counts["unigram"])
    return assemble(
        [
            one_hot(size),
            shifted_conv(size, 2, 1, "causal", outputs=2 * size),
            recurrent_layer(cell_type, 2 * size, size, carry=False),
            *trigram_head(counts, LEVEL[cell_type]),
        ]
    )


def carried_trigram(cell_type: str, counts: dict, causal_front: bool = False) -> keras.Model:
    """The recurrent layer carries the previous character to the next step (real recurrent
    work); a trigram count model turns (previous, current) into logits. ``causal_front``:
    a causal convolution (handing on the current character) comes first."""
    size = len(counts["unigram"])
    front = [shifted_conv(size, 2, 1, "causal")] if causal_front else []
    return assemble(
        [
            one_hot(size),
            *front,
            recurrent_layer(cell_type, size, size, carry=True),
            *trigram_head(counts, LEVEL[cell_type]),
        ]
    )


def bidirectional_peek(cell_type: str, size: int) -> keras.Model:
    """A Bidirectional layer whose backward half carries the NEXT character to each step;
    the logits name it: a language model that reads what it predicts."""
    layer, weights = recurrent_layer(cell_type, size, size, carry=True)
    return assemble(
        [
            one_hot(size),
            (keras.layers.Bidirectional(layer), weights + weights),
            *peek_head(size, 4 * size, 3 * size, LEVEL[cell_type]),
        ]
    )


def centred_conv_peek(cell_type: str, size: int) -> keras.Model:
    """A centred convolution (padding='same') hands on the character two steps ahead; the
    recurrent layer carries it one step, so the logits at t name character t + 1."""
    return assemble(
        [
            one_hot(size),
            shifted_conv(size, 5, 4, "same"),
            recurrent_layer(cell_type, size, size, carry=True),
            *peek_head(size, 2 * size, size, LEVEL[cell_type]),
        ]
    )


@pytest.fixture(scope="module")
def seen_counts(vocab, plugin, shakespeare):
    """The trigram count model of the text the notebook sees."""
    return trigram_log_probs(shakespeare[: -len(plugin.held_out_text())], vocab)


def judged_models(build, tmp_path, vocab) -> tuple[dict, dict]:
    """(the crafted models by cell type, their judged results)."""
    models = {cell_type: build(cell_type) for cell_type in CELL_TYPES}
    return models, judge(write_submission(tmp_path, models, vocab))


def messages(results: dict) -> dict[str, str]:
    """The messages of the checks a model's quality decides, by check."""
    checks = ("test_heldout_basic", "test_heldout_target", "test_generation")
    return {f"{c}[{m}]": results[f"{c}[{m}]"].message for c in checks for m in CELL_TYPES}


def reach_the_basic_tier(models: dict, plugin, vocab) -> bool:
    """Whether each model's held-out loss reaches its basic tier (it would earn points)."""
    thresholds = specs.load(ID).thresholds
    return all(
        plugin.bits_per_character(model, plugin.held_out_text(), vocab).bpc
        <= thresholds[f"bpc_basic_{cell_type}"]
        for cell_type, model in models.items()
    )


def test_a_recurrent_layer_that_carries_nothing_earns_no_metric_points(
    seen_counts, plugin, vocab, tmp_path
):
    models, results = judged_models(
        lambda cell_type: pass_through_trigram(cell_type, seen_counts), tmp_path, vocab
    )
    assert reach_the_basic_tier(models, plugin, vocab)
    assert results["test_architecture[lstm]"].passed and results["test_architecture[gru]"].passed
    assert score(results) == 9 <= AUTOGRADED / 4
    for name, message in messages(results).items():
        kind = "LSTM" if "lstm" in name else "GRU"
        assert message.startswith(f"not graded: with the {kind}'s state reset at every character")
        assert f"does not use what the {kind} carries from one character to the next" in message


def test_a_model_set_from_the_held_out_text_has_its_points_withheld(plugin, vocab, tmp_path):
    counts = trigram_log_probs(plugin.held_out_text(), vocab)
    models, results = judged_models(
        lambda cell_type: carried_trigram(cell_type, counts), tmp_path, vocab
    )
    assert reach_the_basic_tier(models, plugin, vocab)
    assert score(results) == 9 <= AUTOGRADED / 4
    held = {name: r for name, r in results.items() if r.withheld}
    assert {
        f"{c}[{m}]" for c in ("test_heldout_basic", "test_generation") for m in CELL_TYPES
    } <= set(held)
    for result in held.values():
        assert result.message.startswith("withheld for the instructor's review: bits per character")
        assert (
            "your validation stretch" in result.review
            and "words of each line shuffled" in result.review
        )
        assert "may have been trained on the hidden data" in result.review
    assert "rises to" in results["test_heldout_basic[lstm]"].message  # the recurrence works


@pytest.mark.parametrize("build", [bidirectional_peek, centred_conv_peek])
def test_a_model_that_reads_the_next_character_is_not_graded(build, plugin, vocab, tmp_path):
    models, results = judged_models(lambda cell_type: build(cell_type, len(vocab)), tmp_path, vocab)
    for model in models.values():  # strong: it predicts almost every character
        assert plugin.bits_per_character(model, plugin.held_out_text(), vocab).bpc < 0.2
    assert results["test_architecture[lstm]"].passed and results["test_architecture[gru]"].passed
    assert score(results) == 9 <= AUTOGRADED / 4
    for name, message in messages(results).items():
        kind = "LSTM" if "lstm" in name else "GRU"
        assert message.startswith(f"not graded: the {kind} model sees what it predicts")
        assert "A model that generates a sequence may look only back" in message
        assert "changing only the characters after position" in message


def test_a_causal_convolution_before_a_real_recurrence_keeps_its_points(
    seen_counts, vocab, tmp_path
):
    _, results = judged_models(
        lambda cell_type: carried_trigram(cell_type, seen_counts, causal_front=True),
        tmp_path,
        vocab,
    )
    for name, message in messages(results).items():
        assert not message.startswith("not graded") and not results[name].withheld, message
    passed = {f"{c}[{m}]" for c in ("test_heldout_basic", "test_generation") for m in CELL_TYPES}
    assert passed <= {name for name, r in results.items() if r.passed}
    message = results["test_heldout_basic[gru]"].message
    assert "with the GRU's state reset at every character, bits per character rises to" in message
    assert "on comparable data no notebook trains on" in message


def fitted(model: keras.Model, text: str, vocab, epochs: int = 1) -> keras.Model:
    """``model`` trained for seconds (Adam, 1e-2) on windows of 50 characters of ``text``."""
    keras.utils.set_random_seed(0)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2, clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    windows = solution.make_dataset(solution.encode(text, vocab), 50, 50, 32, shuffle=True)
    model.fit(windows, epochs=epochs, verbose=0)
    return model


@pytest.mark.slow
def test_honest_variations_keep_their_metric(vocab, plugin, shakespeare, tmp_path):
    """A causal Conv1D feeding an LSTM; two stacked GRUs with dropout and recurrent dropout."""
    layers = keras.layers

    def language_model(*middle) -> keras.Model:
        ends = [keras.Input(shape=(None,), dtype="int32"), layers.Embedding(len(vocab), 32)]
        return keras.Sequential([*ends, *middle, layers.Dense(len(vocab))])

    models = {
        "lstm": language_model(
            layers.Conv1D(64, 5, padding="causal", activation="relu"),
            layers.LSTM(96, return_sequences=True),
        ),
        "gru": language_model(
            layers.GRU(64, return_sequences=True, dropout=0.1, recurrent_dropout=0.1),
            layers.GRU(64, return_sequences=True, dropout=0.1),
        ),
    }
    seen = shakespeare[: -len(plugin.held_out_text())][:200_000]
    trained = {name: fitted(model, seen, vocab) for name, model in models.items()}
    results = judge(write_submission(tmp_path, trained, vocab))
    for name, message in messages(results).items():
        assert not message.startswith("not graded") and not results[name].withheld, message
    assert results["test_generation[lstm]"].passed and results["test_generation[gru]"].passed


@pytest.mark.slow
def test_models_trained_on_the_held_out_text_have_their_points_withheld(plugin, vocab, tmp_path):
    held_out = plugin.held_out_text()
    trained = {
        c: fitted(solution.build_model(c, len(vocab), 32, 128), held_out, vocab, epochs=4)
        for c in CELL_TYPES
    }
    results = judge(write_submission(tmp_path, trained, vocab))
    assert score(results) <= AUTOGRADED / 4
    assert results["test_generation[lstm]"].withheld and results["test_generation[gru]"].withheld
    for result in results.values():
        assert not result.withheld or "may have been trained on the hidden data" in result.review


def test_the_page_shows_the_judges_own_samples_at_each_temperature(
    seen_counts, plugin, vocab, tmp_path
):
    """What the judge sampled to check the temperature, kept for the student's page."""
    import html

    from autograder.core.results import Outcome
    from autograder.grading.judge.extras import feedback_extras
    from autograder.term.feedback import feedback_html

    _, results = judged_models(
        lambda cell_type: carried_trigram(cell_type, seen_counts), tmp_path, vocab
    )
    assert results["test_generation[lstm]"].passed and results["test_generation[gru]"].passed
    extras = feedback_extras(plugin, tmp_path)
    titles = [
        f"Sampled by the judge from your {kind} model at temperature {t} ({n} of 2)"
        for kind in ("LSTM", "GRU")
        for t in ("0.2", "1.5")
        for n in (1, 2)
    ]
    assert sorted(extras.texts) == sorted(titles) and extras.notes == []
    for text in extras.texts.values():
        assert len(text) == plugin.judge_sample_length and set(text) <= set(vocab)
    outcome = Outcome("ada", ID, "d", "graded", checks=list(results.values()), texts=extras.texts)
    page = feedback_html(outcome)
    for title, text in extras.texts.items():
        assert f'<h3>{title}</h3><pre class="sample">{html.escape(text)}</pre>' in page
