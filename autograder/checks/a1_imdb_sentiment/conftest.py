"""Assignment fixtures of the hidden checks of assignment 1 (IMDB sentiment).

The hidden sample (``assignments.data.hidden_test_indices``) is a fixed, stratified
sample of 5,000 reviews of the IMDB
*test* split (2,500 per class). At accuracy ~0.85 its 95% confidence interval is
about +-1 point, narrow next to the calibration margin, and the three models
predict it in ~5 s. It is loaded once per grading worker (``autograder.judge.WORKER_CACHE``).

The judge's accuracy is computed here from ``predict`` outputs only, never from
``evaluate`` or from anything the student reports. The calibration
(``solutions.a1_imdb_sentiment.calibrate``) uses the same functions.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

BATCH_SIZE = 512


def hidden_sample() -> tuple[np.ndarray, np.ndarray]:
    """(texts, labels) of the hidden sample, normalised like the course data."""
    from autograder.judge import WORKER_CACHE

    key = "a1_imdb_sentiment.hidden_sample"
    if key not in WORKER_CACHE:
        from assignments.data import hidden_test_indices, load_imdb

        texts, labels = load_imdb("test")
        keep = hidden_test_indices(labels)
        WORKER_CACHE[key] = texts[keep], labels[keep]
    return WORKER_CACHE[key]


def predict_probabilities(model, texts) -> np.ndarray:
    """The model's outputs on ``texts`` as a flat array (batched ``predict``)."""
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object).astype(str))
    out = np.asarray(model.predict(batches.batch(BATCH_SIZE), verbose=0))
    if out.shape != (len(texts), 1):
        raise ValueError(f"expected outputs of shape ({len(texts)}, 1), got {out.shape}")
    return out[:, 0]


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of reviews on the label's side of 0.5 (> 0.5 is positive); NaN counts as wrong."""
    probabilities = np.asarray(probabilities, dtype=float)
    correct = np.where(np.asarray(labels) == 1, probabilities > 0.5, probabilities <= 0.5)
    return float(np.mean(correct))


@pytest.fixture(scope="session")
def scored(keras_artifact):
    """``scored(name)`` -> (P(positive) on the hidden sample, seconds the prediction took)."""
    results: dict[str, tuple] = {}

    def score(name: str):
        if name not in results:
            model, texts = keras_artifact(name), hidden_sample()[0]
            start = time.perf_counter()
            try:
                probabilities, error = predict_probabilities(model, texts), ""
            except Exception as err:  # a failing student model fails only the checks using it
                probabilities, error = None, f"{type(err).__name__}: {str(err)[:300]}"
            results[name] = probabilities, time.perf_counter() - start, error
        probabilities, seconds, error = results[name]
        assert not error, f"the '{name}' model failed to predict the hidden reviews: {error}"
        return probabilities, seconds

    return score


@pytest.fixture(scope="session")
def hidden_accuracy(scored):
    """``hidden_accuracy(name)`` -> the judge's accuracy of that model on the hidden sample."""

    def measure(name: str) -> float:
        probabilities, _ = scored(name)
        return accuracy(probabilities, hidden_sample()[1])

    return measure
