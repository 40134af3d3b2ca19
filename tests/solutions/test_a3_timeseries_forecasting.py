"""Assignment 3: reference, notebook, release, the unseen period and the hidden checks agree.

The hidden checks run on tiny crafted submissions in the run stage's output layout
(untrained, constant, last value, not recurrent, a skip-connection decoy, a leaky
scaler, a shuffled split, misaligned windows, wrong metrics, wrong horizon, a malformed
JSON), each with its expected score. Whether a model earned its metric is tested on
models built in closed form, never trained (a regression or a Dense network behind a
recurrent layer that carries nothing, models fitted on the unseen period, an honest
regression behind a real recurrence) and, marked slow, on briefly trained variations of
the reference. Trained submissions are graded end to end by the sample class
(tests/autograder/test_sample_class_a3.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import keras
import nbformat
import numpy as np
import pytest

from assignments.a3_timeseries_forecasting import helpers
from assignments.a3_timeseries_forecasting.helpers import FORECASTERS, SERIES
from assignments.data import DataError, locate
from autograder.core import spec as specs
from autograder.core.course import Course, Judged
from autograder.core.plugin import load_plugin
from autograder.plugins.a3_timeseries_forecasting.plugin import CONTROL, public_frames
from solutions import a3_timeseries_forecasting as solution

ROOT = Path(__file__).resolve().parents[2]
ID = "a3_timeseries_forecasting"
NOTEBOOK = ROOT / "source" / ID / f"{ID}.ipynb"
TOTAL = 40
WEATHER_METRICS = {
    f"test_weather_{tier}[{name}]"
    for tier in ("basic", "target")
    for name in ("weather_lstm", "weather_gru")
}
AAPL_METRICS = {f"test_aapl_forecast[{name}]" for name in ("aapl_lstm", "aapl_gru")}


def grade_cells(notebook=NOTEBOOK) -> dict[str, dict]:
    cells = nbformat.read(notebook, as_version=4).cells
    return {
        c.metadata["nbgrader"]["grade_id"]: {**c.metadata["nbgrader"], "type": c.cell_type}
        for c in cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


def notebook_functions() -> dict:
    """The notebook's split_and_scale, make_windows and forecast_metrics, as a namespace."""
    cells = {
        c.metadata.get("nbgrader", {}).get("grade_id"): c.source
        for c in nbformat.read(NOTEBOOK, as_version=4).cells
    }
    namespace = {"np": np, "keras": keras}
    for grade_id in ("split_and_scale", "make_windows", "forecast_metrics"):
        exec(cells[grade_id], namespace)
    return namespace


# --------------------------------------------------------------------------- reference


def test_split_and_scale_is_chronological_and_fitted_on_train():
    values = helpers.probe_series(40)
    train, val, test, mean, std = solution.split_and_scale(values, 0.2, 0.1)
    assert (len(train), len(val), len(test)) == (28, 8, 4)
    assert np.allclose(train * std + mean, values[:28])
    assert np.allclose(test * std + mean, values[36:])
    assert np.allclose(mean, values[:28].mean(axis=0))
    assert np.allclose(train.mean(axis=0), 0) and np.allclose(train.std(axis=0), 1)


@pytest.mark.parametrize("window, horizon, stride", [(5, 3, 1), (4, 1, 1), (6, 2, 3)])
def test_make_windows_alignment(window, horizon, stride):
    features = np.arange(60.0).reshape(30, 2)
    targets = 1000.0 + np.arange(30)
    batches = list(solution.make_windows(features, targets, window, horizon, 7, stride=stride))
    x = np.concatenate([np.asarray(b[0]) for b in batches])
    y = np.concatenate([np.asarray(b[1]) for b in batches])
    starts = np.arange(0, 30 - window - horizon + 1, stride)
    assert x.shape == (len(starts), window, 2) and y.shape == (len(starts), horizon)
    assert np.allclose(x, features[starts[:, None] + np.arange(window)])
    assert np.allclose(y, targets[starts[:, None] + window + np.arange(horizon)])


def test_forecast_metrics():
    assert solution.forecast_metrics([[1.0, 2.0]], [[2.0, 0.0]]) == {"mse": 2.5, "mae": 1.5}


def test_build_forecaster_shapes():
    model = solution.build_forecaster("GRU", window=10, n_features=3, horizon=24, units=8)
    assert [type(layer).__name__ for layer in model.layers] == ["GRU", "Dense"]
    assert model(np.zeros((2, 10, 3))).shape == (2, 24)


def test_notebook_functions_match_reference():
    mine = notebook_functions()
    values = helpers.probe_series(50)
    for ours, theirs in zip(
        mine["split_and_scale"](values, 0.2, 0.1),
        solution.split_and_scale(values, 0.2, 0.1),
        strict=True,
    ):
        assert np.allclose(ours, theirs)
    spec = specs.load(ID)
    for name in ("windows_multi", "windows_one"):
        kwargs = next(p.kwargs for p in spec.probes if p.name == name)
        assert helpers.windows_probe(mine["make_windows"], **kwargs) == helpers.windows_probe(
            solution.make_windows, **kwargs
        )
    kwargs = next(p.kwargs for p in spec.probes if p.name == "metrics")
    assert helpers.metrics_probe(mine["forecast_metrics"], **kwargs) == helpers.metrics_probe(
        solution.forecast_metrics, **kwargs
    )


# --------------------------------------------------------------------------- spec, notebook


def test_spec_contract():
    spec = specs.load(ID)
    assert spec.artifact_paths == {
        **{name: f"models/{name}.keras" for name in FORECASTERS},
        "preprocessing": "models/preprocessing.json",
        "history": "models/history.json",
    }
    assert [p.function for p in spec.probes] == [
        "probe_split_and_scale",
        "probe_make_windows",
        "probe_make_windows",
        "probe_forecast_metrics",
    ]
    for name in ("weather_lstm", "weather_gru"):
        assert spec.thresholds[f"mae_ratio_{name}"] < spec.thresholds[f"mae_ratio_basic_{name}"] < 1
    assert 1 < spec.thresholds["aapl_max_mae_ratio"] <= spec.thresholds["aapl_max_mse_ratio"]
    assert 0 < spec.thresholds["aapl_min_spread"] < 0.01


def test_calibration_is_committed_and_clear_of_the_baselines():
    spec = specs.load(ID)
    calibration = json.loads((spec.folder / "calibration.json").read_text())
    assert calibration["metric"] == "mae_ratio" and calibration["better"] == "lower"
    assert len({run["seed"] for run in calibration["runs"]}) >= 3
    best_baseline = min(calibration["baselines"].values())
    assert best_baseline == 1.0  # the value 24 hours earlier, by definition
    for name in ("weather_lstm", "weather_gru"):
        worst = max(r["value"] for r in calibration["runs"] if r["model"] == name)
        target = calibration["thresholds"][f"mae_ratio_{name}"]
        basic = calibration["thresholds"][f"mae_ratio_basic_{name}"]
        assert target == pytest.approx(worst + calibration["margin"], abs=1e-3)
        assert worst <= 0.85  # the reference beats 24-hour persistence by at least 15%
        assert target < basic < best_baseline  # persistence and every trivial model fail
        assert spec.thresholds[f"mae_ratio_{name}"] == target
    assert calibration["baselines"]["shuffled_target_lstm"] > 1.5
    assert calibration["baselines"]["untrained_lstm"] > 1.5
    assert "aapl_lstm" in calibration["reference"]  # the AAPL runs are in the table too


def test_notebook_grade_cells():
    cells = grade_cells()
    assert {k: v["points"] for k, v in cells.items()} == {
        "stationarity": 3,
        "test_functions": 4,
        "report": 5,
        "test_export": 1,
        "test_models": 2,
        "test_forecasts": 33,
    }
    for grade_id in ("test_functions", "test_export", "test_models", "test_forecasts"):
        assert cells[grade_id]["locked"] and cells[grade_id]["type"] == "code"
    for grade_id in ("stationarity", "report"):
        assert cells[grade_id]["solution"] and cells[grade_id]["type"] == "markdown"


def test_jupytext_twin_is_in_sync():
    import jupytext

    twin = jupytext.read(NOTEBOOK.with_suffix(".py"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert [(c.cell_type, c.source) for c in twin.cells] == [
        (c.cell_type, c.source) for c in notebook.cells
    ], "run `jupytext --sync source/a3_timeseries_forecasting/a3_timeseries_forecasting.py`"


def test_release_has_no_solution(tmp_path, monkeypatch):
    from autograder.authoring.release import find_leaks, generate

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "source" / ID).mkdir(parents=True)
    (tmp_path / "source" / ID / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    generate(ID, Course(tmp_path))
    released = tmp_path / "release" / ID / NOTEBOOK.name
    assert find_leaks(NOTEBOOK, released) == []
    text = released.read_text()
    secrets = (
        "BEGIN SOLUTION",
        "train.mean(axis=0)",
        "sequence_stride=stride",
        "np.split(levels, cuts)",
    )
    assert [secret for secret in secrets if secret in text] == []
    assert "probe_split_and_scale" in text  # the read-only probe adapters are released
    release = nbformat.read(released, as_version=4)
    stubs = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert all(
        "raise NotImplementedError()" in c.source or c.source == "YOUR ANSWER HERE" for c in stubs
    )


# --------------------------------------------------------------------------- the unseen period


@pytest.fixture(scope="module")
def data():
    """Skip what needs the course series where they are not available."""
    for name in ("aapl", "beijing"):
        try:
            locate(name, download=False)
        except DataError as err:
            pytest.skip(str(err).splitlines()[0])


@pytest.fixture(scope="module")
def plugin(data):
    return load_plugin(specs.load(ID))


def test_student_view_ends_before_the_unseen_period(plugin, tmp_path):
    from assignments.data import load_aapl, load_beijing
    from autograder.plugins.a3_timeseries_forecasting.plugin import HIDDEN_FROM

    folder = plugin.student_view(tmp_path / "view")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "AAPL.csv",
            "AAPL.csv.view.json",
            "beijing_pm25_weather.csv",
            "beijing_pm25_weather.csv.view.json",
        ]
    )
    held = plugin.hidden()
    for series, loader in (("aapl", load_aapl), ("weather", load_beijing)):
        seen = loader(folder)
        full = held[series]
        assert seen.index[-1] < np.datetime64(HIDDEN_FROM[series]) <= full.frame.index[full.cut]
        assert len(seen) == full.cut
        assert seen.index.equals(full.frame.index[: full.cut])
        numeric = seen.select_dtypes("number").columns.drop("pm25", errors="ignore")
        assert np.allclose(
            seen[numeric].to_numpy(float), full.frame[numeric].iloc[: full.cut].to_numpy(float)
        )
    header = (folder / "AAPL.csv").read_text().splitlines()[0]
    assert header == "Date,Open,High,Low,Close,Adj Close,Volume"


def test_the_judge_forecasts_every_value_of_the_unseen_period(plugin):
    for series, held in plugin.hidden().items():
        horizon = SERIES[series].horizon
        assert held.origins[0] == held.cut - 1
        assert held.origins[-1] + horizon == len(held.frame) - 1
    assert len(plugin.hidden()["aapl"].origins) > 400
    assert len(plugin.hidden()["weather"].origins) > 4000


def test_forecast_undoes_each_target_transform(plugin):
    """An oracle model (outputs the scaled truth) reproduces the truth through every transform."""
    held = plugin.hidden()["weather"]
    frame, origins = held.frame, held.origins[:50]
    y = frame["temperature"].to_numpy()
    truth = helpers.truth(frame, "weather", origins)
    last = y[origins][:, None]

    class Oracle:
        def __init__(self, outputs):
            self.outputs = outputs

        def __call__(self, batch, training=False):
            return self.outputs[: len(batch)]

    for how, scaled in (
        ("none", (truth - 10.0) / 5.0),
        ("diff", (truth - last - 0.5) / 2.0),
    ):
        entry = helpers.validate_entry(
            "weather_lstm",
            {
                "series": "weather",
                "features": [{"column": "temperature", "transform": "none"}],
                "mean": [10.0],
                "std": [5.0],
                "target": {
                    "column": "temperature",
                    "transform": how,
                    "mean": 10.0 if how == "none" else 0.5,
                    "std": 5.0 if how == "none" else 2.0,
                },
                "window": 24,
                "horizon": 24,
            },
        )
        assert np.allclose(helpers.forecast(Oracle(scaled), entry, frame, origins), truth)


def test_preprocessing_is_validated_field_by_field():
    good = {
        "series": "aapl",
        "features": [{"column": "Close", "transform": "log_return"}],
        "mean": [0.001],
        "std": [0.02],
        "target": {"column": "Close", "transform": "log_return", "mean": 0.0, "std": 0.02},
        "window": 30,
        "horizon": 1,
    }
    assert helpers.validate_entry("aapl_gru", good)["window"] == 30
    broken = {
        "std": ({"std": [0.0]}, "must be positive"),
        "nan": ({"mean": [float("nan")]}, "finite number"),
        "window": ({"window": "30"}, "'window' must be a whole number from 2 to 512"),
        "horizon": ({"horizon": 24}, "'horizon' must be 1"),
        "column": ({"features": [{"column": "Price", "transform": "none"}]}, "is not one of"),
        "target": ({"target": {**good["target"], "column": "Open"}}, "must be 'Close'"),
        "series": ({"series": "weather"}, "'series' must be 'aapl'"),
        "length": ({"mean": [0.0, 1.0]}, "list of 1 numbers"),
        "extra": ({"scaler": "minmax"}, "unknown keys ['scaler']"),
    }
    for case, (change, message) in broken.items():
        with pytest.raises(helpers.PreprocessingError, match=None) as raised:
            helpers.validate_entry("aapl_gru", {**good, **change})
        assert message in str(raised.value), (case, str(raised.value))


# --------------------------------------------------------------------------- hidden checks


def tiny_model(cell, window, n_features, horizon, units=4, seed=0):
    keras.utils.set_random_seed(seed)
    return solution.build_forecaster(cell, window, n_features, horizon, units)


@pytest.fixture(scope="module")
def entries(plugin):
    """The reference's preprocessing entries, fitted on the part the sandbox sees."""
    frames = public_frames({s: h.frame for s, h in plugin.hidden().items()})
    prepared = {s: solution.prepare(s, frames[s], solution.FULL) for s in SERIES}
    return {name: prepared[series]["entry"] for name, (series, _) in FORECASTERS.items()}


def reference_probes(**functions) -> dict:
    """Probe outputs of the reference functions (or of the replacements given)."""
    impl = {
        "split_and_scale": solution.split_and_scale,
        "make_windows": solution.make_windows,
        "forecast_metrics": solution.forecast_metrics,
        **functions,
    }
    runners = {
        "probe_split_and_scale": lambda kw: helpers.split_probe(impl["split_and_scale"], **kw),
        "probe_make_windows": lambda kw: helpers.windows_probe(impl["make_windows"], **kw),
        "probe_forecast_metrics": lambda kw: helpers.metrics_probe(impl["forecast_metrics"], **kw),
    }
    return {p.name: runners[p.function](p.kwargs) for p in specs.load(ID).probes}


def write_submission(root: Path, models: dict, entries: dict, probes: dict | None = None) -> Path:
    """A submission in the run stage's output layout: artifacts/models/..., probes/."""
    folder = root / "artifacts" / "models"
    folder.mkdir(parents=True)
    for name, model in models.items():
        model.save(folder / f"{name}.keras")
    (folder / "preprocessing.json").write_text(json.dumps({"format": 1, "models": entries}))
    curve = {"loss": [1.0, 0.9], "val_loss": [1.1, 1.0], "seconds_per_epoch": 1.0}
    (folder / "history.json").write_text(json.dumps({name: curve for name in FORECASTERS}))
    (root / "probes").mkdir()
    index = {}
    for name, value in (probes if probes is not None else reference_probes()).items():
        (root / "probes" / f"{name}.json").write_text(json.dumps(value))
        index[name] = {"ok": True, "file": f"{name}.json"}
    (root / "probes" / "index.json").write_text(json.dumps(index))
    return root


def untrained_models(entries, **overrides) -> dict:
    models = {}
    for name, (_, cell) in FORECASTERS.items():
        entry = entries[name]
        models[name] = tiny_model(cell, entry["window"], len(entry["features"]), entry["horizon"])
    return {**models, **overrides}


def judge(root: Path) -> dict:
    from autograder.grading.judge.child import judge as run_judge

    return {result.name: result for result in run_judge(specs.load(ID), root)}


def score(results: dict) -> float:
    return sum(result.points for result in results.values())


def failed(results: dict) -> set[str]:
    return {name for name, result in results.items() if not result.passed}


@pytest.fixture(scope="module")
def untrained(entries, tmp_path_factory):
    root = write_submission(
        tmp_path_factory.mktemp("untrained"), untrained_models(entries), entries
    )
    return judge(root)


def test_checks_add_up_to_the_grade_cells(untrained):
    totals = Counter()
    for result in untrained.values():
        totals[result.grade_cell] += result.max_points
    autograded = {
        grade_id: cell["points"]
        for grade_id, cell in grade_cells().items()
        if cell["type"] == "code" and not cell.get("solution")
    }
    assert dict(totals) == autograded
    assert sum(totals.values()) == TOTAL


def test_untrained_models_earn_at_most_a_quarter(untrained):
    assert failed(untrained) == WEATHER_METRICS
    assert score(untrained) == 10 == TOTAL / 4  # the AAPL soundness check cannot tell
    message = untrained["test_weather_target[weather_lstm]"].message
    assert "on the unseen period" in message and "x the value 24 hours earlier" in message
    assert "Full credit needs at most" in message


def zero_output(model, bias: float = 0.0):
    """``model`` with its last Dense layer set to output ``bias`` whatever the input."""
    kernel, _ = model.layers[-1].get_weights()
    model.layers[-1].set_weights([np.zeros_like(kernel), np.full(kernel.shape[1], bias, "float32")])
    return model


def test_last_value_models_earn_no_forecast_point(entries, tmp_path):
    """Zero outputs with relative targets: the forecast is exactly the last value."""
    declared = {
        name: {**entry, "target": {**entry["target"], "mean": 0.0}}
        for name, entry in entries.items()
    }
    models = {name: zero_output(model) for name, model in untrained_models(entries).items()}
    results = judge(write_submission(tmp_path, models, declared))
    assert failed(results) == WEATHER_METRICS | AAPL_METRICS
    assert score(results) == 7
    message = results["test_aapl_forecast[aapl_lstm]"].message
    assert "1.000 x the last value" in message and "varies 0.000 x" in message
    assert "earns no AAPL points" in message
    assert "1.78" in results["test_weather_basic[weather_gru]"].message  # the last value's ratio


def test_constant_models_earn_no_forecast_point(entries, tmp_path):
    """Zero outputs with level targets: a constant temperature, a constant return."""
    declared = dict(entries)
    for name in ("weather_lstm", "weather_gru"):
        declared[name] = {
            **entries[name],
            "target": {**entries[name]["target"], "transform": "none"},
        }
    models = {name: zero_output(model, 0.3) for name, model in untrained_models(entries).items()}
    results = judge(write_submission(tmp_path, models, declared))
    assert failed(results) == WEATHER_METRICS | AAPL_METRICS
    assert score(results) == 7
    message = results["test_weather_basic[weather_lstm]"].message
    assert message.startswith("not graded: with the LSTM's state reset at every hour")
    assert "weak there too" in message  # on the student's own test period
    assert "target transform 'diff'" in message  # advised: the model declares 'none'


def test_non_recurrent_models_are_not_graded(entries, tmp_path):
    models = {}
    for name, entry in entries.items():
        keras.utils.set_random_seed(0)
        models[name] = keras.Sequential(
            [
                keras.Input((entry["window"], len(entry["features"]))),
                keras.layers.Flatten(),
                keras.layers.Dense(entry["horizon"]),
            ]
        )
    results = judge(write_submission(tmp_path, models, entries))
    architecture = {f"test_architecture[{name}]" for name in FORECASTERS}
    assert failed(results) == architecture | WEATHER_METRICS | AAPL_METRICS
    assert score(results) == 6
    message = results["test_aapl_forecast[aapl_gru]"].message
    assert message.startswith("not graded: the model did not pass its architecture check")
    assert "no recurrent layer" in message


def skip_decoy(entry, cell):
    """LSTM/GRU beside a Dense shortcut from the last input step: the shortcut does the work."""
    window, n_features, horizon = entry["window"], len(entry["features"]), entry["horizon"]
    inputs = keras.Input((window, n_features))
    recurrent = keras.layers.Dense(horizon)(solution.RECURRENT[cell](2)(inputs))
    last = keras.layers.Flatten()(keras.layers.Cropping1D((window - 1, 0))(inputs))
    shortcut = keras.layers.Dense(horizon)(last)
    return keras.Model(inputs, keras.layers.Add()([recurrent, shortcut]))


def test_skip_connection_decoy_fails_the_architecture_check(entries, tmp_path):
    models = untrained_models(
        entries, **{name: skip_decoy(entries[name], FORECASTERS[name][1]) for name in entries}
    )
    results = judge(write_submission(tmp_path, models, entries))
    architecture = {f"test_architecture[{name}]" for name in FORECASTERS}
    assert failed(results) == architecture | WEATHER_METRICS | AAPL_METRICS
    assert score(results) == 6
    message = results["test_architecture[weather_lstm]"].message
    assert "path from the input to the output around it" in message
    assert "Cropping1D -> Flatten -> Dense" in message
    assert "not graded" in results["test_weather_basic[weather_lstm]"].message


def test_leaky_scaler_is_caught(entries, tmp_path, untrained):
    def leaky(values, val_fraction, test_fraction):
        values = np.asarray(values, dtype=float)
        mean, std = values.mean(axis=0), values.std(axis=0)  # the whole series: leaks
        train, val, test, m0, s0 = solution.split_and_scale(values, val_fraction, test_fraction)
        raw = [part * s0 + m0 for part in (train, val, test)]
        return (*[(part - mean) / std for part in raw], mean, std)

    probes = reference_probes(split_and_scale=leaky)
    results = judge(write_submission(tmp_path, untrained_models(entries), entries, probes))
    assert failed(results) - failed(untrained) == {"test_scaler_fitted_on_training_part"}
    message = results["test_scaler_fitted_on_training_part"].message
    assert "must be those of the training part" in message and "leak" in message


def test_shuffled_split_is_caught(entries, tmp_path, untrained):
    def shuffled(values, val_fraction, test_fraction):
        values = np.asarray(values, dtype=float)
        order = np.random.default_rng(0).permutation(len(values))
        return solution.split_and_scale(values[order], val_fraction, test_fraction)

    probes = reference_probes(split_and_scale=shuffled)
    results = judge(write_submission(tmp_path, untrained_models(entries), entries, probes))
    assert failed(results) - failed(untrained) == {"test_split_is_chronological"}
    assert "never at random" in results["test_split_is_chronological"].message


def test_misaligned_windows_and_wrong_metrics_are_caught(entries, tmp_path, untrained):
    def late(features, targets, window, horizon, batch_size=256, shuffle=False, seed=0, stride=1):
        shifted = np.r_[np.asarray(targets)[1:], np.asarray(targets)[-1:]]  # one step late
        return solution.make_windows(features, shifted, window, horizon, batch_size, shuffle)

    def rmse(y_true, y_pred):
        metrics = solution.forecast_metrics(y_true, y_pred)
        return {"mse": metrics["mse"] ** 0.5, "mae": metrics["mae"]}

    probes = reference_probes(make_windows=late, forecast_metrics=rmse)
    results = judge(write_submission(tmp_path, untrained_models(entries), entries, probes))
    assert failed(results) - failed(untrained) == {
        "test_windows[windows_multi]",
        "test_windows[windows_one]",
        "test_forecast_metrics",
    }
    assert "misalignment" in results["test_windows[windows_multi]"].message
    assert "not its square root" in results["test_forecast_metrics"].message


def test_wrong_horizon_fails_the_weather_checks_only(entries, tmp_path, untrained):
    models = untrained_models(entries)
    for name in ("weather_lstm", "weather_gru"):
        entry = entries[name]
        models[name] = tiny_model(FORECASTERS[name][1], entry["window"], len(entry["features"]), 1)
    results = judge(write_submission(tmp_path, models, entries))
    shapes = {"test_shapes[weather_lstm]", "test_shapes[weather_gru]"}
    assert failed(results) - failed(untrained) == shapes
    assert "expected (2, 24)" in results["test_shapes[weather_gru]"].message
    assert results["test_weather_target[weather_gru]"].message.startswith("not graded: ")
    assert results["test_aapl_forecast[aapl_gru]"].passed


def test_malformed_json_fails_with_a_clear_message(entries, tmp_path, untrained):
    declared = {**entries, "weather_gru": {**entries["weather_gru"], "std": "1"}}
    declared["aapl_gru"] = {**entries["aapl_gru"], "horizon": 5}
    results = judge(write_submission(tmp_path, untrained_models(entries), declared))
    newly = failed(results) - failed(untrained)
    assert newly == {
        "test_preprocessing_json",
        "test_shapes[weather_gru]",
        "test_shapes[aapl_gru]",
        "test_aapl_forecast[aapl_gru]",
    }
    assert "'std' must be a list of 7 numbers" in results["test_shapes[weather_gru]"].message
    assert "'horizon' must be 1" in results["test_aapl_forecast[aapl_gru]"].message


def test_nothing_exported_scores_nothing(tmp_path, untrained):
    (tmp_path / "artifacts").mkdir()
    results = judge(tmp_path)
    assert set(results) == set(untrained) and score(results) == 0
    assert (
        "missing artifact models/preprocessing.json" in results["test_preprocessing_json"].message
    )
    assert "was not called" in results["test_forecast_metrics"].message


def test_feedback_figures(plugin, entries, tmp_path):
    """Forecast against truth per model: computed afresh, or reused from the hidden checks."""
    root = write_submission(tmp_path, untrained_models(entries), entries)
    figures = plugin.feedback_figures(Judged(root))
    assert len(figures) == 4
    assert all(url.startswith("data:image/png;base64,") for url in figures.values())
    assert any("weather_gru" in title for title in figures)
    judge(root)  # in this process: the checks leave their evaluations with the plugin
    assert sorted(plugin._judged[1]) == sorted(FORECASTERS)
    assert sorted(plugin.feedback_figures(Judged(root))) == sorted(figures)


# --------------------------------------------------------------------------- earned metrics

FORECAST_CHECKS = WEATHER_METRICS | AAPL_METRICS
EPS = 1e-3  # the layers below read EPS * x, where tanh is all but linear
HELD = 20.0  # a gate bias that holds a gate open (sigmoid(20) ~ 1); -HELD holds it shut


def relay(cell: str, n_features: int, keep: float):
    """A frozen LSTM/GRU with a zero recurrent kernel and gates held by their biases: step t
    outputs about EPS * x_t plus ``keep`` x what it held at step t - 1. keep=0 carries
    nothing from one step to the next; keep=0.5 is a leaky running sum, a real recurrence."""
    n = n_features
    layer = solution.RECURRENT[cell](n, return_sequences=True, trainable=False)
    layer.build((None, None, n))
    kernel, recurrent, bias = (np.zeros_like(w) for w in layer.get_weights())
    keep_bias = np.log(keep / (1 - keep)) if keep > 0 else -HELD
    if cell == "LSTM":  # gates i, f, c, o: input and output open, the forget gate keeps
        kernel[:, 2 * n : 3 * n] = EPS * np.eye(n)
        bias[:n], bias[n : 2 * n], bias[3 * n :] = HELD, keep_bias, HELD
    else:  # gates z, r, h: h_t = z h_{t-1} + (1 - z) tanh(EPS x_t), z keeps
        kernel[:, 2 * n :] = EPS * np.eye(n)
        bias[0, :n] = keep_bias
    layer.set_weights([kernel, recurrent, bias])
    return layer


def scaled_targets(entry: dict, frame, origins) -> np.ndarray:
    """The outputs that the judge turns into the true values (the reference's transforms)."""
    y = helpers.truth(frame, entry["series"], origins)
    last = helpers.target_values(frame, entry["series"])[origins][:, None]
    change = y - last if entry["target"]["transform"] == "diff" else np.log(y / last)
    return (change - entry["target"]["mean"]) / entry["target"]["std"]


def fitted(cell: str, entry: dict, frame, origins, keep: float, hidden: int = 0):
    """relay -> Flatten [-> Dense(hidden, relu) with fixed random weights] -> Dense(horizon),
    the last layer fitted by least squares (normal equations) on the windows of ``frame``
    ending at ``origins`` (built with the course's helpers): closed form, nothing trained."""
    n, window = len(entry["features"]), entry["window"]
    inputs = keras.Input((window, n))
    body = keras.layers.Flatten()(relay(cell, n, keep)(inputs))
    if hidden:
        spread = keras.layers.Dense(hidden, activation="relu")
        body = spread(body)
        rng = np.random.default_rng(0)
        scale = EPS * np.sqrt(window * n)
        spread.set_weights([rng.normal(size=(window * n, hidden)) / scale, rng.normal(size=hidden)])
    windows = helpers.input_windows(helpers.feature_matrix(frame, entry), origins, window)
    features = np.asarray(keras.Model(inputs, body)(windows.astype("float32")), dtype=float)
    design = np.c_[features, np.ones(len(features))]
    gram = design.T @ design
    ridge = 1e-9 * np.trace(gram) / len(gram)  # the hour columns of a window are collinear
    coef = np.linalg.solve(
        gram + ridge * np.eye(len(gram)), design.T @ scaled_targets(entry, frame, origins)
    )
    output = keras.layers.Dense(entry["horizon"])
    model = keras.Model(inputs, output(body))
    output.set_weights([coef[:-1].astype("float32"), coef[-1].astype("float32")])
    return model


def fitted_models(plugin, entries, keep: float, on: str = "seen", hidden: int = 0) -> dict:
    """:func:`fitted` for the four models, on every window of the seen period, of the unseen
    period or of the student's test period (``on``: seen, unseen, test)."""
    models = {}
    for name, (series, cell) in FORECASTERS.items():
        held, entry = plugin.hidden()[series], entries[name]
        test = plugin.controls()[CONTROL][series]
        periods = {
            "seen": (
                held.frame.iloc[: held.cut],
                helpers.forecast_origins(held.cut, entry["window"], entry["horizon"]),
            ),
            "unseen": (held.frame, held.origins),
            "test": (test.frame, test.origins),
        }
        models[name] = fitted(cell, entry, *periods[on], keep, hidden)
    return models


def test_regression_behind_a_layer_that_carries_nothing_is_not_graded(plugin, entries, tmp_path):
    """The issue's 36 of 40: a linear regression fitted in closed form on the seen period's
    flattened windows, behind a frozen LSTM/GRU that relays each step and carries nothing to
    the next. Its weather MAE ratio is the reference's; without the state nothing changes."""
    models = fitted_models(plugin, entries, keep=0)
    results = judge(write_submission(tmp_path, models, entries))
    thresholds = specs.load(ID).thresholds
    for name in ("weather_lstm", "weather_gru"):  # strong: the reference's ratio, ~0.78
        assert results[f"test_weather_target[{name}]"].value <= thresholds[f"mae_ratio_{name}"]
    assert failed(results) == FORECAST_CHECKS
    assert score(results) <= TOTAL / 4
    for check in FORECAST_CHECKS:
        assert results[check].message.startswith("not graded: with the "), check
        assert "does not use what the" in results[check].message, check
    message = results["test_weather_target[weather_gru]"].message
    assert "the GRU's state reset at every hour, the MAE ratio stays at 0.77" in message
    message = results["test_aapl_forecast[aapl_lstm]"].message
    assert "the forecasts change by 0.0000 x the actual daily change" in message
    assert "carries from one day to the next" in message


def test_dense_network_behind_a_layer_that_carries_nothing_is_not_graded(plugin, entries, tmp_path):
    """The issue's 18 of 40: a Dense network (1,024 fixed random ReLU units, its output layer
    fitted in closed form on the seen period) behind the same kind of relay."""
    models = fitted_models(plugin, entries, keep=0, hidden=1024)
    results = judge(write_submission(tmp_path, models, entries))
    thresholds = specs.load(ID).thresholds
    for name in ("weather_lstm", "weather_gru"):  # strong: ~0.76
        assert results[f"test_weather_target[{name}]"].value <= thresholds[f"mae_ratio_{name}"]
    assert failed(results) == FORECAST_CHECKS
    assert score(results) <= TOTAL / 4
    for check in FORECAST_CHECKS:
        assert results[check].message.startswith("not graded: with the "), check


def test_models_fitted_on_the_unseen_period_are_withheld(plugin, entries, tmp_path):
    """The Dense network fitted on the unseen period's own windows, behind a real recurrence
    (a leaky running sum): far better on the unseen period (weather ~0.50, AAPL ~0) than on
    the student's test period (~1.09, ~2-3). Its points wait for the instructor's review."""
    models = fitted_models(plugin, entries, keep=0.5, on="unseen", hidden=1024)
    results = judge(write_submission(tmp_path, models, entries))
    assert score(results) <= TOTAL / 4
    for check in FORECAST_CHECKS:
        result = results[check]
        assert result.points == 0 and result.withheld == result.max_points, check
        assert "may have been trained on the hidden data" in result.review, check
        assert result.message.startswith("withheld for the instructor's review: MAE ratio")
        assert "against your test period (the last 15% before the cut-off)" in result.message


def test_regression_behind_a_real_recurrence_keeps_its_points(plugin, entries, tmp_path):
    """Honest and built: the regression fitted on the seen period behind a leaky running sum.
    Without its state the weather ratio rises from ~0.78 to ~1.12; it is no better on the
    unseen period than on the test period: full marks, nothing withheld."""
    models = fitted_models(plugin, entries, keep=0.5)
    results = judge(write_submission(tmp_path, models, entries))
    assert score(results) == TOTAL
    assert not any(result.withheld for result in results.values())


def test_advice_comes_from_the_test_period(plugin, entries, tmp_path):
    """weather_lstm: the honest regression with a wrong scaler declared (every std doubled):
    weak on the test period too, so the declaration is suspected, and a model that already
    forecasts the change is not told to. weather_gru: a Dense network fitted on the test
    period: good there (~0.52), weak later (~1.13)."""
    models = fitted_models(plugin, entries, keep=0.5)
    models["weather_gru"] = fitted_models(plugin, entries, keep=0.5, on="test", hidden=1024)[
        "weather_gru"
    ]
    entry = entries["weather_lstm"]
    declared = {**entries, "weather_lstm": {**entry, "std": [2 * s for s in entry["std"]]}}
    results = judge(write_submission(tmp_path, models, declared))
    assert failed(results) == WEATHER_METRICS
    for tier in ("basic", "target"):
        message = results[f"test_weather_{tier}[weather_lstm]"].message
        assert "On your test period (the last 15% before the cut-off) the same model" in message
        assert "weak there too" in message and "does not declare what the model" in message
        assert "'diff'" not in message
    message = results["test_weather_basic[weather_gru]"].message
    assert "it does well on data like its training data, not on a later period" in message
    assert "'diff'" not in message


def test_a_slow_forecast_loses_nothing(entries, tmp_path, monkeypatch):
    """A busy machine: every forecast of the unseen period seems to take 11.2 s. Time is a
    limit of the judge's process only, never a criterion."""
    clock = iter(np.arange(0, 10_000, 11.2))
    monkeypatch.setattr(helpers, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    results = judge(write_submission(tmp_path, untrained_models(entries), entries))
    for name in FORECASTERS:
        assert results[f"test_shapes[{name}]"].passed
        assert "forecast in 11.2 s" in results[f"test_shapes[{name}]"].message


def test_controls_and_hidden_passages(plugin):
    """The control is the last 15% before the cut-off; the passages are the unseen rows."""
    passages = plugin.hidden_passages()
    for series, period in plugin.controls()[CONTROL].items():
        held = plugin.hidden()[series]
        assert period.origins[0] == int(held.cut * 0.85) - 1
        assert period.origins[-1] + SERIES[series].horizon == held.cut - 1
        assert len(period.frame) == held.cut
    assert len(passages) == sum(len(h.frame) - h.cut for h in plugin.hidden().values())
    assert passages[0].startswith("2021-01-04,")  # AAPL's first day after the cut-off
    assert "39409,2014,7,1,0,59,15,28,1005,SE,46.93,0,0" in passages  # Beijing's first hour


def test_reference_run_records_ablation_and_controls(plugin, entries, monkeypatch):
    """What calibration records per model, from the judge's own functions (training replaced
    by the honest built models)."""
    models = fitted_models(plugin, entries, keep=0.5)
    history = {"loss": [1.0], "val_loss": [1.0], "seconds_per_epoch": 0.0}
    trained = (models, {name: history for name in models}, entries)
    monkeypatch.setattr(solution, "train_all", lambda *args, **kwargs: trained)
    runs = plugin.reference_run(0)
    assert runs["weather_lstm"].ablated > runs["weather_lstm"].value + 0.2
    assert runs["aapl_gru"].ablated is None  # AAPL: the recurrent share, in the table only
    for name, run in runs.items():
        assert list(run.controls) == [CONTROL] and 0 < run.controls[CONTROL] < 2, name
    assert "| ablated | recurrent share | control |" in plugin.reference_description()


def variation(kind: str, entry: dict):
    """An honest variation of the reference weather model (32 units, Dense(24) on top)."""
    layers = keras.layers
    body = {
        "stacked LSTM": [layers.LSTM(32, return_sequences=True), layers.LSTM(32)],
        "GRU with dropout": [layers.GRU(32, dropout=0.1, recurrent_dropout=0.1)],
        "Conv1D -> LSTM": [
            layers.Conv1D(32, 3, padding="causal", activation="relu"),
            layers.LSTM(32),
        ],
        "stacked GRU": [layers.GRU(32, return_sequences=True, dropout=0.1), layers.GRU(32)],
    }[kind]
    inputs = keras.Input((entry["window"], len(entry["features"])))
    return keras.Sequential([inputs, *body, layers.Dense(entry["horizon"])])


@pytest.mark.slow
@pytest.mark.parametrize(
    "lstm, gru", [("stacked LSTM", "GRU with dropout"), ("Conv1D -> LSTM", "stacked GRU")]
)
def test_trained_variations_keep_their_metric(plugin, entries, tmp_path, lstm, gru):
    """Honest variations trained briefly (3 epochs on a window every 4 hours, ~0.85-0.89 x
    naive): their recurrence does the work (without it ~1.26-1.66) and they do no better on
    the unseen period than on the test period, so they keep the basic tier."""
    config = solution.Config(batch_size=128, learning_rate=0.005, epochs=3, weather_stride=4)
    frames = public_frames({s: h.frame for s, h in plugin.hidden().items()})
    prepared = solution.prepare("weather", frames["weather"], config)
    models = untrained_models(entries)
    for name, kind in (("weather_lstm", lstm), ("weather_gru", gru)):
        keras.utils.set_random_seed(0)
        models[name] = variation(kind, prepared["entry"])
        models[name].compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
        train, val = solution.datasets(prepared, config, seed=0)
        models[name].fit(train, validation_data=val, epochs=config.epochs, verbose=0)
    results = judge(write_submission(tmp_path, models, entries))
    for name in ("weather_lstm", "weather_gru"):
        assert results[f"test_weather_basic[{name}]"].passed, results[f"test_weather_basic[{name}]"]
        target = results[f"test_weather_target[{name}]"]
        assert not target.message.startswith(("not graded", "withheld")), target.message


CHROMIUM = shutil.which("chromium")


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None and os.geteuid() != 0,
    reason="no chromium (tools/install-browser.sh installs it as root)",
)
def test_the_page_shows_each_forecast_against_the_truth_in_a_browser(entries, tmp_path):
    """The judge's child draws the plugin's figures after the checks; the page shows them."""
    from playwright.sync_api import sync_playwright

    from autograder.core.results import Outcome
    from autograder.grading.judge.parent import JudgeProcess
    from autograder.term.feedback import feedback_html

    assert CHROMIUM, "chromium is missing: make setup installs it (tools/install-browser.sh)"
    spec = specs.load(ID)
    root = write_submission(tmp_path / "judged", untrained_models(entries), entries)
    process = JudgeProcess()
    try:
        judged = process.judge(spec, root, spec.limits)
    finally:
        process.close()
    outcome = Outcome(
        "ada", ID, "d", "graded", checks=judged.checks, figures=judged.figures, notes=judged.notes
    )
    page_file = tmp_path / "feedback.html"
    page_file.write_text(feedback_html(outcome), "utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        images = page.evaluate("[...document.images].map(i => [i.alt, i.naturalWidth])")
        captions = page.locator("figcaption").all_inner_texts()
        browser.close()
    titles = [f"{name}: your forecast on the unseen period" for name in FORECASTERS]
    assert sorted(alt for alt, width in images if width > 0) == sorted(titles)
    assert sorted(captions) == sorted(titles)
