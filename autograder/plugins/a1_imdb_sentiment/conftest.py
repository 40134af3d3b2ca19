"""Fixtures of the hidden checks of assignment 1: the judge's predictions on the hidden sample.

The hidden sample, the controls and the accuracy are the plugin's (``plugin.py``); the
calibration scores the reference with the same functions.
"""

from __future__ import annotations

import pytest

from autograder.checks.validity import Ablation, Contamination

LAYER_NAMES = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def reference_model(cell_type: str, vocab_size: int, embedding_dim: int, units: int):
    """The layers build_model must make, as the notebook states them: Embedding -> the cell
    type's layer with ``units`` units -> Dense(1, sigmoid)."""
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, embedding_dim),
            getattr(keras.layers, LAYER_NAMES[cell_type])(units),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


@pytest.fixture(scope="session")
def reference_parameters():
    """``reference_parameters(**kwargs)`` -> the weights of ``build_model(**kwargs)``."""
    return lambda **kwargs: reference_model(**kwargs).count_params()


@pytest.fixture(scope="session")
def scored(keras_artifact, plugin):
    """``scored(name)`` -> P(positive) of that model on the hidden sample."""
    results: dict[str, tuple] = {}

    def score(name: str):
        if name not in results:
            model, texts = keras_artifact(name), plugin.hidden()[0]
            try:
                results[name] = plugin.predict_probabilities(model, texts), ""
            except Exception as err:  # a failing student model fails only the checks using it
                results[name] = None, f"{type(err).__name__}: {str(err)[:300]}"
        probabilities, error = results[name]
        assert not error, f"the '{name}' model failed to predict the hidden reviews: {error}"
        return probabilities

    return score


@pytest.fixture(scope="session")
def hidden_accuracy(scored, plugin):
    """``hidden_accuracy(name)`` -> the judge's accuracy of that model on the hidden sample."""

    def measure(name: str) -> float:
        return plugin.accuracy(scored(name), plugin.hidden()[1])

    return measure


@pytest.fixture(scope="session")
def earned(keras_artifact, scored, hidden_accuracy, plugin, thresholds):
    """``earned(name)`` -> (Ablation, Contamination): did that model earn its accuracy?

    Its accuracy without its recurrence (:meth:`ablated_accuracy` of the plugin) and on
    the controls (the visible test reviews).
    """
    results: dict[str, tuple] = {}

    def measure(name: str) -> tuple[Ablation, Contamination]:
        if name not in results:
            model, accuracy = keras_artifact(name), hidden_accuracy(name)
            what = "the visible test reviews"
            try:  # the controls first: predicting after the ablation traces the model again
                controls = plugin.control_accuracies(model)
                what = "the hidden reviews with its recurrence removed"
                ablated = plugin.ablated_accuracy(model, scored(name))
            except Exception as err:  # a failing student model fails only the checks using it
                error = f"{type(err).__name__}: {str(err)[:300]}"
                results[name] = None, f"the '{name}' model failed to predict {what}: {error}"
            else:
                ablation = Ablation(
                    kind=LAYER_NAMES[name],
                    metric="accuracy",
                    with_state=accuracy,
                    without_state=ablated,
                    required=thresholds[f"min_ablation_loss_{name}"],
                    higher_is_better=True,
                    step="word",
                )
                contamination = Contamination(
                    metric="accuracy",
                    hidden=accuracy,
                    controls=controls,
                    margin=thresholds[f"contamination_margin_{name}"],
                    higher_is_better=True,
                )
                results[name] = (ablation, contamination), ""
        verdict, error = results[name]
        assert not error, f"not graded: {error}"
        return verdict

    return measure


@pytest.fixture(scope="session")
def recurrent_graph(keras_artifact):
    """``recurrent_graph(cell_type)`` -> '' when only that cell sits on every path, else why not.

    What the accuracy needs (with the ablation); stacked layers, a Conv1D in front
    and a Bidirectional wrapper are allowed.
    """
    verdicts: dict[str, str] = {}

    def verdict(cell_type: str) -> str:
        if cell_type not in verdicts:
            verdicts[cell_type] = graph_problem(cell_type, keras_artifact(cell_type))
        return verdicts[cell_type]

    return verdict


@pytest.fixture(scope="session")
def architecture(keras_artifact, recurrent_graph):
    """``architecture(cell_type)`` -> '' when the exported model is the taught one, else why not."""

    def verdict(cell_type: str) -> str:
        return recurrent_graph(cell_type) or layout_problem(cell_type, keras_artifact(cell_type))

    return verdict


def graph_problem(cell_type: str, model) -> str:
    """Why the cell type's layers are not alone on every path of ``model`` ('' when they are)."""
    from autograder.checks.architecture import check_recurrent, recurrent_kind
    from autograder.checks.validity import recurrent_layers

    path, kind = f"models/{cell_type}.keras", LAYER_NAMES[cell_type]
    try:
        check_recurrent(model, kind, path)
    except AssertionError as err:
        return str(err)
    others = {recurrent_kind(layer) for layer in recurrent_layers(model)} - {kind}
    if others:  # the backward layer of a Bidirectional
        return f"{path} must use {kind} layers only; found {', '.join(sorted(others))} too"
    return ""


def layout_problem(cell_type: str, model) -> str:
    """Why ``model`` is not Embedding -> the cell type's layer -> Dense at build_model's sizes.

    A Bidirectional wrapper of that layer counts as it: both directions at build_model's
    units, the Dense reading both.
    """
    import keras

    from autograder.checks.architecture import flat_layers, recurrent_kind

    path, kind = f"models/{cell_type}.keras", LAYER_NAMES[cell_type]
    layers = [layer for layer in flat_layers(model) if layer.weights or recurrent_kind(layer)]
    names = " -> ".join(layer_name(layer) for layer in layers)
    order = [role(layer) for layer in layers]
    recurrent = layers[1] if len(layers) == 3 else None
    wrapped = isinstance(recurrent, keras.layers.Bidirectional)
    cell = getattr(recurrent.forward_layer if wrapped else recurrent, "cell", None)
    units = getattr(cell, "units", None)
    graded = f"this point only: the accuracy is still graded, {kind} being the one recurrent layer"
    if order != ["Embedding", kind, "Dense"] or not isinstance(units, int):
        return (
            f"{path} must be Embedding -> {kind} -> Dense, as build_model makes it (or with "
            f"Bidirectional({kind})); its layers with weights are {names} ({graded})"
        )
    sizes = {
        "vocab_size": layers[0].input_dim,
        "embedding_dim": layers[0].output_dim,
        "units": units,
    }
    reference = reference_model(cell_type, **sizes)
    expected = reference.count_params()
    if wrapped:  # a second direction, and a Dense reading twice the units
        expected += reference.layers[1].count_params() + units
    actual = sum(layer.count_params() for layer in layers)
    if actual != expected:
        call = ", ".join(f"{key}={value}" for key, value in sizes.items())
        both = f" with its {kind} made Bidirectional" if wrapped else ""
        return (
            f"{path} has {actual:,} weights where build_model('{cell_type}', {call}){both} has "
            f"{expected:,}; its layers with weights are {names}: export the models your "
            f"build_model made, with nothing beside them ({graded})"
        )
    return ""


def role(layer) -> str | None:
    """``Embedding``, ``Dense``, a recurrent kind (``LSTM``), or None for any other layer."""
    import keras

    from autograder.checks.architecture import recurrent_kind

    for kind in (keras.layers.Embedding, keras.layers.Dense):
        if isinstance(layer, kind):
            return kind.__name__
    return recurrent_kind(layer)


def layer_name(layer) -> str:
    """``LSTM``, ``Bidirectional(LSTM)``, ``Dense(1)``: a layer with weights, for a message."""
    import keras

    if isinstance(layer, keras.layers.Bidirectional):
        return f"Bidirectional({type(layer.forward_layer).__name__})"
    if isinstance(layer, keras.layers.Dense):
        return f"Dense({layer.units})"
    return type(layer).__name__
