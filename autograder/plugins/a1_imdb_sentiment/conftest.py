"""Fixtures of the hidden checks of assignment 1: the judge's predictions on the hidden sample.

The hidden sample and the accuracy are the plugin's (``plugin.py``); the calibration
scores the reference with the same functions.
"""

from __future__ import annotations

import time

import pytest


@pytest.fixture(scope="session")
def scored(keras_artifact, plugin):
    """``scored(name)`` -> (P(positive) on the hidden sample, seconds the prediction took)."""
    results: dict[str, tuple] = {}

    def score(name: str):
        if name not in results:
            model, texts = keras_artifact(name), plugin.hidden()[0]
            start = time.perf_counter()
            try:
                probabilities, error = plugin.predict_probabilities(model, texts), ""
            except Exception as err:  # a failing student model fails only the checks using it
                probabilities, error = None, f"{type(err).__name__}: {str(err)[:300]}"
            results[name] = probabilities, time.perf_counter() - start, error
        probabilities, seconds, error = results[name]
        assert not error, f"the '{name}' model failed to predict the hidden reviews: {error}"
        return probabilities, seconds

    return score


@pytest.fixture(scope="session")
def hidden_accuracy(scored, plugin):
    """``hidden_accuracy(name)`` -> the judge's accuracy of that model on the hidden sample."""

    def measure(name: str) -> float:
        probabilities, _ = scored(name)
        return plugin.accuracy(probabilities, plugin.hidden()[1])

    return measure


@pytest.fixture(scope="session")
def architecture(keras_artifact):
    """``architecture(cell_type)`` -> '' when the exported model is the taught one, else why not."""
    verdicts: dict[str, str] = {}

    def verdict(cell_type: str) -> str:
        if cell_type not in verdicts:
            verdicts[cell_type] = architecture_problem(cell_type, keras_artifact(cell_type))
        return verdicts[cell_type]

    return verdict


def architecture_problem(cell_type: str, model) -> str:
    """Why ``model`` is not Embedding -> the cell type's layer -> Dense at build_model's sizes."""
    import keras

    from autograder.architecture import check_recurrent, flat_layers, recurrent_kind
    from solutions.a1_imdb_sentiment import build_model

    path, kind = f"models/{cell_type}.keras", LAYER_NAMES[cell_type]
    try:
        check_recurrent(model, kind, path)
    except AssertionError as err:
        return str(err)
    layers = [layer for layer in flat_layers(model) if layer.weights or recurrent_kind(layer)]
    names = " -> ".join(type(layer).__name__ for layer in layers)
    order = [
        "Embedding" if isinstance(layer, keras.layers.Embedding) else recurrent_kind(layer)
        for layer in layers
    ]
    if (
        order[:1] != ["Embedding"]
        or order[1:2] != [kind]
        or not isinstance(layers[-1], keras.layers.Dense)
    ):
        return f"{path} must be Embedding -> {kind} -> Dense; its layers with weights are {names}"
    embedding, recurrent = layers[0], layers[1]
    sizes = {
        "vocab_size": embedding.input_dim,
        "embedding_dim": embedding.output_dim,
        "units": recurrent.units,
    }
    expected = build_model(cell_type, **sizes).count_params()
    actual = sum(layer.count_params() for layer in layers)
    if actual != expected:
        call = ", ".join(f"{key}={value}" for key, value in sizes.items())
        return (
            f"{path} has {actual:,} weights where build_model('{cell_type}', {call}) has "
            f"{expected:,}: export the models your build_model made, with nothing beside them"
        )
    return ""


LAYER_NAMES = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
