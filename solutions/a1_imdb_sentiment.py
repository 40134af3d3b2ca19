"""Reference solution of assignment 1: IMDB sentiment with SimpleRNN, LSTM and GRU.

The notebook's solution cells run the same code as :func:`make_vectorizer`,
:func:`build_model` and :func:`train_model`. The judge compares the probes of a
student's ``build_model`` with :func:`build_model`; :func:`calibrate` trains the
reference over several seeds and writes the thresholds of the hidden checks:

    python -m solutions.a1_imdb_sentiment calibrate --seeds 3

Submissions for tests: :func:`train_reference` (a correct one; ``quick=True`` for a
short training), :func:`weak_submission` (barely trained models) and
:func:`swap_models` (e.g. the GRU saved as ``lstm.keras``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
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

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT_DIR = ROOT / "assignments" / "a1_imdb_sentiment"
CHECKS_CONFTEST = ROOT / "autograder" / "checks" / "a1_imdb_sentiment" / "conftest.py"
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


# --------------------------------------------------------------------------- calibration


def checks_module():
    """The hidden checks' conftest module (hidden sample and the judge's accuracy)."""
    spec = importlib.util.spec_from_file_location("a1_imdb_sentiment_judge", CHECKS_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def calibrate(seeds=(0, 1, 2), out_dir: str | Path = ASSIGNMENT_DIR, margin: float = 0.03) -> dict:
    """Train the reference per seed, score it like the judge, write calibration.json/.md."""
    checks = checks_module()
    texts, labels = checks.hidden_sample()
    runs = []
    for seed in seeds:
        _, models, histories = train_all(seed, FULL)
        for cell_type in CELL_TYPES:
            probabilities = checks.predict_probabilities(models[cell_type], texts)
            runs.append(
                {
                    "seed": seed,
                    "model": cell_type,
                    "accuracy": checks.accuracy(probabilities, labels),
                    "epochs": len(histories[cell_type]["loss"]),
                    "seconds_per_epoch": round(histories[cell_type]["seconds_per_epoch"], 2),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
    baselines = _baselines(checks, texts, labels)
    thresholds = {}
    for cell_type in CELL_TYPES:
        worst = min(r["accuracy"] for r in runs if r["model"] == cell_type)
        target = round(worst - margin, 3)
        basic = round((target + max(baselines.values())) / 2, 3)
        assert basic >= max(baselines.values()) + 0.1, (cell_type, basic, baselines)
        thresholds[f"accuracy_{cell_type}"] = target
        thresholds[f"accuracy_basic_{cell_type}"] = basic
    result = {
        "thresholds": thresholds,
        "margin": margin,
        "hidden_sample_size": len(labels),
        "config": asdict(FULL),
        "baselines": baselines,
        "runs": runs,
    }
    out = Path(out_dir)
    (out / "calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "calibration.md").write_text(_table(result))
    return result


def _baselines(checks, texts, labels) -> dict[str, float]:
    """Accuracy of predicting the majority class and of untrained models."""
    majority = float(np.mean(labels == np.bincount(labels).argmax()))
    baselines = {"majority_class": majority}
    train_texts, _ = load_imdb("train")
    vectorizer = make_vectorizer(train_texts, FULL.vocab_size, FULL.seq_len)
    for cell_type in CELL_TYPES:
        keras.utils.set_random_seed(0)
        model = build_model(cell_type, FULL.vocab_size, FULL.embedding_dim, FULL.units)
        probabilities = checks.predict_probabilities(end_to_end(vectorizer, model), texts)
        baselines[f"untrained_{cell_type}"] = checks.accuracy(probabilities, labels)
    return baselines


def _table(result: dict) -> str:
    lines = [
        "# Calibration of assignment 1 (IMDB sentiment)",
        "",
        f"Reference solution ({result['config']}) trained with seeds "
        f"{sorted({r['seed'] for r in result['runs']})}, scored by the judge on the hidden "
        f"sample ({result['hidden_sample_size']} test reviews, stratified). "
        f"Target threshold = worst seed - margin {result['margin']}; basic tier = halfway "
        "between the best baseline and the target.",
        "",
        "| model | accuracy mean | min | max | epochs | s/epoch | target threshold | basic tier |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell_type in CELL_TYPES:
        runs = [r for r in result["runs"] if r["model"] == cell_type]
        acc = [r["accuracy"] for r in runs]
        lines.append(
            f"| {cell_type} | {np.mean(acc):.4f} | {min(acc):.4f} | {max(acc):.4f} "
            f"| {np.mean([r['epochs'] for r in runs]):.1f} "
            f"| {np.mean([r['seconds_per_epoch'] for r in runs]):.1f} "
            f"| {result['thresholds'][f'accuracy_{cell_type}']:.3f} "
            f"| {result['thresholds'][f'accuracy_basic_{cell_type}']:.3f} |"
        )
    lines += ["", "| baseline | accuracy |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in result["baselines"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m solutions.a1_imdb_sentiment")
    commands = parser.add_subparsers(dest="command", required=True)
    cal = commands.add_parser("calibrate", help="train over seeds, write calibration.json/.md")
    cal.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    cal.add_argument("--out-dir", default=str(ASSIGNMENT_DIR))
    ref = commands.add_parser("reference", help="train and export a reference submission")
    ref.add_argument("--seed", type=int, default=0)
    ref.add_argument("--out-dir", default="models")
    ref.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.command == "calibrate":
        print(_table(calibrate(tuple(range(args.seeds)), args.out_dir)))
    else:
        print(train_reference(args.seed, args.out_dir, args.quick))
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
