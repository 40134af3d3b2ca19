"""Behaviour checks: recurrence removed, look-ahead, contamination (built models, no training)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from autograder.checks.validity import (
    Ablation,
    Contamination,
    lookahead,
    recurrence_removed,
    recurrent_layers,
)


def counter(kind=keras.layers.SimpleRNN, **options):
    """A one-unit recurrent layer that adds up its inputs over time: the state does the work."""
    model = keras.Sequential([keras.Input((6, 1)), kind(1, activation=None, **options)])
    model.layers[0].set_weights([np.ones((1, 1)), np.ones((1, 1)), np.zeros(1)])
    return model


def test_without_its_state_a_counter_sees_only_the_last_step():
    model = counter()
    inputs = np.arange(12, dtype="float32").reshape(2, 6, 1)
    assert np.allclose(model.predict(inputs, verbose=0)[:, 0], inputs.sum(axis=(1, 2)))
    with recurrence_removed(model) as names:
        assert np.allclose(model.predict(inputs, verbose=0)[:, 0], inputs[:, -1, 0])
        assert np.allclose(np.asarray(model(inputs))[:, 0], inputs[:, -1, 0])
    assert names == [model.layers[0].name]
    assert np.allclose(model.predict(inputs, verbose=0)[:, 0], inputs.sum(axis=(1, 2)))


def test_an_initial_state_computed_from_the_input_is_removed_too():
    """A path around the layer through its initial state does not survive the ablation."""
    inputs = keras.Input((6, 1))
    state = keras.layers.Dense(1, use_bias=False)(keras.layers.Flatten()(inputs))
    layer = keras.layers.SimpleRNN(1, activation=None)
    model = keras.Model(inputs, layer(inputs, initial_state=[state]))
    model.layers[-1].set_weights([np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1)])
    model.get_layer(index=2).set_weights([np.ones((6, 1))])
    batch = np.ones((1, 6, 1), dtype="float32")
    assert model.predict(batch, verbose=0)[0, 0] == 0  # zero weights: the state is multiplied away
    layer.set_weights([np.zeros((1, 1)), np.ones((1, 1)), np.zeros(1)])
    model.predict_function = None
    assert model.predict(batch, verbose=0)[0, 0] == pytest.approx(6.0)
    with recurrence_removed(model):
        assert model.predict(batch, verbose=0)[0, 0] == 0


def test_every_recurrent_layer_is_found_nested_and_bidirectional():
    inner = keras.Sequential([keras.Input((5, 2)), keras.layers.GRU(3, return_sequences=True)])
    inputs = keras.Input((5, 2))
    both = keras.layers.Bidirectional(keras.layers.LSTM(2, return_sequences=True))(inner(inputs))
    model = keras.Model(inputs, keras.layers.SimpleRNN(2)(both))
    kinds = sorted(type(layer).__name__ for layer in recurrent_layers(model))
    assert kinds == ["GRU", "LSTM", "LSTM", "SimpleRNN"]


@pytest.mark.parametrize("kind", [keras.layers.LSTM, keras.layers.GRU])
def test_gated_layers_lose_their_memory(kind):
    model = keras.Sequential([keras.Input((8, 1)), kind(4)])
    inputs = np.random.default_rng(0).normal(size=(3, 8, 1)).astype("float32")
    with recurrence_removed(model):
        stateless = model.predict(inputs, verbose=0)
    last_only = model.predict(inputs[:, -1:], verbose=0)  # one step from a zero state
    assert np.allclose(stateless, last_only, atol=1e-6)


def test_ablation_message_names_what_was_measured():
    kept = Ablation("LSTM", "accuracy", 0.86, 0.55, 0.05, higher_is_better=True, step="word")
    assert kept.passed and kept.problem() == ""
    idle = Ablation("LSTM", "accuracy", 0.71, 0.70, 0.05, higher_is_better=True, step="word")
    assert not idle.passed
    assert idle.problem().startswith(
        "with the LSTM's state reset at every word, accuracy stays at 0.700 (0.710 with it"
    )
    assert "does not use what the LSTM carries from one word to the next" in idle.problem()
    rising = Ablation("GRU", "bits per character", 2.5, 3.4, 0.2, higher_is_better=False)
    assert rising.passed and "rises to 3.400" in rising.describe()
    nan = Ablation("GRU", "bits per character", 2.5, float("nan"), 0.2, higher_is_better=False)
    assert not nan.passed


def test_lookahead_tells_a_causal_model_from_a_bidirectional_one():
    def replace(ids, cut):
        changed = ids.copy()
        changed[:, cut + 1 :] = (changed[:, cut + 1 :] + 1) % 7
        return changed

    ids = np.random.default_rng(1).integers(0, 7, size=(2, 12))
    for layer, looks in [
        (keras.layers.LSTM(3, return_sequences=True), False),
        (keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True)), True),
        (keras.layers.Conv1D(3, 3, padding="same"), True),
        (keras.layers.Conv1D(3, 3, padding="causal"), False),
    ]:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((12,)), keras.layers.Embedding(7, 4), layer])
        found = lookahead(lambda x, m=model: np.asarray(m(x)), ids, replace)
        assert found.looks_ahead is looks, type(layer).__name__
        assert bool(found.problem("models/lstm.keras")) is looks


def test_contamination_flags_only_a_gap_beyond_the_margin():
    honest = Contamination("accuracy", 0.86, {"visible test reviews": 0.85}, 0.03, True)
    assert not honest.flagged and honest.reason() == ""
    memorised = Contamination(
        "bits per character", 1.2, {"validation": 2.6, "shuffled": 2.5}, 0.1, False
    )
    assert memorised.flagged and memorised.gap == pytest.approx(1.3)
    assert "may have been trained on the hidden data" in memorised.reason()
