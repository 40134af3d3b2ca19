"""Hidden checks of the toy assignment."""

import pytest


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_toy")
def test_add_one(probe):
    """add_one(2) is 3"""
    assert probe("add_one_two") == 3, f"add_one(2) returned {probe('add_one_two')!r}, not 3"


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_toy")
def test_recurrent(keras_artifact):
    """The model has a SimpleRNN layer"""
    layers = [type(layer).__name__ for layer in keras_artifact("rnn").layers]
    assert "SimpleRNN" in layers, f"no SimpleRNN layer; found {layers}"


@pytest.mark.points(2)
@pytest.mark.grade_cell("test_toy")
def test_mae(keras_artifact, plugin, thresholds, measured):
    """The sums of hidden sequences are close"""
    value = plugin.mae(keras_artifact("rnn"), *plugin.hidden())
    target = thresholds["mae_rnn"]
    measured(f"mean absolute error {value:.3f}, target {target:.3f}", value, "rnn")
    assert value <= target, f"mean absolute error {value:.3f}, target {target:.3f}"
