# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false}
# # Assignment 1: IMDB sentiment with SimpleRNN, LSTM and GRU
#
# You will classify movie reviews of the Large Movie Review Dataset (IMDB) as positive
# or negative, starting from the raw text, and compare three recurrent cells: a plain
# `SimpleRNN`, an `LSTM` and a `GRU`.
#
# **What is graded** (35 points)
#
# | part | how | points |
# |---|---|---|
# | `build_model` | autograded (hidden checks compare it with the reference) | 3 |
# | exported models (`models/*.keras`, `models/history.json`): the export format, and each model's architecture read from its graph | autograded | 4 |
# | accuracy of the exported models on hidden test reviews | autograded | 21 |
# | preprocessing choices | written answer, marked by hand | 2 |
# | comparison report | written answer, marked by hand | 5 |
#
# **Rules**
#
# - Write your code where it says `YOUR CODE HERE` and your answers where it says
#   `YOUR ANSWER HERE`. Keep the names the notebook uses: `lengths`, `VOCAB_SIZE`,
#   `SEQ_LEN`, `vectorizer`, `build_model`, `models`, `histories`.
# - Do not edit the read-only cells; the grader restores them anyway.
# - The test cells run *public* checks only. The grader runs hidden checks on the files
#   your notebook exports: it loads them as data (no code of yours runs at that point),
#   evaluates them on test reviews you have not trained on, and calls `build_model`.
#   **Passing the public checks does not mean passing the hidden checks.**
# - The whole notebook must run top to bottom in under 10 minutes on a 2-core CPU
#   (the reference solution takes about 4).
# - **How points are earned.** Most points are for accuracy on hidden reviews. A model's
#   accuracy counts only when the recurrent layer its file name says is the only recurrent
#   layer on every path from the text to the output (no shortcut around it; stacked layers,
#   a Conv1D in front and a `Bidirectional` wrapper are fine) **and does recurrent work**:
#   the grader also measures the accuracy with the layer's state reset at every word, and
#   a model that loses (almost) nothing that way does not use what the layer carries from
#   one word to the next. The architecture check itself (1 point per model) wants the
#   layout and sizes of your own `build_model`. Models that are constant, at chance or not
#   recurrent earn at most a quarter of the autograded points. What the locked export cell
#   guarantees anyway (the files load and answer in the right shape) is worth 1 point.
# - Train (and adapt the vectorizer) on the training split only; the test split is for
#   your own comparison. The grader scores each model on test reviews you can see as well
#   as on its hidden ones: a model markedly better on the hidden reviews (a sign of
#   training on them) has its accuracy points withheld until the instructor has looked.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
import json
import os
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from assignments.a1_imdb_sentiment.helpers import CELL_TYPES, EpochTimer, end_to_end, export_models
from assignments.data import load_imdb

SEED = 0
keras.utils.set_random_seed(SEED)
print("TensorFlow", tf.__version__, "| Keras", keras.__version__, "| cells:", CELL_TYPES)

# %% [markdown]
# ## 1. Load and explore
#
# `load_imdb(split)` returns the reviews as an array of strings and the labels
# (1 = positive). The text is *normalised*: HTML line breaks (`<br />`) and the control
# character U+0085 became spaces. The grader feeds your models text normalised the same
# way.

# %%
train_texts, train_labels = load_imdb("train")
test_texts, test_labels = load_imdb("test")
print(f"{len(train_texts):,} training and {len(test_texts):,} test reviews")
print(train_texts[0][:400])

# %% [markdown]
# **Task 1.** Print the share of positive reviews in each split. Compute `lengths`, the
# number of words (whitespace-separated) of each *training* review, print its median,
# 75th, 90th and 95th percentiles, and plot its distribution with matplotlib.

# %% nbgrader={"grade": false, "grade_id": "explore", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
print(f"positive share: train {train_labels.mean():.3f}, test {test_labels.mean():.3f}")
lengths = np.array([len(text.split()) for text in train_texts])
percentiles = dict(zip((50, 75, 90, 95), np.percentile(lengths, (50, 75, 90, 95)), strict=True))
print("words per review, percentiles:", {p: int(v) for p, v in percentiles.items()})

fig, ax = plt.subplots(figsize=(8, 3))
ax.hist(lengths, bins=100, range=(0, 1000), color="tab:blue")
for p, value in percentiles.items():
    ax.axvline(value, color="tab:red", linestyle=":", linewidth=1)
    ax.text(value, ax.get_ylim()[1] * 0.9, f" {p}%", color="tab:red")
ax.set(xlabel="words per review", ylabel="reviews", title="Review length (training split)")
plt.show()
### END SOLUTION

# %% [markdown]
# ## 2. Preprocess
#
# A `keras.layers.TextVectorization` layer turns each review into a sequence of integer
# token ids: it lower-cases the text, strips punctuation, splits on whitespace and keeps
# the `max_tokens` most frequent words of the texts it is *adapted* on (id 0 is
# padding, id 1 stands for any out-of-vocabulary word). With
# `output_sequence_length=SEQ_LEN` every sequence is cut or padded to the same length.
#
# **Task 2.** Choose `VOCAB_SIZE` and `SEQ_LEN` from the length distribution above, then
# create `vectorizer` and adapt it on the *training* texts only. Training is
# proportional to `SEQ_LEN`: keep it moderate.

# %% nbgrader={"grade": false, "grade_id": "preprocess", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
VOCAB_SIZE = 10_000
SEQ_LEN = 200
vectorizer = keras.layers.TextVectorization(
    max_tokens=VOCAB_SIZE, output_mode="int", output_sequence_length=SEQ_LEN
)
vectorizer.adapt(train_texts, batch_size=1024)
### END SOLUTION
x_train = np.asarray(vectorizer(train_texts))
x_test = np.asarray(vectorizer(test_texts))
print("x_train:", x_train.shape, x_train.dtype)
print(f"reviews truncated: {np.mean(x_train[:, -1] != 0):.1%}")
print(f"out-of-vocabulary tokens: {np.sum(x_train == 1) / np.sum(x_train != 0):.1%}")

# %% [markdown]
# **Question (2 points).** Justify your `VOCAB_SIZE` and `SEQ_LEN` with the numbers
# above, and explain what padding and truncation do to a review here (where do the
# zeros go, which part of a long review is lost, and how the model can ignore padding).

# %% [markdown] nbgrader={"grade": true, "grade_id": "preprocessing_choices", "locked": false, "points": 2, "schema_version": 3, "solution": true}
# *Marking: numbers tied to the distribution; truncation keeps the beginning; padding at
# the end; masking (`mask_zero=True`) or why post-padding hurts a plain RNN's state.*
#
# Half of the reviews have at most 173 words and three quarters at most 281, so
# `SEQ_LEN = 200` keeps the whole of ~59% of the reviews and the first 200 tokens of the
# other 41% (truncation drops the *end* of long reviews), while training time grows
# linearly with it. A 10,000-word vocabulary covers ~94% of the token occurrences; the
# rarer words become the out-of-vocabulary id 1. Shorter reviews are
# padded with zeros *after* the text, so without care a recurrent layer would read up to
# 200 padding steps after the last word and forget it. `Embedding(..., mask_zero=True)`
# passes a mask so that the recurrent layers skip the padding and return the state after
# the last real word.

# %% [markdown]
# ## 3. Build and train three models
#
# **Task 3.** Write `build_model(cell_type, vocab_size, embedding_dim, units)` that
# returns an *uncompiled* `keras.Model` on integer token sequences (shape
# `(batch, sequence_length)`) made of
#
# 1. an `Embedding(vocab_size, embedding_dim)`,
# 2. one recurrent layer with `units` units: `SimpleRNN`, `LSTM` or `GRU` for
#    `cell_type` `"simple_rnn"`, `"lstm"` or `"gru"`,
# 3. a `Dense(1, activation="sigmoid")` giving P(positive).
#
# The grader calls your `build_model` with its own arguments and compares the layers and
# the parameter count with the reference.


# %% nbgrader={"grade": false, "grade_id": "build_model", "locked": false, "schema_version": 3, "solution": true}
def build_model(cell_type, vocab_size, embedding_dim, units):
    """Embedding -> recurrent layer -> Dense(1, sigmoid) on integer token sequences."""
    ### BEGIN SOLUTION
    recurrent = {
        "simple_rnn": keras.layers.SimpleRNN,
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
    }
    if cell_type not in recurrent:
        raise ValueError(f"cell_type must be one of {tuple(recurrent)}, not {cell_type!r}")
    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True),
            recurrent[cell_type](units),
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name=cell_type,
    )
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_build_model", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Public checks of build_model (3 points). Passing them does NOT mean passing the hidden
# checks, which compare your layers and parameter counts with the reference solution.
for cell_type, layer_class in zip(
    CELL_TYPES, (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU), strict=True
):
    model = build_model(cell_type, vocab_size=1000, embedding_dim=8, units=16)
    assert isinstance(model, keras.Model), f"build_model('{cell_type}', ...) must return a Model"
    outputs = np.asarray(model(np.ones((2, 12), dtype="int32")))
    assert outputs.shape == (2, 1), f"{cell_type}: output shape {outputs.shape}, expected (2, 1)"
    assert np.all((outputs >= 0) & (outputs <= 1)), f"{cell_type}: outputs must be in [0, 1]"
    assert any(isinstance(layer, layer_class) for layer in model.layers), (
        f"build_model('{cell_type}', ...) has no {layer_class.__name__} layer"
    )
print("build_model: public checks passed")

# %% [markdown]
# **Task 4.** Train one model per cell type on `x_train`:
#
# - carve a validation set (e.g. 20%) out of the *training* data, shuffled with `SEED`;
# - compile with `optimizer="adam"`, `loss="binary_crossentropy"`,
#   `metrics=["accuracy"]` and `jit_compile=True` (XLA: 2-3x faster on CPU);
# - stop early on the validation accuracy and restore the best weights
#   (`keras.callbacks.EarlyStopping`);
# - time the epochs with the provided `EpochTimer()` callback (`timer.mean` seconds).
#
# Keep the trained models in `models[cell_type]` and
# `histories[cell_type] = {**history.history, "seconds_per_epoch": timer.mean}`.
# Budget: a few minutes for all three models.

# %% nbgrader={"grade": false, "grade_id": "train", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
EMBEDDING_DIM, UNITS, BATCH_SIZE, EPOCHS, PATIENCE = 32, 32, 128, 8, 2
order = np.random.default_rng(SEED).permutation(len(x_train))
n_val = int(round(0.2 * len(x_train)))
train_part, val_part = order[n_val:], order[:n_val]

models, histories = {}, {}
for cell_type in CELL_TYPES:
    keras.utils.set_random_seed(SEED)
    model = build_model(cell_type, VOCAB_SIZE, EMBEDDING_DIM, UNITS)
    model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], jit_compile=True
    )
    timer = EpochTimer()
    stop = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=PATIENCE, restore_best_weights=True
    )
    print(f"--- {cell_type}")
    history = model.fit(
        x_train[train_part],
        train_labels[train_part],
        validation_data=(x_train[val_part], train_labels[val_part]),
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        callbacks=[timer, stop],
        verbose=2,
    )
    models[cell_type] = model
    histories[cell_type] = {**history.history, "seconds_per_epoch": timer.mean}
### END SOLUTION

# %% [markdown]
# ## 4. Evaluate and compare
#
# **Task 5.** Build a pandas table `comparison` with one row per model: test accuracy,
# test loss, number of parameters, seconds per epoch and epochs trained. Then plot the
# learning curves (training and validation loss and accuracy per epoch) of the three
# models.

# %% nbgrader={"grade": false, "grade_id": "evaluate", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
rows = {}
for cell_type, model in models.items():
    loss, accuracy = model.evaluate(x_test, test_labels, batch_size=512, verbose=0)
    rows[cell_type] = {
        "test accuracy": accuracy,
        "test loss": loss,
        "parameters": model.count_params(),
        "seconds per epoch": histories[cell_type]["seconds_per_epoch"],
        "epochs": len(histories[cell_type]["loss"]),
    }
comparison = pd.DataFrame(rows).T
comparison.round(3)
### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "curves", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
colors = ("tab:blue", "tab:orange", "tab:green")
for (cell_type, record), color in zip(histories.items(), colors, strict=True):
    epochs = np.arange(1, len(record["loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, record[metric], color=color, label=f"{cell_type} train")
        ax.plot(epochs, record[f"val_{metric}"], color=color, ls="--", label=f"{cell_type} val")
        ax.set(xlabel="epoch", ylabel=metric)
axes[0].legend(fontsize=8)
fig.suptitle("Learning curves (dashed: validation)")
plt.show()
### END SOLUTION

# %% [markdown]
# **Report (5 points, about 150-250 words).** Which cell wins on accuracy, and at what
# cost in parameters and time per epoch? Explain the differences with how each cell
# carries information across 200 time steps, including the vanishing-gradient problem.
# Use your table and learning curves; say what you would try next.

# %% [markdown] nbgrader={"grade": true, "grade_id": "report", "locked": false, "points": 5, "schema_version": 3, "solution": true}
# *Marking: uses own numbers (table, curves); LSTM/GRU beat SimpleRNN; gates and the
# additive cell state let gradients flow over long spans while SimpleRNN's repeated
# multiplication by the recurrent weights and tanh derivatives shrinks them; cost
# trade-off (GRU 3 weight blocks vs LSTM 4); overfitting on the validation curves; a
# sensible next step.*
#
# The LSTM and the GRU reach about 84-86% validation and test accuracy; the
# SimpleRNN stays a few points lower, learns more slowly at first and is less stable
# from seed to seed. The gated cells cost more: an LSTM layer has four weight blocks and a
# GRU three, against one for the SimpleRNN, so they have 4x and ~3x its recurrent
# parameters (all small next to the 320,000 embedding weights) and take longer per epoch.
# The reason is how the gradient reaches early words. In a SimpleRNN the state is
# multiplied by the same recurrent matrix and squashed by tanh at every step, so the
# gradient from the loss at the last step shrinks geometrically over 200 steps (vanishing
# gradients): the model effectively learns from the last few dozen words. The LSTM's
# additive cell state with a forget gate, and the GRU's update gate that interpolates the
# old and new state, give the gradient a path that is not squashed at every step, so a
# sentiment cue early in the review can still drive the prediction. All models overfit
# after two or three epochs (training loss falls while validation loss rises), which is
# why early stopping restores the best epoch. Next: dropout on the embedding and the
# recurrent layer, a bidirectional layer, or pre-trained embeddings.

# %% [markdown]
# ## 5. Export (read-only)
#
# This cell wraps `vectorizer` and each trained model into one model that takes raw
# review strings, saves it to `models/<cell_type>.keras` with `models/history.json`, and
# proves that each file reloads (`safe_mode=True`) and predicts exactly as in memory.
# Submit the notebook **with** the `models/` folder.

# %% nbgrader={"grade": false, "grade_id": "export", "locked": true, "schema_version": 3, "solution": false}
try:
    to_export = {name: end_to_end(vectorizer, models[name]) for name in CELL_TYPES}
    to_record = {name: histories[name] for name in CELL_TYPES}
except (NameError, KeyError) as missing:
    print(
        f"Nothing exported ({type(missing).__name__}: {missing}). Run the cells above first: "
        "they must define `vectorizer`, `models` and `histories` for every cell type."
    )
else:
    for path in export_models(to_export, to_record, "models").values():
        print("exported", path)

# %% nbgrader={"grade": true, "grade_id": "test_export", "locked": true, "points": 4, "schema_version": 3, "solution": false}
# Public checks of the export (4 points). Passing them does NOT mean passing the hidden
# checks, which also read each model's graph (the recurrent layer on the one path from
# the text to the output), its sizes and its speed.
for name in CELL_TYPES:
    path = Path("models") / f"{name}.keras"
    assert path.is_file(), f"{path} is missing: run the export cell"
    model = keras.saving.load_model(path, safe_mode=True)
    outputs = model.predict(tf.constant(["A wonderful film.", "Dull."]), verbose=0)
    assert outputs.shape == (2, 1), f"{path}: output shape {outputs.shape}, expected (2, 1)"
history_file = json.loads(Path("models/history.json").read_text())
assert set(history_file) == set(CELL_TYPES), "models/history.json must have the three models"
print("export: public checks passed")

# %% nbgrader={"grade": true, "grade_id": "test_accuracy", "locked": true, "points": 21, "schema_version": 3, "solution": false}
# Public check of accuracy (21 points). The hidden checks measure each exported model on
# 5,000 hidden test reviews against calibrated thresholds (full and partial credit).
# This only checks that each beats chance clearly on 500 public test reviews: passing it
# does NOT mean passing the hidden checks.
public_texts, public_labels = test_texts[::50], test_labels[::50]
for name in CELL_TYPES:
    path = Path("models") / f"{name}.keras"
    assert path.is_file(), f"{path} is missing: run the export cell"
    model = keras.saving.load_model(path, safe_mode=True)
    probabilities = model.predict(tf.constant(list(public_texts)), verbose=0)[:, 0]
    public_accuracy = np.mean((probabilities > 0.5) == (public_labels == 1))
    print(f"{name}: accuracy {public_accuracy:.3f} on 500 public test reviews")
    assert public_accuracy > 0.6, f"{name}: accuracy {public_accuracy:.3f} is close to chance"

# %% [markdown]
# ## Optional extensions (ungraded)
#
# Set `RUN_EXTENSIONS = True` to train them (a few extra minutes). Nothing here is
# exported or graded.
#
# 1. A **bidirectional** LSTM reads the review in both directions.
# 2. **Pre-trained embeddings**: if a GloVe file `glove.6B.100d.txt` is in the course
#    data folder (`RNN_COURSE_DATA`), the embedding starts from it and is frozen.

# %%
RUN_EXTENSIONS = False


def train_extension(model, epochs=3):
    """Train an extension model like the main ones; returns its best validation accuracy."""
    model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], jit_compile=True
    )
    history = model.fit(
        x_train[train_part],
        train_labels[train_part],
        validation_data=(x_train[val_part], train_labels[val_part]),
        epochs=epochs,
        batch_size=128,
        verbose=2,
    )
    return max(history.history["val_accuracy"])


if RUN_EXTENSIONS:
    bidirectional = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(VOCAB_SIZE, 32, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(32)),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    print(f"bidirectional LSTM: best validation accuracy {train_extension(bidirectional):.3f}")

# %%
glove_path = Path(os.environ.get("RNN_COURSE_DATA", "data")) / "glove.6B.100d.txt"
if not glove_path.is_file():
    print(f"no embedding file at {glove_path}: pre-trained embedding extension skipped")
elif RUN_EXTENSIONS:
    vectors = {}
    with open(glove_path, encoding="utf-8") as handle:
        for line in handle:
            word, *values = line.rstrip().split(" ")
            vectors[word] = np.asarray(values, dtype="float32")
    vocabulary = vectorizer.get_vocabulary()
    matrix = np.zeros((len(vocabulary), 100), dtype="float32")
    for index, word in enumerate(vocabulary):
        if word in vectors:
            matrix[index] = vectors[word]
    print(f"pre-trained vectors for {np.mean(matrix.any(axis=1)):.1%} of the vocabulary")
    pretrained = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(
                len(vocabulary),
                100,
                mask_zero=True,
                embeddings_initializer=keras.initializers.Constant(matrix),
                trainable=False,
            ),
            keras.layers.LSTM(32),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    print(f"LSTM on GloVe: best validation accuracy {train_extension(pretrained):.3f}")
