"""Helpers for assignment 3 (time-series forecasting) that the student notebook imports.

The grader never runs your code on the period it grades. It reads
``models/preprocessing.json``, rebuilds each model's input windows from the raw
series exactly as that file declares (feature order, transforms, scaler
statistics, window), runs the exported model, and turns its outputs back into
dollars or degrees with the declared target transform. This module *is* that
procedure (:func:`forecast`, :func:`evaluate`): the export helper runs it on your
own data before anything is submitted, so what it prints is what the grader will
compute, on a period you have not seen.

- :data:`SERIES` and :data:`FORECASTERS`: what each exported model forecasts;
- :func:`preprocessing_entry`: the JSON description of one model's preprocessing;
- :func:`export_forecasters`: saves the four models, ``preprocessing.json`` and
  ``history.json``, proves each model reloads with ``safe_mode=True`` and predicts
  as in memory, and previews the grader's measurement on your test period;
- :func:`public_checks`: what ``rnn-course-student check a3_timeseries_forecasting`` runs.

The preprocessing, as plain numbers (one entry per model)::

    {"series": "weather",
     "features": [{"column": "temperature", "transform": "none"}, ...],
     "mean": [...], "std": [...],            # one per feature, applied after the transform
     "target": {"column": "temperature", "transform": "diff", "mean": 0.0, "std": 12.1},
     "window": 48, "horizon": 24}

The weather's features may also be the hour of the day on a circle, ``hour_sin`` and
``hour_cos`` (:func:`column_values`). Feature transforms (value at time t, before
scaling): ``none`` x_t, ``log1p``
log(1 + x_t), ``diff`` x_t - x_{t-1}, ``log_return`` log(x_t / x_{t-1}). A window
ending at time t holds the scaled feature rows t - window + 1 .. t. Output k
(k = 1 .. horizon) of the model, unscaled as ``v = output * std + mean``, is the
forecast of y_{t+k} by the target transform: ``none`` y = v; ``diff``
y = y_t + v; ``log_return`` y = y_t * exp(v) (y_t: the last observed target value).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras
import numpy as np

from assignments import common
from assignments.check import FAIL, PASS, tier_verdict
from assignments.common import EpochTimer, ExportError, iter_layers  # noqa: F401 (re-exported)

FORMAT = 1
WINDOW_LIMITS = (2, 512)
MAX_FEATURES = 16
FEATURE_TRANSFORMS = ("none", "log1p", "diff", "log_return")
TARGET_TRANSFORMS = ("none", "diff", "log_return")
ENTRY_KEYS = ("series", "features", "mean", "std", "target", "window", "horizon")
HISTORY_KEYS = ("loss", "val_loss")


@dataclass(frozen=True)
class Series:
    """One forecasting task: the columns a model may read and what it forecasts."""

    name: str
    loader: str
    columns: tuple[str, ...]
    target: str
    horizon: int
    unit: str
    what: str
    seasonal_lag: int | None = None  # the naive forecast "same time one period earlier"


SERIES = {
    "aapl": Series(
        "aapl",
        "load_aapl",
        ("Open", "High", "Low", "Close", "Adj Close", "Volume"),
        target="Close",
        horizon=1,
        unit="$",
        what="AAPL's close on the next trading day",
    ),
    "weather": Series(
        "weather",
        "load_beijing",
        (
            "pm25",
            "dew_point",
            "temperature",
            "pressure",
            "wind_speed",
            "snow_hours",
            "rain_hours",
            "hour_sin",
            "hour_cos",
        ),
        target="temperature",
        horizon=24,
        unit="°C",
        what="Beijing's temperature in each of the next 24 hours",
        seasonal_lag=24,
    ),
}

#: Each exported model: the series it forecasts and the recurrent layer it is built around.
FORECASTERS = {
    "aapl_lstm": ("aapl", "LSTM"),
    "aapl_gru": ("aapl", "GRU"),
    "weather_lstm": ("weather", "LSTM"),
    "weather_gru": ("weather", "GRU"),
}
HISTORIES = common.Histories(tuple(FORECASTERS), HISTORY_KEYS)
NAIVE_NAMES = {"last": "the last value", "seasonal": "the value 24 hours earlier"}
#: Columns computed from the time index: the hour of the day on a circle.
CALENDAR = {
    "hour_sin": lambda index: np.sin(2 * np.pi * index.hour.to_numpy() / 24),
    "hour_cos": lambda index: np.cos(2 * np.pi * index.hour.to_numpy() / 24),
}


class PreprocessingError(ValueError):
    """A preprocessing entry the grader cannot apply; the message says which field and why."""


class ForecastError(RuntimeError):
    """A model cannot forecast the series as its preprocessing declares."""


# --------------------------------------------------------------------------- data


def load_series(name: str, data_dir=None):
    """The raw frame of series ``name`` (``aapl``: daily prices, ``weather``: hourly Beijing)."""
    from assignments import data

    return getattr(data, SERIES[name].loader)(data_dir)


def column_values(frame, column: str) -> np.ndarray:
    """A column of ``frame``, or a calendar column (``hour_sin``, ``hour_cos``) of its index."""
    if column in CALENDAR:
        return np.asarray(CALENDAR[column](frame.index), dtype=float)
    return frame[column].to_numpy(dtype=float)


def transform(values, how: str) -> np.ndarray:
    """A raw column transformed as a feature or target (``diff``, ``log_return``: NaN at row 0)."""
    x = np.asarray(values, dtype=float)
    if how == "none":
        return x.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        if how == "log1p":
            return np.log1p(x)
        out = np.full(x.shape, np.nan)
        if how == "diff":
            out[1:] = x[1:] - x[:-1]
        elif how == "log_return":
            out[1:] = np.log(x[1:] / x[:-1])
        else:
            raise PreprocessingError(f"unknown transform {how!r}")
    return out


# --------------------------------------------------------------------------- the JSON


def _plain(value, where: str):
    """``value`` as plain JSON (lists, floats, ints, strings), or PreprocessingError."""
    if isinstance(value, dict):
        return {str(key): _plain(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where)
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    raise PreprocessingError(
        f"{where}: {type(value).__name__} is not a plain number, string or list"
    )


def _number(value, where: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PreprocessingError(f"{where} must be a finite number, got {value!r}")
    if positive and not value > 1e-12:
        raise PreprocessingError(f"{where} must be positive (a standard deviation), got {value!r}")
    return float(value)


def _numbers(value, where: str, length: int, positive: bool = False) -> list[float]:
    if not isinstance(value, list) or len(value) != length:
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        raise PreprocessingError(
            f"{where} must be a list of {length} numbers (one per feature), got {got}"
        )
    return [_number(v, f"{where}[{i}]", positive) for i, v in enumerate(value)]


def _whole(value, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PreprocessingError(
            f"{where} must be a whole number from {low} to {high}, got {value!r}"
        )
    return value


def validate_entry(name: str, entry) -> dict:
    """The preprocessing of model ``name``, checked field by field; PreprocessingError if not."""
    where = f"preprocessing of '{name}'"
    if name not in FORECASTERS:
        raise PreprocessingError(f"unknown model '{name}'; the models are {tuple(FORECASTERS)}")
    series = SERIES[FORECASTERS[name][0]]
    if not isinstance(entry, dict):
        raise PreprocessingError(f"{where} must be an object (a dict), got {type(entry).__name__}")
    missing = [key for key in ENTRY_KEYS if key not in entry]
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if missing or unknown:
        raise PreprocessingError(
            f"{where}: "
            + "; ".join(
                part
                for part in (
                    f"missing {missing}" if missing else "",
                    f"unknown keys {unknown}" if unknown else "",
                )
                if part
            )
            + f" (expected exactly {list(ENTRY_KEYS)})"
        )
    if entry["series"] != series.name:
        raise PreprocessingError(
            f"{where}: 'series' must be '{series.name}' (the model forecasts {series.what}), "
            f"got {entry['series']!r}"
        )
    features = entry["features"]
    if not isinstance(features, list) or not 1 <= len(features) <= MAX_FEATURES:
        raise PreprocessingError(
            f"{where}: 'features' must be a list of 1 to {MAX_FEATURES} features"
        )
    seen = set()
    for i, feature in enumerate(features):
        at = f"{where}: features[{i}]"
        if not isinstance(feature, dict) or set(feature) != {"column", "transform"}:
            raise PreprocessingError(f"{at} must be {{'column': ..., 'transform': ...}}")
        if feature["column"] not in series.columns:
            raise PreprocessingError(
                f"{at}: column {feature['column']!r} is not one of {list(series.columns)}"
            )
        if feature["transform"] not in FEATURE_TRANSFORMS:
            raise PreprocessingError(
                f"{at}: transform {feature['transform']!r} is not one of {list(FEATURE_TRANSFORMS)}"
            )
        key = (feature["column"], feature["transform"])
        if key in seen:
            raise PreprocessingError(f"{at}: {key} appears twice")
        seen.add(key)
    n = len(features)
    mean = _numbers(entry["mean"], f"{where}: 'mean'", n)
    std = _numbers(entry["std"], f"{where}: 'std'", n, positive=True)
    target = entry["target"]
    if not isinstance(target, dict) or set(target) != {"column", "transform", "mean", "std"}:
        raise PreprocessingError(
            f"{where}: 'target' must be an object with the keys column, transform, mean, "
            f"std; got {str(target)[:120]}"
        )
    if target["column"] != series.target:
        raise PreprocessingError(
            f"{where}: the target column must be '{series.target}', got {target['column']!r}"
        )
    if target["transform"] not in TARGET_TRANSFORMS:
        raise PreprocessingError(
            f"{where}: target transform {target['transform']!r} is not one of "
            f"{list(TARGET_TRANSFORMS)}"
        )
    window = _whole(entry["window"], f"{where}: 'window'", *WINDOW_LIMITS)
    if entry["horizon"] != series.horizon or isinstance(entry["horizon"], bool):
        raise PreprocessingError(
            f"{where}: 'horizon' must be {series.horizon} (the model forecasts {series.what}), "
            f"got {entry['horizon']!r}"
        )
    return {
        "series": series.name,
        "features": [dict(feature) for feature in features],
        "mean": mean,
        "std": std,
        "target": {
            "column": series.target,
            "transform": target["transform"],
            "mean": _number(target["mean"], f"{where}: target 'mean'"),
            "std": _number(target["std"], f"{where}: target 'std'", positive=True),
        },
        "window": window,
        "horizon": series.horizon,
    }


def validate_document(document) -> dict:
    """The ``models`` table of a ``preprocessing.json`` document (entries not yet validated)."""
    if not isinstance(document, dict) or not isinstance(document.get("models"), dict):
        raise PreprocessingError(
            "preprocessing.json must be an object with a 'models' object (write it with "
            "export_forecasters)"
        )
    return document["models"]


def preprocessing_entry(
    series: str,
    features,
    mean,
    std,
    target_transform: str,
    target_mean: float,
    target_std: float,
    window: int,
) -> dict:
    """The preprocessing of one model, as the grader reads it (see the module docstring).

    ``features`` lists ``(column, transform)`` pairs in the order of the model's input
    features; ``mean`` and ``std`` hold the scaler statistics of each feature (after
    its transform), fitted on the training part only. The target's transform and
    scaling say how the model's outputs become values of the target column. The
    horizon is the series' (1 for AAPL, 24 for the weather).
    """
    if series not in SERIES:
        raise PreprocessingError(f"series must be one of {tuple(SERIES)}, not {series!r}")
    pairs = []
    for feature in features:
        if isinstance(feature, str):
            feature = (feature, "none")
        column, how = feature
        pairs.append({"column": str(column), "transform": str(how)})
    entry = _plain(
        {
            "series": str(series),
            "features": pairs,
            "mean": np.ravel(np.asarray(mean, dtype=float)).tolist(),
            "std": np.ravel(np.asarray(std, dtype=float)).tolist(),
            "target": {
                "column": SERIES[series].target,
                "transform": target_transform,
                "mean": float(target_mean),
                "std": float(target_std),
            },
            "window": int(window),
            "horizon": SERIES[series].horizon,
        },
        "preprocessing",
    )
    name = next(n for n, (s, _) in FORECASTERS.items() if s == series)
    validate_entry(name, entry)
    return entry


# --------------------------------------------------------------------------- forecasting


def feature_matrix(frame, entry: dict) -> np.ndarray:
    """The scaled feature rows of ``frame``, shape ``(len(frame), n_features)``."""
    columns = [
        transform(column_values(frame, f["column"]), f["transform"]) for f in entry["features"]
    ]
    stacked = np.stack(columns, axis=1)
    return (stacked - np.asarray(entry["mean"])) / np.asarray(entry["std"])


def forecast_origins(n_rows: int, first: int, horizon: int) -> np.ndarray:
    """Every time t from ``first`` whose next ``horizon`` values are in the series."""
    return np.arange(first, n_rows - horizon)


def input_windows(features: np.ndarray, origins: np.ndarray, window: int) -> np.ndarray:
    """The windows ending at each origin: shape ``(len(origins), window, n_features)``."""
    index = np.asarray(origins)[:, None] - window + 1 + np.arange(window)[None, :]
    if index.size and index.min() < 0:
        raise ForecastError(f"a window of {window} steps reaches before the start of the series")
    return features[index]


def target_values(frame, series: str) -> np.ndarray:
    return frame[SERIES[series].target].to_numpy(dtype=float)


def truth(frame, series: str, origins: np.ndarray) -> np.ndarray:
    """The actual values y_{t+1} .. y_{t+horizon} for each origin t: ``(n, horizon)``."""
    steps = np.arange(1, SERIES[series].horizon + 1)
    return target_values(frame, series)[np.asarray(origins)[:, None] + steps[None, :]]


def naive_forecasts(frame, series: str, origins: np.ndarray) -> dict[str, np.ndarray]:
    """The naive forecasts on the same windows: the last value, and for the weather the
    value 24 hours before each forecast hour."""
    spec = SERIES[series]
    y = target_values(frame, series)
    origins = np.asarray(origins)
    steps = np.arange(1, spec.horizon + 1)
    naive = {"last": np.repeat(y[origins][:, None], spec.horizon, axis=1)}
    if spec.seasonal_lag:
        naive["seasonal"] = y[origins[:, None] + steps[None, :] - spec.seasonal_lag]
    return naive


def model_outputs(model, windows: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """The model's outputs on ``windows`` (float32), in one call per ``batch_size`` windows."""
    parts = []
    for start in range(0, len(windows), batch_size):
        batch = keras.ops.convert_to_tensor(windows[start : start + batch_size].astype("float32"))
        out = model(batch, training=False)
        if isinstance(out, list | tuple | dict):
            raise ForecastError("the model must have one output, not several")
        parts.append(np.asarray(out))
    return np.concatenate(parts) if parts else np.zeros((0,))


def forecast(model, entry: dict, frame, origins: np.ndarray) -> np.ndarray:
    """The model's forecasts for each origin, in the target's original units: ``(n, horizon)``.

    ``entry`` is a validated preprocessing entry; this is exactly what the grader does.
    """
    features = feature_matrix(frame, entry)
    windows = input_windows(features, origins, entry["window"])
    if not np.all(np.isfinite(windows)):
        bad = [
            f"{f['transform']}({f['column']})"
            for i, f in enumerate(entry["features"])
            if not np.all(np.isfinite(windows[:, :, i]))
        ]
        raise ForecastError(
            f"the declared features {bad} are not finite on these windows (a log of a "
            "value <= 0, or a difference at the first row?)"
        )
    outputs = model_outputs(model, windows)
    expected = (len(origins), entry["horizon"])
    if outputs.shape != expected:
        raise ForecastError(
            f"the model maps {len(origins)} windows of shape {windows.shape[1:]} to outputs of "
            f"shape {outputs.shape}; expected {expected} (horizon {entry['horizon']})"
        )
    if not np.all(np.isfinite(outputs)):
        count = int(np.sum(~np.isfinite(outputs)))
        raise ForecastError(f"the model outputs NaN or infinity ({count} values)")
    target = entry["target"]
    value = outputs.astype(float) * target["std"] + target["mean"]
    last = target_values(frame, entry["series"])[np.asarray(origins)][:, None]
    if target["transform"] == "none":
        result = value
    elif target["transform"] == "diff":
        result = last + value
    else:
        result = last * np.exp(np.clip(value, -50.0, 50.0))
    if not np.all(np.isfinite(result)):
        raise ForecastError("the forecasts are not finite once the target transform is undone")
    return result


@dataclass
class Evaluation:
    """A model's forecasts on a set of origins against the truth and the naive forecasts."""

    series: str
    origins: np.ndarray
    forecasts: np.ndarray
    truth: np.ndarray
    naive: dict[str, np.ndarray]
    mae: float
    mse: float
    naive_mae: dict[str, float]
    naive_mse: dict[str, float]
    seconds: float = 0.0

    @property
    def baseline(self) -> str:
        """The better naive forecast (lower MAE) on these windows."""
        return min(self.naive_mae, key=self.naive_mae.get)

    @property
    def mae_ratio(self) -> float:
        return self.mae / self.naive_mae[self.baseline]

    @property
    def mse_ratio(self) -> float:
        return self.mse / self.naive_mse[self.baseline]

    @property
    def spread(self) -> float:
        """How much the forecast change varies, relative to the actual change (0: constant)."""
        last = self.naive["last"]
        known = last != 0
        actual = np.std(self.truth[known] / last[known] - 1) if known.any() else 0.0
        if not actual > 0:
            return 0.0
        return float(np.std(self.forecasts[known] / last[known] - 1) / actual)

    def summary(self) -> str:
        unit = SERIES[self.series].unit
        naive = ", ".join(
            f"{NAIVE_NAMES[name]} {self.naive_mae[name]:.3f}" for name in self.naive_mae
        )
        return (
            f"MAE {self.mae:.3f} {unit} over {len(self.origins):,} forecasts, "
            f"{self.mae_ratio:.3f} x {NAIVE_NAMES[self.baseline]} (naive MAE: {naive}); "
            f"MSE {self.mse:.3f}, {self.mse_ratio:.3f} x"
        )


def evaluate(model, entry: dict, frame, origins: np.ndarray) -> Evaluation:
    """Forecast ``frame`` at ``origins`` with ``model`` as ``entry`` declares, and score it."""
    start = time.perf_counter()
    predicted = forecast(model, entry, frame, origins)
    seconds = time.perf_counter() - start
    actual = truth(frame, entry["series"], origins)
    naive = naive_forecasts(frame, entry["series"], origins)

    def scores(guess):
        gap = guess - actual
        return float(np.mean(np.abs(gap))), float(np.mean(gap * gap))

    mae, mse = scores(predicted)
    naive_scores = {name: scores(guess) for name, guess in naive.items()}
    return Evaluation(
        series=entry["series"],
        origins=np.asarray(origins),
        forecasts=predicted,
        truth=actual,
        naive=naive,
        mae=mae,
        mse=mse,
        naive_mae={name: s[0] for name, s in naive_scores.items()},
        naive_mse={name: s[1] for name, s in naive_scores.items()},
        seconds=seconds,
    )


def check_shapes(model, entry: dict) -> None:
    """ForecastError unless ``model`` maps ``(batch, window, features)`` to ``(batch, horizon)``."""
    n_features, window, horizon = len(entry["features"]), entry["window"], entry["horizon"]
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError, TypeError):
        inputs = None
    if inputs is not None:
        if len(inputs) != 1:
            raise ForecastError(f"the model has {len(inputs)} inputs; it must have one")
        shape = tuple(inputs[0].shape)
        if len(shape) != 3 or shape[1] not in (None, window) or shape[2] not in (None, n_features):
            raise ForecastError(
                f"the model's input shape is {shape}; the preprocessing declares windows of "
                f"(batch, {window}, {n_features}) (window {window}, {n_features} features)"
            )
    try:
        out = model_outputs(model, np.zeros((2, window, n_features), dtype="float32"))
    except ForecastError:
        raise
    except Exception as err:
        first = common.first_line(err)
        raise ForecastError(
            f"the model fails on a batch of shape (2, {window}, {n_features}): {first}"
        ) from None
    if out.shape != (2, horizon):
        raise ForecastError(
            f"the model maps 2 windows to outputs of shape {out.shape}; expected (2, {horizon}): "
            f"the {entry['series']} models forecast {SERIES[entry['series']].what}"
        )


# --------------------------------------------------------------------------- export


def _probe_batch(entry: dict) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.normal(size=(4, entry["window"], len(entry["features"]))).astype("float32")


def export_forecasters(
    models: dict,
    preprocessing: dict,
    histories: dict,
    out_dir: str | Path = "models",
    frames: dict | None = None,
    test_fraction: float = 0.15,
) -> dict[str, Path]:
    """Save ``<name>.keras`` for each model, ``preprocessing.json`` and ``history.json``.

    ``models``, ``preprocessing`` and ``histories`` map each name of
    :data:`FORECASTERS` to the trained model, its preprocessing entry
    (:func:`preprocessing_entry`) and its Keras history plus ``seconds_per_epoch``.
    Each model is saved, reloaded with ``safe_mode=True`` and must predict as in
    memory. With ``frames`` (``{"aapl": frame, "weather": frame}``), each model is then
    scored as the grader scores it, on the last ``test_fraction`` of your data.

    Everything that can be saved is saved; then ExportError lists every problem.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    problems, entries, records, paths, valid = [], {}, {}, {}, {}
    for name in FORECASTERS:
        try:
            entries[name] = _plain(preprocessing.get(name), f"preprocessing['{name}']")
            if entries[name] is None:
                raise PreprocessingError(f"preprocessing['{name}'] is missing")
            valid[name] = validate_entry(name, entries[name])
        except PreprocessingError as err:
            problems.append(str(err))
        if name in histories:
            try:
                records[name] = HISTORIES.record(name, histories[name])
            except ExportError as err:
                problems.append(str(err))
        else:
            problems.append(f"histories['{name}'] is missing")
        model = models.get(name)
        if not isinstance(model, keras.Model):
            problems.append(f"models['{name}'] must be a trained keras.Model")
            continue
        try:
            common.refuse_lambda_layers(name, model)
        except ExportError as err:
            problems.append(str(err))
            continue
        batch = expected = None
        if name in valid:
            batch = _probe_batch(valid[name])
            try:
                check_shapes(model, valid[name])
                expected = model_outputs(model, batch)
            except ForecastError as err:
                problems.append(f"models['{name}']: {err}")
        paths[name] = out / f"{name}.keras"
        try:
            common.save_and_reload(
                model, paths[name], partial(model_outputs, windows=batch), expected
            )
        except ExportError as err:
            problems.append(str(err))
    document = {"format": FORMAT, "models": entries}
    paths["preprocessing"] = out / "preprocessing.json"
    paths["preprocessing"].write_text(json.dumps(document, indent=1, allow_nan=False))
    paths["history"] = out / "history.json"
    paths["history"].write_text(json.dumps(records, indent=1))
    if frames:
        for line in preview(
            {n: m for n, m in models.items() if n in valid and n in paths},
            valid,
            frames,
            test_fraction,
        ):
            print(line)
    if problems:
        raise ExportError("\n".join(problems))
    return paths


def preview(models: dict, entries: dict, frames: dict, test_fraction: float) -> list[str]:
    """Lines scoring each model as the grader does, on the last ``test_fraction`` of your data."""
    lines = []
    for name, model in models.items():
        entry = entries[name]
        frame = frames.get(entry["series"])
        if frame is None:
            continue
        first = max(int(len(frame) * (1 - test_fraction)) - 1, entry["window"] + 25)
        origins = forecast_origins(len(frame), first, entry["horizon"])
        try:
            result = evaluate(model, entry, frame, origins)
        except ForecastError as err:
            lines.append(f"{name}: cannot forecast your test period: {err}")
            continue
        line = f"{name} on your test period, as the grader measures: {result.summary()}"
        if entry["series"] == "aapl":
            line += f"; forecast change varies {result.spread:.3f} x the actual change"
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- probes


def probe_series(length: int, shift_at: float = 0.7) -> np.ndarray:
    """A two-column series for the grader's probes: a ramp 0, 1, 2, ... and a trap column
    whose later part (from ``shift_at``) is ten times larger and shifted by 100."""
    t = np.arange(length, dtype=float)
    late = t >= int(round(shift_at * length))
    wave = np.sin(0.7 * t) + 0.5 * np.cos(1.9 * t)
    return np.stack([t, np.where(late, 100.0 + 10.0 * wave, wave)], axis=1)


def split_probe(split_and_scale, length: int, val_fraction: float, test_fraction: float) -> dict:
    """Call ``split_and_scale`` on :func:`probe_series`; its results as plain lists."""
    result = split_and_scale(probe_series(length), val_fraction, test_fraction)
    if not isinstance(result, tuple | list) or len(result) != 5:
        raise TypeError("split_and_scale must return (train, val, test, mean, std)")
    train, val, test, mean, std = (np.asarray(part, dtype=float) for part in result)
    return {
        "train": train.reshape(len(train), -1).tolist(),
        "val": val.reshape(len(val), -1).tolist(),
        "test": test.reshape(len(test), -1).tolist(),
        "mean": mean.ravel().tolist(),
        "std": std.ravel().tolist(),
    }


def windows_probe(make_windows, length: int, n_features: int, window: int, horizon: int) -> dict:
    """Call ``make_windows`` on numbered features and targets; every (x, y) pair, in order."""
    features = np.arange(length * n_features, dtype="float32").reshape(length, n_features)
    targets = 1000.0 + np.arange(length, dtype="float32")
    dataset = make_windows(features, targets, window, horizon, batch_size=5, shuffle=False)
    xs, ys = [], []
    for x, y in dataset:
        xs.append(np.asarray(x, dtype=float))
        ys.append(np.asarray(y, dtype=float))
    x = np.concatenate(xs) if xs else np.zeros((0, window, n_features))
    y = np.concatenate(ys) if ys else np.zeros((0, horizon))
    return {"x": x.tolist(), "y": y.tolist()}


def metrics_probe(forecast_metrics, y_true, y_pred) -> dict:
    """Call ``forecast_metrics`` on fixed arrays; its MSE and MAE as plain numbers."""
    result = forecast_metrics(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
    return {"mse": float(result["mse"]), "mae": float(result["mae"])}


# --------------------------------------------------------------------------- public checks


def public_checks(folder: str | Path) -> list[tuple[str, bool | str, str]]:
    """The public checks of ``rnn-course-student check a3_timeseries_forecasting`` on ``folder``.

    ``preprocessing.json`` must describe the four models validly; each model must
    map the declared windows to the declared horizon and forecast your own data
    through the JSON (as the grader does, on the last 15% of it), and those forecasts
    are compared with the naive forecasts and the grading tiers of the contract: an
    estimate, as the grade is measured on a period you have not seen.
    ``history.json`` must hold the four histories.
    """
    folder = Path(folder)
    paths = common.contract_paths("a3_timeseries_forecasting")
    title = "preprocessing.json describes the four models"
    entries: dict[str, dict] = {}
    results = []
    try:
        document = json.loads((folder / paths["preprocessing"]).read_text(encoding="utf-8"))
        raw = validate_document(document)
        problems = []
        for name in FORECASTERS:
            try:
                entries[name] = validate_entry(name, raw.get(name))
            except PreprocessingError as err:
                problems.append(str(err))
        results.append((title, not problems, "; ".join(problems) or "all four entries valid"))
    except (OSError, ValueError) as err:
        results.append((title, False, f"missing or not JSON: {str(err)[:200]}"))
    frames: dict = {}
    evaluations = {}
    for name in FORECASTERS:
        result, evaluations[name] = _check_forecaster(
            folder, name, paths[name], entries.get(name), frames
        )
        results.append(result)
    title = "history.json holds the four training histories"
    results.append(HISTORIES.check_file(folder, paths["history"], title))
    tiers = common.load_contract("a3_timeseries_forecasting").tiers
    for name, evaluation in evaluations.items():
        if evaluation is not None:
            results.append(tier_check(name, evaluation, tiers))
    return results


def _check_forecaster(folder: Path, name: str, relative: str, entry, frames: dict):
    """The check that model ``name`` forecasts your data; its Evaluation on your test period."""
    series, kind = FORECASTERS[name]
    title = f"{name} forecasts {SERIES[series].what} through preprocessing.json"
    if entry is None:
        return (title, False, "not checked: its preprocessing entry is missing or invalid"), None
    try:
        model = keras.saving.load_model(folder / relative, safe_mode=True, compile=False)
    except Exception:
        return (title, False, f"not checked: {relative} is missing or does not load"), None
    kinds = {type(layer).__name__ for layer in iter_layers(model)}
    if kind not in kinds:
        return (title, False, f"{relative} has no {kind} layer"), None
    try:
        check_shapes(model, entry)
        if series not in frames:
            frames[series] = load_series(series)
        public = frames[series]
        first = max(int(len(public) * 0.85) - 1, entry["window"] + 25)
        origins = forecast_origins(len(public), first, entry["horizon"])
        result = evaluate(model, entry, public, origins)
    except ForecastError as err:
        return (title, False, str(err)), None
    except Exception as err:  # data not found, etc.: say so without failing the format
        return (
            title,
            True,
            f"shapes match; not scored on your data ({common.first_line(err)})",
        ), None
    return (title, True, f"on the last 15% of your data: {result.summary()}"), result


def tier_check(name: str, result: Evaluation, tiers: dict) -> tuple[str, str, str]:
    """``result`` (model ``name`` on your test period) against the contract's tiers."""
    title = f"{name} against the naive forecasts on your test period (an estimate)"
    naive = NAIVE_NAMES[result.baseline]
    ratio = f"MAE {result.mae_ratio:.3f} x {naive}"
    if result.series == "aapl":
        rule = tiers["aapl"]
        text = (
            f"{ratio}, MSE {result.mse_ratio:.3f} x; the forecast change varies "
            f"{result.spread:.3f} x the actual change. Full credit needs at most "
            f"{rule['max_mae_ratio']:g} x in MAE, {rule['max_mse_ratio']:g} x in MSE and a "
            f"variation of at least {rule['min_spread']:g} x"
        )
        if result.spread < rule["min_spread"]:
            return title, FAIL, f"{text}: the forecast is the last close in disguise, no points"
        if result.mae_ratio > rule["max_mae_ratio"] or result.mse_ratio > rule["max_mse_ratio"]:
            return title, FAIL, f"{text}: this earns none of its forecast points"
        return title, PASS, f"{text}: full credit if the unseen period agrees"
    tier = common.own_split_tiers(tiers, name, "beijing")
    if result.mae_ratio > 1:
        return (
            title,
            FAIL,
            f"{ratio}: worse than {naive}: this earns none of the forecast points (partial "
            f"credit needs at most {tier['partial']:g} x, full credit {tier['full']:g} x)",
        )
    status, verdict = tier_verdict(result.mae_ratio, tier, tiers["better"], "its forecast points")
    return title, status, f"{ratio}; {verdict}"
