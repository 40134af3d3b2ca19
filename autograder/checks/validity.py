"""Did the model earn its metric? Behaviour checks that every plugin's hidden checks share.

The graph check (:mod:`autograder.checks.architecture`) reads where the recurrent layers
sit; these checks measure what they do, on the same hidden data as the metric:

- :func:`recurrence_removed`: every recurrent layer of a model starts each time step
  from a zero state, so nothing is carried from one step to the next (an
  ``initial_state`` computed from the input is dropped too). A model whose metric
  barely moves does not need its recurrence: :class:`Ablation` says so with the
  numbers.
- :func:`lookahead`: the largest change of a sequence model's outputs up to step
  ``t`` when only the inputs after ``t`` change. A language model must not see
  what it predicts.
- :class:`Contamination`: the metric on the hidden data against the same metric
  on comparable data that an honest notebook never trained on either (and on
  perturbed copies of the hidden data). A model markedly better on the hidden data
  than on every control is flagged for the instructor's review.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

#: Largest change of an output up to step t, when only inputs after t change, that is
#: still numerical noise (outputs are compared as given: logits or probabilities).
LOOKAHEAD_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- recurrence


def recurrent_layers(model) -> list:
    """Every recurrent layer (``keras.layers.RNN``) of ``model``: nested models and both
    directions of a ``Bidirectional`` opened."""
    import keras

    found = []

    def visit(layer) -> None:
        if isinstance(layer, keras.layers.Bidirectional):
            visit(layer.forward_layer)
            visit(layer.backward_layer)
        elif isinstance(layer, keras.layers.RNN):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            for inner in layer.layers:
                visit(inner)

    visit(model)
    return found


def _stateless_loop(self, sequences, initial_state, mask, training=False):
    """``RNN.inner_loop`` with the state zeroed before every step (bound to one layer)."""
    from keras import ops, tree
    from keras.src import backend

    if tree.is_nested(mask):
        mask = mask[0]
    keywords = {"training": training} if getattr(self.cell, "_call_has_training_arg", 0) else {}

    def step(inputs, states):
        output, new_states = self.cell(
            inputs, tree.map_structure(ops.zeros_like, states), **keywords
        )
        return output, new_states if tree.is_nested(new_states) else [new_states]

    return backend.rnn(
        step,
        sequences,
        initial_state if tree.is_nested(initial_state) else [initial_state],
        go_backwards=self.go_backwards,
        mask=mask,
        unroll=self.unroll,
        input_length=sequences.shape[1],
        zero_output_for_mask=self.zero_output_for_mask,
        return_all_outputs=self.return_sequences,
    )


def _forget_compiled(model) -> None:
    """Drop the traced predict functions of ``model`` and its nested models."""
    import keras

    for layer in [model, *model._flatten_layers(include_self=False)]:
        if isinstance(layer, keras.Model):
            layer.predict_function = None


@contextlib.contextmanager
def recurrence_removed(model) -> Iterator[list[str]]:
    """Inside the block, every recurrent layer of ``model`` carries nothing between steps.

    Each step starts from a zero state, as at the first step of a sequence; the
    weights are untouched. Yields the layers' names; restores the model on exit.
    Predict through ``model.predict`` or ``model(...)`` inside the block (a
    function traced before it keeps the recurrence).
    """
    layers = recurrent_layers(model)
    for layer in layers:
        layer.inner_loop = types.MethodType(_stateless_loop, layer)
    _forget_compiled(model)
    try:
        yield [layer.name for layer in layers]
    finally:
        for layer in layers:
            del layer.inner_loop
        _forget_compiled(model)


STEP_WORDS = {"word": "one word to the next", "character": "one character to the next"}


@dataclass(frozen=True)
class Ablation:
    """A metric with and without the recurrence, and the loss of quality the spec requires."""

    kind: str  # the recurrent layer's kind, "LSTM"
    metric: str  # "accuracy", "bits per character", "MAE ratio"
    with_state: float
    without_state: float
    required: float  # the least loss of quality that shows the recurrence does work
    higher_is_better: bool
    step: str = "time step"  # what one step is: "word", "character", "hour"

    @property
    def loss(self) -> float:
        """How much worse the model is without its recurrence (positive: worse)."""
        difference = self.with_state - self.without_state
        return difference if self.higher_is_better else -difference

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.loss)) and self.loss >= self.required

    def describe(self) -> str:
        """What was measured, pass or fail."""
        moved = "falls to" if self.higher_is_better else "rises to"
        verb = moved if self.passed else "stays at"
        return (
            f"with the {self.kind}'s state reset at every {self.step}, {self.metric} {verb} "
            f"{self.without_state:.3f} ({self.with_state:.3f} with it; the recurrence must be "
            f"worth at least {self.required:.3f})"
        )

    def problem(self) -> str:
        """Why the metric is not graded ('' when the recurrence does the work)."""
        if self.passed:
            return ""
        return (
            f"{self.describe()}: the model does not use what the {self.kind} carries from "
            f"{STEP_WORDS.get(self.step, f'one {self.step} to the next')}. The metric counts "
            f"only when the {self.kind} does recurrent work, not a layer in front of it"
        )


# --------------------------------------------------------------------------- causality


@dataclass(frozen=True)
class LookAhead:
    """How much the outputs up to a step change when only later inputs change."""

    change: float  # the largest absolute change of an output at or before the cut
    cut: int  # the step after which the inputs were changed (0-based, last kept)

    @property
    def looks_ahead(self) -> bool:
        return not np.isfinite(self.change) or self.change > LOOKAHEAD_TOLERANCE

    def problem(self, what: str, step: str = "input") -> str:
        """Why the sequence model is not graded ('' when it looks only back); ``step`` names
        one input ("character")."""
        if not self.looks_ahead:
            return ""
        return (
            f"{what} sees what it predicts: changing only the {step}s after position "
            f"{self.cut} changes its outputs at positions up to {self.cut} (by up to "
            f"{self.change:.3g}). A model that generates a sequence may look only back: a "
            f"Bidirectional layer or a centred (non-causal) convolution reads the next {step}s, "
            "which suits classification and tagging, not generation. Use a forward LSTM/GRU "
            "(and padding='causal' for any Conv1D)"
        )


def lookahead(
    predict: Callable[[np.ndarray], np.ndarray],
    inputs: np.ndarray,
    replace: Callable[[np.ndarray, int], np.ndarray],
    cuts: Sequence[int] | None = None,
) -> LookAhead:
    """The worst :class:`LookAhead` of ``predict`` over ``cuts`` (default: a quarter, half
    and three quarters of the sequence).

    ``predict`` maps inputs ``(batch, T, ...)`` to outputs ``(batch, T, ...)``;
    ``replace(inputs, t)`` returns a copy whose steps after ``t`` are other values.
    """
    length = inputs.shape[1]
    cuts = cuts or sorted({max(0, length * k // 4 - 1) for k in (1, 2, 3)})
    before = np.asarray(predict(inputs), dtype=float)
    worst = LookAhead(change=0.0, cut=cuts[0])
    for cut in cuts:
        after = np.asarray(predict(replace(inputs, cut)), dtype=float)
        change = float(np.max(np.abs(after[:, : cut + 1] - before[:, : cut + 1])))
        if not np.isfinite(change) or change > worst.change:
            worst = LookAhead(change=change if np.isfinite(change) else float("inf"), cut=cut)
    return worst


# --------------------------------------------------------------------------- contamination


@dataclass(frozen=True)
class Contamination:
    """The metric on the hidden data against controls the notebook never trained on either.

    ``margin`` is how much better than the best control the hidden data may score
    before the model is flagged (calibrated on the reference over seeds).
    """

    metric: str
    hidden: float
    controls: dict[str, float]  # control name ("validation stretch") -> the same metric
    margin: float
    higher_is_better: bool

    @property
    def gap(self) -> float:
        """How much better the hidden data scores than the best control (positive: better)."""
        best = (max if self.higher_is_better else min)(self.controls.values())
        return self.hidden - best if self.higher_is_better else best - self.hidden

    @property
    def flagged(self) -> bool:
        return bool(self.controls) and self.gap > self.margin

    def describe(self) -> str:
        controls = "; ".join(f"{name} {value:.3f}" for name, value in self.controls.items())
        return (
            f"{self.metric} {self.hidden:.3f} on the hidden data against {controls} on "
            f"comparable data no notebook trains on (flagged when better by more than "
            f"{self.margin:.3f}; here {self.gap:+.3f})"
        )

    def reason(self) -> str:
        """Why the points wait for review ('' when not flagged)."""
        if not self.flagged:
            return ""
        return (
            f"{self.describe()}: a model that does markedly better on the hidden data than on "
            "data like it may have been trained on the hidden data"
        )
