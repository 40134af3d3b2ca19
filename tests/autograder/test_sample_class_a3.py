"""The sample class of assignment 3, graded end to end by ``rnn-course grade``.

Eight golden submissions (``tests/files/a3_timeseries_forecasting/make_sample_class.py``):
the reference (trained a little less), a barely trained one, a scaler that leaks the
future, a shuffled split, models that forecast the last value, weather models with the
wrong horizon, one whose training cell raises and one that runs into the time limit.
Each must get its expected score (``sample_class.toml``, measured by grading it) and the
message that explains it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sample_classes import SampleClass, needs_data

from autograder.core.course import Results

ASSIGNMENT = "a3_timeseries_forecasting"
CLASS = SampleClass(ASSIGNMENT)

pytestmark = needs_data


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, str]:
    """The class graded as the demo grades it (the never-ending notebook with its own limit)."""
    out = tmp_path_factory.mktemp("class")
    return out, CLASS.grade(out)


def test_sample_class_is_in_sync_with_the_source():
    for path, text in CLASS.generated().items():
        assert path.read_text() == text, f"{path} is stale: run {CLASS.script}"


def test_every_submission_gets_its_expected_score(graded):
    out, output = graded
    grades = pd.read_csv(Results(out).grades_csv).set_index("student")
    assert grades["total"].to_dict() == CLASS.expected
    assert set(grades["autograded_max"]) == {40}
    assert set(grades["max"]) == {48}  # with the points graded by hand
    assert "graded 8, rejected 0, failed 0" in output


def test_full_marks_show_the_numbers_and_the_forecast_plot(graded):
    out, _ = graded
    results = CLASS.checks(out, "ada")
    assert not CLASS.lost(out, "ada")
    message = results["test_weather_target[weather_gru]"]["message"]
    assert "on the unseen period" in message and "Full credit needs at most" in message
    assert "x the last value" in results["test_aapl_forecast[aapl_lstm]"]["message"]
    page = (out / "feedback" / "ada" / ASSIGNMENT / "feedback.html").read_text()
    assert "data:image/png;base64," in page  # the learning curves


def test_weak_submission_loses_the_weather_target(graded):
    out, _ = graded
    targets = {"test_weather_target[weather_lstm]", "test_weather_target[weather_gru]"}
    assert targets <= CLASS.lost(out, "ben")
    assert not {name for name in CLASS.lost(out, "ben") if not name.startswith("test_weather")}


def test_leaky_scaler_loses_exactly_the_scaler_check(graded):
    """cai trains like ben: what she loses beyond his losses is the leak's doing."""
    out, _ = graded
    assert CLASS.lost(out, "cai") - CLASS.lost(out, "ben") == {
        "test_scaler_fitted_on_training_part"
    }
    assert CLASS.lost(out, "ben") <= CLASS.lost(out, "cai")
    message = CLASS.checks(out, "cai")["test_scaler_fitted_on_training_part"]["message"]
    assert "must be those of the training part" in message and "leak" in message


def test_shuffled_split_is_caught_and_its_weather_models_learn_nothing(graded):
    out, _ = graded
    missed = CLASS.lost(out, "dan")
    assert "test_split_is_chronological" in missed
    assert "test_scaler_fitted_on_training_part" not in missed  # fitted on its (shuffled) train
    assert {"test_weather_basic[weather_lstm]", "test_weather_basic[weather_gru]"} <= missed
    message = CLASS.checks(out, "dan")["test_split_is_chronological"]["message"]
    assert "never at random" in message


def test_last_value_models_earn_no_forecast_point(graded):
    out, _ = graded
    forecasts = {
        name for name, c in CLASS.checks(out, "eve").items() if c["grade_cell"] == "test_forecasts"
    }
    assert forecasts <= CLASS.lost(out, "eve")
    message = CLASS.checks(out, "eve")["test_aapl_forecast[aapl_gru]"]["message"]
    assert "varies 0.000 x" in message and "earns no AAPL points" in message


def test_wrong_horizon_fails_the_weather_shapes(graded):
    out, _ = graded
    result = CLASS.checks(out, "fay")
    assert "expected (2, 24)" in result["test_shapes[weather_lstm]"]["message"]
    assert result["test_weather_basic[weather_gru]"]["message"].startswith("not graded: ")
    assert result["test_aapl_forecast[aapl_lstm]"]["points"] == 1.5
    export = [
        e for e in CLASS.outcome(out, "fay")["run"]["cell_errors"] if e["ename"] == "ExportError"
    ]
    assert "models['weather_lstm']: the model maps 2 windows" in export[0]["evalue"]


@pytest.mark.parametrize(
    "student, status, message",
    [
        ("gus", "cell_errors", "raised RuntimeError: ran out of time before training"),
        (
            "hal",
            "timeout",
            f"stopped after {3 * CLASS.student_timeouts['hal']} s of wall-clock time",
        ),
    ],
)
def test_failures_are_explained(graded, student, status, message):
    out, _ = graded
    result = CLASS.outcome(out, student)
    assert result["run"]["status"] == status
    assert message in result["message"]
    assert all(c["message"] for c in result["checks"] if c["points"] < c["max_points"])
