"""Helpers for assignment 2 (character-level text generation) that the student notebook imports.

- :class:`EpochTimer` records the wall time of each training epoch;
  :class:`TimeBudget` stops training before an epoch that would overrun a budget;
- :func:`last_logits_fn` compiles a model into a fast function from windows of
  character ids to the logits of the next character (sampling one character at a
  time with ``model.predict`` costs 50 ms or more a step; this a few ms);
- :func:`windows_to_array` turns a ``tf.data`` dataset of (input, target) windows
  into one array (the notebook's checks and the grader use it);
- :func:`export_all` saves both models, the vocabulary, the samples and the
  histories, and proves that each saved model reloads (``safe_mode=True``) and
  predicts exactly as the model in memory did, so what you submit is what you trained.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from assignments import common
from assignments.a2_text_generation import (  # noqa: F401 (the public contract)
    CELL_TYPES,
    EVAL_WINDOW,
    SAMPLE_LENGTH,
    SEED_TEXT,
    TEMPERATURES,
)
from assignments.check import FAIL, WARN, load_contract, tier_verdict
from assignments.common import EpochTimer, ExportError, iter_layers  # noqa: F401 (re-exported)
from assignments.data import DataError, load_shakespeare

HISTORY_KEYS = ("loss", "val_loss")
HISTORIES = common.Histories(CELL_TYPES, HISTORY_KEYS)
#: the notebook validates on the last tenth of Tiny Shakespeare; ``check`` scores that stretch
VALIDATION_FRACTION = 0.1
#: how many windows of it ``check`` scores (evenly spread)
ESTIMATE_WINDOWS = 400
#: what a character missing from vocab.json costs, in bits, as the grader counts it
UNKNOWN_BITS = 8.0
#: the absolute discount of the count baselines
NGRAM_DISCOUNT = 0.75


class TimeBudget(keras.callbacks.Callback):
    """Keras callback: stop before an epoch that would end more than ``seconds`` after the start.

    The next epoch is assumed to take as long as the slowest one so far.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = float(seconds)
        self.stopped_early = False

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._epoch_start = self._start
        self._slowest = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self._slowest = max(self._slowest, now - self._epoch_start)
        if now - self._start + self._slowest > self.seconds:
            self.stopped_early = True
            self.model.stop_training = True


def last_logits_fn(model: keras.Model, jit_compile: bool = True):
    """A compiled function: windows of ids ``(batch, T)`` -> last position's logits ``(batch, V)``.

    Keep ``T`` fixed while sampling (each new shape compiles again, ~1 s): re-feed the
    last ``T`` characters, or pad a short seed to ``T``.
    """

    @tf.function(jit_compile=jit_compile)
    def step(windows):
        return model(windows, training=False)[:, -1, :]

    def call(windows):
        return step(tf.convert_to_tensor(np.asarray(windows, dtype=np.int32)))

    return call


def bits_per_character(model: keras.Model, text: str, vocab, window: int = EVAL_WINDOW) -> float:
    """The model's mean cross-entropy of each next character of ``text``, in bits.

    ``text`` is cut into non-overlapping windows of ``window`` characters, and every
    position of every window is scored (what Keras reports as the loss, in nats, on
    windows of that length). Every character of ``text`` must be in ``vocab``.
    """
    lookup = {c: position for position, c in enumerate(vocab)}
    ids = np.array([lookup[c] for c in text], dtype=np.int32)
    n = (len(ids) - 1) // window
    inputs = ids[: n * window].reshape(n, window)
    targets = ids[1 : n * window + 1].reshape(n, window)
    total = 0.0
    for begin in range(0, n, 128):
        logits = model(inputs[begin : begin + 128], training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=targets[begin : begin + 128], logits=tf.cast(logits, tf.float32)
        )
        total += float(tf.reduce_sum(losses))
    return total / targets.size / math.log(2)


def windows_to_array(dataset) -> np.ndarray:
    """The (input, target) pairs of ``dataset`` as one array of shape ``(n, 2, seq_len)``.

    ``dataset`` yields pairs of windows, one at a time or in batches.
    """
    inputs, targets = [], []
    for element in dataset:
        if not isinstance(element, tuple | list) or len(element) != 2:
            raise ValueError("the dataset must yield (input, target) pairs")
        x, y = (np.asarray(part) for part in element)
        if x.ndim == 1:
            x, y = x[None], y[None]
        inputs.append(x)
        targets.append(y)
    if not inputs:
        raise ValueError("the dataset yields no windows")
    x, y = np.concatenate(inputs), np.concatenate(targets)
    if x.shape != y.shape:
        raise ValueError(f"inputs {x.shape[1:]} and targets {y.shape[1:]} differ in shape")
    return np.stack([x, y], axis=1)


def check_vocab(vocab) -> list[str]:
    """``vocab`` as a list of distinct one-character strings (a character's id is its index)."""
    if isinstance(vocab, str | bytes) or not hasattr(vocab, "__iter__"):
        raise ExportError("the vocabulary must be a list of characters (index = id)")
    vocab = list(vocab)
    bad = [item for item in vocab if not isinstance(item, str) or len(item) != 1]
    if bad:
        raise ExportError(f"every vocabulary entry must be one character; found {bad[:3]!r}")
    if len(set(vocab)) != len(vocab):
        raise ExportError("the vocabulary lists a character twice")
    if len(vocab) < 2:
        raise ExportError("the vocabulary needs at least two characters")
    return vocab


def check_ids(vocab: list[str]) -> np.ndarray:
    """Fixed windows of ids every exported model is checked on: ``(3, EVAL_WINDOW)``."""
    return np.random.default_rng(0).integers(0, len(vocab), (3, EVAL_WINDOW)).astype(np.int32)


def predict_logits(model: keras.Model, windows, vocab_size: int) -> np.ndarray:
    """The model's logits for ``windows``, checked to be finite, shape ``(n, T, vocab_size)``."""
    windows = np.asarray(windows, dtype=np.int32)
    out = np.asarray(model(windows, training=False))
    expected = (*windows.shape, vocab_size)
    if out.shape != expected:
        raise ExportError(
            f"the model must map windows of shape {windows.shape} to logits of shape "
            f"{expected} (batch, T, vocabulary size); got {out.shape}. Use "
            "return_sequences=True and a Dense layer with one unit per character"
        )
    if not np.all(np.isfinite(out)):
        raise ExportError("the model outputs NaN or infinity")
    sums = out.sum(axis=-1)
    if out.min() >= 0 and out.max() <= 1 and np.allclose(sums, 1, atol=1e-3):
        raise ExportError(
            "the model outputs probabilities, not logits: remove the softmax of the last "
            "Dense layer (train with from_logits=True)"
        )
    return out


def sample_problems(samples, vocab: list[str]) -> list[str]:
    """What is wrong with ``samples`` (``{model: {temperature: text}}``); empty when nothing."""
    if not isinstance(samples, dict):
        return ["samples must map each model name to {temperature: text}"]
    known, problems = set(vocab), []
    for name in CELL_TYPES:
        per_model = samples.get(name)
        if not isinstance(per_model, dict):
            problems.append(f"samples['{name}'] is missing")
            continue
        texts = {float(t): text for t, text in per_model.items()}
        for asked in TEMPERATURES:
            text = texts.get(asked)
            where = f"samples['{name}'][{asked}]"
            if not isinstance(text, str):
                problems.append(f"{where} is missing (a string of generated text)")
                continue
            if len(text) != SAMPLE_LENGTH:
                problems.append(f"{where} has {len(text)} characters, expected {SAMPLE_LENGTH}")
            unknown = sorted(set(text) - known)
            if unknown:
                problems.append(
                    f"{where} has {len(unknown)} character(s) outside the vocabulary, "
                    f"e.g. {unknown[0]!r}: does the sampler return ids in [0, V)?"
                )
    return problems


def samples_record(samples, vocab: list[str]) -> dict:
    """The document ``samples.json`` holds."""
    return {
        "seed_text": SEED_TEXT,
        "length": SAMPLE_LENGTH,
        "samples": {
            str(name): {str(float(t)): str(text) for t, text in per_model.items()}
            for name, per_model in samples.items()
            if isinstance(per_model, dict)
        },
    }


def export_all(
    models: dict[str, keras.Model],
    vocab,
    samples: dict,
    histories: dict,
    out_dir: str | Path = "models",
) -> dict[str, Path]:
    """Save ``lstm.keras``, ``gru.keras``, ``vocab.json``, ``samples.json`` and ``history.json``.

    ``models`` maps ``lstm`` and ``gru`` to models from integer windows ``(batch, T)`` to
    logits ``(batch, T, len(vocab))``; ``vocab`` lists the characters (index = id);
    ``samples`` maps each model to ``{temperature: generated text}``; ``histories`` maps
    each model to its Keras history (``loss``, ``val_loss``) plus ``seconds_per_epoch``.
    Each saved model is reloaded with ``safe_mode=True`` and must give the same logits;
    otherwise ExportError. Problems with the samples are printed, not raised: the
    models are exported anyway, and the grader's check of the samples will fail.
    """
    common.require_keys("models", models, CELL_TYPES)
    common.require_keys("histories", histories, CELL_TYPES)
    vocab = check_vocab(vocab)
    records = {name: HISTORIES.record(name, histories[name]) for name in CELL_TYPES}
    windows = check_ids(vocab)

    def predict(model):
        logits = predict_logits(model, windows, len(vocab))
        predict_logits(model, windows[:, :7], len(vocab))  # and on shorter windows
        return logits

    out = Path(out_dir)
    paths = common.save_models(
        models,
        out,
        predict,
        inputs="integer windows of two lengths",
        fix="build it on keras.Input(shape=(None,), dtype='int32')",
        tolerance=1e-4,
    )
    paths["vocab"] = out / "vocab.json"
    paths["vocab"].write_text(json.dumps(vocab, ensure_ascii=True))
    problems = sample_problems(samples, vocab)
    for problem in problems:
        print(f"WARNING: {problem}; the grader's check of samples.json will fail")
    paths["samples"] = out / "samples.json"
    paths["samples"].write_text(json.dumps(samples_record(samples, vocab), indent=1))
    paths["history"] = out / "history.json"
    paths["history"].write_text(json.dumps(records, indent=1))
    return paths


# --------------------------------------------------------------------------- public checks


def public_checks(folder: str | Path) -> list[tuple[str, bool, str]]:
    """The public checks of ``rnn-course-student check a2_text_generation`` on ``folder``.

    ``vocab.json`` must list distinct characters; each exported model must map integer
    windows to logits of shape ``(n, T, len(vocab))``; ``samples.json`` must hold a
    sample of the right length within the vocabulary for each model and temperature;
    ``history.json`` the two histories. Then each model's bits per character on your
    validation stretch are compared with the grading tiers of the contract and with count
    baselines: an estimate, as the grade is measured on text you have not seen. Returns
    ``(title, outcome, message)`` for each check.
    """
    folder = Path(folder)
    paths = common.contract_paths("a2_text_generation")
    vocab_result, vocab = _check_vocab_file(folder, paths["vocab"])
    results, models = [vocab_result], {}
    for name in CELL_TYPES:
        result, models[name] = _check_predicts(folder, name, paths[name], vocab)
        results.append(result)
    results.append(_check_samples(folder, paths["samples"], vocab))
    title = "history.json holds the two training histories"
    results.append(HISTORIES.check_file(folder, paths["history"], title))
    return results + bpc_estimates(models, vocab)


def _window_starts(text: str, window: int, count: int) -> np.ndarray:
    """Starts of ``count`` non-overlapping windows of ``text``, evenly spread."""
    starts = np.arange(0, (len(text) - 1) // window * window, window)
    return starts[np.unique(np.linspace(0, len(starts) - 1, count).round().astype(int))]


def text_bits(model, text: str, vocab: list[str], starts: np.ndarray, window: int) -> float:
    """Bits per character of ``model`` on the windows of ``text`` at ``starts``, as the grader
    counts them: a character missing from ``vocab`` is fed as a space and costs ``UNKNOWN_BITS``."""
    lookup = {c: position for position, c in enumerate(vocab)}
    ids = np.array([lookup.get(c, -1) for c in text], dtype=np.int64)
    inputs = ids[starts[:, None] + np.arange(window)]
    targets = ids[starts[:, None] + np.arange(1, window + 1)]
    inputs = np.where(inputs < 0, lookup.get(" ", 0), inputs).astype(np.int32)
    nats = 0.0
    for begin in range(0, len(inputs), 128):
        logits = tf.cast(model(inputs[begin : begin + 128], training=False), tf.float32)
        labels = targets[begin : begin + 128]
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=np.maximum(labels, 0), logits=logits
        )
        nats += float(tf.reduce_sum(tf.where(labels >= 0, losses, 0.0)))
    unknown = int(np.sum(targets < 0))
    return (nats / math.log(2) + UNKNOWN_BITS * unknown) / targets.size


def ngram_bits(train: str, text: str, order: int, starts: np.ndarray, window: int) -> float:
    """Bits per character of a character n-gram count model (``order`` 1 or 2), trained on
    ``train``, on the targets of the windows of ``text`` at ``starts``; absolute discounting,
    interpolated down to the uniform distribution, as the grader's baselines."""
    alphabet = len(set(train) | set(text))
    positions = (starts[:, None] + np.arange(1, window + 1)).ravel()
    unigrams = Counter(train)
    probability = np.array(
        [
            (max(unigrams[text[i]] - NGRAM_DISCOUNT, 0) + NGRAM_DISCOUNT * len(unigrams) / alphabet)
            / len(train)
            for i in positions
        ]
    )
    if order == 2:
        pairs, after = Counter(zip(train, train[1:], strict=False)), Counter(train[:-1])
        followers = Counter(first for first, _ in pairs)
        for k, i in enumerate(positions):
            total = after[text[i - 1]]
            if total:
                count = pairs[text[i - 1], text[i]]
                probability[k] = (
                    max(count - NGRAM_DISCOUNT, 0)
                    + NGRAM_DISCOUNT * followers[text[i - 1]] * probability[k]
                ) / total
    return float(-np.mean(np.log2(probability)))


def bpc_estimates(models: dict, vocab) -> list[tuple[str, str, str]]:
    """Each model's bits per character on your validation stretch (the last tenth of
    Tiny Shakespeare as you have it) against the contract's tiers and the count baselines."""
    models = {name: model for name, model in models.items() if model is not None}
    if not models or vocab is None:
        return []
    tiers = load_contract("a2_text_generation").tiers
    try:
        text = load_shakespeare()
    except DataError as err:
        return [("bits per character estimates", WARN, f"not measured: {common.first_line(err)}")]
    split = int(round(len(text) * (1 - VALIDATION_FRACTION)))
    train, validation = text[:split], text[split:]
    starts = _window_starts(validation, EVAL_WINDOW, ESTIMATE_WINDOWS)
    baselines = (
        f"unigram count model {ngram_bits(train, validation, 1, starts, EVAL_WINDOW):.2f}, "
        f"bigram {ngram_bits(train, validation, 2, starts, EVAL_WINDOW):.2f}"
    )
    results = []
    for name, model in models.items():
        title = (
            f"{name} bits per character on {len(starts) * EVAL_WINDOW:,} characters of your "
            "validation stretch (an estimate)"
        )
        try:
            bits = text_bits(model, validation, vocab, starts, EVAL_WINDOW)
        except Exception as err:
            results.append((title, FAIL, f"cannot score it: {common.first_line(err)}"))
            continue
        tier = common.own_split_tiers(tiers, name, "shakespeare")
        status, verdict = tier_verdict(bits, tier, tiers["better"], "its held-out points")
        results.append((title, status, f"{bits:.3f} ({baselines}); {verdict}"))
    return results


def _check_vocab_file(folder: Path, relative: str):
    title = "vocab.json lists the characters"
    document = common.read_json(folder, relative)
    if document is None:
        return (title, False, f"not checked: {relative} is missing or not JSON"), None
    try:
        vocab = check_vocab(document)
    except ExportError as err:
        return (title, False, str(err)), None
    return (title, True, f"{len(vocab)} characters"), vocab


def _check_predicts(folder: Path, name: str, relative: str, vocab):
    """The check that model ``name`` maps windows to logits; the model if it does."""
    title = f"{name} maps windows of character ids to logits over the vocabulary"
    path = folder / relative
    if not path.is_file():
        return (title, False, f"not checked: {relative} is missing"), None
    if vocab is None:
        return (title, False, "not checked: vocab.json is missing or invalid"), None
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception:
        return (title, False, f"not checked: {relative} does not load (see above)"), None
    try:
        out = predict_logits(model, check_ids(vocab), len(vocab))
    except ExportError as err:
        return (title, False, str(err)), None
    except Exception as err:
        return (
            title,
            False,
            f"cannot predict on integer windows ({common.first_line(err)})",
        ), None
    return (title, True, f"logits of shape {out.shape}"), model


def _check_samples(folder: Path, relative: str, vocab) -> tuple[str, bool, str]:
    title = "samples.json holds a sample per model and temperature"
    document = common.read_json(folder, relative)
    if not isinstance(document, dict) or vocab is None:
        return title, False, f"not checked: {relative} or vocab.json is missing or not JSON"
    problems = sample_problems(document.get("samples"), vocab)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return title, False, problems[0] + more
    return title, True, f"{len(CELL_TYPES) * len(TEMPERATURES)} samples of {SAMPLE_LENGTH}"
