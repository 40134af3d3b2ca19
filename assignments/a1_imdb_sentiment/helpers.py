"""Helpers for assignment 1 (IMDB sentiment) that the student notebook imports.

- :class:`EpochTimer` records the wall time of each training epoch;
- :func:`end_to_end` wraps ``TextVectorization -> trained integer model`` into one
  model that takes raw review strings (what the grader feeds);
- :func:`export_models` saves the three models and ``history.json``, and proves
  that each saved file reloads (``safe_mode=True``) and predicts exactly as the
  model in memory did, so what you submit is what you trained;
- :func:`public_checks`: what ``rnn-course-student check a1_imdb_sentiment`` runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from assignments import common
from assignments.check import FAIL, WARN, load_contract, tier_verdict
from assignments.common import EpochTimer, ExportError, iter_layers  # noqa: F401 (re-exported)
from assignments.data import DataError, load_imdb, normalize_review

CELL_TYPES = ("simple_rnn", "lstm", "gru")
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
HISTORIES = common.Histories(
    CELL_TYPES, HISTORY_KEYS, "compile with metrics=['accuracy'] and fit with validation data"
)

#: ``check`` estimates accuracy on this many test reviews (95% interval about +-0.02)
ESTIMATE_SIZE = 2000
ESTIMATE_SEED = 7
#: an accuracy the grader calls chance level (the majority class scores 0.5)
CHANCE = 0.55

# Fixed reviews every exported model is checked on (normalised like the course data).
CHECK_REVIEWS = tuple(
    normalize_review(text)
    for text in (
        "This movie was wonderful, the acting was superb and I loved every minute.",
        "Terrible plot, wooden acting. A complete waste of two hours.<br /><br />Avoid.",
        "It was okay\x85 not great, not awful. The soundtrack saved it for him\x85",
        "",
        "An absolute masterpiece. " * 40,
        "I have seen worse films, but I can't remember when. 1/10",
    )
)


def end_to_end(vectorizer: keras.layers.TextVectorization, model: keras.Model) -> keras.Model:
    """A model that maps a batch of review strings, shape ``(batch,)``, to P(positive)."""
    texts = keras.Input(shape=(), dtype="string", name="review")
    return keras.Model(texts, model(vectorizer(texts)), name=f"{model.name}_end_to_end")


def predict_texts(model: keras.Model, texts) -> np.ndarray:
    """P(positive) for each text, checked to be a finite ``(n, 1)`` array in [0, 1]."""
    texts = list(texts)
    out = np.asarray(model(tf.constant(texts, dtype=tf.string), training=False))
    if out.shape != (len(texts), 1):
        raise ExportError(
            f"the model must map a batch of n review strings to shape (n, 1); got {out.shape}"
        )
    if not np.all(np.isfinite(out)) or out.min() < 0 or out.max() > 1:
        raise ExportError("the model's outputs must be probabilities in [0, 1] (sigmoid output)")
    return out


def export_models(
    models: dict[str, keras.Model], histories: dict, out_dir: str | Path = "models"
) -> dict[str, Path]:
    """Save ``<cell>.keras`` for each cell type and ``history.json`` into ``out_dir``.

    ``models`` maps each of ``simple_rnn``, ``lstm``, ``gru`` to an end-to-end model
    (raw strings in, P(positive) out; see :func:`end_to_end`). ``histories`` maps the
    same names to the Keras history dict (``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``) plus ``seconds_per_epoch``. Each saved model is reloaded with
    ``safe_mode=True`` and must give the same predictions; otherwise ExportError.
    """
    common.require_keys("models", models, CELL_TYPES)
    common.require_keys("histories", histories, CELL_TYPES)
    records = {name: HISTORIES.record(name, histories[name]) for name in CELL_TYPES}
    out = Path(out_dir)
    paths = common.save_models(
        models,
        out,
        lambda model: predict_texts(model, CHECK_REVIEWS),
        inputs="a batch of raw strings",
        fix="export end_to_end(vectorizer, model), not the integer model",
        advice="check that the texts were normalised (load_imdb does it) before adapting "
        "the TextVectorization, and that the model uses built-in layers only",
    )
    paths["history"] = out / "history.json"
    paths["history"].write_text(json.dumps(records, indent=1))
    return paths


def public_checks(folder: str | Path) -> list[tuple[str, bool | str, str]]:
    """The public checks of ``rnn-course-student check a1_imdb_sentiment`` on ``folder``.

    Each exported model must map a batch of raw review strings (``CHECK_REVIEWS``)
    to probabilities of shape ``(n, 1)``, and ``history.json`` must hold the three
    histories as :func:`export_models` writes them. Then each model's accuracy on
    a fixed sample of your test split is compared with the grading tiers of the
    contract: an estimate, as the grade is measured on reviews you have not seen.
    Returns ``(title, outcome, message)`` for each check.
    """
    folder = Path(folder)
    paths = common.contract_paths("a1_imdb_sentiment")
    results, models = [], {}
    for name in CELL_TYPES:
        result, models[name] = _check_predicts(folder, name, paths[name])
        results.append(result)
    title = "history.json holds the three training histories"
    results.append(HISTORIES.check_file(folder, paths["history"], title))
    return results + accuracy_estimates(models)


def _check_predicts(folder: Path, name: str, relative: str):
    """The check that model ``name`` predicts as the grader calls it; the model if it does."""
    title = f"{name} predicts P(positive) for raw review strings"
    path = folder / relative
    if not path.is_file():
        return (title, False, f"not checked: {relative} is missing"), None
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception:
        return (title, False, f"not checked: {relative} does not load (see above)"), None
    try:
        out = predict_texts(model, CHECK_REVIEWS)
    except ExportError as err:
        return (title, False, str(err)), None
    except Exception as err:
        return (
            title,
            False,
            f"cannot predict on a batch of raw strings ({common.first_line(err)}); export "
            "end_to_end(vectorizer, model), not the integer model",
        ), None
    return (title, True, f"shape {out.shape}, values in [{out.min():.3f}, {out.max():.3f}]"), model


def estimate_sample(size: int = ESTIMATE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(texts, labels) of a fixed sample of ``size`` test reviews, half of each class."""
    texts, labels = load_imdb("test")
    rng = np.random.default_rng(ESTIMATE_SEED)
    halves = [
        rng.choice(np.flatnonzero(labels == label), size // 2, replace=False) for label in (0, 1)
    ]
    keep = np.sort(np.concatenate(halves))
    return texts[keep], labels[keep]


def accuracy_estimates(models: dict) -> list[tuple[str, str, str]]:
    """Each model's accuracy on :func:`estimate_sample` against the contract's tiers."""
    models = {name: model for name, model in models.items() if model is not None}
    if not models:
        return []
    tiers = load_contract("a1_imdb_sentiment").tiers
    try:
        texts, labels = estimate_sample()
    except DataError as err:
        return [("accuracy estimates", WARN, f"not measured: {common.first_line(err)}")]
    results = []
    for name, model in models.items():
        title = f"{name} accuracy on {len(texts):,} of your test reviews (an estimate)"
        try:
            outputs = np.concatenate(
                [predict_texts(model, texts[i : i + 500])[:, 0] for i in range(0, len(texts), 500)]
            )
        except Exception as err:
            results.append((title, FAIL, f"cannot predict them: {common.first_line(err)}"))
            continue
        accuracy = float(np.mean((outputs > 0.5) == (labels == 1)))
        status, verdict = tier_verdict(
            accuracy, tiers[name], tiers["better"], "its accuracy points"
        )
        chance = ", chance level (one class always: 0.5)" if accuracy <= CHANCE else ""
        results.append((title, status, f"{accuracy:.3f}{chance}; {verdict}"))
    return results
