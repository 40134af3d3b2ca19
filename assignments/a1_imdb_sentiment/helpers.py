"""Helpers for assignment 1 (IMDB sentiment) that the student notebook imports.

- :class:`EpochTimer` records the wall time of each training epoch;
- :func:`end_to_end` wraps ``TextVectorization -> trained integer model`` into one
  model that takes raw review strings (what the grader feeds);
- :func:`export_models` saves the three models and ``history.json``, and proves
  that each saved file reloads (``safe_mode=True``) and predicts exactly as the
  model in memory did, so what you submit is what you trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from assignments import common
from assignments.common import EpochTimer, ExportError, iter_layers  # noqa: F401 (re-exported)
from assignments.data import normalize_review

CELL_TYPES = ("simple_rnn", "lstm", "gru")
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
HISTORIES = common.Histories(
    CELL_TYPES, HISTORY_KEYS, "compile with metrics=['accuracy'] and fit with validation data"
)

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


def public_checks(folder: str | Path) -> list[tuple[str, bool, str]]:
    """The public checks of ``rnn-course-student check a1_imdb_sentiment`` on ``folder``.

    Each exported model must map a batch of raw review strings (``CHECK_REVIEWS``)
    to probabilities of shape ``(n, 1)``, and ``history.json`` must hold the three
    histories as :func:`export_models` writes them. Shapes and formats only: how
    well the models do is decided by the hidden checks. Returns
    ``(title, passed, message)`` for each check.
    """
    folder = Path(folder)
    paths = common.contract_paths("a1_imdb_sentiment")
    results = [_check_predicts(folder, name, paths[name]) for name in CELL_TYPES]
    title = "history.json holds the three training histories"
    results.append(HISTORIES.check_file(folder, paths["history"], title))
    return results


def _check_predicts(folder: Path, name: str, relative: str) -> tuple[str, bool, str]:
    title = f"{name} predicts P(positive) for raw review strings"
    path = folder / relative
    if not path.is_file():
        return title, False, f"not checked: {relative} is missing"
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception:
        return title, False, f"not checked: {relative} does not load (see above)"
    try:
        out = predict_texts(model, CHECK_REVIEWS)
    except ExportError as err:
        return title, False, str(err)
    except Exception as err:
        return (
            title,
            False,
            f"cannot predict on a batch of raw strings ({common.first_line(err)}); export "
            "end_to_end(vectorizer, model), not the integer model",
        )
    return title, True, f"shape {out.shape}, values in [{out.min():.3f}, {out.max():.3f}]"
