"""Hidden checks of assignment 1 (IMDB sentiment: SimpleRNN vs LSTM vs GRU).

Points per grade cell of the notebook: test_build_model 6, test_export 13,
test_accuracy 9. Only the assertion messages reach the student.
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from assignments.a1_imdb_sentiment.helpers import CELL_TYPES, CHECK_REVIEWS, iter_layers

CELLS = {
    "simple_rnn": keras.layers.SimpleRNNCell,
    "lstm": keras.layers.LSTMCell,
    "gru": keras.layers.GRUCell,
}
LAYER_NAMES = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
per_cell = pytest.mark.parametrize("cell_type", CELL_TYPES)


def recurrent_kinds(model) -> list[str]:
    """The cell type of every recurrent layer nested in ``model`` (wrappers included)."""
    kinds = []
    for layer in iter_layers(model):
        if isinstance(layer, keras.layers.RNN):
            cells = getattr(layer.cell, "cells", [layer.cell])
            for cell in cells:
                kind = [name for name, cls in CELLS.items() if isinstance(cell, cls)]
                kinds.append(kind[0] if kind else type(cell).__name__)
    return kinds


def built(model, length: int = 12):
    """``model`` with its weights created (an unbuilt probe is called on a dummy batch)."""
    outputs = model(np.ones((2, length), dtype="int32"))
    return model, np.asarray(outputs)


def probe_kwargs(spec, cell_type: str) -> dict:
    return next(p.kwargs for p in spec.probes if p.name == f"build_model_{cell_type}")


# --------------------------------------------------------------------------- build_model


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_build_model")
@per_cell
def test_build_model_layers(cell_type, spec, probe):
    """build_model builds Embedding -> the requested recurrent layer -> Dense(1, sigmoid)."""
    kwargs = probe_kwargs(spec, cell_type)
    model, outputs = built(probe(f"build_model_{cell_type}"))
    call = f"build_model('{cell_type}', vocab_size={kwargs['vocab_size']}, ...)"
    layers = list(iter_layers(model))
    embeddings = [layer for layer in layers if isinstance(layer, keras.layers.Embedding)]
    assert embeddings, f"{call}: no Embedding layer found"
    assert embeddings[0].input_dim == kwargs["vocab_size"], (
        f"{call}: the Embedding must have input_dim=vocab_size"
    )
    assert embeddings[0].output_dim == kwargs["embedding_dim"], (
        f"{call}: the Embedding must have output_dim=embedding_dim"
    )
    kinds = recurrent_kinds(model)
    assert kinds and set(kinds) == {cell_type}, (
        f"{call} must use {LAYER_NAMES[cell_type]} layers only; found {kinds or 'none'}"
    )
    assert outputs.shape == (2, 1), f"{call}: output shape must be (batch, 1), got {outputs.shape}"
    assert np.all((outputs >= 0) & (outputs <= 1)), (
        f"{call}: outputs must be probabilities; end with Dense(1, activation='sigmoid')"
    )


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_build_model")
@per_cell
def test_build_model_parameters(cell_type, spec, probe):
    """build_model has the expected number of parameters."""
    from solutions.a1_imdb_sentiment import build_model

    kwargs = probe_kwargs(spec, cell_type)
    model, _ = built(probe(f"build_model_{cell_type}"))
    expected = build_model(**kwargs).count_params()
    actual = model.count_params()
    assert actual == expected, (
        f"build_model({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) has {actual:,} "
        f"parameters, expected {expected:,}: use exactly one Embedding(vocab_size, "
        "embedding_dim), one recurrent layer with `units` units and Dense(1)"
    )


# --------------------------------------------------------------------------- exported models


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
def test_history(artifact_path):
    """history.json has the training and validation curves of the three models."""
    path = artifact_path("history")
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        pytest.fail(f"models/history.json is not valid JSON ({err}); export with export_models")
    assert isinstance(record, dict), "models/history.json must map each model name to its history"
    for name in CELL_TYPES:
        entry = record.get(name)
        assert isinstance(entry, dict), f"models/history.json has no entry for '{name}'"
        lengths = set()
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            values = entry.get(key)
            assert isinstance(values, list) and values, (
                f"history of '{name}' has no '{key}' curve: fit with validation data and "
                "metrics=['accuracy']"
            )
            assert all(isinstance(v, int | float) and math.isfinite(v) for v in values), (
                f"history of '{name}': '{key}' must hold finite numbers"
            )
            lengths.add(len(values))
        assert len(lengths) == 1, f"history of '{name}': the curves differ in length"
        seconds = entry.get("seconds_per_epoch")
        assert isinstance(seconds, int | float) and seconds > 0, (
            f"history of '{name}' needs a positive 'seconds_per_epoch'"
        )


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
@per_cell
def test_model_loads(cell_type, keras_artifact):
    """The exported model loads with safe_mode=True and has no Lambda layer."""
    model = keras_artifact(cell_type)
    lambdas = [layer.name for layer in iter_layers(model) if isinstance(layer, keras.layers.Lambda)]
    assert not lambdas, f"models/{cell_type}.keras contains Lambda layers {lambdas}; remove them"


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
@per_cell
def test_architecture(cell_type, keras_artifact):
    """The exported model uses the recurrent layer its file name says."""
    kinds = recurrent_kinds(keras_artifact(cell_type))
    assert kinds and set(kinds) == {cell_type}, (
        f"models/{cell_type}.keras must contain {LAYER_NAMES[cell_type]} layers and no other "
        f"recurrent layer; found {kinds or 'none'}. Export each trained model under its own name"
    )


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
@per_cell
def test_raw_strings(cell_type, keras_artifact):
    """The exported model maps raw review strings to probabilities of shape (batch, 1)."""
    model = keras_artifact(cell_type)
    try:
        outputs = np.asarray(model.predict(tf.constant(CHECK_REVIEWS), verbose=0))
    except Exception as err:
        pytest.fail(
            f"models/{cell_type}.keras fails on a batch of raw strings ({type(err).__name__}); "
            "export end_to_end(vectorizer, model), not the integer model"
        )
    n = len(CHECK_REVIEWS)
    assert outputs.shape == (n, 1), (
        f"models/{cell_type}.keras maps {n} reviews to shape {outputs.shape}, expected ({n}, 1)"
    )
    assert np.all(np.isfinite(outputs)), f"models/{cell_type}.keras outputs NaN or infinity"
    assert np.all((outputs >= 0) & (outputs <= 1)), (
        f"models/{cell_type}.keras outputs values outside [0, 1]; end with a sigmoid"
    )


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
@per_cell
def test_size_and_speed(cell_type, keras_artifact, scored, thresholds):
    """The exported model stays within the parameter and inference-time caps."""
    params = keras_artifact(cell_type).count_params()
    assert params <= thresholds["max_params"], (
        f"models/{cell_type}.keras has {params:,} parameters; the cap is "
        f"{thresholds['max_params']:,.0f}: use a smaller vocabulary, embedding or layer"
    )
    _, seconds = scored(cell_type)
    assert seconds <= thresholds["max_inference_s"], (
        f"models/{cell_type}.keras took {seconds:.0f} s to score the hidden reviews; the cap is "
        f"{thresholds['max_inference_s']:.0f} s: use a shorter sequence length or smaller layers"
    )


# --------------------------------------------------------------------------- accuracy


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_accuracy")
@per_cell
def test_accuracy_basic(cell_type, hidden_accuracy, thresholds):
    """Accuracy on hidden test reviews reaches the basic tier."""
    accuracy = hidden_accuracy(cell_type)
    needed = thresholds[f"accuracy_basic_{cell_type}"]
    assert accuracy >= needed, (
        f"the {LAYER_NAMES[cell_type]} model scores {accuracy:.3f} on hidden test reviews; "
        f"partial credit needs {needed:.3f}. Is the exported model the trained one, fed "
        "normalised text, with early stopping restoring the best weights?"
    )


@pytest.mark.points(2)
@pytest.mark.grade_cell("test_accuracy")
@per_cell
def test_accuracy_target(cell_type, hidden_accuracy, thresholds):
    """Accuracy on hidden test reviews reaches the calibrated target."""
    accuracy = hidden_accuracy(cell_type)
    needed = thresholds[f"accuracy_{cell_type}"]
    assert accuracy >= needed, (
        f"the {LAYER_NAMES[cell_type]} model scores {accuracy:.3f} on hidden test reviews; "
        f"full credit needs {needed:.3f}. Revisit the vocabulary size, sequence length, "
        "embedding size and number of epochs, and check for overfitting on the validation curve"
    )
