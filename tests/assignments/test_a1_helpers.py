"""The export helper of assignment 1: round trip, and refusals with clear errors."""

import json

import keras
import numpy as np
import pytest

from assignments.a1_imdb_sentiment.helpers import (
    CELL_TYPES,
    CHECK_REVIEWS,
    ExportError,
    end_to_end,
    export_models,
    predict_texts,
)

TEXTS = np.array(["a good film", "a bad film", "good acting, bad plot", "great"], dtype=object)


def vectorizer(vocabulary=None):
    layer = keras.layers.TextVectorization(max_tokens=50, output_sequence_length=8)
    if vocabulary is None:
        layer.adapt(TEXTS)
    else:
        layer.set_vocabulary(vocabulary)
    return layer


def int_model(*extra):
    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(50, 4),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
            *extra,
        ]
    )


def history():
    curve = {key: [0.7, 0.6] for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    return {**curve, "seconds_per_epoch": 1.5}


@keras.saving.register_keras_serializable(package="a1_test")
class Forgetful(keras.layers.Layer):
    """Adds a random offset that is neither a weight nor in its config: lost on reload."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = float(np.random.default_rng().uniform(0.1, 0.4))

    def call(self, inputs):
        return inputs * 0.5 + self.offset


def test_round_trip(tmp_path):
    models = {name: end_to_end(vectorizer(), int_model()) for name in CELL_TYPES}
    paths = export_models(models, {name: history() for name in CELL_TYPES}, tmp_path / "m")
    assert sorted(paths) == sorted((*CELL_TYPES, "history"))
    for name in CELL_TYPES:
        reloaded = keras.saving.load_model(paths[name], safe_mode=True)
        np.testing.assert_allclose(
            predict_texts(reloaded, CHECK_REVIEWS), predict_texts(models[name], CHECK_REVIEWS)
        )
    record = json.loads(paths["history"].read_text())
    assert record["lstm"]["val_accuracy"] == [0.7, 0.6]
    assert record["gru"]["seconds_per_epoch"] == 1.5


def export_one(tmp_path, model, **changes):
    models = {name: end_to_end(vectorizer(), int_model()) for name in CELL_TYPES}
    models["lstm"] = model
    histories = {name: history() for name in CELL_TYPES}
    histories["lstm"].update(changes)
    return export_models(models, histories, tmp_path)


def test_lambda_layer_is_refused(tmp_path):
    model = end_to_end(vectorizer(), int_model(keras.layers.Lambda(lambda x: x)))
    with pytest.raises(ExportError, match="Lambda layer"):
        export_one(tmp_path, model)


def test_model_that_reloads_differently_is_refused(tmp_path):
    model = end_to_end(vectorizer(), int_model(Forgetful()))
    with pytest.raises(ExportError, match="predicts differently"):
        export_one(tmp_path, model)


def test_unnormalised_vocabulary_that_does_not_reload_is_refused(tmp_path):
    # the IMDB pitfall: a token holding U+0085 is split on reload into a repeated term
    model = end_to_end(vectorizer(["film", "him\x85", "him"]), int_model())
    with pytest.raises(ExportError, match="does not reload"):
        export_one(tmp_path, model)


def test_integer_model_is_refused(tmp_path):
    with pytest.raises(ExportError, match="raw strings"):
        export_one(tmp_path, int_model())


def test_bad_history_is_refused(tmp_path):
    model = end_to_end(vectorizer(), int_model())
    with pytest.raises(ExportError, match="val_accuracy"):
        export_one(tmp_path, model, val_accuracy=[])
    with pytest.raises(ExportError, match="seconds_per_epoch"):
        export_one(tmp_path, model, seconds_per_epoch=None)


def test_missing_model_is_refused(tmp_path):
    with pytest.raises(ExportError, match="exactly the keys"):
        export_models({"lstm": int_model()}, {"lstm": history()}, tmp_path)
