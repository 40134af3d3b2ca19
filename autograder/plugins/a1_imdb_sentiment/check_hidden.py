"""Hidden checks of assignment 1 (IMDB sentiment: SimpleRNN vs LSTM vs GRU).

Points per grade cell of the notebook (28 autograded): test_build_model 3,
test_export 4, test_accuracy 21. How points are earned: accuracy on hidden reviews
decides most of them and counts for a model only when it was earned: the file's
recurrent layer alone sits on every path from the text to the output (stacked, behind
a Conv1D or Bidirectional are allowed), the model loses at least the spec's
``min_ablation_loss_<cell>`` of accuracy when that layer carries nothing from one word
to the next, and a model markedly better on the hidden reviews than on the visible
test reviews (``contamination_margin_<cell>``) has its accuracy points withheld for the
instructor's review. The architecture check (1 point each) also wants the layers and
sizes of the reference ``build_model`` (a Bidirectional of its layer allowed); what
the locked export cell guarantees anyway is worth 1 point. So constant, chance-level,
non-recurrent models and models whose recurrence does no work earn at most 7 of 28.
Only the assertion messages reach the student.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from assignments.a1_imdb_sentiment.helpers import CELL_TYPES, CHECK_REVIEWS, iter_layers
from autograder.checks.architecture import check_recurrent
from autograder.core.safe_json import load_json

LAYER_NAMES = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
#: How far above the best trivial baseline (majority class: 0.5) an accuracy is still "chance".
CHANCE_MARGIN = 0.05
per_cell = pytest.mark.parametrize("cell_type", CELL_TYPES)


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
def test_build_model(cell_type, spec, probe, reference_parameters):
    """build_model builds Embedding -> the requested recurrent layer -> Dense(1, sigmoid)."""
    kwargs = probe_kwargs(spec, cell_type)
    model, outputs = built(probe(f"build_model_{cell_type}"))
    call = f"build_model({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    layers = list(iter_layers(model))
    embeddings = [layer for layer in layers if isinstance(layer, keras.layers.Embedding)]
    assert embeddings, f"{call}: no Embedding layer found"
    assert (embeddings[0].input_dim, embeddings[0].output_dim) == (
        kwargs["vocab_size"],
        kwargs["embedding_dim"],
    ), f"{call}: the Embedding must be Embedding(vocab_size, embedding_dim)"
    check_recurrent(model, LAYER_NAMES[cell_type], call)
    assert outputs.shape == (2, 1), f"{call}: output shape must be (batch, 1), got {outputs.shape}"
    assert np.all((outputs >= 0) & (outputs <= 1)), (
        f"{call}: outputs must be probabilities; end with Dense(1, activation='sigmoid')"
    )
    expected, actual = reference_parameters(**kwargs), model.count_params()
    assert actual == expected, (
        f"{call} has {actual:,} parameters, expected {expected:,}: use exactly one "
        "Embedding(vocab_size, embedding_dim), one recurrent layer with `units` units and Dense(1)"
    )


# --------------------------------------------------------------------------- exported models


def history_problem(record) -> str:
    """Why history.json is not the three training histories ('' when it is)."""
    if not isinstance(record, dict):
        return "models/history.json must map each model name to its history"
    for name in CELL_TYPES:
        entry = record.get(name)
        if not isinstance(entry, dict):
            return f"models/history.json has no entry for '{name}'"
        lengths = set()
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            values = entry.get(key)
            if not isinstance(values, list) or not values:
                return f"history of '{name}' has no '{key}' curve"
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                return f"history of '{name}': '{key}' must hold finite numbers"
            lengths.add(len(values))
        if len(lengths) != 1:
            return f"history of '{name}': the curves differ in length"
        seconds = entry.get("seconds_per_epoch")
        if not isinstance(seconds, int | float) or seconds <= 0:
            return f"history of '{name}' needs a positive 'seconds_per_epoch'"
    return ""


def model_problem(cell_type, keras_artifact, thresholds) -> str:
    """Why an exported model breaks the export contract ('' when it keeps it)."""
    model = keras_artifact(cell_type)
    path = f"models/{cell_type}.keras"
    lambdas = [layer.name for layer in iter_layers(model) if isinstance(layer, keras.layers.Lambda)]
    if lambdas:
        return f"{path} contains Lambda layers {lambdas}; remove them"
    try:
        outputs = np.asarray(model.predict(tf.constant(CHECK_REVIEWS), verbose=0))
    except Exception as err:
        return (
            f"{path} fails on a batch of raw strings ({type(err).__name__}); export "
            "end_to_end(vectorizer, model), not the integer model"
        )
    n = len(CHECK_REVIEWS)
    if outputs.shape != (n, 1):
        return f"{path} maps {n} reviews to shape {outputs.shape}, expected ({n}, 1)"
    if not np.all(np.isfinite(outputs)) or not np.all((outputs >= 0) & (outputs <= 1)):
        return f"{path} outputs values outside [0, 1] or NaN; end with a sigmoid"
    params = model.count_params()
    if params > thresholds["max_params"]:
        return (
            f"{path} has {params:,} parameters; the cap is {thresholds['max_params']:,.0f}: "
            "use a smaller vocabulary, embedding or layer"
        )
    return ""


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
def test_export_contract(artifact_path, keras_artifact, thresholds):
    """The exported files keep the contract: histories, safe loading, strings in, P out, caps."""
    try:
        record = load_json(artifact_path("history").read_bytes(), "models/history.json")
    except ValueError as err:
        pytest.fail(f"{err}; export with export_models")
    problems = [history_problem(record)]
    problems += [model_problem(c, keras_artifact, thresholds) for c in CELL_TYPES]
    problems = [problem for problem in problems if problem]
    assert not problems, "; ".join(problems)


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
@per_cell
def test_architecture(cell_type, architecture):
    """The exported model is the taught architecture, read from its graph."""
    problem = architecture(cell_type)
    assert not problem, problem


# --------------------------------------------------------------------------- accuracy


def advice(accuracy: float, basic: float, target: float) -> str:
    """What to look at, given where the accuracy fell."""
    if accuracy < 0.5 + CHANCE_MARGIN:
        return (
            "That is chance level: the model learned nothing usable. Was it trained long "
            "enough, do the labels and texts reach it (vectorizer adapted on the training "
            "texts, labels in the same order), and is the exported model the trained one?"
        )
    if accuracy < basic:
        return (
            "Above chance but far from the target: train for more epochs with early "
            "stopping, and check the vocabulary size and the sequence length (too short a "
            "window cuts most of each review)"
        )
    return (
        "Between the tiers: revisit capacity (units, embedding size), the number of epochs, "
        "the sequence length, and watch the validation curve for overfitting"
    )


@pytest.fixture
def graded_accuracy(recurrent_graph, hidden_accuracy, earned, thresholds, measured, withhold):
    """``graded_accuracy(cell_type, tier)``: assert the model's hidden accuracy reaches
    ``tier`` and was earned; every outcome shows the numbers."""

    def grade(cell_type: str, tier: str) -> None:
        problem = recurrent_graph(cell_type)
        if problem:
            pytest.fail(f"not graded: the model did not pass its architecture check ({problem})")
        accuracy = hidden_accuracy(cell_type)
        basic = thresholds[f"accuracy_basic_{cell_type}"]
        target = thresholds[f"accuracy_{cell_type}"]
        needed = basic if tier == "basic" else target
        text = (
            f"the {LAYER_NAMES[cell_type]} model's accuracy on hidden test reviews is "
            f"{accuracy:.3f}, {tier} tier {needed:.3f}"
        )
        if accuracy >= basic:  # below it nothing is earned, whatever the model does
            ablation, contamination = earned(cell_type)
            if ablation.problem():
                measured(text, accuracy, cell_type)
                pytest.fail(f"not graded: {ablation.problem()} ({text})")
            text += f"; {ablation.describe()}"
            if contamination.flagged:
                withhold(contamination.reason())
            else:
                text += f"; {contamination.describe()}"
        measured(text, accuracy, cell_type)
        assert accuracy >= needed, f"{text}. {advice(accuracy, basic, target)}"

    return grade


@pytest.mark.points(2)
@pytest.mark.grade_cell("test_accuracy")
@per_cell
def test_accuracy_basic(cell_type, graded_accuracy):
    """Accuracy on hidden test reviews reaches the basic tier, and was earned."""
    graded_accuracy(cell_type, "basic")


@pytest.mark.points(5)
@pytest.mark.grade_cell("test_accuracy")
@per_cell
def test_accuracy_target(cell_type, graded_accuracy):
    """Accuracy on hidden test reviews reaches the calibrated target, and was earned."""
    graded_accuracy(cell_type, "target")
