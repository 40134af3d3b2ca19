# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false}
# # Assignment 3: forecasting AAPL prices and Beijing weather with LSTM and GRU
#
# You will forecast two real series with recurrent networks and compare them with the
# forecasts that need no model at all:
#
# - **AAPL**: Apple's daily close, 1980 onwards; forecast the **next trading day's close**;
# - **Beijing weather**: hourly temperature, dew point, pressure, wind and PM2.5,
#   2010 onwards; forecast the **temperature in each of the next 24 hours**.
#
# For each series you train an `LSTM` and a `GRU` forecaster (four models in all).
#
# **What is graded** (48 points)
#
# | part | how | points |
# |---|---|---|
# | `split_and_scale`, `make_windows`, `forecast_metrics` | autograded: the grader calls them on its own inputs | 4 |
# | export (`models/*.keras`, `models/preprocessing.json`) | autograded | 1 |
# | each model holds its recurrent layer; shapes match its declared window and horizon | autograded | 2 |
# | forecasts of the **unseen period** | autograded | 33 |
# | stationarity discussion | written answer, marked by hand | 3 |
# | comparison report | written answer, marked by hand | 5 |
#
# **How your forecasts are graded.** The data you see stops at a cut-off date; the grader
# holds the later period (for AAPL almost two years, for the weather six months). It never
# runs your code there: it reads `models/preprocessing.json`, builds each model's input
# windows from the raw series exactly as that file declares, runs your exported model, and
# turns its outputs back into dollars and degrees. It then compares the mean absolute error
# (MAE, and the MSE) with the **naive forecast** on the same windows:
#
# - **weather** (30 points): the better naive forecast is the temperature 24 hours earlier;
#   partial and full credit need your MAE to be clearly below it (calibrated thresholds);
# - **AAPL** (3 points): tomorrow's close is, on average, about today's close: no model
#   reliably beats "the last value" on daily prices. Full credit needs a forecast within 5%
#   of the last close's MAE (10% in MSE) on prices your model never saw, **and** a forecast
#   that is not the last close in disguise: a model whose forecast ignores its input (the
#   last value, or the last value plus a constant) earns no AAPL points.
#
# A forecast metric counts for a model only when the model holds the recurrent layer its name
# says (`LSTM` or `GRU`) on the one path from input to output: a shortcut that adds the last
# input value to the output fails that check. Forecast *relative to the last value* through
# the declared target transform instead (below). The recurrence must also do the work: the
# grader measures each model with its layer's state reset at every step, and a model that
# barely changes that way (a frozen layer in front of a regression) is not graded. A model
# markedly better on the unseen period than on your own test period (a sign of training on
# the later data) has its forecast points withheld until the instructor has looked.
# Untrained, constant or non-recurrent models earn at most a quarter of the autograded
# points.
#
# **Rules**
#
# - Write your code where it says `YOUR CODE HERE` and your answers where it says
#   `YOUR ANSWER HERE`. Keep the names the notebook uses: `split_and_scale`, `make_windows`,
#   `forecast_metrics`, `prepared`, `models`, `histories`, `preprocessing`.
# - Do not edit the read-only cells; the grader restores them anyway.
# - The test cells run *public* checks only. **Passing them does not mean passing the hidden
#   checks.**
# - The whole notebook must run top to bottom in under 10 minutes on a 2-core CPU (the
#   reference solution takes about 3). Use only the course loaders (no downloads).

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from assignments.a3_timeseries_forecasting.helpers import (
    FORECASTERS,
    SERIES,
    EpochTimer,
    column_values,
    export_forecasters,
    metrics_probe,
    preprocessing_entry,
    split_probe,
    transform,
    windows_probe,
)
from assignments.data import load_aapl, load_beijing

SEED = 0
VAL_FRACTION, TEST_FRACTION = 0.15, 0.15
keras.utils.set_random_seed(SEED)
print("TensorFlow", tf.__version__, "| Keras", keras.__version__)
print("models:", {name: f"{cell} on {series}" for name, (series, cell) in FORECASTERS.items()})

# %% [markdown]
# ## 1. Load and look at the data
#
# `load_aapl()` returns the daily prices (columns `Open, High, Low, Close, Adj Close,
# Volume`), `load_beijing()` the hourly weather (`pm25, dew_point, temperature, pressure,
# wind_dir, wind_speed, snow_hours, rain_hours`; missing PM2.5 values are interpolated).
# Both have a `DatetimeIndex`.

# %% nbgrader={"grade": false, "grade_id": "load", "locked": true, "schema_version": 3, "solution": false}
aapl = load_aapl()
weather = load_beijing()
frames = {"aapl": aapl, "weather": weather}
for series, frame in frames.items():
    print(f"{series}: {len(frame):,} rows, {frame.index[0]:%Y-%m-%d} to {frame.index[-1]:%Y-%m-%d}")

# %% [markdown]
# **Task 1.** Plot AAPL's close on a linear and on a logarithmic scale, its daily log
# return $\log(p_t / p_{t-1})$, and two weeks of Beijing's hourly temperature with its
# PM2.5. Print the mean and standard deviation of AAPL's close and of its log return in
# each decade.

# %% nbgrader={"grade": false, "grade_id": "explore", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
log_return = np.log(aapl["Close"]).diff().dropna()
fig, axes = plt.subplots(2, 2, figsize=(12, 6))
aapl["Close"].plot(ax=axes[0, 0], title="AAPL close ($)")
aapl["Close"].plot(ax=axes[0, 1], logy=True, title="AAPL close, log scale ($)")
log_return.plot(ax=axes[1, 0], linewidth=0.4, title="AAPL daily log return")
two_weeks = weather.iloc[-24 * 14 :]
two_weeks["temperature"].plot(ax=axes[1, 1], title="Beijing, last two weeks", label="°C")
two_weeks["pm25"].plot(ax=axes[1, 1], secondary_y=True, alpha=0.5, label="PM2.5")
plt.tight_layout()
plt.show()

decade = (aapl.index.year // 10) * 10
by_decade = pd.DataFrame(
    {
        "close mean": aapl["Close"].groupby(decade).mean(),
        "close std": aapl["Close"].groupby(decade).std(),
        "log return mean": log_return.groupby(decade[1:]).mean(),
        "log return std": log_return.groupby(decade[1:]).std(),
    }
)
print(by_decade.round(4))
### END SOLUTION

# %% [markdown]
# **Question (3 points).** Is AAPL's close stationary? Is its daily log return? What about
# Beijing's hourly temperature? Use your plots and table. What does your answer mean for a
# model trained on the early part of a series and used on a later part, and what should
# the AAPL models therefore read and forecast?

# %% [markdown] nbgrader={"grade": true, "grade_id": "stationarity", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# *Marking: the price level is not stationary (trend, mean and spread grow by orders of
# magnitude); log returns are roughly stationary in mean, with changing volatility; the
# temperature has a daily and a yearly cycle but a stable range; consequence: a model of
# scaled prices meets levels never seen in training, so forecast returns (or values relative
# to the window) and turn them back into prices.*
#
# No. AAPL's close rises from about 0.1 dollars in 1980 to over 150 in 2022: its mean and
# standard deviation grow by three orders of magnitude from decade to decade, so the
# distribution changes over time. The daily log return has a mean close to zero in every
# decade and a standard deviation of 2-4%: much closer to stationary, although volatility
# comes in clusters (1987, 2000, 2008, 2020). Beijing's temperature has a strong daily and
# yearly cycle (not stationary in the strict sense), but its range repeats every year, so
# the training years cover what the later months will look like. A model trained on scaled
# prices from the early decades would be asked about prices far above anything it saw (its
# scaler maps them to huge inputs, and its outputs stay in the trained range): the AAPL
# models read log returns and forecast the next log return, and the forecast price is the
# last close times exp(forecast return). For the weather, forecasting the change from the
# last observed temperature plays the same role.

# %% [markdown]
# ## 2. Split chronologically and scale
#
# A forecast may only use the past. Split each series **by time**: the earliest rows for
# training, the next ones for validation, the last ones for testing; never shuffle rows
# before splitting (the model would train on days after those it is tested on). Scale each
# feature with the mean and standard deviation of the **training part only**: statistics of
# the whole series would leak the future into the training data.
#
# **Task 2.** Write `split_and_scale(values, val_fraction, test_fraction)`: `values` is an
# array of shape (time steps, features); the last `test_fraction` of the rows is the test
# part, the `val_fraction` before it the validation part, the rest the training part.
# Return `(train, val, test, mean, std)`, the three parts scaled as `(x - mean) / std` with
# the per-column `mean` and `std` of the training part.


# %% nbgrader={"grade": false, "grade_id": "split_and_scale", "locked": false, "schema_version": 3, "solution": true}
def split_and_scale(values, val_fraction, test_fraction):
    """Chronological train/val/test split of `values`, scaled by the training part."""
    ### BEGIN SOLUTION
    values = np.asarray(values, dtype=float)
    n = len(values)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    train_end, val_end = n - n_val - n_test, n - n_test
    train, val, test = values[:train_end], values[train_end:val_end], values[val_end:]
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std
    ### END SOLUTION


# %% [markdown]
# ## 3. Windows
#
# A forecaster reads a **window** of the last `window` time steps (all features) and outputs
# the next `horizon` values of the target. `keras.utils.timeseries_dataset_from_array(data,
# targets, sequence_length, ...)` cuts a series into such windows and batches them as a
# `tf.data.Dataset`: the window starting at row `i` is `data[i : i + sequence_length]` and is
# paired with `targets[i]`. It replaces `TimeseriesGenerator`, which older tutorials use: that
# class is deprecated (it yields NumPy batches through a Python `Sequence`, not a
# `tf.data` pipeline) and is not part of Keras 3's API; only a legacy copy marked
# "DEPRECATED" is still reachable as `tf.keras.preprocessing.sequence.TimeseriesGenerator`.
#
# **Task 3.** Write `make_windows(features, targets, window, horizon, batch_size=256,
# shuffle=False, seed=0, stride=1)` with `timeseries_dataset_from_array`. It yields
# batches `(x, y)`: `x` of shape `(batch, window, n_features)` holds `features[i : i +
# window]` and `y` of shape `(batch, horizon)` holds the `horizon` targets that follow it,
# `targets[i + window : i + window + horizon]`, for every `i` where those exist (a window
# starts every `stride` rows). Careful: `targets[i]` in Keras goes with the window that
# *starts* at `i`, so you must shift (and, for `horizon > 1`, stack) the targets yourself.


# %% nbgrader={"grade": false, "grade_id": "make_windows", "locked": false, "schema_version": 3, "solution": true}
def make_windows(
    features, targets, window, horizon, batch_size=256, shuffle=False, seed=0, stride=1
):
    """(x, y) batches: x = features[i : i + window], y = targets[i + window : i + window + horizon]."""
    ### BEGIN SOLUTION
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
    ### END SOLUTION


# %% [markdown]
# **Task 4.** Write `forecast_metrics(y_true, y_pred)` returning `{"mse": ..., "mae": ...}`:
# the mean squared and the mean absolute error over every forecast value (arrays of shape
# `(n, horizon)`), as Python floats.


# %% nbgrader={"grade": false, "grade_id": "forecast_metrics", "locked": false, "schema_version": 3, "solution": true}
def forecast_metrics(y_true, y_pred):
    """MSE and MAE over every forecast value."""
    ### BEGIN SOLUTION
    error = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error)))}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_functions", "locked": true, "points": 4, "schema_version": 3, "solution": false}
# Public checks of your functions (4 points). Passing them does NOT mean passing the hidden
# checks, which call your functions on the grader's own series (including one whose later
# part has a very different scale) and compare with the reference.
ramp = np.arange(40.0).reshape(20, 2)
train_part, val_part, test_part, mean_, std_ = split_and_scale(ramp, 0.2, 0.1)
assert (len(train_part), len(val_part), len(test_part)) == (14, 4, 2), "sizes 14, 4, 2 expected"
assert np.allclose(train_part * std_ + mean_, ramp[:14]), "the training part must be the first rows"
assert np.allclose(train_part.mean(axis=0), 0), "the training part must be scaled to mean 0"
x_, y_ = next(iter(make_windows(ramp, ramp[:, 0], window=3, horizon=2, batch_size=4)))
assert x_.shape == (4, 3, 2) and y_.shape == (4, 2), f"shapes {x_.shape}, {y_.shape}"
assert np.allclose(y_[0], [6.0, 8.0]), "the window of rows 0..2 goes with the targets of rows 3, 4"
assert forecast_metrics(np.zeros((2, 2)), np.full((2, 2), 2.0)) == {"mse": 4.0, "mae": 2.0}
print("functions: public checks passed")

# %% nbgrader={"grade": false, "grade_id": "probes", "locked": true, "schema_version": 3, "solution": false}
# Read-only. After your notebook has run, the grader calls these with its own inputs; they
# call your functions and return plain lists (see split_probe, windows_probe, metrics_probe
# in the assignment's helpers).


def probe_split_and_scale(**kwargs):
    return split_probe(split_and_scale, **kwargs)


def probe_make_windows(**kwargs):
    return windows_probe(make_windows, **kwargs)


def probe_forecast_metrics(**kwargs):
    return metrics_probe(forecast_metrics, **kwargs)


# %% [markdown]
# ## 4. Features, targets and their declaration
#
# The grader rebuilds your models' inputs from the raw series, so every choice here must be
# one it can repeat: each **feature** is a column with a transform (`none`, `log1p`, `diff`
# or `log_return`, applied to the raw column), scaled by your training statistics; the
# **target** is AAPL's `Close` or the weather's `temperature`, with a transform that says
# what the model's outputs mean once unscaled (`v = output * std + mean`):
#
# | target transform | forecast of $y_{t+k}$ from the window ending at $t$ |
# |---|---|
# | `none` | $v_k$ |
# | `diff` | $y_t + v_k$ (the change from the last observed value) |
# | `log_return` | $y_t \exp(v_k)$ (the log return since the last observed value) |
#
# Besides its columns, the weather series offers the hour of the day on a circle,
# `hour_sin` and `hour_cos` (so that 23:00 and 00:00 are neighbours).
# `column_values(frame, column)` gives a column (or a calendar column) as the grader reads
# it, `transform(values, how)` applies a feature transform exactly as the grader does, and
# `preprocessing_entry(...)` writes one model's declaration (checked at once).
#
# **Task 5.** For each series choose the features, a window length and the target
# transform; apply the transforms (drop the rows where a transform is undefined), split and
# scale with `split_and_scale`, and fill `prepared[series]` with the scaled parts
# (`"train"`, `"val"`, `"test"`), the column index of the target among the features
# (`"target"`), the raw target values of each part (`"levels"`, a dict of three arrays:
# you need them to turn forecasts back into prices and degrees) and the entry
# (`"entry"`). The weather models forecast 24 hours, the AAPL models one day.

# %% nbgrader={"grade": false, "grade_id": "prepare", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
AAPL_WINDOW, WEATHER_WINDOW = 30, 24
FEATURES = {
    "aapl": [("Close", "log_return")],
    "weather": [
        ("temperature", "none"),
        ("dew_point", "none"),
        ("pressure", "none"),
        ("wind_speed", "log1p"),
        ("pm25", "log1p"),
        ("hour_sin", "none"),
        ("hour_cos", "none"),
    ],
}
TARGET_TRANSFORM = {"aapl": "log_return", "weather": "diff"}
WINDOW = {"aapl": AAPL_WINDOW, "weather": WEATHER_WINDOW}

prepared = {}
for series, features in FEATURES.items():
    frame = frames[series]
    columns = [transform(column_values(frame, column), how) for column, how in features]
    values = np.stack(columns, axis=1)
    defined = np.all(np.isfinite(values), axis=1)
    values, levels = values[defined], frame[SERIES[series].target].to_numpy()[defined]
    train, val, test, mean, std = split_and_scale(values, VAL_FRACTION, TEST_FRACTION)
    target = [column for column, _ in features].index(SERIES[series].target)
    how = TARGET_TRANSFORM[series]
    entry = preprocessing_entry(
        series,
        features,
        mean,
        std,
        how,
        target_mean=mean[target] if how == "log_return" else 0.0,
        target_std=std[target],
        window=WINDOW[series],
    )
    cuts = np.cumsum([len(train), len(val)])
    prepared[series] = {
        "train": train,
        "val": val,
        "test": test,
        "target": target,
        "levels": dict(zip(("train", "val", "test"), np.split(levels, cuts), strict=True)),
        "entry": entry,
    }
    print(series, {part: len(prepared[series][part]) for part in ("train", "val", "test")})
### END SOLUTION

# %% [markdown]
# ## 5. Train the forecasters
#
# **Task 6.** For each of the four models of `FORECASTERS` (name -> series and cell), build
# a `keras.Sequential` on inputs of shape `(window, n_features)`: one `LSTM` or `GRU`
# layer, then `Dense(horizon)`. Train it on windows of the training part with validation
# windows, `loss="mse"`, early stopping on the validation loss (restore the best weights) and
# the provided `EpochTimer()` callback. The targets must be what the declared target
# transform says: for the weather's `diff`, the change of the (scaled) temperature since
# the last step of the window, e.g. `dataset.map(lambda x, y: (x, y - x[:, -1:, target]))`.
# Keep `models[name]`, `histories[name] = {**history.history, "seconds_per_epoch":
# timer.mean}` and `preprocessing[name]` (the entry of the model's series). Budget: a few
# minutes for all four (a weather window may start every 2-3 hours for training).

# %% nbgrader={"grade": false, "grade_id": "train", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
UNITS, BATCH_SIZE, LEARNING_RATE, EPOCHS, PATIENCE, WEATHER_STRIDE = 32, 64, 0.002, 8, 2, 2
RECURRENT = {"LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}


def windows_of(series, part, shuffle):
    """Windows of one part; weather targets relative to the window's last temperature."""
    data, target, entry = (
        prepared[series][part],
        prepared[series]["target"],
        prepared[series]["entry"],
    )
    stride = WEATHER_STRIDE if series == "weather" and shuffle else 1
    dataset = make_windows(
        data, data[:, target], entry["window"], entry["horizon"], BATCH_SIZE, shuffle, SEED, stride
    )
    if entry["target"]["transform"] == "diff":
        dataset = dataset.map(lambda x, y: (x, y - x[:, -1:, target]))
    return dataset


models, histories, preprocessing = {}, {}, {}
for name, (series, cell) in FORECASTERS.items():
    keras.utils.set_random_seed(SEED)
    entry = prepared[series]["entry"]
    model = keras.Sequential(
        [
            keras.Input(shape=(entry["window"], len(entry["features"]))),
            RECURRENT[cell](UNITS),
            keras.layers.Dense(entry["horizon"]),
        ],
        name=name,
    )
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="mse")
    timer = EpochTimer()
    stop = keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True)
    print(f"--- {name}")
    history = model.fit(
        windows_of(series, "train", shuffle=True),
        validation_data=windows_of(series, "val", shuffle=False),
        epochs=EPOCHS,
        callbacks=[timer, stop],
        verbose=2,
    )
    models[name] = model
    histories[name] = {**history.history, "seconds_per_epoch": timer.mean}
    preprocessing[name] = entry
### END SOLUTION

# %% [markdown]
# ## 6. Evaluate against the naive forecasts
#
# **Task 7.** On the **test** part of each series, compute every model's forecasts in
# original units (dollars, degrees): undo the scaling and the target transform with the
# raw values in `prepared[series]["levels"]`. Compute the naive forecasts on the same
# windows: the last value, and for the weather also the value 24 hours before each
# forecast hour. Build a table `comparison` (one row per model and naive forecast, per
# series: MAE and MSE from your `forecast_metrics`, and the MAE as a multiple of the
# last value's). Then plot, on part of the test period, the truth, both models' forecasts
# and the naive forecast (for the weather: the forecast 24 hours ahead).


# %% nbgrader={"grade": false, "grade_id": "evaluate", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
def test_forecasts(series):
    """Forecasts of each model of `series` on its test windows, the truth and the naive ones."""
    p = prepared[series]
    entry, levels, target = p["entry"], p["levels"]["test"], p["target"]
    window, horizon = entry["window"], entry["horizon"]
    starts = np.arange(len(levels) - window - horizon + 1)
    last = levels[starts + window - 1][:, None]
    steps = np.arange(horizon)
    truth = levels[starts[:, None] + window + steps]
    naive = {"last value": np.repeat(last, horizon, axis=1)}
    if series == "weather":
        naive["24 hours earlier"] = levels[starts[:, None] + window + steps - 24]
    x = np.concatenate(
        [x for x, _ in make_windows(p["test"], p["test"][:, target], window, horizon, 1024)]
    )
    forecasts = {}
    for name in (n for n, (s, _) in FORECASTERS.items() if s == series):
        value = (
            models[name].predict(x, batch_size=1024, verbose=0) * entry["target"]["std"]
            + entry["target"]["mean"]
        )
        how = entry["target"]["transform"]
        forecasts[name] = (
            value if how == "none" else last + value if how == "diff" else last * np.exp(value)
        )
    return truth, {**forecasts, **naive}


rows, results = [], {}
for series in FEATURES:
    truth, forecasts = test_forecasts(series)
    results[series] = truth, forecasts
    persistence_mae = forecast_metrics(truth, forecasts["last value"])["mae"]
    for name, forecast in forecasts.items():
        metrics = forecast_metrics(truth, forecast)
        rows.append(
            {
                "series": series,
                "forecast": name,
                **metrics,
                "MAE / last value": metrics["mae"] / persistence_mae,
            }
        )
comparison = pd.DataFrame(rows).set_index(["series", "forecast"])
print(comparison.round(4))

fig, axes = plt.subplots(2, 1, figsize=(12, 7))
for axis, series, shown, step in ((axes[0], "aapl", 120, 0), (axes[1], "weather", 24 * 10, 23)):
    truth, forecasts = results[series]
    axis.plot(truth[-shown:, step], color="black", label="truth")
    for name, forecast in forecasts.items():
        style = "--" if name in ("last value", "24 hours earlier") else "-"
        axis.plot(forecast[-shown:, step], style, linewidth=1, label=name)
    axis.set_title(f"{series}: last {shown} steps of the test period, {step + 1} step(s) ahead")
    axis.legend(fontsize=8)
plt.tight_layout()
plt.show()
### END SOLUTION

# %% [markdown]
# **Report (5 points, about 150-250 words).** Compare the LSTM, the GRU and the naive
# forecasts on both series with your table and plots. Why do the AAPL forecasts look so
# good on the plot, and are they? How much do the weather models gain over the naive
# forecasts, and at which hours of the horizon? What did the choice of target (returns,
# change from the last value) do, and what would you try next?

# %% [markdown] nbgrader={"grade": true, "grade_id": "report", "locked": false, "points": 5, "schema_version": 3, "solution": true}
# *Marking: uses own numbers; AAPL: forecasts track the price only because they are close
# to the last value (a lagged copy), MAE about that of persistence, returns nearly
# unpredictable; weather: a clear gain over the value 24 hours earlier, largest in the
# first hours, smaller at 24 h; LSTM vs GRU similar, GRU slightly cheaper; the target choice
# keeps outputs on the training scale; sensible next steps.*
#
# On AAPL both recurrent models land within a fraction of a percent of the last-value
# forecast (MAE ratio about 1.00): the plotted forecasts follow the price closely, but only
# because each one is the last close nudged by a tiny predicted return, so the curve is the
# truth shifted by a day. Daily log returns are close to unpredictable from past returns,
# and the models learned to predict almost their mean; a level model would have failed far
# worse on prices above its training range. On the weather, both models beat the best naive
# forecast (the temperature 24 hours earlier) by roughly 15-20% in MAE and more in MSE: the
# gain is largest for the first hours, where the last observation is very informative, and
# shrinks towards 24 hours ahead, where the daily cycle dominates. The LSTM and the GRU are
# within a few hundredths of a degree of each other; the GRU has about a quarter fewer
# parameters and trains slightly faster. Forecasting the change from the last temperature
# keeps all 24 outputs on a similar scale and lets the model start from persistence instead
# of learning the level. Next: add the hour of day and the wind direction as features, a
# longer window with a stacked or bidirectional encoder, and for AAPL a volatility target,
# which, unlike the return, is predictable.

# %% [markdown]
# ## 7. Export (read-only)
#
# This cell saves each model to `models/<name>.keras`, the preprocessing of every model to
# `models/preprocessing.json` (plain numbers) and the histories to `models/history.json`,
# proves that each file reloads (`safe_mode=True`) and predicts as in memory, and prints
# each model's score on your test period **computed exactly as the grader computes it on
# the unseen period** (through the JSON). If that score is far from your own table above,
# your declaration does not match what your model was trained on. Submit the notebook
# **with** the `models/` folder.

# %% nbgrader={"grade": false, "grade_id": "export", "locked": true, "schema_version": 3, "solution": false}
try:
    to_export = (models, preprocessing, histories)
except NameError as missing:
    print(
        f"Nothing exported ({missing}). Run the cells above first: they must define "
        "`models`, `preprocessing` and `histories` for the four models."
    )
else:
    paths = export_forecasters(*to_export, "models", frames=frames, test_fraction=TEST_FRACTION)
    for path in paths.values():
        print("exported", path)

# %% nbgrader={"grade": true, "grade_id": "test_export", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# Public checks of the export (1 point).
import json
from pathlib import Path

declared = json.loads(Path("models/preprocessing.json").read_text())["models"]
for name in FORECASTERS:
    assert Path(f"models/{name}.keras").is_file(), f"models/{name}.keras is missing: run the export"
    keras.saving.load_model(f"models/{name}.keras", safe_mode=True)
    assert name in declared, f"preprocessing.json has no entry for {name}"
print("export: public checks passed")

# %% nbgrader={"grade": true, "grade_id": "test_models", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Public checks of the models (2 points). The hidden checks also read each model's graph: the
# recurrent layer must sit on the one path from the input to the output.
for name, (series, cell) in FORECASTERS.items():
    model = keras.saving.load_model(f"models/{name}.keras", safe_mode=True)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert cell in kinds, f"models/{name}.keras must hold a {cell} layer; it has {kinds}"
    entry = declared[name]
    out = np.asarray(model(np.zeros((2, entry["window"], len(entry["features"])), "float32")))
    assert out.shape == (2, SERIES[series].horizon), f"{name}: output shape {out.shape}"
print("models: public checks passed")

# %% nbgrader={"grade": true, "grade_id": "test_forecasts", "locked": true, "points": 33, "schema_version": 3, "solution": false}
# Public check of the forecasts (33 points). The hidden checks forecast the unseen period
# (after the cut-off of your data) with your exported models and preprocessing.json, and
# compare with the naive forecasts there against calibrated thresholds. This only checks
# that the weather models beat the last value on your own test period.
for name in ("weather_lstm", "weather_gru"):
    row = comparison.loc[("weather", name)]
    print(
        f"{name}: MAE {row['mae']:.2f} °C on your test period, {row['MAE / last value']:.2f} x the last value"
    )
    assert row["MAE / last value"] < 1, f"{name} does not beat the last value on your test period"
