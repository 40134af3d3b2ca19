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
import math
import time
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from assignments.data import normalize_review

CELL_TYPES = ("simple_rnn", "lstm", "gru")
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")

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


class ExportError(RuntimeError):
    """A model or history cannot be exported as the grader needs it."""


class EpochTimer(keras.callbacks.Callback):
    """Keras callback: ``seconds`` holds the wall time of each epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    @property
    def mean(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else float("nan")


def end_to_end(vectorizer: keras.layers.TextVectorization, model: keras.Model) -> keras.Model:
    """A model that maps a batch of review strings, shape ``(batch,)``, to P(positive)."""
    texts = keras.Input(shape=(), dtype="string", name="review")
    return keras.Model(texts, model(vectorizer(texts)), name=f"{model.name}_end_to_end")


def iter_layers(layer) -> Iterator[keras.layers.Layer]:
    """``layer`` and every layer nested in it (models, wrappers such as Bidirectional)."""
    yield layer
    children = list(getattr(layer, "layers", None) or [])
    for attr in ("layer", "forward_layer", "backward_layer"):
        child = getattr(layer, attr, None)
        if isinstance(child, keras.layers.Layer):
            children.append(child)
    for child in children:
        yield from iter_layers(child)


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


def _history_record(name: str, history) -> dict:
    record = dict(getattr(history, "history", history))
    for key in HISTORY_KEYS:
        values = record.get(key)
        if not isinstance(values, list | tuple) or not values:
            raise ExportError(
                f"histories['{name}'] needs a non-empty list '{key}' (compile with "
                "metrics=['accuracy'] and fit with validation data)"
            )
    if len({len(record[key]) for key in HISTORY_KEYS}) != 1:
        raise ExportError(f"histories['{name}']: the lists {HISTORY_KEYS} differ in length")
    seconds = record.get("seconds_per_epoch")
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
        raise ExportError(
            f"histories['{name}'] needs 'seconds_per_epoch', a positive number (see EpochTimer)"
        )
    return {
        **{key: [float(v) for v in record[key]] for key in HISTORY_KEYS},
        "seconds_per_epoch": float(seconds),
    }


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
    for what, given in (("models", models), ("histories", histories)):
        if set(given) != set(CELL_TYPES):
            raise ExportError(
                f"{what} must have exactly the keys {CELL_TYPES}; got {sorted(given)}"
            )
    records = {name: _history_record(name, histories[name]) for name in CELL_TYPES}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in CELL_TYPES:
        model = models[name]
        if any(isinstance(layer, keras.layers.Lambda) for layer in iter_layers(model)):
            raise ExportError(
                f"models['{name}'] contains a Lambda layer, which the grader refuses to load "
                "(safe_mode); use built-in layers only"
            )
        try:
            expected = predict_texts(model, CHECK_REVIEWS)
        except ExportError as err:
            raise ExportError(f"models['{name}']: {err}") from None
        except Exception as err:
            raise ExportError(
                f"models['{name}'] cannot predict on a batch of raw strings ({err}); "
                "export end_to_end(vectorizer, model), not the integer model"
            ) from err
        path = out / f"{name}.keras"
        model.save(path)
        try:
            reloaded = keras.saving.load_model(path, safe_mode=True)
            actual = predict_texts(reloaded, CHECK_REVIEWS)
        except Exception as err:
            raise ExportError(
                f"{path} was saved but does not reload with safe_mode=True ({err}). Check "
                "that the texts were normalised (load_imdb does it) before adapting the "
                "TextVectorization, and that the model uses built-in layers only."
            ) from err
        if not np.allclose(expected, actual, atol=1e-5):
            raise ExportError(
                f"{path} reloads but predicts differently from the model in memory "
                f"(max difference {np.max(np.abs(expected - actual)):.3g}); it would be "
                "graded as it reloads, not as you trained it"
            )
        paths[name] = path
    history_path = out / "history.json"
    history_path.write_text(json.dumps(records, indent=1))
    paths["history"] = history_path
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
    paths = _contract_paths()
    results = [_check_predicts(folder, name, paths[name]) for name in CELL_TYPES]
    results.append(_check_history(folder, paths["history"]))
    return results


def _contract_paths() -> dict[str, str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    with open(Path(__file__).with_name("contract.toml"), "rb") as handle:
        contract = tomllib.load(handle)
    return {name: fields["path"] for name, fields in contract["artifacts"].items()}


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
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        return (
            title,
            False,
            f"cannot predict on a batch of raw strings ({first}); export "
            "end_to_end(vectorizer, model), not the integer model",
        )
    return title, True, f"shape {out.shape}, values in [{out.min():.3f}, {out.max():.3f}]"


def _check_history(folder: Path, relative: str) -> tuple[str, bool, str]:
    title = "history.json holds the three training histories"
    path = folder / relative
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return title, False, f"not checked: {relative} is missing or not JSON"
    if not isinstance(records, dict) or set(records) != set(CELL_TYPES):
        keys = sorted(records) if isinstance(records, dict) else type(records).__name__
        return title, False, f"needs exactly the keys {CELL_TYPES}; got {keys}"
    try:
        for name in CELL_TYPES:
            if not isinstance(records[name], dict):
                raise ExportError(f"histories['{name}'] must be a dict of lists")
            _history_record(name, records[name])
    except ExportError as err:
        return title, False, str(err)
    except (TypeError, ValueError) as err:
        return title, False, f"values must be numbers ({err})"
    epochs = ", ".join(f"{name} {len(records[name]['loss'])}" for name in CELL_TYPES)
    return title, True, f"epochs: {epochs}"
