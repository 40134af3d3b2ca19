"""Calibration: thresholds, and the ablation and contamination margins, from reference runs."""

from __future__ import annotations

import pytest

from autograder.authoring.calibrate import CalibrationError, table, thresholds
from autograder.core.spec import Calibration, Spec

LOWER = Calibration(
    metric="bpc",
    models=("lstm",),
    better="lower",
    margin=0.05,
    ablation_share=0.25,
    contamination_slack=0.1,
)


def run(seed, value, ablated=None, controls=None):
    return {
        "seed": seed,
        "model": "lstm",
        "value": value,
        "epochs": 3,
        "seconds_per_epoch": 1.0,
        "ablated": ablated,
        "controls": controls,
    }


def test_margins_come_from_the_reference_over_seeds():
    runs = [
        run(0, 2.50, ablated=3.30, controls={"validation": 2.55, "shuffled": 2.70}),
        run(1, 2.60, ablated=3.20, controls={"validation": 2.58, "shuffled": 2.75}),
    ]
    found = thresholds(LOWER, runs, {"unigram": 4.8})
    assert found["bpc_lstm"] == 2.65
    assert found["min_ablation_loss_lstm"] == pytest.approx(0.25 * 0.60)  # smallest loss: seed 1
    # largest gap: seed 0 scores 0.05 better on hidden than on its best control
    assert found["contamination_margin_lstm"] == pytest.approx(0.05 + 0.1)


def test_unmeasured_runs_give_no_margins():
    found = thresholds(LOWER, [run(0, 2.5)], {"unigram": 4.8})
    assert set(found) == {"bpc_lstm", "bpc_basic_lstm"}


def test_a_reference_that_does_not_need_its_recurrence_stops_the_calibration():
    with pytest.raises(CalibrationError, match="loses nothing without its recurrence"):
        thresholds(LOWER, [run(0, 2.5, ablated=2.49)], {"unigram": 4.8})


def test_the_table_shows_the_margins(tmp_path):
    spec = Spec(id="toy", title="Toy", notebook="toy.ipynb", folder=tmp_path, calibration=LOWER)
    runs = [run(0, 2.50, ablated=3.30, controls={"validation": 2.55})]
    result = {
        "metric": "bpc",
        "better": "lower",
        "margin": 0.05,
        "reference": "",
        "thresholds": thresholds(LOWER, runs, {"unigram": 4.8}),
        "baselines": {"unigram": 4.8},
        "runs": runs,
    }
    page = table(spec, result)
    assert "| lstm | 3.3000 | 0.8000 | 0.200 | +0.0500 | 0.150 | validation |" in page


def test_a_harder_hidden_set_counts_the_margin_from_zero():
    """The reference does worse on the hidden data than on its controls: a weaker honest model,
    whose gap lies nearer zero, must not be flagged, so the margin is the slack alone."""
    runs = [run(0, 2.50, ablated=3.7, controls={"validation": 2.22, "shuffled": 3.1})]
    assert thresholds(LOWER, runs, {"unigram": 4.8})["contamination_margin_lstm"] == 0.1
