"""The architecture of a model read from its graph: recurrent layers, and paths around them."""

from __future__ import annotations

import keras
import pytest

from autograder.checks.architecture import check_recurrent, inspect

layers = keras.layers


def sequential(recurrent) -> keras.Model:
    return keras.Sequential(
        [keras.Input((None,), dtype="int32"), layers.Embedding(50, 4), recurrent, layers.Dense(1)]
    )


def decoy(merge) -> keras.Model:
    """Bag of words (embedding, average pooling) joined with a one-unit LSTM on a side branch."""
    tokens = keras.Input((None,), dtype="int32")
    embedded = layers.Embedding(50, 4)(tokens)
    bag = layers.Dense(1)(layers.GlobalAveragePooling1D()(embedded))
    side = layers.Dense(1)(layers.LSTM(1)(embedded))
    return keras.Model(tokens, layers.Activation("sigmoid")(merge()([bag, side])))


def string_model(inner: keras.Model) -> keras.Model:
    """``TextVectorization -> inner``, as assignment 1 exports its models."""
    text = keras.Input(shape=(), dtype="string")
    vectorizer = layers.TextVectorization(max_tokens=50, output_sequence_length=6)
    vectorizer.adapt(["a good film", "a bad film"])
    return keras.Model(text, inner(vectorizer(text)))


@pytest.mark.parametrize(
    "recurrent, kind",
    [
        (layers.LSTM(3), "LSTM"),
        (layers.GRU(3), "GRU"),
        (layers.SimpleRNN(3), "SimpleRNN"),
        (layers.Bidirectional(layers.LSTM(3)), "LSTM"),
    ],
)
def test_a_plain_recurrent_model_passes(recurrent, kind):
    model = string_model(sequential(recurrent))
    found = check_recurrent(model, kind, "models/x.keras")
    assert found.recurrent == (kind,) and found.bypass is None
    assert "on every path" in found.describe()


def test_a_bidirectional_layer_is_read_in_both_directions():
    """A GRU running backwards beside the LSTM is not an LSTM model."""
    both = layers.Bidirectional(layers.LSTM(3), backward_layer=layers.GRU(3, go_backwards=True))
    with pytest.raises(AssertionError, match="must use LSTM layers only; found GRU and LSTM"):
        check_recurrent(string_model(sequential(both)), "LSTM", "models/x.keras")


def test_stacked_recurrent_layers_pass():
    tokens = keras.Input((None,), dtype="int32")
    hidden = layers.LSTM(4, return_sequences=True)(layers.Embedding(50, 4)(tokens))
    model = keras.Model(tokens, layers.Dense(1)(layers.LSTM(4)(hidden)))
    assert check_recurrent(model, "LSTM", "m").recurrent == ("LSTM", "LSTM")


@pytest.mark.parametrize("merge", [layers.Concatenate, layers.Add, layers.Multiply])
def test_a_side_branch_decoy_is_found(merge):
    model = string_model(decoy(merge))
    found = inspect(model)
    assert found.recurrent == ("LSTM",)
    assert found.bypass is not None and "GlobalAveragePooling1D" in found.bypass
    with pytest.raises(AssertionError, match="with no shortcut around it") as failed:
        check_recurrent(model, "LSTM", "models/lstm.keras")
    assert "input -> TextVectorization -> Embedding -> GlobalAveragePooling1D" in str(failed.value)


def test_a_skip_connection_around_a_forecaster_is_found():
    window = keras.Input((30, 1))
    last = layers.Dense(1)(layers.Flatten()(layers.Cropping1D((29, 0))(window)))
    model = keras.Model(window, layers.Add()([last, layers.Dense(1)(layers.GRU(4)(window))]))
    assert inspect(model).bypass == ("Cropping1D", "Flatten", "Dense", "Add")


def test_no_recurrent_layer_and_the_wrong_kind_are_named():
    bag = keras.Sequential(
        [keras.Input((None,), dtype="int32"), layers.Embedding(50, 4)]
        + [layers.GlobalAveragePooling1D(), layers.Dense(1)]
    )
    with pytest.raises(AssertionError, match="no recurrent layer .layers: Embedding, Global"):
        check_recurrent(bag, "GRU", "models/gru.keras")
    with pytest.raises(AssertionError, match="must use LSTM layers only; found GRU"):
        check_recurrent(sequential(layers.GRU(2)), "LSTM", "models/lstm.keras")


def test_a_path_around_a_nested_model_is_found():
    inner = sequential(layers.GRU(2))
    tokens = keras.Input((None,), dtype="int32")
    shortcut = layers.Dense(1)(layers.GlobalAveragePooling1D()(layers.Embedding(50, 2)(tokens)))
    model = keras.Model(tokens, layers.Add()([inner(tokens), shortcut]))
    assert inspect(model).bypass is not None
    assert inspect(keras.Model(tokens, inner(tokens))).bypass is None
