"""The sample class of assignment 3, graded end to end by ``rnn-course grade``.

Eight golden submissions (``tests/files/a3_timeseries_forecasting/make_sample_class.py``):
the reference (trained a little less), a barely trained one, a scaler that leaks the
future, a shuffled split, models that forecast the last value, weather models with the
wrong horizon, one whose training cell raises and one that runs into the time limit.
Each must get its expected score (``sample_class.toml``, measured by grading it) and the
message that explains it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from autograder.course import Results

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "a3_timeseries_forecasting"
FILES = ROOT / "tests" / "files" / ASSIGNMENT
CLASS = FILES / "submitted"
SETTINGS = tomllib.loads((FILES / "sample_class.toml").read_text())
TIMEOUT_S = SETTINGS["notebook_timeout_s"]
NEVER_ENDS = "hal"
SHORT_S = SETTINGS["student_timeouts"][NEVER_ENDS]
EXPECTED_TOTALS = SETTINGS["expected"]

pytestmark = pytest.mark.skipif(
    not os.environ.get("RNN_COURSE_DATA"), reason="needs the data mirror (RNN_COURSE_DATA)"
)


def grade(submissions: Path, out: Path, timeout_s: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "autograder",
        "--course",
        str(ROOT),
        "grade",
        ASSIGNMENT,
        str(submissions),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--timeout",
        str(timeout_s),
        "--student-timeout",
        f"{NEVER_ENDS}={SHORT_S}",
        "--no-progress",
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[dict[str, Path], str]:
    """The class graded as the demo grades it (the never-ending notebook with its own limit)."""
    out = tmp_path_factory.mktemp("class")
    process = grade(CLASS, out, TIMEOUT_S)
    text, _ = process.communicate()
    assert process.returncode == 0, text
    return dict.fromkeys(EXPECTED_TOTALS, out), text


def outcome(outs: dict[str, Path], student: str) -> dict:
    path = outs[student] / "autograded" / student / ASSIGNMENT / "grading.json"
    return json.loads(path.read_text())


def checks(outs: dict[str, Path], student: str) -> dict[str, dict]:
    return {check["name"]: check for check in outcome(outs, student)["checks"]}


def lost(outs: dict[str, Path], student: str) -> set[str]:
    return {name for name, c in checks(outs, student).items() if c["points"] < c["max_points"]}


def test_sample_class_is_in_sync_with_the_source():
    spec = importlib.util.spec_from_file_location(
        "make_sample_class_a3", FILES / "make_sample_class.py"
    )
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for student, submission in generator.students().items():
        path = CLASS / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert path.read_text() == generator.render(submission), (
            f"{path} is stale: run tests/files/{ASSIGNMENT}/make_sample_class.py"
        )


def test_every_submission_gets_its_expected_score(graded):
    outs, output = graded
    grades = pd.concat(
        pd.read_csv(Results(out).grades_csv) for out in sorted(set(outs.values()))
    ).set_index("student")
    assert grades["total"].to_dict() == EXPECTED_TOTALS
    assert set(grades["max"]) == {40}
    assert "graded 7, rejected 0, failed 0" in output and "graded 1, rejected 0" in output


def test_full_marks_show_the_numbers_and_the_forecast_plot(graded):
    outs, _ = graded
    results = checks(outs, "ada")
    assert not lost(outs, "ada")
    message = results["test_weather_target[weather_gru]"]["message"]
    assert "on the unseen period" in message and "Full credit needs at most" in message
    assert "x the last value" in results["test_aapl_forecast[aapl_lstm]"]["message"]
    page = (outs["ada"] / "feedback" / "ada" / ASSIGNMENT / "feedback.html").read_text()
    assert "data:image/png;base64," in page  # the learning curves


def test_weak_submission_loses_the_weather_target(graded):
    outs, _ = graded
    assert {"test_weather_target[weather_lstm]", "test_weather_target[weather_gru]"} <= lost(
        outs, "ben"
    )
    assert not {name for name in lost(outs, "ben") if not name.startswith("test_weather")}


def test_leaky_scaler_loses_exactly_the_scaler_check(graded):
    outs, _ = graded
    assert lost(outs, "cai") == {"test_scaler_fitted_on_training_part"}
    message = checks(outs, "cai")["test_scaler_fitted_on_training_part"]["message"]
    assert "must be those of the training part" in message and "leak" in message


def test_shuffled_split_is_caught_and_its_weather_models_learn_nothing(graded):
    outs, _ = graded
    missed = lost(outs, "dan")
    assert "test_split_is_chronological" in missed
    assert "test_scaler_fitted_on_training_part" not in missed  # fitted on its (shuffled) train
    assert {"test_weather_basic[weather_lstm]", "test_weather_basic[weather_gru]"} <= missed
    message = checks(outs, "dan")["test_split_is_chronological"]["message"]
    assert "never at random" in message


def test_last_value_models_earn_no_forecast_point(graded):
    outs, _ = graded
    forecasts = {
        name for name, c in checks(outs, "eve").items() if c["grade_cell"] == "test_forecasts"
    }
    assert forecasts <= lost(outs, "eve")
    message = checks(outs, "eve")["test_aapl_forecast[aapl_gru]"]["message"]
    assert "varies 0.000 x" in message and "earns no AAPL points" in message


def test_wrong_horizon_fails_the_weather_shapes(graded):
    outs, _ = graded
    result = checks(outs, "fay")
    assert "expected (2, 24)" in result["test_shapes[weather_lstm]"]["message"]
    assert result["test_weather_basic[weather_gru]"]["message"].startswith("not graded: ")
    assert result["test_aapl_forecast[aapl_lstm]"]["points"] == 1.5
    export = [e for e in outcome(outs, "fay")["run"]["cell_errors"] if e["ename"] == "ExportError"]
    assert "models['weather_lstm']: the model maps 2 windows" in export[0]["evalue"]


@pytest.mark.parametrize(
    "student, status, message",
    [
        ("gus", "cell_errors", "raised RuntimeError: ran out of time before training"),
        ("hal", "timeout", f"stopped after {SHORT_S} s"),
    ],
)
def test_failures_are_explained(graded, student, status, message):
    outs, _ = graded
    result = outcome(outs, student)
    assert result["run"]["status"] == status
    assert message in result["message"]
    assert all(c["message"] for c in result["checks"] if c["points"] < c["max_points"])
