"""Fixtures of the hidden checks of assignment 3: each model's preprocessing, architecture,
forecasts of the unseen period and whether it earned them, each computed once per submission.

The unseen period, the judge's forecast origins and the control period are the
plugin's (``plugin.py``); the forecasts are made by the course's code from
``preprocessing.json`` (:func:`assignments.a3_timeseries_forecasting.helpers.evaluate`),
never the student's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from assignments.a3_timeseries_forecasting.helpers import (
    FORECASTERS,
    ForecastError,
    PreprocessingError,
    check_shapes,
    evaluate,
    validate_document,
    validate_entry,
)
from autograder.checks.architecture import check_recurrent
from autograder.checks.validity import Ablation, Contamination


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


@pytest.fixture(scope="session")
def entry(json_artifact):
    """``entry(name)``: the validated preprocessing of model ``name``, or the check fails."""
    cache: dict[str, object] = {}

    def get(name: str) -> dict:
        if name not in cache:
            try:
                cache[name] = validate_entry(
                    name, validate_document(json_artifact("preprocessing")).get(name)
                )
            except PreprocessingError as err:
                cache[name] = f"models/preprocessing.json: {err}"
        if isinstance(cache[name], str):
            pytest.fail(cache[name], pytrace=False)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def architecture(keras_artifact):
    """``architecture(name)``: '' when the model passes its architecture check, else why not."""
    found: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in found:
            model = keras_artifact(name)  # fails the check itself when the model is missing
            try:
                check_recurrent(model, expected=FORECASTERS[name][1], what=f"models/{name}.keras")
                found[name] = ""
            except AssertionError as err:
                found[name] = str(err)
        return found[name]

    return get


@pytest.fixture(scope="session")
def unseen(keras_artifact, entry, plugin, thresholds, judged):
    """``unseen(name)``: the model's Evaluation on the unseen period, or the check fails."""
    results: dict[str, object] = {}

    def get(name: str):
        if name not in results:
            model, declared = keras_artifact(name), entry(name)
            params = model.count_params()
            if params > thresholds["max_params"]:
                results[name] = (
                    f"models/{name}.keras has {params:,} parameters; the cap is "
                    f"{thresholds['max_params']:,.0f}: use a smaller recurrent layer"
                )
            else:
                held = plugin.hidden()[declared["series"]]
                try:
                    check_shapes(model, declared)
                    results[name] = evaluate(model, declared, held.frame, held.origins)
                    plugin.remember(judged, name, results[name])  # for the feedback figures
                except ForecastError as err:
                    results[name] = f"models/{name}.keras: {err}"
                except Exception as err:  # a failing student model fails only its own checks
                    results[name] = (
                        f"models/{name}.keras failed to forecast the unseen period: "
                        f"{type(err).__name__}: {_first_line(err)}"
                    )
        if isinstance(results[name], str):
            pytest.fail(results[name], pytrace=False)
        return results[name]

    return get


@pytest.fixture(scope="session")
def graded(architecture, unseen):
    """``graded(name)``: the unseen-period evaluation of a model that passed its architecture
    check; otherwise the metric check fails with "not graded"."""

    def get(name: str):
        why = architecture(name)
        if why:
            pytest.fail(
                f"not graded: the model did not pass its architecture check ({why})",
                pytrace=False,
            )
        try:
            return unseen(name)
        except pytest.fail.Exception as err:
            pytest.fail(f"not graded: {err}", pytrace=False)

    return get


@dataclass(frozen=True)
class Earned:
    """Whether a model earned its metric: why not ('' when it did), and how it compares with
    the controls (the model's Evaluation of each, by name)."""

    problem: str
    contamination: Contamination
    controls: dict


@pytest.fixture(scope="session")
def earned(keras_artifact, entry, unseen, plugin, thresholds):
    """``earned(name)``: :class:`Earned` of a model that forecast the unseen period."""
    found: dict[str, Earned] = {}

    def get(name: str) -> Earned:
        if name not in found:
            model, declared, result = keras_artifact(name), entry(name), unseen(name)
            try:
                controls = plugin.on_controls(model, declared)
            except Exception:  # a model that cannot forecast its test period has no control
                controls = {}
            contamination = Contamination(
                metric="MAE ratio",
                hidden=result.mae_ratio,
                controls={control: value.mae_ratio for control, value in controls.items()},
                margin=thresholds[f"contamination_margin_{name}"],
                higher_is_better=False,
            )
            problem = _ablation_problem(name, model, declared, result, plugin, thresholds)
            found[name] = Earned(problem, contamination, controls)
        return found[name]

    return get


def _ablation_problem(name, model, declared, result, plugin, thresholds) -> str:
    """Why the model's recurrence did not earn its metric ('' when it did)."""
    kind = FORECASTERS[name][1]
    step = "hour" if result.series == "weather" else "day"
    try:
        ablated = plugin.without_recurrence(model, declared)
    except Exception as err:
        return (
            f"with the {kind}'s state reset at every {step}, the model fails to forecast "
            f"({_first_line(err)}), so the judge cannot tell what the {kind} carries"
        )
    if result.series == "weather":
        return Ablation(
            kind=kind,
            metric="the MAE ratio",
            with_state=result.mae_ratio,
            without_state=ablated.mae_ratio,
            required=thresholds[f"min_ablation_loss_{name}"],
            higher_is_better=False,
            step=step,
        ).problem()
    share = plugin.recurrent_share(result, ablated)
    required = thresholds["aapl_min_recurrent_share"]
    if share >= required:
        return ""
    return (
        f"with the {kind}'s state reset at every day, the forecasts change by {share:.4f} x the "
        f"actual daily change (the recurrence must move them by at least {required:g} x): the "
        f"model does not use what the {kind} carries from one day to the next. The metric "
        f"counts only when the {kind} does recurrent work, not a layer in front of it"
    )
