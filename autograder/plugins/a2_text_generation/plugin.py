"""Assignment 2 (character-level text generation), grader side: the held-out stretch and the metric.

Held out: the last tenth of Tiny Shakespeare, from the first line start after 90%
of the text (111,4xx characters). When notebooks run for grading, the sandbox sees
the corpus without it (a course view, :meth:`AssignmentPlugin.student_view`). Plato's
*Republic* is in the view whole: the notebook may train on it as the second corpus,
but it is not graded, so nothing of it needs holding out (and cutting its tail would
cut the Gutenberg licence its loader looks for).

The judge's metric is computed here from the logits of the student's model, never
from anything the student reports: the held-out stretch is mapped through the
student's exported vocabulary (a character the vocabulary lacks is counted; as an
input it becomes the id of a space, as a target it costs ``UNKNOWN_BITS``), cut into
non-overlapping windows of ``EVAL_WINDOW`` characters, and every position of every
second window (a fixed half of the stretch, ~55,700 scored characters: it keeps the
judge within seconds) is scored: bits per character = mean cross-entropy of the next
character, in bits. That is what Keras reports as ``val_loss`` (in nats) on windows of
the same length. The calibration scores the reference with the same functions, and the
trivial baselines with smoothed character n-gram count models on the same targets.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from assignments.a2_text_generation import EVAL_WINDOW
from autograder.core.plugin import Plugin, ReferenceResult

HELD_OUT_FRACTION = 0.1
#: the validation stretch: the notebook validates on the last tenth of what it sees
VALIDATION_FRACTION = 0.1
#: the judge scores every ``WINDOW_STEP``-th window of the held-out stretch
WINDOW_STEP = 2
#: cost, in bits, of a held-out character that the student's vocabulary lacks
UNKNOWN_BITS = 8.0
BATCH_SIZE = 128
#: the judge's own sampling: rows at a low and at a high temperature, from the same seed text
JUDGE_TEMPERATURES = (0.2, 0.2, 1.5, 1.5)
JUDGE_SAMPLE_LENGTH = 120
JUDGE_SAMPLE_WINDOW = 32
JUDGE_SAMPLE_SEED = 11
NGRAM_DISCOUNT = 0.75
#: how many of the scored windows the ablation, each control and the look-ahead use
ABLATION_WINDOWS = BATCH_SIZE
CONTROL_WINDOWS = BATCH_SIZE
LOOKAHEAD_WINDOWS = 8
SHUFFLE_SEED = 17
VALIDATION_CONTROL = "your validation stretch (the last tenth of the text you are given)"
SHUFFLED_CONTROL = "the held-out text with the words of each line shuffled"


def held_out_start(text: str) -> int:
    """Index of the first held-out character: the first line start after 90% of ``text``."""
    return text.index("\n", int(len(text) * (1 - HELD_OUT_FRACTION))) + 1


def corpus_parts() -> tuple[str, str]:
    """(what the sandbox sees, the held-out stretch) of Tiny Shakespeare."""
    from assignments.data import load_shakespeare

    text = load_shakespeare()
    start = held_out_start(text)
    return text[:start], text[start:]


def validation_stretch(seen: str) -> str:
    """The part of ``seen`` that the notebook keeps for validation (its contiguous last tenth)."""
    return seen[int(round(len(seen) * (1 - VALIDATION_FRACTION))) :]


def shuffle_words(text: str, seed: int = SHUFFLE_SEED) -> str:
    """``text`` with the words of each line in a shuffled order (same characters and lines)."""
    rng = random.Random(seed)
    lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        rng.shuffle(words)
        lines.append(" ".join(words))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the metric


@dataclass(frozen=True)
class Score:
    """The judge's measure of one model on the held-out stretch."""

    bpc: float
    characters: int  # scored target positions
    unknown: int  # of which the vocabulary lacks the character
    window_bits: np.ndarray = field(repr=False, compare=False)  # the bits of each window


class ScoreError(ValueError):
    """The model cannot be scored (wrong output shape, NaN); the message is for the student."""


def spread(total: int, count: int | None) -> np.ndarray:
    """Indices of ``count`` of ``total`` items, evenly spread (all of them without ``count``)."""
    if count is None or count >= total:
        return np.arange(total)
    return np.linspace(0, total - 1, count).round().astype(int)


def window_starts(text: str, window: int, count: int | None = None) -> np.ndarray:
    """Where the scored windows of ``text`` start: every ``WINDOW_STEP``-th of the windows.

    With ``count``, that many of them, evenly spread over the text.
    """
    starts = np.arange(0, (len(text) - 1) // window * window, window * WINDOW_STEP)
    return starts[spread(len(starts), count)]


def window_arrays(
    text: str, vocab: list[str], window: int, count: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (unknown character -> the id of a space), targets (unknown -> -1): ``(n, window)``."""
    index = {char: i for i, char in enumerate(vocab)}
    ids = np.fromiter((index.get(char, -1) for char in text), dtype=np.int64, count=len(text))
    starts = window_starts(text, window, count)
    inputs = ids[starts[:, None] + np.arange(window)]
    targets = ids[starts[:, None] + np.arange(1, window + 1)]
    inputs = np.where(inputs < 0, index.get(" ", 0), inputs).astype(np.int32)
    return inputs, targets


def window_bits(model, inputs: np.ndarray, targets: np.ndarray, vocab_size: int) -> np.ndarray:
    """The model's cross-entropy, in bits, summed over each window (``UNKNOWN_BITS`` for a
    target of -1). One traced function: the last batch is padded to the batch size."""
    import tensorflow as tf

    shape = tuple(np.asarray(model(inputs[:2, :7], training=False)).shape)
    if shape != (2, 7, vocab_size):
        raise ScoreError(
            f"the model maps windows of shape (2, 7) to {shape}, not to logits of "
            f"shape (2, 7, {vocab_size}) for the {vocab_size} characters of vocab.json"
        )

    @tf.function
    def nats(x, y):
        logits = tf.cast(model(x, training=False), tf.float32)
        known = y >= 0
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.where(known, y, tf.zeros_like(y)), logits=logits
        )
        finite = tf.reduce_all(tf.math.is_finite(logits))
        return tf.reduce_sum(tf.where(known, losses, 0.0), axis=1), finite

    rows = len(inputs)
    padding = -rows % BATCH_SIZE
    inputs = np.concatenate([inputs, np.zeros((padding, inputs.shape[1]), inputs.dtype)])
    labels = np.concatenate([targets, np.zeros((padding, targets.shape[1]), targets.dtype)])
    found = []
    for begin in range(0, len(inputs), BATCH_SIZE):
        batch = slice(begin, begin + BATCH_SIZE)
        batch_nats, finite = nats(tf.constant(inputs[batch]), tf.constant(labels[batch], tf.int32))
        if not bool(finite):
            raise ScoreError("the model outputs NaN or infinite logits on held-out text")
        found.append(np.asarray(batch_nats))
    nats_per_window = np.concatenate(found)[:rows]
    return nats_per_window / math.log(2) + UNKNOWN_BITS * np.sum(targets < 0, axis=1)


def bits_per_character(
    model, text: str, vocab: list[str], window: int | None = None, count: int | None = None
) -> Score:
    """The model's mean cross-entropy, in bits, of each next character of ``text``.

    ``count``: only that many of the scored windows, evenly spread (all by default).
    """
    inputs, targets = window_arrays(text, vocab, window or EVAL_WINDOW, count)
    bits = window_bits(model, inputs, targets, len(vocab))
    return Score(
        bpc=float(bits.sum() / targets.size),
        characters=int(targets.size),
        unknown=int(np.sum(targets < 0)),
        window_bits=bits,
    )


def ablation_bpc(model, text: str, vocab: list[str], score: Score) -> tuple[float, float]:
    """(with, without) the recurrence: bits per character on ``ABLATION_WINDOWS`` of the
    windows that ``score``, the model's on ``text``, measured."""
    from autograder.checks.validity import recurrence_removed

    with_state = score.window_bits[spread(len(score.window_bits), ABLATION_WINDOWS)]
    with recurrence_removed(model):
        without_state = bits_per_character(model, text, vocab, count=ABLATION_WINDOWS)
    return float(with_state.sum() / without_state.characters), without_state.bpc


def control_bpc(model, controls: dict[str, str], vocab: list[str]) -> dict[str, float]:
    """Bits per character on ``CONTROL_WINDOWS`` scored windows of each control text, by name."""
    arrays = [
        window_arrays(text, vocab, EVAL_WINDOW, CONTROL_WINDOWS) for text in controls.values()
    ]
    inputs, targets = (np.concatenate(parts) for parts in zip(*arrays, strict=True))
    bits = window_bits(model, inputs, targets, len(vocab))
    ends = np.cumsum([len(part) for part, _ in arrays])
    return {
        name: float(part.sum() / (len(part) * EVAL_WINDOW))
        for name, part in zip(controls, np.split(bits, ends[:-1]), strict=True)
    }


def text_lookahead(model, text: str, vocab: list[str]):
    """How much the logits up to a position change when only the later characters change.

    On ``LOOKAHEAD_WINDOWS`` held-out windows; each later id is replaced by the next id.
    """
    from autograder.checks.validity import lookahead

    inputs, _ = window_arrays(text, vocab, EVAL_WINDOW, LOOKAHEAD_WINDOWS)

    def replace_after(ids: np.ndarray, cut: int) -> np.ndarray:
        changed = ids.copy()
        changed[:, cut + 1 :] = (changed[:, cut + 1 :] + 1) % len(vocab)
        return changed

    return lookahead(lambda ids: model.predict_on_batch(ids), inputs, replace_after)


def judge_samples(model, vocab: list[str], seed_text: str) -> dict[float, list[str]]:
    """The judge's own samples: ``JUDGE_SAMPLE_LENGTH`` characters per row, by temperature.

    Ids are drawn with ``tf.random.stateless_categorical`` from the last position's
    logits, re-feeding the last ``JUDGE_SAMPLE_WINDOW`` characters (one traced shape).
    An id without a character in ``vocab`` becomes ``None``.
    """
    import tensorflow as tf

    index = {char: i for i, char in enumerate(vocab)}
    seed_ids = [index.get(char, index.get(" ", 0)) for char in seed_text[-JUDGE_SAMPLE_WINDOW:]]
    temperatures = tf.constant(JUDGE_TEMPERATURES, dtype=tf.float32)[:, None]

    def step(windows, seed):
        logits = tf.cast(model(windows, training=False)[:, -1, :], tf.float32)
        draws = tf.random.stateless_categorical(logits / temperatures, 1, seed, dtype=tf.int32)
        return tf.concat([windows[:, 1:], draws], axis=1), draws[:, 0]

    # one traced shape; measured here, XLA's compilation costs more than it saves
    compiled = tf.function(step)
    windows = tf.constant([seed_ids] * len(JUDGE_TEMPERATURES), dtype=tf.int32)
    drawn = []
    for position in range(JUDGE_SAMPLE_LENGTH):
        windows, ids = compiled(windows, tf.constant([JUDGE_SAMPLE_SEED, position]))
        drawn.append(np.asarray(ids))
    rows = np.stack(drawn, axis=1)
    samples: dict[float, list] = {}
    for temperature, row in zip(JUDGE_TEMPERATURES, rows, strict=True):
        chars = [vocab[i] if 0 <= i < len(vocab) else None for i in row.tolist()]
        samples.setdefault(temperature, []).append(chars)
    return samples


# --------------------------------------------------------------------------- count baselines


def ngram_bpc(train: str, text: str, order: int, window: int | None = None) -> float:
    """Bits per character of an interpolated, absolutely discounted character n-gram model.

    Trained on ``train``, scored on the judge's targets of ``text`` (the targets of the
    scored windows), each with up to ``order - 1`` characters of context from ``text``
    itself.
    """
    window = window or EVAL_WINDOW
    alphabet = len(set(train) | set(text))
    counts, totals, followers = [], [], []
    for k in range(order):
        grams = Counter(train[i : i + k + 1] for i in range(len(train) - k))
        total, types = Counter(), Counter()
        for gram, count in grams.items():
            total[gram[:-1]] += count
            types[gram[:-1]] += 1
        counts.append(grams)
        totals.append(total)
        followers.append(types)
    positions = [s + i for s in window_starts(text, window) for i in range(1, window + 1)]
    bits = 0.0
    for position in positions:
        char, p = text[position], 1.0 / alphabet
        for k in range(order):
            if k > position:
                break
            context = text[position - k : position]
            total = totals[k].get(context, 0)
            if total == 0:
                break
            count = counts[k].get(context + char, 0)
            p = (max(count - NGRAM_DISCOUNT, 0.0) + NGRAM_DISCOUNT * followers[k][context] * p) / (
                total
            )
        bits -= math.log2(p)
    return bits / len(positions)


# --------------------------------------------------------------------------- the plugin


class AssignmentPlugin(Plugin):
    bits_per_character = staticmethod(bits_per_character)
    ablation_bpc = staticmethod(ablation_bpc)
    control_bpc = staticmethod(control_bpc)
    text_lookahead = staticmethod(text_lookahead)
    judge_samples = staticmethod(judge_samples)
    judge_sample_length = JUDGE_SAMPLE_LENGTH

    def load_hidden(self) -> tuple[str, np.ndarray, str]:
        """(the held-out stretch, the unigram model's bits per character on it, the
        validation stretch)."""
        seen, held_out = corpus_parts()
        return held_out, np.array(ngram_bpc(seen, held_out, 1)), validation_stretch(seen)

    def feedback_texts(self, judged) -> dict[str, str]:
        """The judge's own samples from each model, one per text, by temperature: those the
        hidden checks drew (a character outside the vocabulary shows as U+FFFD)."""
        texts = {}
        for cell_type, samples in self.remembered(judged).items():
            for temperature, rows in samples.items():
                for number, row in enumerate(rows, 1):
                    title = (
                        f"Sampled by the judge from your {cell_type.upper()} model at "
                        f"temperature {temperature:g} ({number} of {len(rows)})"
                    )
                    texts[title] = "".join(c if c is not None else "\ufffd" for c in row)
        return texts

    def held_out_text(self) -> str:
        return self.hidden()[0]

    def unigram_bpc(self) -> float:
        return float(self.hidden()[1])

    def controls(self) -> dict[str, str]:
        """Text like the held-out stretch that no notebook trains on, by name."""
        if not hasattr(self, "_controls"):
            self._controls = {
                VALIDATION_CONTROL: self.hidden()[2],
                SHUFFLED_CONTROL: shuffle_words(self.held_out_text()),
            }
        return self._controls

    def hidden_passages(self) -> list[str]:
        """The held-out stretch, one passage per speech (the parts between blank lines)."""
        return [part for part in self.held_out_text().split("\n\n") if part.strip()]

    def student_view(self, target: Path) -> Path:
        """Tiny Shakespeare without the held-out stretch (a course view); the Republic whole."""
        import hashlib
        import json

        from assignments import data

        seen, _ = corpus_parts()
        payload = seen.encode("utf-8")
        path = target / data.DATASETS["shakespeare"].filename
        manifest = data.view_manifest(path)
        digest = hashlib.sha256(payload).hexdigest()
        current = manifest.is_file() and json.loads(manifest.read_text()).get("sha256") == digest
        if not (current and path.is_file() and data.sha256_of(path) == digest):
            for stale in (path, manifest):
                stale.unlink(missing_ok=True)
            self.write_view("shakespeare", payload, target)
        data.copy_to("republic", target)
        return target

    def reference_run(self, seed: int) -> dict[str, ReferenceResult]:
        from solutions import a2_text_generation as solution

        seen, held_out = corpus_parts()
        # all the planned epochs whatever the machine's load: the notebook's time budget
        # is a safety net for students, not part of the reference's quality
        config = replace(solution.FULL, time_budget_s=math.inf)
        vocab, models, histories = solution.train_all(seed, config, text=seen)
        if seed == 0:
            self._reference_samples = solution.make_samples({"lstm": models["lstm"]}, vocab)
        results = {}
        for name, model in models.items():
            score = bits_per_character(model, held_out, vocab)
            _, without_state = ablation_bpc(model, held_out, vocab, score)
            controls = control_bpc(model, self.controls(), vocab)
            results[name] = ReferenceResult(
                value=round(score.bpc, 4),
                epochs=len(histories[name]["loss"]),
                seconds_per_epoch=round(histories[name]["seconds_per_epoch"], 1),
                ablated=round(without_state, 4),
                controls={control: round(bpc, 4) for control, bpc in controls.items()},
            )
        return results

    def bare_inference(self, judged) -> None:
        import json

        import keras

        vocab = json.loads(judged.artifact(self.spec.artifact_paths["vocab"]).read_text())
        inputs, _ = window_arrays(self.held_out_text(), vocab, EVAL_WINDOW)
        for name in self.spec.calibration.models:
            model = keras.saving.load_model(judged.artifact(self.spec.artifact_paths[name]))
            model.predict(inputs, batch_size=BATCH_SIZE, verbose=0)

    def reference_description(self) -> str:
        from dataclasses import asdict

        from solutions.a2_text_generation import FULL

        seen, held_out = corpus_parts()
        counts = ", ".join(
            f"{order}-gram {ngram_bpc(seen, held_out, order):.3f}" for order in (3, 4, 5)
        )
        text = (
            f"Reference settings {asdict(FULL)}; held-out stretch: the last "
            f"{len(held_out):,} characters of Tiny Shakespeare, of which every second "
            f"non-overlapping window of {EVAL_WINDOW} characters is scored, in bits per "
            "character (nats = bits x 0.693). "
            f"Longer-context count models on the same targets (not baselines, for scale): "
            f"{counts} bits per character."
        )
        samples = getattr(self, "_reference_samples", None)
        if samples:
            shown = "; ".join(
                f"T={temperature}: {text[:70]!r}" for temperature, text in samples["lstm"].items()
            )
            text += f" Samples of the seed-0 LSTM after {FULL.epochs} epochs: {shown}."
        return text

    def baselines(self) -> dict[str, float]:
        """Bits per character of the unigram and bigram count models (trained on the view)."""
        seen, held_out = corpus_parts()
        return {
            "unigram": round(ngram_bpc(seen, held_out, 1), 4),
            "bigram": round(ngram_bpc(seen, held_out, 2), 4),
        }
