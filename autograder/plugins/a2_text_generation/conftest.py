"""Fixtures of the hidden checks of assignment 2: the judge's own measures of the exported models.

The held-out stretch, the metric and the judge's sampler are the plugin's
(``plugin.py``); the calibration scores the reference with the same functions.
Each fixture measures once per submission and hands out either the measure or
the reason it could not be taken, which the checks turn into their message.
"""

from __future__ import annotations

import pytest

LAYER_NAMES = {"lstm": "LSTM", "gru": "GRU"}


@pytest.fixture(scope="session")
def vocab(json_artifact):
    """The exported vocabulary (a list of distinct characters), or the check fails saying why."""
    from assignments.a2_text_generation.helpers import ExportError, check_vocab

    document = json_artifact("vocab")
    try:
        return check_vocab(document)
    except ExportError as err:
        pytest.fail(f"models/vocab.json: {err}", pytrace=False)


@pytest.fixture(scope="session")
def architecture(keras_artifact):
    """``architecture(cell_type)`` -> '' when the exported model is the taught one, else why not."""
    from autograder.architecture import check_recurrent

    verdicts: dict[str, str] = {}

    def verdict(cell_type: str) -> str:
        if cell_type not in verdicts:
            try:
                check_recurrent(
                    keras_artifact(cell_type), LAYER_NAMES[cell_type], f"models/{cell_type}.keras"
                )
                verdicts[cell_type] = ""
            except AssertionError as err:
                verdicts[cell_type] = str(err)
        return verdicts[cell_type]

    return verdict


@pytest.fixture(scope="session")
def heldout(keras_artifact, vocab, plugin, thresholds):
    """``heldout(cell_type)`` -> the judge's Score of that model on the held-out stretch."""
    scores: dict[str, object] = {}

    def score(cell_type: str):
        if cell_type not in scores:
            model = keras_artifact(cell_type)
            params = model.count_params()
            if params > thresholds["max_params"]:
                scores[cell_type] = (
                    f"models/{cell_type}.keras has {params:,} parameters; the cap is "
                    f"{thresholds['max_params']:,.0f}: use fewer or smaller layers"
                )
            else:
                try:
                    scores[cell_type] = plugin.bits_per_character(
                        model, plugin.held_out_text(), vocab
                    )
                except Exception as err:  # a failing student model fails only its own checks
                    text = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
                    scores[cell_type] = (
                        f"models/{cell_type}.keras could not be scored on held-out text: "
                        f"{text or type(err).__name__}"
                    )
        result = scores[cell_type]
        if isinstance(result, str):
            pytest.fail(result, pytrace=False)
        return result

    return score


@pytest.fixture(scope="session")
def judge_samples(keras_artifact, vocab, plugin):
    """``judge_samples(cell_type)`` -> the judge's own samples with that model, by temperature."""
    samples: dict[str, object] = {}

    def sample(cell_type: str):
        if cell_type not in samples:
            try:
                samples[cell_type] = plugin.judge_samples(
                    keras_artifact(cell_type), vocab, plugin.held_out_text()
                )
            except Exception as err:
                text = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
                samples[cell_type] = (
                    f"sampling from models/{cell_type}.keras failed: {text or type(err).__name__}"
                )
        result = samples[cell_type]
        if isinstance(result, str):
            pytest.fail(result, pytrace=False)
        return result

    return sample
