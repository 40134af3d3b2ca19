"""Assignment 1 (IMDB sentiment), grader side: hidden reviews, controls, the student's view.

The hidden sample is a fixed, stratified sample of 5,000 reviews of the IMDB
*test* split (2,500 per class): at accuracy ~0.85 its 95% confidence interval is
about +-1 point, narrow next to the calibration margin. When notebooks run for
grading, the sandbox sees the training split and the other 20,000 test reviews,
never these. The judge's accuracy is computed here from ``predict`` outputs only,
never from ``evaluate`` or from anything the student reports; the calibration
scores the reference with the same functions.

Did a model earn its accuracy (:mod:`autograder.checks.validity`)? The judge predicts
again, with the recurrence removed, a fixed stratified 500 of the hidden reviews
(:meth:`AssignmentPlugin.ablated_accuracy`: a model that loses 0.2 of accuracy
there is measured within about +-0.05; one that does not use its recurrence loses
exactly 0), and scores the model on a fixed stratified 1,500 of the visible test
reviews, which an honest notebook never trains on either
(:meth:`AssignmentPlugin.controls`): an honest model's hidden accuracy is then
within about +-0.02 of that one (95%), while a model fitted to the hidden reviews
scores far better on them. Both sizes keep the judge within 1.5 times its cost
without these checks.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from autograder.core.plugin import Plugin, ReferenceResult

HIDDEN_TEST_SIZE = 5000
HIDDEN_TEST_SEED = 20_250_101
ABLATION_SIZE = 500
ABLATION_SEED = 20_250_102
CONTROL_SIZE = 1500
CONTROL_SEED = 20_250_103
#: What the student reads the control as (the test reviews the sandbox shows the notebook).
CONTROL = "the visible test reviews"
BATCH_SIZE = 512


def stratified(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a fixed sample of ``size`` items of ``labels``, half of each class."""
    rng = np.random.default_rng(seed)
    per_class = [
        rng.choice(np.flatnonzero(labels == label), size // 2, replace=False) for label in (0, 1)
    ]
    return np.sort(np.concatenate(per_class))


def hidden_test_indices(labels: np.ndarray) -> np.ndarray:
    """Sorted indices (into ``load_imdb("test")``) of the grader's hidden reviews."""
    return stratified(labels, HIDDEN_TEST_SIZE, HIDDEN_TEST_SEED)


def predict_probabilities(model, texts) -> np.ndarray:
    """The model's outputs on ``texts`` as a flat array (batched ``predict``)."""
    import tensorflow as tf

    strings = tf.constant([str(text) for text in texts], dtype=tf.string)  # no fixed-width copy
    batches = tf.data.Dataset.from_tensor_slices(strings)
    out = np.asarray(model.predict(batches.batch(BATCH_SIZE), verbose=0))
    if out.shape != (len(texts), 1):
        raise ValueError(f"expected outputs of shape ({len(texts)}, 1), got {out.shape}")
    return out[:, 0]


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of reviews on the label's side of 0.5 (> 0.5 is positive); NaN counts as wrong."""
    probabilities = np.asarray(probabilities, dtype=float)
    correct = np.where(np.asarray(labels) == 1, probabilities > 0.5, probabilities <= 0.5)
    return float(np.mean(correct))


class AssignmentPlugin(Plugin):
    predict_probabilities = staticmethod(predict_probabilities)
    accuracy = staticmethod(accuracy)

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._controls: dict | None = None

    def load_hidden(self) -> tuple[np.ndarray, np.ndarray]:
        """(texts, labels) of the hidden sample, normalised like the course data."""
        from assignments.data import load_imdb

        texts, labels = load_imdb("test")
        keep = hidden_test_indices(labels)
        return texts[keep], labels[keep]

    def hidden_passages(self) -> list[str]:
        return [str(text) for text in self.hidden()[0]]

    def controls(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(texts, labels) of a fixed stratified sample of the visible test reviews."""
        if self._controls is None:
            from assignments.data import load_imdb

            texts, labels = load_imdb("test")
            visible = np.setdiff1d(np.arange(len(labels)), hidden_test_indices(labels))
            keep = visible[stratified(labels[visible], CONTROL_SIZE, CONTROL_SEED)]
            self._controls = {CONTROL: (texts[keep], labels[keep])}
        return self._controls

    def control_accuracies(self, model) -> dict[str, float]:
        """The model's accuracy on each control, by name."""
        return {
            name: accuracy(predict_probabilities(model, texts), labels)
            for name, (texts, labels) in self.controls().items()
        }

    def ablated_accuracy(self, model, probabilities: np.ndarray) -> float:
        """The hidden accuracy without the model's recurrence (``probabilities``: with it).

        Estimated on ``ABLATION_SIZE`` of the hidden reviews: the hidden accuracy less
        the accuracy the model loses there when its recurrence is removed.
        """
        from autograder.checks.validity import recurrence_removed

        texts, labels = self.hidden()
        keep = stratified(labels, ABLATION_SIZE, ABLATION_SEED)
        with recurrence_removed(model):
            without = predict_probabilities(model, texts[keep])
        loss = accuracy(probabilities[keep], labels[keep]) - accuracy(without, labels[keep])
        return accuracy(probabilities, labels) - loss

    def student_view(self, target: Path) -> Path:
        """An extracted ``aclImdb/``: all of train, the test split less the hidden reviews."""
        from assignments.data import imdb_member_pattern, load_imdb, locate

        done = target / "aclImdb" / ".complete"
        if done.exists():
            return target
        _, test_labels = load_imdb("test")
        members: dict[str, list[tuple[str, bytes]]] = {"train": [], "test": []}
        with tarfile.open(locate("imdb"), "r:gz") as archive:
            for member in archive:
                for split, found in members.items():
                    if member.isfile() and imdb_member_pattern(split).search(member.name):
                        found.append((member.name, archive.extractfile(member).read()))
        hidden = set(hidden_test_indices(test_labels).tolist())
        members["test"].sort()
        members["test"] = [m for index, m in enumerate(members["test"]) if index not in hidden]
        for name, payload in members["train"] + members["test"]:
            path = target / name[name.index("aclImdb/") :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)
        done.touch()
        return target

    def reference_run(self, seed: int) -> dict[str, ReferenceResult]:
        from solutions import a1_imdb_sentiment as solution

        texts, labels = self.hidden()
        _, models, histories = solution.train_all(seed, solution.FULL)
        results = {}
        for name, model in models.items():
            probabilities = predict_probabilities(model, texts)
            results[name] = ReferenceResult(
                value=accuracy(probabilities, labels),
                epochs=len(histories[name]["loss"]),
                seconds_per_epoch=round(histories[name]["seconds_per_epoch"], 2),
                controls=self.control_accuracies(model),
                ablated=self.ablated_accuracy(model, probabilities),
            )
        return results

    def bare_inference(self, judged) -> None:
        import keras
        import tensorflow as tf

        texts = tf.constant(list(self.hidden()[0]))
        for name in self.spec.calibration.models:
            model = keras.saving.load_model(judged.artifact(self.spec.artifact_paths[name]))
            model.predict(texts, batch_size=BATCH_SIZE, verbose=0)

    def reference_description(self) -> str:
        from dataclasses import asdict

        from solutions.a1_imdb_sentiment import FULL

        return (
            f"Reference settings {asdict(FULL)}; hidden sample of {HIDDEN_TEST_SIZE} test "
            "reviews, stratified."
        )

    def baselines(self) -> dict[str, float]:
        """Accuracy of predicting the majority class and of untrained models."""
        import keras

        from assignments.a1_imdb_sentiment.helpers import end_to_end
        from assignments.data import load_imdb
        from solutions import a1_imdb_sentiment as solution

        texts, labels = self.hidden()
        majority = float(np.mean(labels == np.bincount(labels).argmax()))
        baselines = {"majority_class": majority}
        config = solution.FULL
        train_texts, _ = load_imdb("train")
        vectorizer = solution.make_vectorizer(train_texts, config.vocab_size, config.seq_len)
        for cell_type in self.spec.calibration.models:
            keras.utils.set_random_seed(0)
            model = solution.build_model(
                cell_type, config.vocab_size, config.embedding_dim, config.units
            )
            probabilities = predict_probabilities(end_to_end(vectorizer, model), texts)
            baselines[f"untrained_{cell_type}"] = accuracy(probabilities, labels)
        return baselines
