"""Fixtures of the hidden checks of assignment 2: the judge's own measures of the exported models.

The held-out stretch, the metric, the controls and the judge's sampler are the
plugin's (``plugin.py``); the calibration scores the reference with the same
functions. Each fixture measures once per submission and hands out either the
measure or the reason it could not be taken, which the checks turn into their message.
"""

from __future__ import annotations

import pytest

LAYER_NAMES = {"lstm": "LSTM", "gru": "GRU"}
BPC = "bits per character"


def per_model(measure, failure: str):
    """``get(cell_type)``: ``measure(cell_type)`` once per model, or the check fails.

    ``measure`` may return a message (a string) instead of a measure; an error becomes
    ``failure`` (a template of ``{path}``) with the error's first line.
    """
    results: dict[str, object] = {}

    def get(cell_type: str):
        if cell_type not in results:
            try:
                results[cell_type] = measure(cell_type)
            except Exception as err:  # a failing student model fails only its own checks
                text = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
                path = f"models/{cell_type}.keras"
                results[cell_type] = f"{failure.format(path=path)}: {text or type(err).__name__}"
        result = results[cell_type]
        if isinstance(result, str):
            pytest.fail(result, pytrace=False)
        return result

    return get


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
    from autograder.checks.architecture import check_recurrent

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

    def measure(cell_type: str):
        model = keras_artifact(cell_type)
        params = model.count_params()
        if params > thresholds["max_params"]:
            return (
                f"models/{cell_type}.keras has {params:,} parameters; the cap is "
                f"{thresholds['max_params']:,.0f}: use fewer or smaller layers"
            )
        return plugin.bits_per_character(model, plugin.held_out_text(), vocab)

    return per_model(measure, "{path} could not be scored on held-out text")


@pytest.fixture(scope="session")
def lookahead(keras_artifact, vocab, plugin):
    """``lookahead(cell_type)`` -> how much the model's logits depend on later characters."""
    return per_model(
        lambda cell_type: plugin.text_lookahead(
            keras_artifact(cell_type), plugin.held_out_text(), vocab
        ),
        "{path} could not be checked for look-ahead",
    )


@pytest.fixture(scope="session")
def ablation(keras_artifact, vocab, plugin, thresholds, heldout):
    """``ablation(cell_type)`` -> the model's held-out loss with and without its recurrence."""
    from autograder.checks.validity import Ablation

    def measure(cell_type: str) -> Ablation:
        with_state, without_state = plugin.ablation_bpc(
            keras_artifact(cell_type), plugin.held_out_text(), vocab, heldout(cell_type)
        )
        return Ablation(
            kind=LAYER_NAMES[cell_type],
            metric=BPC,
            with_state=with_state,
            without_state=without_state,
            required=thresholds[f"min_ablation_loss_{cell_type}"],
            higher_is_better=False,
            step="character",
        )

    return per_model(measure, "{path} could not be scored without its recurrence")


@pytest.fixture(scope="session")
def contamination(keras_artifact, vocab, plugin, thresholds, heldout):
    """``contamination(cell_type)`` -> the model's held-out loss against the controls'."""
    from autograder.checks.validity import Contamination

    def measure(cell_type: str) -> Contamination:
        return Contamination(
            metric=BPC,
            hidden=heldout(cell_type).bpc,
            controls=plugin.control_bpc(keras_artifact(cell_type), plugin.controls(), vocab),
            margin=thresholds[f"contamination_margin_{cell_type}"],
            higher_is_better=False,
        )

    return per_model(measure, "{path} could not be scored on the control texts")


@pytest.fixture(scope="session")
def chance(plugin, thresholds) -> float:
    """The held-out loss above which a model is no better than a unigram model."""
    return plugin.unigram_bpc() - thresholds["chance_margin_bpc"]


@pytest.fixture(scope="session")
def not_graded(architecture, lookahead, ablation, heldout, chance):
    """``not_graded(cell_type)`` -> why the model's held-out loss and samples do not count
    ('' when they do).

    The graph must be the taught one, the logits must not see later characters, and a
    model better than a unigram one must lose quality without its recurrence.
    """

    def why(cell_type: str) -> str:
        problem = architecture(cell_type)
        if problem:
            return f"not graded: the model did not pass its architecture check ({problem})"
        problem = lookahead(cell_type).problem(
            f"the {LAYER_NAMES[cell_type]} model", step="character"
        )
        if not problem and heldout(cell_type).bpc <= chance:
            problem = ablation(cell_type).problem()
        return f"not graded: {problem}" if problem else ""

    return why


@pytest.fixture
def earned(ablation, contamination, withhold):
    """``earned(cell_type)`` -> what the recurrence and the controls measured, for a passing
    check of a graded model; a model flagged by the controls has the check's points withheld.
    """

    def measured(cell_type: str) -> str:
        found = contamination(cell_type)
        if found.flagged:
            withhold(found.reason())  # the reason shows the numbers
            return ablation(cell_type).describe()
        return f"{ablation(cell_type).describe()}; {found.describe()}"

    return measured


@pytest.fixture(scope="session")
def judge_samples(keras_artifact, vocab, plugin, judged):
    """``judge_samples(cell_type)`` -> the judge's own samples with that model, by temperature
    (kept for the feedback page too)."""

    def sample(cell_type: str):
        samples = plugin.judge_samples(keras_artifact(cell_type), vocab, plugin.held_out_text())
        plugin.remember(judged, cell_type, samples)
        return samples

    return per_model(sample, "sampling from {path} failed")
