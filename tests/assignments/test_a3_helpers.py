"""The export helper and public checks of assignment 3: round trip, refusals, the JSON path."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from assignments.a3_timeseries_forecasting import helpers
from assignments.a3_timeseries_forecasting.helpers import FORECASTERS, SERIES


def frames(days: int = 120) -> dict:
    """Small synthetic series in the loaders' layout (daily AAPL-like, hourly weather-like)."""
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2000-01-03", periods=days, name="Date")
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))
    aapl = pd.DataFrame(
        {
            "Open": close,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Adj Close": close,
            "Volume": rng.integers(1e6, 2e6, days).astype(float),
        },
        index=dates,
    )
    hours = pd.date_range("2012-01-01", periods=days * 24, freq="h", name="time")
    phase = 2 * np.pi * hours.hour.to_numpy() / 24
    weather = pd.DataFrame(
        {
            "pm25": rng.uniform(5, 300, len(hours)),
            "dew_point": rng.normal(0, 5, len(hours)),
            "temperature": 10 + 5 * np.sin(phase) + rng.normal(0, 1, len(hours)),
            "pressure": rng.normal(1015, 5, len(hours)),
            "wind_speed": rng.uniform(0, 50, len(hours)),
            "snow_hours": np.zeros(len(hours)),
            "rain_hours": np.zeros(len(hours)),
        },
        index=hours,
    )
    return {"aapl": aapl, "weather": weather}


def entry(series: str, window: int = 8, target_transform: str | None = None) -> dict:
    features = (
        [("Close", "log_return")]
        if series == "aapl"
        else [("temperature", "none"), ("wind_speed", "log1p"), ("hour_sin", "none")]
    )
    how = target_transform or ("log_return" if series == "aapl" else "diff")
    n = len(features)
    return helpers.preprocessing_entry(
        series, features, [0.0] * n, [1.0] * n, how, 0.0, 1.0, window
    )


def model(name: str, spec: dict, horizon: int | None = None):
    keras.utils.set_random_seed(0)
    cell = {"LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}[FORECASTERS[name][1]]
    return keras.Sequential(
        [
            keras.Input((spec["window"], len(spec["features"]))),
            cell(4),
            keras.layers.Dense(horizon or spec["horizon"]),
        ]
    )


def submission():
    entries = {name: entry(series) for name, (series, _) in FORECASTERS.items()}
    models = {name: model(name, entries[name]) for name in FORECASTERS}
    curve = {"loss": [1.0, 0.8], "val_loss": [1.1, 0.9], "seconds_per_epoch": 0.5}
    return models, entries, {name: curve for name in FORECASTERS}


def test_round_trip_writes_plain_json_and_previews_the_judge(tmp_path, capsys):
    models, entries, histories = submission()
    paths = helpers.export_forecasters(
        models, entries, histories, tmp_path / "models", frames=frames(), test_fraction=0.2
    )
    assert sorted(paths) == sorted([*FORECASTERS, "preprocessing", "history"])
    document = json.loads(paths["preprocessing"].read_text())
    assert document["format"] == 1 and set(document["models"]) == set(FORECASTERS)
    assert document["models"]["weather_gru"]["horizon"] == 24
    printed = capsys.readouterr().out
    assert "weather_lstm on your test period, as the grader measures: MAE" in printed
    assert "x the value 24 hours earlier" in printed and "varies" in printed
    for name in FORECASTERS:
        reloaded = keras.saving.load_model(paths[name], safe_mode=True)
        assert reloaded.count_params() == models[name].count_params()


def test_everything_valid_is_saved_then_every_problem_is_listed(tmp_path):
    models, entries, histories = submission()
    spec = entries["weather_gru"]
    models["weather_gru"] = model("weather_gru", spec, horizon=1)
    entries["aapl_gru"] = {**entries["aapl_gru"], "window": 0}
    del histories["aapl_lstm"]
    with pytest.raises(helpers.ExportError) as raised:
        helpers.export_forecasters(models, entries, histories, tmp_path)
    message = str(raised.value)
    assert "models['weather_gru']: the model maps 2 windows to outputs of shape (2, 1)" in message
    assert "'window' must be a whole number from 2 to 512, got 0" in message
    assert "histories['aapl_lstm'] is missing" in message
    assert all((tmp_path / f"{name}.keras").is_file() for name in FORECASTERS)
    assert json.loads((tmp_path / "preprocessing.json").read_text())["models"]["aapl_gru"]


def test_lambda_layers_are_refused(tmp_path):
    models, entries, histories = submission()
    spec = entries["aapl_lstm"]
    models["aapl_lstm"] = keras.Sequential(
        [
            keras.Input((spec["window"], 1)),
            keras.layers.Lambda(lambda x: x * 2),
            keras.layers.LSTM(2),
            keras.layers.Dense(1),
        ]
    )
    with pytest.raises(helpers.ExportError, match="Lambda layer"):
        helpers.export_forecasters(models, entries, histories, tmp_path)


def test_feature_matrix_follows_the_declared_transforms():
    frame = frames(10)["weather"]
    declared = helpers.preprocessing_entry(
        "weather",
        [("temperature", "diff"), ("pm25", "log1p"), ("hour_cos", "none")],
        [0.5, 1.0, 0.0],
        [2.0, 4.0, 1.0],
        "none",
        10.0,
        5.0,
        24,
    )
    matrix = helpers.feature_matrix(frame, declared)
    temperature = frame["temperature"].to_numpy()
    assert np.isnan(matrix[0, 0])
    assert np.allclose(matrix[1:, 0], (np.diff(temperature) - 0.5) / 2.0)
    assert np.allclose(matrix[:, 1], (np.log1p(frame["pm25"].to_numpy()) - 1.0) / 4.0)
    assert np.allclose(matrix[:, 2], np.cos(2 * np.pi * frame.index.hour / 24))


def format_checks(folder):
    """The public checks less the estimates against the grading tiers (tested in test_check)."""
    return [result for result in helpers.public_checks(folder) if "(an estimate)" not in result[0]]


def test_public_checks(tmp_path, monkeypatch):
    models, entries, histories = submission()
    helpers.export_forecasters(models, entries, histories, tmp_path / "models")
    data = frames()
    monkeypatch.setattr(helpers, "load_series", lambda series, data_dir=None: data[series])
    results = format_checks(tmp_path)
    assert [passed for _, passed, _ in results] == [True] * 6, results
    assert "on the last 15% of your data: MAE" in results[3][2]
    document = json.loads((tmp_path / "models" / "preprocessing.json").read_text())
    document["models"]["weather_lstm"]["mean"] = [0.0]
    (tmp_path / "models" / "preprocessing.json").write_text(json.dumps(document))
    results = format_checks(tmp_path)
    failed = [title for title, passed, _ in results if not passed]
    assert failed == [
        "preprocessing.json describes the four models",
        f"weather_lstm forecasts {SERIES['weather'].what} through preprocessing.json",
    ]
    assert "'mean' must be a list of 3 numbers" in results[0][2]


def test_probe_adapters_return_plain_lists():
    def split(values, val_fraction, test_fraction):
        n = len(values)
        return values[: n - 8], values[n - 8 : n - 4], values[n - 4 :], np.zeros(2), np.ones(2)

    result = helpers.split_probe(split, 20, 0.2, 0.2)
    assert [len(result[part]) for part in ("train", "val", "test")] == [12, 4, 4]
    json.dumps(result)
    with pytest.raises(TypeError, match="must return"):
        helpers.split_probe(lambda values, a, b: values, 20, 0.2, 0.2)
    metrics = helpers.metrics_probe(lambda t, p: {"mse": np.float32(1), "mae": 2}, [1], [2])
    assert metrics == {"mse": 1.0, "mae": 2.0}
