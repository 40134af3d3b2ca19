"""``rnn-course-student check``: did the notebook run, unanswered stubs, the age of the exported
files, and each model against the grading tiers (which must equal the grader's)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from assignments import check, common, data
from assignments.check import FAIL, PASS, WARN
from autograder.core import course, spec

ASSIGNMENTS = ("a1_imdb_sentiment", "a2_text_generation", "a3_timeseries_forecasting")
#: The grader's control that is the split the student's check measures on, per assignment.
OWN_SPLIT = {
    "a1_imdb_sentiment": "the visible test reviews",
    "a2_text_generation": "your validation stretch (the last tenth of the text you are given)",
    "a3_timeseries_forecasting": "your test period (the last 15% before the cut-off)",
}


# --------------------------------------------------------------------------- the contract


def test_stubs_are_the_graders():
    assert check.CODE_STUB == course.CODE_STUB
    assert check.TEXT_STUB == course.TEXT_STUB


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_tiers_are_the_graders(assignment):
    """Each model's tiers are the grader's thresholds; its gap is the calibration's mean gap."""
    graded = spec.load(assignment)
    tiers = check.load_contract(assignment).tiers
    assert tiers["better"] == graded.calibration.better
    metric = graded.calibration.metric
    runs = json.loads((graded.folder / "calibration.json").read_text())["runs"]
    for model in graded.calibration.models:
        worse = [
            (run["value"] - run["controls"][OWN_SPLIT[assignment]])
            * (-1 if graded.calibration.better == "higher" else 1)
            for run in runs
            if run["model"] == model
        ]
        expected = {
            "full": graded.thresholds[f"{metric}_{model}"],
            "partial": graded.thresholds[f"{metric}_basic_{model}"],
        }
        if round(float(np.mean(worse)), 2) > 0:
            expected["gap"] = round(float(np.mean(worse)), 2)
        assert tiers[model] == expected, model
    others = set(tiers) - {"better", *graded.calibration.models}
    if assignment == "a3_timeseries_forecasting":
        assert others == {"aapl"}
        assert tiers["aapl"] == {
            key: graded.thresholds[f"aapl_{key}"]
            for key in ("max_mae_ratio", "max_mse_ratio", "min_spread")
        }
    else:
        assert not others


@pytest.mark.parametrize(
    ("value", "status", "words"),
    [
        (0.60, FAIL, "this earns none of its points"),
        (0.72, WARN, "this likely earns none"),
        (0.78, WARN, "partial credit at best"),
        (0.84, WARN, "likely partial credit only"),
        (0.90, PASS, "full credit if the graded data agree"),
    ],
)
def test_tier_verdict_higher_with_gap(value, status, words):
    tiers = {"full": 0.8, "partial": 0.7, "gap": 0.05}
    found, why = check.tier_verdict(value, tiers, "higher", "its points")
    assert found == status and words in why
    assert "partial credit needs at least 0.7, full credit 0.8" in why


def test_tier_verdict_lower_without_gap():
    tiers = {"full": 2.5, "partial": 3.0}
    assert check.tier_verdict(3.2, tiers, "lower", "x")[0] == FAIL
    assert check.tier_verdict(2.9, tiers, "lower", "x")[0] == WARN
    assert check.tier_verdict(2.5, tiers, "lower", "x")[0] == PASS
    assert "at most 3" in check.tier_verdict(2.5, tiers, "lower", "x")[1]


def test_gap_only_on_a_course_view(tmp_path, monkeypatch):
    """The full data set's split may hold graded data: the reference's gap does not apply."""
    tiers = {"lstm": {"full": 2.5, "partial": 3.0, "gap": 0.3}}
    assert not common.is_course_view("shakespeare")  # the full mirror
    assert "gap" not in common.own_split_tiers(tiers, "lstm", "shakespeare")
    view = tmp_path / data.DATASETS["shakespeare"].filename
    view.write_text("the corpus without its graded part\n")
    manifest = {"dataset": "shakespeare", "sha256": data.sha256_of(view)}
    data.view_manifest(view).write_text(json.dumps(manifest))
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path))
    assert common.is_course_view("shakespeare")
    assert common.own_split_tiers(tiers, "lstm", "shakespeare")["gap"] == 0.3


# --------------------------------------------------------------------------- the notebook


def code(source: str, count: int | None, **metadata):
    cell = new_code_cell(source, execution_count=count)
    cell.metadata.update(metadata)
    return cell


def answer(grade_id: str, locked: bool = False) -> dict:
    return {"nbgrader": {"grade_id": grade_id, "locked": locked, "solution": not locked}}


def test_ran_in_order():
    notebook = new_notebook(cells=[code("a = 1", 1), new_markdown_cell("text"), code("b = a", 2)])
    notebook.cells.append(code("", None))  # an empty cell need not run
    result = check.check_ran(notebook)
    assert result.status == PASS and "all 2 code cells" in result.message


def test_not_run():
    result = check.check_ran(new_notebook(cells=[code("a = 1", None), code("b = 2", None)]))
    assert result.status == FAIL and "none of its 2 code cells has run" in result.message
    result = check.check_ran(new_notebook(cells=[code("a = 1", 1), code("b = 2", None)]))
    assert result.status == FAIL and "1 of 2 code cells have not run, the first cell 2" in (
        result.message
    )


def test_error_output():
    failed = code("model.fit()", 2, **answer("train"))
    failed.outputs = [new_output("error", ename="NameError", evalue="name 'model' is not defined")]
    result = check.check_ran(new_notebook(cells=[code("a = 1", 1), failed]))
    assert result.status == FAIL
    assert "cell 2 (train) ended with NameError: name 'model' is not defined" in result.message


def test_out_of_order_and_reruns_warn():
    result = check.check_ran(new_notebook(cells=[code("a = 1", 2), code("b = 2", 1)]))
    assert result.status == WARN and "cell 2 ran before cell 1" in result.message
    result = check.check_ran(new_notebook(cells=[code("a = 1", 3), code("b = 2", 9)]))
    assert result.status == WARN and "numbered 3 to 9 for 2 cells" in result.message


def test_unanswered_stubs():
    notebook = new_notebook(
        cells=[
            new_markdown_cell(
                "Replace YOUR ANSWER HERE in each answer.", metadata=answer("intro", True)
            ),
            code(
                "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()", 1, **answer("f")
            ),
            code("def g():\n    return 1", 2, **answer("g")),
            code("x = g()\nraise NotImplementedError()", 3, **answer("left_behind")),
            new_markdown_cell("YOUR ANSWER HERE", metadata=answer("report")),
            new_markdown_cell("My report, at last."),
            code("raise NotImplementedError()", 4),  # a cell the student added
        ]
    )
    assert check.unanswered(notebook) == [
        "cell 2 (f)",
        "cell 4 (left_behind)",
        "cell 5 (report)",
        "cell 7",
    ]
    result = check.check_stubs(notebook)
    assert result.status == FAIL and result.message.startswith("4 cells still hold")
    assert check.check_stubs(new_notebook(cells=[code("a = 1", 1)])).status == PASS


# --------------------------------------------------------------------------- export times


def export_folder(tmp_path: Path, notebook, model_time: float, notebook_time: float) -> Path:
    """A folder with ``notebook`` and every file of a1's contract, at the given times."""
    contract = check.load_contract("a1_imdb_sentiment")
    path = tmp_path / contract.notebook
    path.write_text(json.dumps(notebook))
    os.utime(path, (notebook_time, notebook_time))
    for artifact in contract.artifacts:
        file = tmp_path / artifact.path
        file.parent.mkdir(exist_ok=True)
        file.write_text("{}")
        os.utime(file, (model_time, model_time))
    return tmp_path


def timed(start: float, end: float):
    stamp = {
        "iopub.execute_input": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(start)),
        "shell.execute_reply": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(end)),
    }
    return new_notebook(cells=[code("a = 1", 1, execution=stamp)])


def times_result(folder: Path, notebook):
    return check.check_export_times(folder, check.load_contract("a1_imdb_sentiment"), notebook)


def test_files_from_the_recorded_run(tmp_path):
    now = time.time()
    notebook = timed(now - 600, now - 60)
    result = times_result(export_folder(tmp_path, notebook, now - 120, now), notebook)
    assert result.status == PASS and "recorded execution times" in result.message


def test_files_older_than_the_recorded_run(tmp_path):
    now = time.time()
    notebook = timed(now - 600, now - 60)
    result = times_result(export_folder(tmp_path, notebook, now - 3 * 3600, now), notebook)
    assert result.status == FAIL
    assert "4 of 4 files are older than the notebook's last run" in result.message
    assert "recorded execution times" in result.message and "by 2.8 h" in result.message


def test_files_written_after_the_recorded_run(tmp_path):
    now = time.time()
    notebook = timed(now - 7200, now - 3600)
    result = times_result(export_folder(tmp_path, notebook, now - 60, now - 3000), notebook)
    assert result.status == WARN and "save the notebook after running it" in result.message


def test_without_recorded_times_the_notebook_file_time_is_used(tmp_path):
    now = time.time()
    notebook = new_notebook(cells=[code("a = 1", 1)])
    folder = export_folder(tmp_path, notebook, now - 2 * 86400, now)
    result = times_result(folder, notebook)
    assert result.status == WARN and "by 2.0 days" in result.message
    assert "the notebook file's modification time" in result.message
    export_folder(tmp_path, notebook, now - 300, now)
    assert times_result(folder, notebook).status == PASS


def test_never_run_notebook_exported_nothing(tmp_path):
    now = time.time()
    notebook = new_notebook(cells=[code("a = 1", None)])
    result = times_result(export_folder(tmp_path, notebook, now, now), notebook)
    assert result.status == FAIL and "did not export these files" in result.message


# --------------------------------------------------------------------------- a3's forecasts


def weather_entry(window: int = 48) -> dict:
    from assignments.a3_timeseries_forecasting.helpers import preprocessing_entry

    return preprocessing_entry("weather", ["temperature"], [0.0], [1.0], "none", 0.0, 1.0, window)


def weather_model(cell: str, picks, constant: float = 0.0):
    """A built model of the 48 past temperatures: output k is the sum of the inputs at
    ``picks[k]`` plus ``constant``; a recurrent layer of kind ``cell`` is there, weighted 0."""
    import keras

    inputs = keras.Input((48, 1))
    chooser = keras.layers.Dense(24)
    chosen = chooser(keras.layers.Flatten()(inputs))
    recurrent = getattr(keras.layers, cell)(2)(inputs)
    unused = keras.layers.Dense(24, kernel_initializer="zeros", use_bias=False)(recurrent)
    model = keras.Model(inputs, keras.layers.Add()([chosen, unused]))
    kernel = np.zeros((48, 24), dtype="float32")
    for k, pick in enumerate(picks):
        kernel[pick, k] = 1.0
    chooser.set_weights([kernel, np.full(24, constant, dtype="float32")])
    return model


#: The value 24 hours before each forecast hour t + k (window rows t - 47 .. t).
SEASONAL = [24 + k for k in range(24)]
#: The last value for every hour: a forecast that ignores the daily cycle.
LAST = [47] * 24


def weather_folder(tmp_path: Path, models: dict) -> Path:
    (tmp_path / "models").mkdir()
    document = {"format": 1, "models": {name: weather_entry() for name in models}}
    (tmp_path / "models" / "preprocessing.json").write_text(json.dumps(document))
    for name, model in models.items():
        model.save(tmp_path / "models" / f"{name}.keras")
    return tmp_path


def tier_lines(folder: Path) -> dict[str, tuple[str, str]]:
    from assignments.a3_timeseries_forecasting import helpers

    return {
        title.split()[0]: (status, message)
        for title, status, message in helpers.public_checks(folder)
        if "against the naive forecasts" in title
    }


@pytest.mark.slow
def test_weather_models_worse_than_the_value_24_hours_earlier(tmp_path):
    models = {
        "weather_lstm": weather_model("LSTM", LAST),
        "weather_gru": weather_model("GRU", [], constant=12.0),
    }
    lines = tier_lines(weather_folder(tmp_path, models))
    assert set(lines) == set(models)
    for status, message in lines.values():
        assert status == FAIL
        assert "worse than the value 24 hours earlier: this earns none of the forecast points" in (
            message
        )
    assert lines["weather_lstm"][1].startswith("MAE 1.7")  # the last value: ~1.75 x


@pytest.mark.slow
def test_weather_model_equal_to_the_naive_forecast(tmp_path):
    """Not worse than the naive forecast, yet above the partial-credit tier: no points."""
    lines = tier_lines(weather_folder(tmp_path, {"weather_gru": weather_model("GRU", SEASONAL)}))
    status, message = lines["weather_gru"]
    assert message.startswith("MAE 1.000 x the value 24 hours earlier")
    assert "worse than" not in message
    assert status == FAIL and "partial credit needs at most 0.905" in message


def evaluation(series: str, mae_ratio: float, mse_ratio: float = 1.0):
    """An Evaluation with the given ratios to the better naive forecast."""
    from assignments.a3_timeseries_forecasting.helpers import Evaluation

    baseline = "seasonal" if series == "weather" else "last"
    result = Evaluation(
        series=series,
        origins=np.arange(1),
        forecasts=np.ones((1, 1)),
        truth=np.ones((1, 1)),
        naive={"last": np.ones((1, 1))},
        mae=mae_ratio,
        mse=mse_ratio,
        naive_mae={baseline: 1.0},
        naive_mse={baseline: 1.0},
    )
    return result


@pytest.mark.parametrize(
    ("name", "ratios", "status", "words"),
    [
        ("weather_lstm", (0.80, 1.0), PASS, "full credit if the graded data agree"),
        ("weather_lstm", (0.86, 1.0), WARN, "partial credit at best"),
        ("weather_gru", (0.95, 1.0), FAIL, "this earns none of its forecast points"),
        ("aapl_lstm", (1.01, 1.02), PASS, "full credit if the unseen period agrees"),
        ("aapl_gru", (1.06, 1.02), FAIL, "this earns none of its forecast points"),
    ],
)
def test_tier_check(name, ratios, status, words, monkeypatch):
    from assignments.a3_timeseries_forecasting import helpers

    monkeypatch.setattr(common, "is_course_view", lambda dataset: False)
    result = evaluation(name.split("_")[0], *ratios)
    monkeypatch.setattr(type(result), "spread", property(lambda self: 0.5))
    tiers = check.load_contract("a3_timeseries_forecasting").tiers
    _, found, message = helpers.tier_check(name, result, tiers)
    assert found == status and words in message


def test_aapl_last_close_in_disguise(monkeypatch):
    from assignments.a3_timeseries_forecasting import helpers

    result = evaluation("aapl", 1.0, 1.0)
    monkeypatch.setattr(type(result), "spread", property(lambda self: 0.0))
    tiers = check.load_contract("a3_timeseries_forecasting").tiers
    _, status, message = helpers.tier_check("aapl_lstm", result, tiers)
    assert status == FAIL and "the last close in disguise" in message


# --------------------------------------------------------------------------- a2's text


@pytest.mark.slow
def test_language_models_no_better_than_guessing(tmp_path):
    """Models whose logits are all zero score log2(V) bits per character: below every tier."""
    import keras

    from assignments.a2_text_generation import helpers

    vocab = sorted(set(data.load_shakespeare()))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vocab.json").write_text(json.dumps(vocab))
    for name, cell in (("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)):
        model = keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                keras.layers.Embedding(len(vocab), 4),
                cell(4, return_sequences=True),
                keras.layers.Dense(len(vocab), kernel_initializer="zeros"),
            ]
        )
        model.save(tmp_path / "models" / f"{name}.keras")
    lines = [
        (status, message)
        for title, status, message in helpers.public_checks(tmp_path)
        if "of your validation stretch (an estimate)" in title
    ]
    assert len(lines) == 2
    for status, message in lines:
        assert status == FAIL and "this earns none of its held-out points" in message
        assert float(message.split()[0]) == pytest.approx(np.log2(len(vocab)), abs=1e-3)
        assert "unigram count model 4.8" in message
