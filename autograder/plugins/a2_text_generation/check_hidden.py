"""Hidden checks of assignment 2 (character-level text generation with LSTM and GRU).

Points per grade cell of the notebook (39 autograded): test_text 2, test_sampler 4,
test_export 1, test_models 4, test_heldout 28. How points are earned: the held-out
bits per character decide most of them, and the judge's own sampling counts only for a
model that beats the unigram model. Both count for a model only when the model earned
them: its architecture check passes (the recurrent layer of its name on the one path
from the input to the logits), its logits up to a position do not change when only
later characters change (a language model looks only back), and, once better than a
unigram model, it loses at least ``min_ablation_loss_<model>`` bits per character
without its recurrence. A model that scores markedly better on the held-out stretch
than on the controls no notebook trains on has those points withheld for the
instructor's review. What the locked export cell guarantees anyway is worth 1 point.
So untrained, constant, non-recurrent, look-ahead or recurrence-free models earn at
most 9 of 39 (the functions' probes, the samples file, the export and the architecture
checks). Only the assertion messages reach the student.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from assignments.a2_text_generation.helpers import (
    CELL_TYPES,
    ExportError,
    check_ids,
    iter_layers,
    predict_logits,
    sample_problems,
)
from autograder.core.safe_json import load_json

LAYER_NAMES = {"lstm": "LSTM", "gru": "GRU"}
per_cell = pytest.mark.parametrize("cell_type", CELL_TYPES)


def kwargs_of(spec, name: str) -> dict:
    return next(p.kwargs for p in spec.probes if p.name == name)


def as_ids(value) -> np.ndarray:
    """A probe's output as an integer array (the check fails on anything else)."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        whole = np.all(np.isfinite(array)) and np.all(array == np.round(array))
        if array.dtype.kind == "f" and whole:
            return array.astype(np.int64)
        pytest.fail(f"expected integer ids, got an array of {array.dtype}", pytrace=False)
    return array.astype(np.int64)


# --------------------------------------------------------------------------- statistics


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for a chi-square variable X with ``dof`` degrees of freedom."""
    a, x = dof / 2.0, statistic / 2.0
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # series of the lower regularised gamma function
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1.0 - math.exp(log_prefix) * total)
    # continued fraction of the upper one (modified Lentz)
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def softmax(logits, temperature: float) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max()
    weights = np.exp(scaled)
    return weights / weights.sum()


def goodness_of_fit(draws: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(chi-square statistic, p-value) of ``draws`` against the probabilities ``expected``.

    Categories expected fewer than 5 times are pooled into one.
    """
    n = len(draws)
    observed = np.bincount(draws, minlength=len(expected)).astype(float)
    counts = n * expected
    big = counts >= 5
    obs = list(observed[big])
    exp = list(counts[big])
    if (~big).any():
        obs.append(observed[~big].sum())
        exp.append(max(counts[~big].sum(), 1e-9))
    statistic = float(sum((o - e) ** 2 / e for o, e in zip(obs, exp, strict=True)))
    return statistic, chi2_sf(statistic, len(obs) - 1)


def entropy_bits(draws: np.ndarray, size: int) -> float:
    p = np.bincount(draws, minlength=size) / len(draws)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def sampler_draws(probe, spec, name: str) -> tuple[np.ndarray, dict]:
    """The draws of the probe ``name`` (checked to be n valid ids) and its kwargs."""
    kwargs = kwargs_of(spec, name)
    value = probe(name)["value"]
    size, n = len(kwargs["logits"]), kwargs["n"]
    temperature = kwargs["temperature"]
    call = f"sample_next on {n} copies of a row of {size} logits at temperature {temperature}"
    draws = np.asarray(value)
    if draws.shape != (n,):
        pytest.fail(
            f"{call} returned an array of shape {draws.shape}, expected ({n},): one id per row",
            pytrace=False,
        )
    draws = as_ids(draws)
    outside = draws[(draws < 0) | (draws >= size)]
    if len(outside):
        pytest.fail(
            f"{call} returned {len(outside)} ids outside [0, {size}), e.g. {int(outside[0])}: "
            "ids must index the logits (characters of the vocabulary)",
            pytrace=False,
        )
    return draws, kwargs


# --------------------------------------------------------------------------- text


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_text")
def test_encode_decode(probe, spec):
    """encode and decode map text to ids of a given vocabulary and back."""
    encoded, decoded = kwargs_of(spec, "encode"), kwargs_of(spec, "decode")
    vocab = encoded["vocab"]
    expected = np.array([vocab.index(char) for char in encoded["text"]])
    ids = np.asarray(probe("encode")["value"]).reshape(-1)
    assert ids.shape == expected.shape, (
        f"encode(text, vocab) returned {ids.shape[0]} ids for a text of {len(expected)} characters"
    )
    ids = as_ids(ids)
    wrong = np.flatnonzero(ids != expected)
    assert not len(wrong), (
        f"encode(text, vocab) gave id {ids[wrong[0]]} to {encoded['text'][wrong[0]]!r}, expected "
        f"{expected[wrong[0]]}: the id of a character is its index in the vocab it is given "
        "(here not a sorted one)"
    )
    text = "".join(vocab[i] for i in decoded["ids"])
    got = np.asarray(probe("decode")["value"])
    assert got.dtype.kind == "U" and got.ndim == 0, "decode(ids, vocab) must return a string"
    got = str(got)
    assert got == text, f"decode(ids, vocab) returned {got[:40]!r}, expected {text!r}"


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_text")
def test_windows(probe, spec):
    """make_windows builds input windows and targets shifted by one step."""
    kwargs = kwargs_of(spec, "windows")
    ids, seq_len, stride = np.array(kwargs["ids"]), kwargs["seq_len"], kwargs["stride"]
    starts = range(0, len(ids) - seq_len, stride)
    expected = np.array([[ids[s : s + seq_len], ids[s + 1 : s + seq_len + 1]] for s in starts])
    call = f"make_windows(ids of length {len(ids)}, seq_len={seq_len}, stride={stride})"
    windows = np.asarray(probe("windows")["value"])
    assert windows.ndim == 3 and windows.shape[1:] == (2, seq_len), (
        f"{call} gave (input, target) pairs of shape {windows.shape[1:]}, expected windows of "
        f"{seq_len} ids each"
    )
    inputs, targets = windows[:, 0], windows[:, 1]
    assert np.array_equal(targets[:, :-1], inputs[:, 1:]), (
        f"{call}: the target must be the input shifted by one step (target[t] = input[t + 1])"
    )
    assert len(windows) == len(expected), (
        f"{call} gave {len(windows)} windows, expected {len(expected)}: one starting every "
        f"{stride} ids, as many as fit with their target"
    )
    assert np.array_equal(windows, expected), (
        f"{call}: window k must start at id k * stride (starts found: "
        f"{inputs[:4, 0].tolist()}, expected {expected[:4, 0, 0].tolist()}); keep the order"
    )


# --------------------------------------------------------------------------- sampler


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_sampler")
def test_sampler_greedy(probe, spec):
    """At temperature 0 (and near it) sample_next picks the most likely character."""
    for name in ("sampler_greedy", "sampler_cold"):
        draws, kwargs = sampler_draws(probe, spec, name)
        best = int(np.argmax(kwargs["logits"]))
        others = int(np.sum(draws != best))
        assert others == 0, (
            f"at temperature {kwargs['temperature']}, sample_next drew {others} of {len(draws)} "
            f"ids other than the most likely one ({best}): temperature 0 must be greedy (argmax), "
            "and dividing the logits by a small temperature sharpens the distribution"
        )


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_sampler")
def test_sampler_temperature(probe, spec, thresholds, measured):
    """sample_next draws from softmax(logits / T): right at T = 1, spread out at T = 2."""
    alpha = thresholds["sampler_alpha"]
    found = []
    entropies = {}
    for name in ("sampler_t1", "sampler_hot"):
        draws, kwargs = sampler_draws(probe, spec, name)
        temperature = kwargs["temperature"]
        statistic, p_value = goodness_of_fit(draws, softmax(kwargs["logits"], temperature))
        entropies[temperature] = entropy_bits(draws, len(kwargs["logits"]))
        found.append(f"T={temperature}: chi-square {statistic:.1f}, p = {p_value:.2g}")
        assert p_value >= alpha, (
            f"at temperature {temperature}, {len(draws)} draws of sample_next do not follow "
            f"softmax(logits / {temperature}) (chi-square {statistic:.1f}, p = {p_value:.2g} < "
            f"{alpha}): "
            + (
                "draw each id with probability softmax(logits)"
                if temperature == 1
                else "divide the logits by the temperature before the softmax"
            )
        )
    cold, hot = entropies[1.0], entropies[2.0]
    assert hot > cold, (
        f"draws at temperature 2 are not more spread out than at 1 (entropy {hot:.2f} vs "
        f"{cold:.2f} bits): a higher temperature must flatten the distribution"
    )
    measured("; ".join(found) + f"; entropy {cold:.2f} bits at T=1, {hot:.2f} at T=2")


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_sampler")
def test_sampler_large_logits(probe, spec, thresholds):
    """sample_next handles very large logits without overflow."""
    draws, kwargs = sampler_draws(probe, spec, "sampler_large")
    statistic, p_value = goodness_of_fit(draws, softmax(kwargs["logits"], kwargs["temperature"]))
    assert p_value >= thresholds["sampler_alpha"], (
        f"with logits up to {max(kwargs['logits']):.0f}, the draws of sample_next do not follow "
        f"the softmax (chi-square {statistic:.1f}, p = {p_value:.2g}): exp(1000) overflows "
        "unless the largest logit of each row is subtracted first; and id i must stand for "
        "logits[i]"
    )


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_sampler")
def test_samples_file(json_artifact, vocab):
    """samples.json has a sample per model and temperature, of the asked length and alphabet."""
    document = json_artifact("samples")
    samples = document.get("samples") if isinstance(document, dict) else None
    problems = sample_problems(samples, vocab)
    assert not problems, (
        "models/samples.json: "
        + "; ".join(problems[:3])
        + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
    )


# --------------------------------------------------------------------------- export


def history_problem(record) -> str:
    """Why history.json is not the two training histories ('' when it is)."""
    if not isinstance(record, dict):
        return "models/history.json must map each model name to its history"
    for name in CELL_TYPES:
        entry = record.get(name)
        if not isinstance(entry, dict):
            return f"models/history.json has no entry for '{name}'"
        lengths = set()
        for key in ("loss", "val_loss"):
            values = entry.get(key)
            if not isinstance(values, list) or not values:
                return f"history of '{name}' has no '{key}' curve"
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                return f"history of '{name}': '{key}' must hold finite numbers"
            lengths.add(len(values))
        if len(lengths) != 1:
            return f"history of '{name}': the curves differ in length"
        seconds = entry.get("seconds_per_epoch")
        if not isinstance(seconds, int | float) or seconds <= 0:
            return f"history of '{name}' needs a positive 'seconds_per_epoch'"
    return ""


def model_problem(cell_type: str, keras_artifact, vocab) -> str:
    """Why an exported model breaks the export contract ('' when it keeps it)."""
    model = keras_artifact(cell_type)
    path = f"models/{cell_type}.keras"
    lambdas = [layer.name for layer in iter_layers(model) if isinstance(layer, keras.layers.Lambda)]
    if lambdas:
        return f"{path} contains Lambda layers {lambdas}; remove them"
    try:
        predict_logits(model, check_ids(vocab), len(vocab))
    except ExportError as err:
        return f"{path}: {err}"
    except Exception as err:
        return f"{path} fails on integer windows of character ids ({type(err).__name__})"
    return ""


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
def test_export_contract(artifact_path, keras_artifact, vocab):
    """The exported files keep the contract: vocabulary, histories, safe loading, logits out."""
    try:
        record = load_json(artifact_path("history").read_bytes(), "models/history.json")
    except ValueError as err:
        pytest.fail(f"{err}; export with export_all")
    problems = [history_problem(record)]
    problems += [model_problem(c, keras_artifact, vocab) for c in CELL_TYPES]
    problems = [problem for problem in problems if problem]
    assert not problems, "; ".join(problems)


# --------------------------------------------------------------------------- models


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_models")
@per_cell
def test_architecture(cell_type, architecture):
    """The exported model is a recurrent language model of its kind, read from its graph."""
    problem = architecture(cell_type)
    assert not problem, problem


def graded(cell_type: str, not_graded) -> None:
    """Fail unless the model's held-out loss counts (see the module's docstring)."""
    problem = not_graded(cell_type)
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_models")
@per_cell
def test_generation(
    cell_type, not_graded, heldout, chance, judge_samples, plugin, earned, measured
):
    """The grader's own samples from the model stay in the vocabulary and vary more when hot."""
    graded(cell_type, not_graded)
    score = heldout(cell_type)
    if score.bpc > chance:
        pytest.fail(
            f"not graded: the {LAYER_NAMES[cell_type]} model is no better than a unigram model "
            f"on held-out text ({score.bpc:.2f} vs {plugin.unigram_bpc():.2f} bits per character)"
        )
    earned(cell_type)  # a model flagged by the controls has the points withheld
    samples = judge_samples(cell_type)
    for temperature, rows in samples.items():
        for row in rows:
            assert len(row) == plugin.judge_sample_length, (
                f"sampling from the {LAYER_NAMES[cell_type]} model gave {len(row)} characters, "
                f"asked for {plugin.judge_sample_length}"
            )
            outside = sum(char is None for char in row)
            assert not outside, (
                f"sampling from the {LAYER_NAMES[cell_type]} model at temperature {temperature} "
                f"drew {outside} ids with no character in vocab.json: the model has more "
                "outputs than the vocabulary has characters"
            )
    distinct = {t: len({char for row in rows for char in row}) for t, rows in samples.items()}
    low, high = min(distinct), max(distinct)
    numbers = (
        f"{len(next(iter(samples.values()))[0])} characters per sample; distinct characters: "
        f"{distinct[low]} at temperature {low}, {distinct[high]} at {high}"
    )
    measured(numbers)
    assert distinct[high] > distinct[low], (
        f"{numbers}: a higher temperature should give more varied text; is the model's output "
        "the logits of the next character at every position?"
    )


# --------------------------------------------------------------------------- held-out loss


def advice(bpc: float, chance: float, basic: float) -> str:
    """What to look at, given where the held-out loss fell."""
    if bpc > chance:
        return (
            "That is no better than counting characters (a unigram model): the model learned "
            "nothing usable. Was it trained long enough, do the windows and their targets "
            "reach it (targets shifted by one), and is the exported model the trained one?"
        )
    if bpc > basic:
        return (
            "Better than counting characters, but not yet using much context: train for more "
            "steps (learning rate, epochs with early stopping) and check that the model gets "
            "whole windows (return_sequences=True, a window of ~100 characters)"
        )
    return (
        "Between the tiers: revisit capacity (units, layers), the number of epochs, the "
        "window length and the learning rate, and watch the validation curve"
    )


def graded_bpc(
    cell_type, tier: str, not_graded, heldout, chance, thresholds, earned, measured
) -> None:
    """Assert the model's held-out bits per character reach ``tier``; every outcome shows them."""
    graded(cell_type, not_graded)
    score = heldout(cell_type)
    basic, target = thresholds[f"bpc_basic_{cell_type}"], thresholds[f"bpc_{cell_type}"]
    needed = basic if tier == "basic" else target
    unknown = (
        f" ({score.unknown} of {score.characters:,} characters not in vocab.json, "
        "each counted as 8 bits)"
        if score.unknown
        else ""
    )
    numbers = (
        f"the {LAYER_NAMES[cell_type]} model: held-out {score.bpc:.3f} bits per character"
        f"{unknown}, {tier} tier {needed:.3f}"
    )
    if score.bpc > needed:
        measured(numbers, score.bpc, cell_type)
        pytest.fail(f"{numbers}. {advice(score.bpc, chance, basic)}", pytrace=False)
    measured(f"{numbers}; {earned(cell_type)}", score.bpc, cell_type)


@pytest.mark.points(6)
@pytest.mark.grade_cell("test_heldout")
@per_cell
def test_heldout_basic(cell_type, not_graded, heldout, chance, thresholds, earned, measured):
    """Held-out bits per character reach the basic tier (well below a bigram count model)."""
    graded_bpc(cell_type, "basic", not_graded, heldout, chance, thresholds, earned, measured)


@pytest.mark.points(8)
@pytest.mark.grade_cell("test_heldout")
@per_cell
def test_heldout_target(cell_type, not_graded, heldout, chance, thresholds, earned, measured):
    """Held-out bits per character reach the calibrated target."""
    graded_bpc(cell_type, "target", not_graded, heldout, chance, thresholds, earned, measured)
