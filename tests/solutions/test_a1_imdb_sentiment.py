"""Assignment 1: reference solution, notebook, release and hidden checks agree."""

import functools
import json
import os
import sys
from collections import Counter
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
import tensorflow as tf

from assignments.a1_imdb_sentiment.helpers import CELL_TYPES, end_to_end, export_models
from assignments.data import DataError, load_imdb, locate
from autograder.core import spec as specs
from autograder.core.course import Course
from autograder.core.plugin import load_plugin
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
        "test_build_model": 3,
        "report": 5,
        "test_export": 4,
        "test_accuracy": 21,
    }
    for grade_id in ("test_build_model", "test_export", "test_accuracy"):
        assert cells[grade_id]["locked"] and cells[grade_id]["type"] == "code"
    for grade_id in ("preprocessing_choices", "report"):
        assert cells[grade_id]["solution"] and cells[grade_id]["type"] == "markdown"


def test_release_has_no_solution(tmp_path, monkeypatch):
    from autograder.authoring.release import find_leaks, generate

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


def tiny_submission(root: Path, swap: bool = False, models=None) -> Path:
    """A well-formed submission in the run stage's output layout (untrained models by default)."""
    texts = np.array(["a good film", "a bad film", "good acting, bad plot"], dtype=object)
    vectorizer = solution.make_vectorizer(texts, vocab_size=50, seq_len=10)
    models = models or {
        c: end_to_end(vectorizer, solution.build_model(c, 50, 4, 4)) for c in CELL_TYPES
    }
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
    from autograder.grading.judge.child import judge

    root = tiny_submission(tmp_path_factory.mktemp("untrained"))
    return {r.name: r for r in judge(specs.load(ID), root)}


def test_hidden_checks_on_untrained_submission(untrained_results):
    failed = {name for name, r in untrained_results.items() if not r.passed}
    assert failed == {
        f"test_accuracy_{tier}[{c}]" for tier in ("basic", "target") for c in CELL_TYPES
    }
    message = untrained_results["test_accuracy_target[lstm]"].message
    assert "accuracy on hidden test reviews is 0." in message and "target tier 0.8" in message
    assert "That is chance level" in message
    assert score(untrained_results) == 7  # a quarter of 28, at most
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
    from autograder.grading.judge.child import judge

    results = {r.name: r for r in judge(specs.load(ID), tiny_submission(tmp_path, swap=True))}
    failed = {name for name, r in results.items() if not r.passed}
    failed_anyway = {name for name, r in untrained_results.items() if not r.passed}
    assert failed - failed_anyway == {"test_architecture[lstm]"}  # exactly that check
    assert "LSTM" in results["test_architecture[lstm]"].message
    assert results["test_architecture[gru]"].passed


@pytest.mark.long  # trains (make test-long); sample class student ada (28 of 28) runs by default
def test_quick_reference_passes_hidden_checks(imdb, tmp_path):
    from autograder.grading.judge.child import judge

    solution.train_reference(seed=0, out_dir=tmp_path / "artifacts" / "models", quick=True)
    results = judge(specs.load(ID), write_probes(tmp_path))
    assert [r.name for r in results if not r.passed] == []


def score(results) -> float:
    return sum(r.points for r in results.values())


def judged(tmp_path, models) -> dict:
    from autograder.grading.judge.child import judge

    return {r.name: r for r in judge(specs.load(ID), tiny_submission(tmp_path, models=models))}


def constant_model(cell_type: str) -> keras.Model:
    """The taught architecture whose output ignores the review: always P = 0.5."""
    texts = np.array(["a good film", "a bad film"], dtype=object)
    model = solution.build_model(cell_type, 50, 4, 4)
    dense = model.layers[-1]
    dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    return end_to_end(solution.make_vectorizer(texts, 50, 10), model)


def test_constant_models_earn_at_most_a_quarter(imdb, tmp_path):
    results = judged(tmp_path, {c: constant_model(c) for c in CELL_TYPES})
    assert score(results) == 7
    assert "0.500" in results["test_accuracy_basic[gru]"].message


def bag_of_words(vectorizer, layers=None, side: str | None = None) -> keras.Model:
    """Embedding and average pooling to P(positive); ``side``: a 1-unit decoy RNN beside it.

    ``layers`` (embedding, pooling, dense) reuses trained layers, weights included.
    """
    embedding, pooling, dense = layers or (
        keras.layers.Embedding(5000, 16),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1),
    )
    tokens = keras.Input((None,), dtype="int32", name=f"tokens_{side}")
    embedded = embedding(tokens)
    bag = dense(pooling(embedded))
    if side:  # names: the judge's clear_session restarts Keras's automatic names
        branch = solution.RECURRENT[side](1, name=f"decoy_{side}")(embedded)
        weight = keras.layers.Dense(1, kernel_initializer="zeros", name=f"zero_{side}")
        bag = keras.layers.Add(name=f"add_{side}")([bag, weight(branch)])
    output = keras.layers.Activation("sigmoid", name=f"sigmoid_{side}")(bag)
    return end_to_end(vectorizer, keras.Model(tokens, output, name=f"bag_{side}"))


@pytest.fixture(scope="module")
def trained_bag_of_words(imdb):
    """A bag-of-words classifier trained on 5,000 training reviews (a few seconds)."""
    texts, labels = load_imdb("train")
    keep = np.random.default_rng(0).permutation(len(texts))[:5000]
    vectorizer = solution.make_vectorizer(texts[keep], 5000, 200)
    keras.utils.set_random_seed(0)
    model = bag_of_words(vectorizer)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(tf.constant(list(texts[keep])), labels[keep], epochs=4, batch_size=64, verbose=0)
    return vectorizer, model


def test_a_model_without_recurrent_layer_earns_no_accuracy(trained_bag_of_words, tmp_path):
    _, model = trained_bag_of_words
    results = judged(tmp_path, {c: model for c in CELL_TYPES})
    assert score(results) == 4  # build_model and the export format only
    assert "no recurrent layer" in results["test_architecture[lstm]"].message
    assert results["test_accuracy_target[lstm]"].message.startswith("not graded")


def test_a_decoy_recurrent_branch_beside_a_shortcut_earns_no_accuracy(
    trained_bag_of_words, tmp_path
):
    vectorizer, trained = trained_bag_of_words
    inner = trained.layers[-1]
    kinds = (keras.layers.Embedding, keras.layers.GlobalAveragePooling1D, keras.layers.Dense)
    layers = [next(layer for layer in inner.layers if isinstance(layer, kind)) for kind in kinds]
    decoys = {c: bag_of_words(vectorizer, layers, side=c) for c in CELL_TYPES}
    plugin = load_plugin(specs.load(ID))
    texts, labels = plugin.hidden()
    accuracy = plugin.accuracy(plugin.predict_probabilities(decoys["lstm"], texts), labels)
    assert accuracy >= specs.load(ID).thresholds["accuracy_basic_lstm"]  # it would have scored
    results = judged(tmp_path, decoys)
    assert score(results) == 4
    message = results["test_architecture[lstm]"].message
    assert "around it" in message and "GlobalAveragePooling1D" in message
    assert results["test_accuracy_basic[lstm]"].message.startswith("not graded")


# --------------------------------------------------------------------------- earned accuracy
# Built, not trained: each word's Embedding row holds its sentiment score in feature 0
# (a naive Bayes log-count ratio), a recurrent layer reads it, a Dense thresholds.


def word_scores(vectorizer, texts, labels, smoothing: float = 1.0) -> np.ndarray:
    """Each token's naive Bayes log-count ratio in ``texts`` (positive: a positive word)."""
    tokens = np.asarray(vectorizer(tf.constant(list(texts))))
    size = vectorizer.vocabulary_size()
    positive = np.bincount(tokens[labels == 1].ravel(), minlength=size) + smoothing
    negative = np.bincount(tokens[labels == 0].ravel(), minlength=size) + smoothing
    scores = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
    scores[:2] = 0.0  # padding and out-of-vocabulary
    return scores


def recurrent_weights(cell_type: str, size: int, scale: float, carry: bool) -> list:
    """Weights of a recurrent layer (``size`` inputs and units) whose unit 0 reads feature 0.

    ``carry``: unit 0 adds each word to what it carries (a running sum: the LSTM's forget
    gate open, the GRU keeping 99% of its state, the SimpleRNN feeding itself back).
    Otherwise it carries nothing (recurrent kernel zero, forget or update gate shut) and
    passes each word through.
    """
    gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell_type]
    kernel, recurrent = np.zeros((size, gates * size)), np.zeros((size, gates * size))
    if cell_type == "simple_rnn":
        kernel[0, 0], recurrent[0, 0] = scale, float(carry)
        return [kernel, recurrent, np.zeros(size)]
    kernel[0, 2 * size] = scale  # the candidate: LSTM gates i, f, c, o; GRU gates z, r, h
    if cell_type == "lstm":
        keep = 10.0 if carry else -10.0
        bias = np.concatenate([[10.0] * size, [keep] * size, [0.0] * size, [10.0] * size])
        return [kernel, recurrent, bias]
    bias = np.zeros((2, 3 * size))
    bias[0, :size] = 4.6 if carry else -10.0
    return [kernel, recurrent, bias]


def sentiment_model(cell_type, vectorizer, scores, carry=True, variation=None, size=8):
    """Embedding -> the cell type's layer -> Dense, set by hand to read each word's score.

    ``carry=False``: the issue's attack: a recurrent layer that passes each word through
    (``return_sequences``), then GlobalAveragePooling1D: a bag of words with exactly
    build_model's parameter count. ``variation``: ``"stacked"`` (a second layer passing the
    first one's running sum through), ``"conv"`` (a Conv1D in front passing the scores
    through), ``"dropout"`` (dropout and recurrent dropout), ``"bidirectional"``, or
    ``"backward_gru"`` (a Bidirectional whose backward layer is a GRU).
    """
    table = np.zeros((len(scores), size))
    table[:, 0] = scores
    masked = carry and variation != "conv"  # no NaN pooling an empty review; Conv1D drops it
    stack = [(keras.layers.Embedding(len(scores), size, mask_zero=masked), [table])]
    if variation == "conv":
        kernel = np.zeros((3, size, size))
        kernel[1, 0, 0] = 1.0  # the middle tap copies feature 0
        stack.append((keras.layers.Conv1D(size, 3, padding="same"), [kernel, np.zeros(size)]))
    options = {"dropout": 0.2, "recurrent_dropout": 0.2} if variation == "dropout" else {}
    sequences = not carry or variation == "stacked"
    layer = solution.RECURRENT[cell_type](size, return_sequences=sequences, **options)
    weights = recurrent_weights(cell_type, size, 0.3, carry)
    both = variation in ("bidirectional", "backward_gru")
    if both:
        kind = "gru" if variation == "backward_gru" else cell_type
        backward = solution.RECURRENT[kind](size, go_backwards=True)
        layer = keras.layers.Bidirectional(layer, backward_layer=backward)
        weights += recurrent_weights(kind, size, 0.3, carry)
    stack.append((layer, weights))
    if variation == "stacked":
        second = solution.RECURRENT[cell_type](size)
        stack.append((second, recurrent_weights(cell_type, size, 1.0, carry=False)))
    if not carry:
        stack.append((keras.layers.GlobalAveragePooling1D(), []))
    readout = np.zeros((2 * size if both else size, 1))
    readout[[0, size] if both else [0]] = 20.0  # unit 0 of each direction
    stack.append((keras.layers.Dense(1, activation="sigmoid"), [readout, np.zeros(1)]))
    model = keras.Sequential([keras.Input((None,), dtype="int32")] + [x for x, _ in stack])
    for layer, weights in stack:
        layer.set_weights(weights)
    return end_to_end(vectorizer, model)


@pytest.fixture(scope="module")
def lexicon(imdb):
    """A vectorizer and word scores from 5,000 training reviews (a few seconds)."""
    texts, labels = load_imdb("train")
    keep = np.random.default_rng(0).permutation(len(texts))[:5000]
    vectorizer = solution.make_vectorizer(texts[keep], 5000, 200)
    return vectorizer, word_scores(vectorizer, texts[keep], labels[keep])


def hidden_accuracy(model) -> float:
    plugin = load_plugin(specs.load(ID))
    texts, labels = plugin.hidden()
    return plugin.accuracy(plugin.predict_probabilities(model, texts), labels)


def test_the_controls_are_visible_test_reviews(imdb):
    plugin = load_plugin(specs.load(ID))
    module = sys.modules[type(plugin).__module__]
    texts, labels = load_imdb("test")
    visible = np.setdiff1d(np.arange(len(texts)), module.hidden_test_indices(labels))
    [(name, (controls, control_labels))] = plugin.controls().items()
    assert name == "the visible test reviews"
    assert len(controls) == 1500 and control_labels.mean() == 0.5
    assert set(controls) <= set(texts[visible])  # what the sandbox shows, never trained on
    assert plugin.hidden_passages() == list(plugin.hidden()[0])


def test_a_recurrent_layer_that_does_no_recurrent_work_earns_no_accuracy(lexicon, tmp_path):
    bags = {c: sentiment_model(c, *lexicon, carry=False) for c in CELL_TYPES}
    basic = specs.load(ID).thresholds
    for cell_type, model in bags.items():  # strong: each would earn its basic tier
        assert hidden_accuracy(model) >= basic[f"accuracy_basic_{cell_type}"] + 0.05
    results = judged(tmp_path, bags)
    assert score(results) <= 7  # a quarter of 28
    assert all(results[f"test_architecture[{c}]"].passed for c in CELL_TYPES)  # it looks right
    message = results["test_accuracy_basic[lstm]"].message
    assert message.startswith("not graded: with the LSTM's state reset at every word, accuracy")
    assert "does not use what the LSTM carries from one word to the next" in message
    assert "stays at" in results["test_accuracy_target[gru]"].message


def test_a_recurrent_running_sum_keeps_its_accuracy(lexicon, tmp_path):
    results = judged(tmp_path, {c: sentiment_model(c, *lexicon) for c in CELL_TYPES})
    for cell_type in CELL_TYPES:
        check = results[f"test_accuracy_basic[{cell_type}]"]
        assert check.passed and not check.withheld, check.message
        assert "state reset at every word, accuracy falls to" in check.message
        assert "against the visible test reviews" in check.message


def test_a_model_fitted_to_the_hidden_reviews_is_withheld(imdb, tmp_path):
    texts, labels = load_plugin(specs.load(ID)).hidden()
    vectorizer = solution.make_vectorizer(texts, 20_000, 200)
    scores = word_scores(vectorizer, texts, labels, smoothing=0.1)  # learned from the hidden
    results = judged(tmp_path, {c: sentiment_model(c, vectorizer, scores) for c in CELL_TYPES})
    assert score(results) <= 7
    for cell_type in CELL_TYPES:
        check = results[f"test_accuracy_basic[{cell_type}]"]
        assert check.withheld == check.max_points and check.points == 0
        assert check.message.startswith("withheld for the instructor's review: accuracy 0.")
        assert "on the hidden data against the visible test reviews" in check.review
        assert "may have been trained on the hidden data" in check.review


def test_honest_variations_built_by_hand_keep_their_accuracy(lexicon, tmp_path):
    variations = {"simple_rnn": "dropout", "lstm": "stacked", "gru": "conv"}
    models = {c: sentiment_model(c, *lexicon, variation=v) for c, v in variations.items()}
    results = judged(tmp_path, models)
    for cell_type in CELL_TYPES:
        check = results[f"test_accuracy_basic[{cell_type}]"]
        assert check.passed and not check.withheld, check.message
    assert results["test_architecture[simple_rnn]"].passed
    stacked = results["test_architecture[lstm]"].message
    assert "layers with weights are Embedding -> LSTM -> LSTM -> Dense(1)" in stacked
    assert "the accuracy is still graded" in stacked
    assert "Embedding -> Conv1D -> GRU -> Dense(1)" in results["test_architecture[gru]"].message


def test_a_bidirectional_layer_of_the_file_s_cell_is_allowed(lexicon, tmp_path):
    variations = {"simple_rnn": "bidirectional", "lstm": "backward_gru", "gru": "bidirectional"}
    models = {c: sentiment_model(c, *lexicon, variation=v) for c, v in variations.items()}
    results = judged(tmp_path, models)
    for cell_type in ("simple_rnn", "gru"):
        assert results[f"test_architecture[{cell_type}]"].passed
        assert results[f"test_accuracy_basic[{cell_type}]"].passed
    assert "must use LSTM layers only; found GRU" in results["test_architecture[lstm]"].message
    assert results["test_accuracy_basic[lstm]"].message.startswith("not graded")


def trained(layers, x, y, vectorizer) -> keras.Model:
    """``Input -> layers -> Dense(1, sigmoid)`` trained 3 epochs on ``x``, as a string model."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((None,), dtype="int32"), *layers, keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=True)
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    return end_to_end(vectorizer, model)


@pytest.mark.long  # trains (make test-long); the variations built by hand above run by default
def test_trained_honest_variations_keep_their_accuracy(imdb, tmp_path):
    """A stacked LSTM, a bidirectional GRU, a Conv1D in front of an LSTM and a GRU with
    dropout and recurrent dropout, trained briefly on 6,000 reviews (a few minutes)."""
    texts, labels = load_imdb("train")
    keep = np.random.default_rng(0).permutation(len(texts))[:6000]
    vectorizer = solution.make_vectorizer(texts[keep], 5000, 200)
    x, y = np.asarray(vectorizer(tf.constant(list(texts[keep])))), labels[keep]
    layers = keras.layers
    embedding = functools.partial(layers.Embedding, 5000, 16, mask_zero=True)
    untrained = end_to_end(vectorizer, solution.build_model("simple_rnn", 5000, 16, 16))
    submissions = {
        "stacked, bidirectional": {
            "lstm": [embedding(), layers.LSTM(16, return_sequences=True), layers.LSTM(16)],
            "gru": [embedding(), layers.Bidirectional(layers.GRU(16))],
        },
        "conv, dropout": {
            "lstm": [  # Conv1D drops the mask: the LSTM reads the padding too
                layers.Embedding(5000, 16),
                layers.Conv1D(16, 5, padding="same", activation="relu"),
                layers.LSTM(16),
            ],
            "gru": [embedding(), layers.GRU(16, dropout=0.2, recurrent_dropout=0.2)],
        },
    }
    for name, variations in submissions.items():
        models = {c: trained(v, x, y, vectorizer) for c, v in variations.items()}
        results = judged(tmp_path / name, {"simple_rnn": untrained, **models})
        for cell_type in variations:
            check = results[f"test_accuracy_basic[{cell_type}]"]
            assert check.passed and not check.withheld, f"{name}: {check.message}"
            assert "state reset at every word, accuracy falls to" in check.message
