"""What the helpers share: the timer, the layer walk, the export round trip, the histories."""

import json

import keras
import numpy as np
import pytest

from assignments import common
from assignments.a1_imdb_sentiment import helpers as a1
from assignments.a2_text_generation import helpers as a2
from assignments.a3_timeseries_forecasting import helpers as a3

X = np.linspace(-1, 1, 12, dtype="float32").reshape(4, 3)
HISTORIES = common.Histories(("lstm", "gru"), ("loss", "val_loss"), "fit with validation data")


def dense(*extra):
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), *extra])


def predict(model):
    return np.asarray(model(X, training=False))


def test_helpers_reexport_the_shared_names():
    for helpers in (a1, a2, a3):
        assert helpers.EpochTimer is common.EpochTimer
        assert helpers.ExportError is common.ExportError
        assert helpers.iter_layers is common.iter_layers


def test_epoch_timer():
    model = dense()
    model.compile(optimizer="adam", loss="mse")
    timer = common.EpochTimer()
    model.fit(X, np.ones((4, 2)), epochs=2, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 2 and timer.mean > 0


def test_iter_layers_walks_nested_models_and_wrappers():
    inner = keras.Sequential([keras.layers.Dense(2, name="inner_dense")], name="inner")
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.Bidirectional(keras.layers.LSTM(2, name="cell")),
            inner,
        ]
    )
    kinds = [type(layer).__name__ for layer in common.iter_layers(model)]
    assert kinds[0] == "Sequential" and "Bidirectional" in kinds and "LSTM" in kinds
    assert "inner_dense" in [layer.name for layer in common.iter_layers(model)]


def test_require_keys():
    common.require_keys("models", {"lstm": 1, "gru": 2}, ("lstm", "gru"))
    with pytest.raises(common.ExportError, match=r"models must have exactly the keys .*\['gru'\]"):
        common.require_keys("models", {"gru": 2}, ("lstm", "gru"))
    with pytest.raises(common.ExportError, match="got list"):
        common.require_keys("histories", [], ("lstm", "gru"))


def test_save_models_round_trip(tmp_path):
    models = {"lstm": dense(), "gru": dense()}
    paths = common.save_models(models, tmp_path / "m", predict, "rows", "fix it")
    assert sorted(paths) == ["gru", "lstm"]
    for name, path in paths.items():
        reloaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(predict(reloaded), predict(models[name]), atol=1e-6)


def test_save_models_refusals(tmp_path):
    with pytest.raises(common.ExportError, match=r"models\['lstm'\] contains a Lambda layer"):
        common.save_models(
            {"lstm": dense(keras.layers.Lambda(lambda x: x))}, tmp_path, predict, "", ""
        )

    def fails(model):
        raise ValueError("bad input\nmore detail")

    with pytest.raises(common.ExportError) as raised:
        common.save_models({"gru": dense()}, tmp_path, fails, "rows of 3", "use Input((3,))")
    assert (
        str(raised.value)
        == "models['gru'] cannot predict on rows of 3 (bad input); use Input((3,))"
    )

    def refuses(model):
        raise common.ExportError("outputs must be logits")

    with pytest.raises(common.ExportError, match=r"^models\['gru'\]: outputs must be logits$"):
        common.save_models({"gru": dense()}, tmp_path, refuses, "", "")
    assert not (tmp_path / "gru.keras").exists()


def test_save_and_reload_refuses_a_model_that_reloads_differently(tmp_path):
    model = dense()
    with pytest.raises(common.ExportError, match=r"predicts differently .*\(max difference 0.01\)"):
        common.save_and_reload(model, tmp_path / "m.keras", predict, predict(model) + 0.01)
    common.save_and_reload(model, tmp_path / "m.keras", predict, predict(model) + 1e-6)
    # without predictions to compare, only the reload is checked
    common.save_and_reload(model, tmp_path / "m.keras", predict, None)


def test_save_and_reload_gives_the_advice_when_it_does_not_reload(tmp_path):
    def broken(model):
        raise RuntimeError("no")

    with pytest.raises(
        common.ExportError, match=r"does not reload with safe_mode=True \(no\); try"
    ):
        common.save_and_reload(
            dense(), tmp_path / "m.keras", broken, predict(dense()), advice="try"
        )


def test_history_record():
    history = {"loss": [2, 1], "val_loss": [3, 2], "seconds_per_epoch": 4, "extra": [0]}
    assert HISTORIES.record("lstm", history) == {
        "loss": [2.0, 1.0],
        "val_loss": [3.0, 2.0],
        "seconds_per_epoch": 4.0,
    }
    problems = {
        "needs a non-empty list 'val_loss' \\(fit with validation data\\)": {"val_loss": []},
        "differ in length": {"val_loss": [3]},
        "'seconds_per_epoch', a positive number \\(see EpochTimer\\)": {"seconds_per_epoch": 0},
    }
    for message, change in problems.items():
        with pytest.raises(common.ExportError, match=message):
            HISTORIES.record("lstm", {**history, **change})


def test_history_check_file(tmp_path):
    history = {"loss": [2, 1], "val_loss": [3, 2], "seconds_per_epoch": 4}

    def check(document):
        (tmp_path / "history.json").write_text(json.dumps(document))
        return HISTORIES.check_file(tmp_path, "history.json", "title")

    assert check({"lstm": history, "gru": history}) == ("title", True, "epochs: lstm 2, gru 2")
    assert "needs exactly the keys" in check({"lstm": history})[2]
    assert "must be a dict of lists" in check({"lstm": history, "gru": [1]})[2]
    assert (
        "values must be numbers"
        in check({"lstm": history, "gru": {**history, "loss": ["a", "b"]}})[2]
    )
    (tmp_path / "history.json").unlink()
    assert HISTORIES.check_file(tmp_path, "history.json", "title")[1:] == (
        False,
        "not checked: history.json is missing or not JSON",
    )


def test_contract_paths_read_json_and_first_line(tmp_path):
    assert common.contract_paths("a1_imdb_sentiment")["history"] == "models/history.json"
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "b.json").write_text("{")
    assert common.read_json(tmp_path, "a.json") == {"x": 1}
    assert common.read_json(tmp_path, "b.json") is None
    assert common.read_json(tmp_path, "missing.json") is None
    assert common.first_line(ValueError("\n first\nsecond")) == "first"
    assert common.first_line(KeyError()) == "KeyError"
    assert len(common.first_line(ValueError("x" * 500))) == 200
