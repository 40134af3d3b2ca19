"""The helpers of assignment 2: export round trip, refusals with clear errors, public checks."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from assignments import check
from assignments.a2_text_generation.helpers import (
    CELL_TYPES,
    SAMPLE_LENGTH,
    TEMPERATURES,
    ExportError,
    TimeBudget,
    bits_per_character,
    check_vocab,
    export_all,
    last_logits_fn,
    public_checks,
    windows_to_array,
)

VOCAB = list("\n abcdefgh")
V = len(VOCAB)


def char_model(vocab_size=V, *extra, kind=keras.layers.GRU):
    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, 4),
            kind(8, return_sequences=True),
            keras.layers.Dense(vocab_size),
            *extra,
        ]
    )


def history():
    return {"loss": [2.0, 1.5], "val_loss": [2.1, 1.7], "seconds_per_epoch": 2.5}


def samples(text="ab cd\n" * 50):
    return {name: {t: text[:SAMPLE_LENGTH] for t in TEMPERATURES} for name in CELL_TYPES}


def export(tmp_path, models=None, vocab=VOCAB, sample_set=None, **changes):
    models = models or {"lstm": char_model(kind=keras.layers.LSTM), "gru": char_model()}
    histories = {name: {**history(), **changes} for name in CELL_TYPES}
    return export_all(models, vocab, sample_set or samples(), histories, tmp_path / "models")


def test_round_trip(tmp_path, capsys):
    models = {"lstm": char_model(kind=keras.layers.LSTM), "gru": char_model()}
    paths = export(tmp_path, models)
    assert sorted(paths) == sorted((*CELL_TYPES, "vocab", "samples", "history"))
    windows = np.random.default_rng(1).integers(0, len(VOCAB), (2, 30))
    for name in CELL_TYPES:
        reloaded = keras.saving.load_model(paths[name], safe_mode=True)
        np.testing.assert_allclose(reloaded(windows), models[name](windows), rtol=1e-5, atol=1e-5)
    assert json.loads(paths["vocab"].read_text()) == VOCAB
    document = json.loads(paths["samples"].read_text())
    assert document["length"] == SAMPLE_LENGTH and set(document["samples"]["gru"]) == {
        str(t) for t in TEMPERATURES
    }
    assert json.loads(paths["history"].read_text())["lstm"]["val_loss"] == [2.1, 1.7]
    assert "WARNING" not in capsys.readouterr().out


def test_probabilities_instead_of_logits_are_refused(tmp_path):
    softmax = char_model(len(VOCAB), keras.layers.Softmax())
    with pytest.raises(ExportError, match="probabilities, not logits"):
        export(tmp_path, {"lstm": char_model(kind=keras.layers.LSTM), "gru": softmax})


def test_wrong_output_size_and_fixed_length_are_refused(tmp_path):
    with pytest.raises(ExportError, match=r"logits of shape \(3, 100, 10\)"):
        export(tmp_path, {"lstm": char_model(12), "gru": char_model()})
    fixed = keras.Sequential(
        [
            keras.Input(shape=(100,), dtype="int32"),
            keras.layers.Embedding(len(VOCAB), 4),
            keras.layers.Flatten(),
            keras.layers.Dense(100 * len(VOCAB)),
            keras.layers.Reshape((100, len(VOCAB))),
        ]
    )
    with pytest.raises(ExportError, match="two lengths"):
        export(tmp_path, {"lstm": fixed, "gru": char_model()})


def test_lambda_and_missing_keys_are_refused(tmp_path):
    with pytest.raises(ExportError, match="Lambda"):
        export(
            tmp_path,
            {"lstm": char_model(len(VOCAB), keras.layers.Lambda(lambda x: x)), "gru": char_model()},
        )
    with pytest.raises(ExportError, match="exactly the keys"):
        export(tmp_path, {"gru": char_model()})
    with pytest.raises(ExportError, match="seconds_per_epoch"):
        export(tmp_path, seconds_per_epoch=0)


@pytest.mark.parametrize(
    "vocab, message",
    [("abc", "list of characters"), (["a", "bc"], "one character"), (["a", "a"], "twice")],
)
def test_bad_vocabularies(vocab, message):
    with pytest.raises(ExportError, match=message):
        check_vocab(vocab)


def test_bad_samples_are_exported_with_a_warning(tmp_path, capsys):
    bad = samples("ab<?>" * 100)
    paths = export(tmp_path, sample_set=bad)
    out = capsys.readouterr().out
    assert "WARNING" in out and "outside the vocabulary" in out and "'<'" in out
    assert paths["lstm"].is_file()  # the models are exported all the same


def test_public_checks(tmp_path):
    export(tmp_path)
    results = public_checks(tmp_path)
    assert all(passed for _, passed, _ in results), results
    (tmp_path / "models" / "vocab.json").write_text(json.dumps([c for c in VOCAB if c != "a"]))
    failed = {title: message for title, passed, message in public_checks(tmp_path) if not passed}
    assert any("logits of shape" in message for message in failed.values())
    assert any("outside the vocabulary" in message for message in failed.values())


def test_student_check_command(tmp_path, capsys):
    export(tmp_path)
    (tmp_path / "a2_text_generation.ipynb").write_text(
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []})
    )
    # the export passes; an empty notebook exported nothing and untrained models earn nothing
    assert check.check("a2_text_generation", tmp_path) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert failed and all("last run" in line or "(an estimate)" in line for line in failed)


def test_windows_to_array_and_fast_logits():
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((5, 4)), np.ones((5, 4))))
    assert windows_to_array(dataset).shape == (5, 2, 4)
    assert windows_to_array(dataset.batch(2)).shape == (5, 2, 4)
    model = char_model()
    step = last_logits_fn(model, jit_compile=False)
    windows = np.random.default_rng(0).integers(0, len(VOCAB), (2, 12))
    np.testing.assert_allclose(step(windows), np.asarray(model(windows))[:, -1], atol=1e-5)


def test_bits_per_character_of_a_uniform_model():
    model = char_model()
    dense = model.layers[-1]
    dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    text = "abc defgh\n" * 40
    assert bits_per_character(model, text, VOCAB, window=20) == pytest.approx(np.log2(len(VOCAB)))


def test_time_budget_stops_before_an_epoch_that_would_overrun():
    budget = TimeBudget(seconds=0.0)
    model = char_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.zeros((4, 5), dtype="int32")
    history = model.fit(x, x, epochs=5, verbose=0, callbacks=[budget])
    assert budget.stopped_early and len(history.history["loss"]) == 1
