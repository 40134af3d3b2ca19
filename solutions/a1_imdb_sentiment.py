"""Reference solution of assignment 1: IMDB sentiment with SimpleRNN, LSTM and GRU.

The notebook's solution cells run the same code as :func:`make_vectorizer`,
:func:`build_model` and :func:`train_model`. The judge compares the probes of a
student's ``build_model`` with :func:`build_model`; the assignment's plugin
trains :func:`train_all` over seeds for ``rnn-course calibrate a1_imdb_sentiment``.

Submissions for tests: :func:`train_reference` (a correct one; ``quick=True`` for a
short training), :func:`weak_submission` (barely trained models) and
:func:`swap_models` (e.g. the GRU saved as ``lstm.keras``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from assignments.a1_imdb_sentiment.helpers import (
    CELL_TYPES,
    EpochTimer,
    end_to_end,
    export_models,
)
from assignments.data import load_imdb

RECURRENT = {
    "simple_rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}


@dataclass(frozen=True)
class Config:
    """Preprocessing and training settings of the reference solution."""

    vocab_size: int = 10_000
    seq_len: int = 200
    embedding_dim: int = 32
    units: int = 32
    batch_size: int = 128
    epochs: int = 8
    patience: int = 2
    val_fraction: float = 0.2


FULL = Config()
QUICK = replace(FULL, epochs=3, patience=1)


def make_vectorizer(texts, vocab_size: int, seq_len: int) -> keras.layers.TextVectorization:
    """A TextVectorization adapted on ``texts``: lower case, no punctuation, padded/truncated."""
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocab_size, output_mode="int", output_sequence_length=seq_len
    )
    vectorizer.adapt(np.asarray(texts, dtype=object), batch_size=1024)
    return vectorizer


def build_model(cell_type: str, vocab_size: int, embedding_dim: int, units: int) -> keras.Model:
    """Embedding -> recurrent layer -> Dense(1, sigmoid) on integer token sequences."""
    if cell_type not in RECURRENT:
        raise ValueError(f"cell_type must be one of {tuple(RECURRENT)}, not {cell_type!r}")
    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True),
            RECURRENT[cell_type](units),
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name=cell_type,
    )


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled indices of the training and the validation part of ``n`` examples."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return order[n_val:], order[:n_val]


def train_model(cell_type: str, x, y, config: Config = FULL, seed: int = 0):
    """Train one model on integer sequences; returns (model, history with seconds_per_epoch)."""
    keras.utils.set_random_seed(seed)
    train, val = split_train_val(len(x), config.val_fraction, seed)
    model = build_model(cell_type, config.vocab_size, config.embedding_dim, config.units)
    model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], jit_compile=True
    )
    timer = EpochTimer()
    stop = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=config.patience, restore_best_weights=True
    )
    history = model.fit(
        x[train],
        y[train],
        validation_data=(x[val], y[val]),
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=[timer, stop],
        verbose=0,
    )
    return model, {**history.history, "seconds_per_epoch": timer.mean}


def train_all(seed: int = 0, config: Config = FULL, limit: int | None = None):
    """Vectorizer, end-to-end models and histories of the three cell types."""
    texts, labels = load_imdb("train")
    if limit:
        keep = np.random.default_rng(seed).permutation(len(texts))[:limit]
        texts, labels = texts[keep], labels[keep]
    vectorizer = make_vectorizer(texts, config.vocab_size, config.seq_len)
    x = np.asarray(vectorizer(texts))
    models, histories = {}, {}
    for cell_type in CELL_TYPES:
        model, histories[cell_type] = train_model(cell_type, x, labels, config, seed)
        models[cell_type] = end_to_end(vectorizer, model)
    return vectorizer, models, histories


def train_reference(seed: int = 0, out_dir: str | Path = "models", quick: bool = False) -> dict:
    """Train the reference and export it exactly as the notebook does; returns the paths."""
    _, models, histories = train_all(seed, QUICK if quick else FULL)
    return export_models(models, histories, out_dir)


def weak_submission(out_dir: str | Path = "models", seed: int = 0) -> dict:
    """A well-formed submission whose models are barely trained (one epoch on 500 reviews)."""
    config = replace(FULL, epochs=1, vocab_size=2000)
    _, models, histories = train_all(seed, config, limit=500)
    return export_models(models, histories, out_dir)


def swap_models(models_dir: str | Path, swaps=(("gru", "lstm"),)) -> None:
    """In an exported models folder, save model ``a`` as ``b`` for each (a, b) in ``swaps``."""
    folder = Path(models_dir)
    for source, target in swaps:
        shutil.copyfile(folder / f"{source}.keras", folder / f"{target}.keras")
