"""Reference solution of assignment 2: character-level language models (LSTM and GRU).

The notebook's solution cells run the same code as :func:`build_vocab`,
:func:`encode`, :func:`decode`, :func:`make_windows`, :func:`build_model`,
:func:`train_model`, :func:`sample_next` and :func:`generate`. The judge
compares the probes of a student's functions with these; the assignment's
plugin trains :func:`train_all` over seeds for ``rnn-course calibrate
a2_text_generation``.

:func:`train_reference` trains and exports a submission as the notebook does
(``config`` with fewer characters or epochs for a short training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from assignments.a2_text_generation.helpers import (
    CELL_TYPES,
    SAMPLE_LENGTH,
    SEED_TEXT,
    TEMPERATURES,
    EpochTimer,
    TimeBudget,
    export_all,
    last_logits_fn,
)
from assignments.data import load_republic, load_shakespeare

RECURRENT = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
CORPORA = {"shakespeare": load_shakespeare, "republic": load_republic}


@dataclass(frozen=True)
class Config:
    """Data, model and training settings of the reference solution."""

    corpus: str = "shakespeare"
    seq_len: int = 100
    stride: int = 100
    embedding_dim: int = 64
    units: int = 256
    layers: int = 1
    dropout: float = 0.0
    batch_size: int = 64
    learning_rate: float = 5e-3
    epochs: int = 10
    patience: int = 2
    val_fraction: float = 0.1
    # train on the first `max_chars` characters only (None: the whole training part)
    max_chars: int | None = None
    # stop a model's training before an epoch that would end after this many seconds
    time_budget_s: float = 240.0


FULL = Config()


# --------------------------------------------------------------------------- text


def load_corpus(name: str = "shakespeare") -> str:
    """The corpus ``name`` (``shakespeare`` or ``republic``) as one string."""
    if name not in CORPORA:
        raise ValueError(f"corpus must be one of {tuple(CORPORA)}, not {name!r}")
    return CORPORA[name]()


def build_vocab(text: str) -> list[str]:
    """The sorted distinct characters of ``text``: the id of a character is its index."""
    return sorted(set(text))


def encode(text: str, vocab) -> np.ndarray:
    """The ids (int32) of the characters of ``text`` in ``vocab``."""
    index = {char: i for i, char in enumerate(vocab)}
    return np.array([index[char] for char in text], dtype=np.int32)


def decode(ids, vocab) -> str:
    """The text of the ids ``ids`` in ``vocab``."""
    return "".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1))


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """(training part, validation part): the validation part is the contiguous end of ``text``."""
    cut = int(round(len(text) * (1 - val_fraction)))
    return text[:cut], text[cut:]


def make_windows(ids, seq_len: int, stride: int) -> tf.data.Dataset:
    """Pairs (input, target) of ``seq_len`` ids each; the target is the input shifted by one.

    Window ``k`` covers ids ``k * stride`` to ``k * stride + seq_len`` (inclusive), as many
    as fit in ``ids``.
    """
    ids = tf.convert_to_tensor(np.asarray(ids, dtype=np.int32))
    windows = tf.data.Dataset.from_tensor_slices(ids).window(
        seq_len + 1, shift=stride, drop_remainder=True
    )
    chunks = windows.flat_map(lambda window: window.batch(seq_len + 1))
    return chunks.map(lambda chunk: (chunk[:-1], chunk[1:]))


def make_dataset(
    ids, seq_len: int, stride: int, batch_size: int, shuffle: bool, seed: int = 0
) -> tf.data.Dataset:
    """Batches of windows for ``fit``: cached, shuffled with ``seed`` when ``shuffle``."""
    windows = make_windows(ids, seq_len, stride).cache()
    if shuffle:
        windows = windows.shuffle(20_000, seed=seed, reshuffle_each_iteration=True)
    return windows.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- model


def build_model(
    cell_type: str,
    vocab_size: int,
    embedding_dim: int,
    units: int,
    layers: int = 1,
    dropout: float = 0.0,
) -> keras.Model:
    """Embedding -> ``layers`` recurrent layers (all positions) -> Dense logits over the vocabulary.

    Maps integer windows ``(batch, T)`` to logits ``(batch, T, vocab_size)``, for any ``T``.
    """
    if cell_type not in RECURRENT:
        raise ValueError(f"cell_type must be one of {tuple(RECURRENT)}, not {cell_type!r}")
    stack = [
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(vocab_size, embedding_dim),
    ]
    for _ in range(layers):
        stack.append(RECURRENT[cell_type](units, return_sequences=True, dropout=dropout))
    stack.append(keras.layers.Dense(vocab_size))
    return keras.Sequential(stack, name=cell_type)


def train_model(
    cell_type: str,
    train_ids: np.ndarray,
    val_ids: np.ndarray,
    vocab_size: int,
    config: Config = FULL,
    seed: int = 0,
    verbose: int = 0,
):
    """Train one model; returns (model, history with ``seconds_per_epoch``)."""
    keras.utils.set_random_seed(seed)
    train = make_dataset(
        train_ids, config.seq_len, config.stride, config.batch_size, shuffle=True, seed=seed
    )
    val = make_dataset(val_ids, config.seq_len, config.seq_len, 256, shuffle=False)
    model = build_model(
        cell_type,
        vocab_size,
        config.embedding_dim,
        config.units,
        config.layers,
        config.dropout,
    )
    windows = (len(train_ids) - 1 - config.seq_len) // config.stride + 1
    steps = config.epochs * math.ceil(windows / config.batch_size)
    # the learning rate decays to a tenth over the planned epochs (cosine)
    learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.1)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    timer = EpochTimer()
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    history = model.fit(
        train,
        validation_data=val,
        epochs=config.epochs,
        callbacks=[timer, stop, TimeBudget(config.time_budget_s)],
        verbose=verbose,
    )
    return model, {**history.history, "seconds_per_epoch": timer.mean}


# --------------------------------------------------------------------------- sampling


def sample_next(logits, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One id per row of ``logits`` (shape ``(batch, V)``), drawn from softmax(logits / T).

    ``temperature`` 0 picks the most likely id (greedy). Stable for large logits: the
    row maximum is subtracted before exponentiating.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        logits = logits[None, :]
    if temperature <= 0:
        return np.argmax(logits, axis=-1)
    scaled = logits / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    probabilities = np.exp(scaled)
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(probabilities, axis=-1)
    draws = rng.random((len(logits), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative < draws).sum(axis=-1), logits.shape[-1] - 1)


def generate(
    model: keras.Model,
    vocab,
    seed_text: str,
    length: int,
    temperature: float,
    rng: np.random.Generator,
    window: int = 100,
    step=None,
) -> str:
    """``length`` characters after ``seed_text``, re-feeding the last ``window`` characters.

    ``step`` is the compiled last-position function of the model
    (:func:`last_logits_fn`); build it once and pass it to generate many samples fast.
    """
    step = step or last_logits_fn(model)
    ids = list(encode(seed_text, vocab))
    # a fixed window length keeps one compiled shape: pad a short seed with its first id
    context = [ids[0]] * max(0, window - len(ids)) + ids[-window:]
    out = []
    for _ in range(length):
        logits = np.asarray(step(np.array([context], dtype=np.int32)))
        next_id = int(sample_next(logits, temperature, rng)[0])
        out.append(next_id)
        context = context[1:] + [next_id]
    return decode(out, vocab)


def make_samples(models: dict, vocab, seed: int = 0, window: int = 100) -> dict:
    """Samples of every model at every temperature of the assignment."""
    rng = np.random.default_rng(seed)
    samples = {}
    for name, model in models.items():
        step = last_logits_fn(model)
        samples[name] = {
            temperature: generate(
                model, vocab, SEED_TEXT, SAMPLE_LENGTH, temperature, rng, window, step
            )
            for temperature in TEMPERATURES
        }
    return samples


# --------------------------------------------------------------------------- training


def prepare(config: Config = FULL, text: str | None = None):
    """(vocab, training ids, validation ids) of the corpus of ``config``."""
    text = load_corpus(config.corpus) if text is None else text
    vocab = build_vocab(text)
    train_text, val_text = split_text(text, config.val_fraction)
    if config.max_chars:
        train_text = train_text[: config.max_chars]
    return vocab, encode(train_text, vocab), encode(val_text, vocab)


def train_all(seed: int = 0, config: Config = FULL, text: str | None = None, verbose: int = 0):
    """Vocabulary, trained models and histories of both cell types."""
    vocab, train_ids, val_ids = prepare(config, text)
    models, histories = {}, {}
    for cell_type in CELL_TYPES:
        models[cell_type], histories[cell_type] = train_model(
            cell_type, train_ids, val_ids, len(vocab), config, seed, verbose
        )
    return vocab, models, histories


def train_reference(
    seed: int = 0, out_dir: str | Path = "models", config: Config = FULL, text: str | None = None
) -> dict:
    """Train the reference and export it exactly as the notebook does; returns the paths."""
    vocab, models, histories = train_all(seed, config, text)
    samples = make_samples(models, vocab, seed)
    return export_all(models, vocab, samples, histories, out_dir)


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2)
