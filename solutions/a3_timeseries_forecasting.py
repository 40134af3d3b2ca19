"""Reference solution of assignment 3: LSTM and GRU forecasters of AAPL and Beijing weather.

The notebook's solution cells run the same code as :func:`split_and_scale`,
:func:`make_windows`, :func:`forecast_metrics`, :func:`build_forecaster`,
:func:`prepare` and :func:`train_forecaster`. The judge compares the probes of a
student's functions with these; the assignment's plugin trains :func:`train_all`
over seeds for ``rnn-course calibrate a3_timeseries_forecasting``.

Design of the targets (the point of the assignment):

- AAPL: the price level grows ~1000-fold over the decades, so a model trained on
  scaled prices meets levels on the unseen period it has never seen. The model
  reads daily log returns and forecasts the next one; the forecast price is
  ``last close * exp(return)`` (target transform ``log_return``).
- Weather: the model reads the last ``window`` hours of five weather series and the
  hour of the day (on a circle: ``hour_sin``, ``hour_cos``) and forecasts the next 24
  hourly temperatures *relative to the last observed one* (target transform ``diff``),
  which keeps every output on the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from assignments.a3_timeseries_forecasting.helpers import (
    FORECASTERS,
    SERIES,
    EpochTimer,
    column_values,
    export_forecasters,
    load_series,
    preprocessing_entry,
    transform,
)

RECURRENT = {"LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}
AAPL_FEATURES = (("Close", "log_return"),)
WEATHER_FEATURES = (
    ("temperature", "none"),
    ("dew_point", "none"),
    ("pressure", "none"),
    ("wind_speed", "log1p"),
    ("pm25", "log1p"),
    ("hour_sin", "none"),
    ("hour_cos", "none"),
)
FEATURES = {"aapl": AAPL_FEATURES, "weather": WEATHER_FEATURES}
TARGET_TRANSFORM = {"aapl": "log_return", "weather": "diff"}


@dataclass(frozen=True)
class Config:
    """Windows and training settings of the reference solution."""

    aapl_window: int = 30
    weather_window: int = 24
    units: int = 32
    batch_size: int = 64
    learning_rate: float = 0.002
    epochs: int = 8
    patience: int = 2
    weather_stride: int = 2  # a training window starts every 2 hours
    val_fraction: float = 0.15
    test_fraction: float = 0.15

    def window(self, series: str) -> int:
        return self.aapl_window if series == "aapl" else self.weather_window


FULL = Config()


def split_and_scale(values, val_fraction: float, test_fraction: float):
    """Chronological split of ``values`` (time steps x features), scaled by the training part.

    Returns ``(train, val, test, mean, std)``: the last ``test_fraction`` of the
    rows is the test part, the ``val_fraction`` before it the validation part,
    the rest (the earliest rows) the training part; ``mean`` and ``std`` are
    per column, from the training part only.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    train_end, val_end = n - n_val - n_test, n - n_test
    train, val, test = values[:train_end], values[train_end:val_end], values[val_end:]
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std


def make_windows(
    features, targets, window, horizon, batch_size=256, shuffle=False, seed=0, stride=1
):
    """(x, y) batches: x = features[i : i + window], y = the next ``horizon`` targets after it."""
    features = np.asarray(features, dtype="float32")
    targets = np.asarray(targets, dtype="float32")
    n = len(features) - window - horizon + 1
    if n < 1:
        raise ValueError(
            f"{len(features)} steps are too few for window {window} + horizon {horizon}"
        )
    future = np.stack([targets[window + k : window + k + n] for k in range(horizon)], axis=1)
    return keras.utils.timeseries_dataset_from_array(
        features[: n + window - 1],
        future,
        sequence_length=window,
        sequence_stride=stride,
        shuffle=shuffle,
        seed=seed,
        batch_size=batch_size,
    )


def forecast_metrics(y_true, y_pred) -> dict[str, float]:
    """MSE and MAE over every forecast value, in the units of the arrays."""
    error = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error)))}


def build_forecaster(cell: str, window: int, n_features: int, horizon: int, units: int):
    """(batch, window, n_features) -> one recurrent layer -> Dense(horizon)."""
    return keras.Sequential(
        [
            keras.Input(shape=(window, n_features)),
            RECURRENT[cell](units),
            keras.layers.Dense(horizon),
        ],
        name=f"{cell.lower()}_forecaster",
    )


def feature_values(frame, series: str) -> np.ndarray:
    """The transformed feature columns of ``frame`` (rows with a NaN, the first, dropped)."""
    columns = [transform(column_values(frame, column), how) for column, how in FEATURES[series]]
    values = np.stack(columns, axis=1)
    return values[np.all(np.isfinite(values), axis=1)]


def prepare(series: str, frame, config: Config = FULL) -> dict:
    """Features split and scaled, and the preprocessing entry of ``series``' models."""
    values = feature_values(frame, series)
    train, val, test, mean, std = split_and_scale(values, config.val_fraction, config.test_fraction)
    target = [column for column, _ in FEATURES[series]].index(SERIES[series].target)
    how = TARGET_TRANSFORM[series]
    target_mean = mean[target] if how == "log_return" else 0.0
    entry = preprocessing_entry(
        series,
        FEATURES[series],
        mean,
        std,
        how,
        target_mean,
        std[target],
        config.window(series),
    )
    return {"train": train, "val": val, "test": test, "target": target, "entry": entry}


def datasets(prepared: dict, config: Config, seed: int):
    """Training and validation windows; weather targets relative to the last temperature."""
    entry, target = prepared["entry"], prepared["target"]
    window, horizon = entry["window"], entry["horizon"]
    stride = config.weather_stride if entry["series"] == "weather" else 1
    parts = []
    for part, shuffle in ((prepared["train"], True), (prepared["val"], False)):
        dataset = make_windows(
            part,
            part[:, target],
            window,
            horizon,
            batch_size=config.batch_size,
            shuffle=shuffle,
            seed=seed,
            stride=stride if shuffle else 1,
        )
        if entry["target"]["transform"] == "diff":
            dataset = dataset.map(lambda x, y: (x, y - x[:, -1:, target]))
        parts.append(dataset)
    return parts


def train_forecaster(name: str, prepared: dict, config: Config = FULL, seed: int = 0):
    """Train model ``name`` on prepared data; returns (model, history with seconds_per_epoch)."""
    keras.utils.set_random_seed(seed)
    entry = prepared["entry"]
    train, val = datasets(prepared, config, seed)
    model = build_forecaster(
        FORECASTERS[name][1],
        entry["window"],
        len(entry["features"]),
        entry["horizon"],
        config.units,
    )
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    timer = EpochTimer()
    stop = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
    history = model.fit(
        train, validation_data=val, epochs=config.epochs, callbacks=[timer, stop], verbose=0
    )
    return model, {**history.history, "seconds_per_epoch": timer.mean}


def train_all(seed: int = 0, config: Config = FULL, frames: dict | None = None):
    """Models, histories and preprocessing entries of the four forecasters.

    ``frames`` (``{"aapl": ..., "weather": ...}``) defaults to the course data as
    the loaders give it; the calibration passes the part before the unseen period.
    """
    frames = frames or {series: load_series(series) for series in SERIES}
    prepared = {series: prepare(series, frames[series], config) for series in SERIES}
    models, histories, preprocessing = {}, {}, {}
    for name, (series, _) in FORECASTERS.items():
        models[name], histories[name] = train_forecaster(name, prepared[series], config, seed)
        preprocessing[name] = prepared[series]["entry"]
    return models, histories, preprocessing


def train_reference(
    seed: int = 0, out_dir="models", config: Config = FULL, frames: dict | None = None
):
    """Train the reference and export it exactly as the notebook does; returns the paths."""
    models, histories, preprocessing = train_all(seed, config, frames)
    return export_forecasters(models, preprocessing, histories, out_dir)
