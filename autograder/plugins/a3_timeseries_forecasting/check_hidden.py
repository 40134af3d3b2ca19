"""Hidden checks of assignment 3 (forecasting AAPL and Beijing weather with LSTM and GRU).

Points per grade cell of the notebook (40 autograded):

- test_functions 4: the probes of split_and_scale (chronological; scaler fitted on
  the training part only, caught by a trap series), make_windows (shapes and
  alignment) and forecast_metrics (against the reference on fixed arrays);
- test_export 1: what the locked export cell guarantees (files load, JSON valid);
- test_models 2: per model, the recurrent layer its name says on the one path from
  input to output, and shapes matching the declared window and horizon;
- test_forecasts 33: the forecasts of the unseen period, computed by the judge from
  preprocessing.json: weather 2 x (6 + 9) against the naive forecast with calibrated
  thresholds, AAPL 2 x 1.5 within a stated factor of the last close and not the last
  close in disguise. A metric counts only for a model that passed its architecture check
  and whose recurrence does the work (its state reset at every step, the model must lose
  quality; AAPL: its forecasts must change); a model markedly better on the unseen period
  than on its own test period has its metric points withheld for review.

A submission whose models are untrained, constant, not recurrent or whose recurrence does
no work keeps at most test_functions, test_export, test_models and (untrained only) the
AAPL checks: 10 of 40 points. Only the assertion messages reach the student.
"""

from __future__ import annotations

import numpy as np
import pytest

from assignments.a3_timeseries_forecasting.helpers import (
    FORECASTERS,
    NAIVE_NAMES,
    SERIES,
    iter_layers,
    probe_series,
)

WEATHER = ("weather_lstm", "weather_gru")
AAPL = ("aapl_lstm", "aapl_gru")
per_model = pytest.mark.parametrize("name", tuple(FORECASTERS))


def probe_kwargs(spec, name: str) -> dict:
    return next(p.kwargs for p in spec.probes if p.name == name)


def as_array(value, what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        pytest.fail(f"{what} is not an array of numbers", pytrace=False)
    return array


# --------------------------------------------------------------------------- functions


def _split_parts(probe, spec):
    """The student's split of the probe series, unscaled with the mean and std it returned."""
    kwargs = probe_kwargs(spec, "split")
    result = probe("split")
    call = (
        f"split_and_scale(a {kwargs['length']}-step series, val_fraction="
        f"{kwargs['val_fraction']}, test_fraction={kwargs['test_fraction']})"
    )
    mean = as_array(result.get("mean"), f"{call}: mean")
    std = as_array(result.get("std"), f"{call}: std")
    assert mean.shape == (2,) and std.shape == (2,), (
        f"{call} on a series of 2 columns must return one mean and one std per column; got "
        f"shapes {mean.shape} and {std.shape}"
    )
    parts = {}
    for part in ("train", "val", "test"):
        scaled = as_array(result.get(part), f"{call}: {part}")
        assert scaled.ndim == 2 and scaled.shape[1:] == (2,), (
            f"{call}: the {part} part must keep the 2 columns; got shape {scaled.shape}"
        )
        parts[part] = scaled * std + mean
    return call, kwargs, parts, mean, std


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_functions")
def test_split_is_chronological(probe, spec):
    """split_and_scale splits in time order: training, then validation, then test."""
    call, kwargs, parts, _, _ = _split_parts(probe, spec)
    n = kwargs["length"]
    rows = {part: values[:, 0] for part, values in parts.items()}  # the ramp column: row numbers
    order = np.concatenate([rows["train"], rows["val"], rows["test"]])
    assert len(order) == n and np.allclose(order, np.arange(n), atol=1e-6), (
        f"{call}: the parts together must be the rows in time order (training first, test last); "
        "they are not. Shuffling before splitting lets the model see the future: split by "
        "position, never at random"
    )
    expected = {"val": n * kwargs["val_fraction"], "test": n * kwargs["test_fraction"]}
    for part, size in expected.items():
        assert abs(len(rows[part]) - size) <= 1, (
            f"{call}: the {part} part has {len(rows[part])} rows; expected about {size:g}"
        )


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_functions")
def test_scaler_fitted_on_training_part(probe, spec):
    """split_and_scale fits the scaler on the training part only."""
    call, _, parts, mean, std = _split_parts(probe, spec)
    train = parts["train"]
    assert len(train) > 1, f"{call}: the training part is empty"
    expected_mean = train.mean(axis=0)
    stds = (train.std(axis=0), train.std(axis=0, ddof=1))
    fitted = np.allclose(mean, expected_mean, rtol=1e-4, atol=1e-6) and any(
        np.allclose(std, s, rtol=1e-4, atol=1e-6) for s in stds
    )
    series = probe_series(len(parts["train"]) + len(parts["val"]) + len(parts["test"]))
    assert fitted, (
        f"{call}: the mean and std must be those of the training part "
        f"(mean {np.round(expected_mean, 3).tolist()}); got mean {np.round(mean, 3).tolist()}, "
        f"std {np.round(std, 3).tolist()}. The probe's second column jumps to a "
        f"level around {series[-1, 1]:.0f} late in the series: statistics fitted on more than "
        "the training part leak that future into the scaling"
    )


@pytest.mark.points(0.5)
@pytest.mark.grade_cell("test_functions")
@pytest.mark.parametrize("probe_name", ["windows_multi", "windows_one"])
def test_windows(probe_name, probe, spec):
    """make_windows pairs each window with the values that follow it."""
    kwargs = probe_kwargs(spec, probe_name)
    length, n_features = kwargs["length"], kwargs["n_features"]
    window, horizon = kwargs["window"], kwargs["horizon"]
    call = (
        f"make_windows({length} steps x {n_features} features, targets, window={window}, "
        f"horizon={horizon})"
    )
    result = probe(probe_name)
    x = as_array(result.get("x"), f"{call}: inputs")
    y = as_array(result.get("y"), f"{call}: targets")
    n = length - window - horizon + 1
    if horizon == 1 and y.shape == (n,):
        y = y[:, None]
    assert x.shape == (n, window, n_features), (
        f"{call} gives inputs of shape {x.shape}; expected {(n, window, n_features)}: every "
        f"window of {window} steps whose next {horizon} targets exist"
    )
    assert y.shape == (n, horizon), (
        f"{call} gives targets of shape {y.shape}; expected {(n, horizon)}"
    )
    features = np.arange(length * n_features, dtype=float).reshape(length, n_features)
    starts = np.arange(n)
    expected_x = features[starts[:, None] + np.arange(window)]
    expected_y = 1000.0 + starts[:, None] + window + np.arange(horizon)
    assert np.allclose(x, expected_x), (
        f"{call}: the windows are not features[i : i + {window}] for i = 0, 1, 2, ... in order "
        "(shuffle=False must keep the order)"
    )
    first = y[0].tolist()
    assert np.allclose(y, expected_y), (
        f"{call}: the window of steps 0..{window - 1} must be paired with the targets of steps "
        f"{window}..{window + horizon - 1} (values {expected_y[0].tolist()}); got {first}. "
        "A target inside the window, or one step late, is a misalignment"
    )


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_functions")
def test_forecast_metrics(probe, spec):
    """forecast_metrics computes MSE and MAE like the reference."""
    kwargs = probe_kwargs(spec, "metrics")
    error = np.asarray(kwargs["y_pred"], dtype=float) - np.asarray(kwargs["y_true"], dtype=float)
    expected = {"mse": np.mean(error**2), "mae": np.mean(np.abs(error))}
    got = probe("metrics")
    for key in ("mse", "mae"):
        assert np.isclose(got.get(key), expected[key], rtol=1e-6), (
            f"forecast_metrics on the grader's arrays gives {key} {got.get(key)!r}; expected "
            f"{expected[key]:.6g} (mean over every forecast value of the "
            f"{'squared' if key == 'mse' else 'absolute'} error; not its square root)"
        )


# --------------------------------------------------------------------------- export


@pytest.mark.points(0.5)
@pytest.mark.grade_cell("test_export")
def test_models_load(keras_artifact):
    """The four models load with safe_mode=True and hold no Lambda layer."""
    import keras

    for name in FORECASTERS:
        model = keras_artifact(name)
        lambdas = [
            layer.name for layer in iter_layers(model) if isinstance(layer, keras.layers.Lambda)
        ]
        assert not lambdas, f"models/{name}.keras contains Lambda layers {lambdas}; remove them"


@pytest.mark.points(0.5)
@pytest.mark.grade_cell("test_export")
def test_preprocessing_json(entry):
    """preprocessing.json describes every model with valid plain numbers."""
    for name in FORECASTERS:
        entry(name)


# --------------------------------------------------------------------------- models


@pytest.mark.points(0.25)
@pytest.mark.grade_cell("test_models")
@per_model
def test_architecture(name, architecture):
    """The model holds the recurrent layer its name says, on the one path from input to output."""
    why = architecture(name)
    assert not why, why


@pytest.mark.points(0.25)
@pytest.mark.grade_cell("test_models")
@per_model
def test_shapes(name, unseen, measured):
    """The model maps the declared windows to the declared horizon, with finite forecasts."""
    result = unseen(name)
    measured(f"{len(result.origins):,} windows forecast in {result.seconds:.1f} s")


# --------------------------------------------------------------------------- forecasts


def _describe(name: str, result) -> str:
    spec = SERIES[result.series]
    unit = spec.unit
    what = (
        "next-day forecasts" if spec.horizon == 1 else f"forecasts of the next {spec.horizon} hours"
    )
    others = "; ".join(
        f"{NAIVE_NAMES[other]}: {value:.2f} {unit}"
        for other, value in result.naive_mae.items()
        if other != result.baseline
    )
    return (
        f"{name}: MAE {result.mae:.2f} {unit} on the unseen period ({len(result.origins):,} "
        f"{what}), {result.mae_ratio:.3f} x {NAIVE_NAMES[result.baseline]} "
        f"(MAE {result.naive_mae[result.baseline]:.2f} {unit}{'; ' + others if others else ''}); "
        f"MSE {result.mse:.2f}, {result.mse_ratio:.3f} x"
    )


def _conclude(verdict, text: str, ok: bool, advice: str, withhold) -> None:
    """Fail "not graded" when the recurrence did not earn the metric, hold a metric that may
    come from training on the unseen period for review, and assert ``ok``."""
    if verdict.problem:
        reason = f"not graded: {verdict.problem}. {text}"
        pytest.fail(reason if ok else f"{reason}. {advice}", pytrace=False)
    if verdict.contamination.flagged:
        withhold(verdict.contamination.reason())
    assert ok, f"{text}. {advice}"


def _on_control(verdict) -> tuple[str, object] | None:
    """(control name, Evaluation) of the model on its own test period, if it forecast it."""
    return next(iter(verdict.controls.items()), None)


def _weather_advice(verdict, declared: dict, needed: float) -> str:
    """What to do, from the same model scored on the student's own test period."""
    more = "train longer, or give it a longer window and more weather series"
    if declared["target"]["transform"] != "diff":
        more = "forecast the change from the last temperature (target transform 'diff'), " + more
    control = _on_control(verdict)
    if control is None:
        return f"To do better: {more}"
    where, seen = control
    scores = (
        f"On {where} the same model, forecast through the same preprocessing.json, scores "
        f"{seen.mae_ratio:.3f} x {NAIVE_NAMES[seen.baseline]}"
    )
    if seen.mae_ratio > needed:
        return (
            f"{scores}: weak there too. If your notebook measured much better on that period "
            "(the export cell printed the judge's measurement), preprocessing.json does not "
            "declare what the model was trained with (feature order, scaler statistics, target "
            f"transform); otherwise {more}"
        )
    if declared["target"]["transform"] != "diff":
        later = (
            "Forecast the change from the last temperature (target transform 'diff'), so that a "
            "temperature outside the range the model was trained on does not shift every forecast"
        )
    else:
        later = (
            "Features read as levels (transform 'none') with statistics from earlier years can "
            "meet values outside the range the model was trained on, and a model fitted ever "
            "closer to its own data generalises less: stop training on the validation curve and "
            "prefer transforms that keep the features in range"
        )
    return f"{scores}: it does well on data like its training data, not on a later period. {later}"


@pytest.mark.points(6)
@pytest.mark.grade_cell("test_forecasts")
@pytest.mark.parametrize("name", WEATHER)
def test_weather_basic(name, graded, earned, entry, thresholds, measured, withhold):
    """The weather forecast of the unseen period beats the naive forecast (basic tier)."""
    result, verdict = graded(name), earned(name)
    needed = thresholds[f"mae_ratio_basic_{name}"]
    numbers = f"{_describe(name, result)}. Partial credit needs at most {needed:.3f} x"
    measured(numbers, result.mae_ratio, name)
    advice = _weather_advice(verdict, entry(name), needed)
    _conclude(verdict, numbers, result.mae_ratio <= needed, advice, withhold)


@pytest.mark.points(9)
@pytest.mark.grade_cell("test_forecasts")
@pytest.mark.parametrize("name", WEATHER)
def test_weather_target(name, graded, earned, entry, thresholds, measured, withhold):
    """The weather forecast of the unseen period reaches the calibrated target."""
    result, verdict = graded(name), earned(name)
    needed = thresholds[f"mae_ratio_{name}"]
    numbers = f"{_describe(name, result)}. Full credit needs at most {needed:.3f} x"
    measured(numbers, result.mae_ratio, name)
    advice = _weather_advice(verdict, entry(name), needed)
    _conclude(verdict, numbers, result.mae_ratio <= needed, advice, withhold)


LAST_CLOSE = (
    "This forecast is the last close (plus a constant): a model that ignores its input earns no "
    "AAPL points"
)


def _aapl_advice(verdict, declared: dict, max_mae: float) -> str:
    """What to do about a forecast far off the last close, from the student's test period."""
    if declared["target"]["transform"] != "log_return":
        fix = (
            "forecast the log return (target transform 'log_return') rather than the price "
            "level, and check the scaler in preprocessing.json"
        )
    else:
        fix = (
            "check that preprocessing.json declares what the model was trained with (feature "
            "order, scaler statistics, target transform)"
        )
    control = _on_control(verdict)
    if control is None:
        return f"Far off the last close on prices the model never saw: {fix}"
    where, seen = control
    there = "near the last close there" if seen.mae_ratio <= max_mae else "far off there too"
    return (
        f"On {where} the same model, forecast through the same preprocessing.json, scores "
        f"{seen.mae_ratio:.3f} x the last close, {there}: {fix}"
    )


@pytest.mark.points(1.5)
@pytest.mark.grade_cell("test_forecasts")
@pytest.mark.parametrize("name", AAPL)
def test_aapl_forecast(name, graded, earned, entry, thresholds, measured, withhold):
    """The AAPL forecast of the unseen period is near the last close, and not the last close."""
    result, verdict = graded(name), earned(name)
    max_mae, max_mse = thresholds["aapl_max_mae_ratio"], thresholds["aapl_max_mse_ratio"]
    min_spread = thresholds["aapl_min_spread"]
    text = (
        f"{_describe(name, result)}; the forecast change varies {result.spread:.3f} x as much "
        f"as the actual change. Full credit needs at most {max_mae:.2f} x in MAE and "
        f"{max_mse:.2f} x in MSE, and a forecast that follows its input (variation at least "
        f"{min_spread:g} x)"
    )
    measured(text)
    ok = result.mae_ratio <= max_mae and result.mse_ratio <= max_mse
    advice = _aapl_advice(verdict, entry(name), max_mae)
    if result.spread < min_spread:
        ok, advice = False, LAST_CLOSE
    _conclude(verdict, text, ok, advice, withhold)
