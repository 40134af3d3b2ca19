"""Fixtures of the hidden checks of assignment 1: the judge's predictions on the hidden sample.

The hidden sample and the accuracy are the plugin's (``plugin.py``); the calibration
scores the reference with the same functions.
"""

from __future__ import annotations

import time

import pytest


@pytest.fixture(scope="session")
def scored(keras_artifact, plugin):
    """``scored(name)`` -> (P(positive) on the hidden sample, seconds the prediction took)."""
    results: dict[str, tuple] = {}

    def score(name: str):
        if name not in results:
            model, texts = keras_artifact(name), plugin.hidden()[0]
            start = time.perf_counter()
            try:
                probabilities, error = plugin.predict_probabilities(model, texts), ""
            except Exception as err:  # a failing student model fails only the checks using it
                probabilities, error = None, f"{type(err).__name__}: {str(err)[:300]}"
            results[name] = probabilities, time.perf_counter() - start, error
        probabilities, seconds, error = results[name]
        assert not error, f"the '{name}' model failed to predict the hidden reviews: {error}"
        return probabilities, seconds

    return score


@pytest.fixture(scope="session")
def hidden_accuracy(scored, plugin):
    """``hidden_accuracy(name)`` -> the judge's accuracy of that model on the hidden sample."""

    def measure(name: str) -> float:
        probabilities, _ = scored(name)
        return plugin.accuracy(probabilities, plugin.hidden()[1])

    return measure
