"""What the helpers of every assignment share; each helpers module re-exports what students use.

- :class:`EpochTimer` records the wall time of each training epoch;
- :func:`iter_layers` walks a model's nested layers;
- :func:`save_models` (or its parts :func:`refuse_lambda_layers` and
  :func:`save_and_reload`): the export round trip (save, reload with
  ``safe_mode=True`` as the grader does, compare the predictions);
- :class:`Histories`: the training histories of ``history.json``, checked on export
  and by the public checks;
- :func:`contract_paths`, :func:`own_split_tiers`, :func:`read_json`,
  :func:`first_line`: small pieces of the public checks.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from assignments.check import load_contract


class ExportError(RuntimeError):
    """A model or a file the notebook exports cannot be exported as the grader needs it."""


class EpochTimer(keras.callbacks.Callback):
    """Keras callback: ``seconds`` holds the wall time of each epoch, ``mean`` their mean."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    @property
    def mean(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else float("nan")


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


def require_keys(what: str, given, names: tuple[str, ...]) -> None:
    """ExportError unless ``given`` (``models``, ``histories``...) is a dict keyed by ``names``."""
    if not isinstance(given, dict) or set(given) != set(names):
        keys = sorted(given) if isinstance(given, dict) else type(given).__name__
        raise ExportError(f"{what} must have exactly the keys {names}; got {keys}")


def refuse_lambda_layers(name: str, model) -> None:
    """ExportError if ``model`` holds a Lambda layer: the grader's ``safe_mode`` refuses it."""
    if any(isinstance(layer, keras.layers.Lambda) for layer in iter_layers(model)):
        raise ExportError(
            f"models['{name}'] contains a Lambda layer, which the grader refuses to load "
            "(safe_mode); use built-in layers only"
        )


def save_and_reload(
    model,
    path: Path,
    predict: Callable,
    expected,
    tolerance: float = 1e-5,
    advice: str = "use built-in layers only",
) -> None:
    """Save ``model`` to ``path`` and reload it with ``safe_mode=True``, as the grader will.

    ``predict(reloaded)`` must then match ``expected``, what the model in memory
    predicted, within ``tolerance`` (not compared when ``expected`` is None).
    ExportError otherwise, with ``advice`` when it does not reload.
    """
    model.save(path)
    try:
        reloaded = keras.saving.load_model(path, safe_mode=True)
        actual = None if expected is None else predict(reloaded)
    except Exception as err:
        raise ExportError(
            f"{path} was saved but does not reload with safe_mode=True ({err}); {advice}"
        ) from err
    if expected is not None and not np.allclose(expected, actual, rtol=tolerance, atol=tolerance):
        raise ExportError(
            f"{path} reloads but predicts differently from the model in memory "
            f"(max difference {np.max(np.abs(expected - actual)):.3g}); it would be "
            "graded as it reloads, not as you trained it"
        )


def save_models(
    models: dict,
    out: Path,
    predict: Callable,
    inputs: str,
    fix: str,
    tolerance: float = 1e-5,
    advice: str = "use built-in layers only",
) -> dict[str, Path]:
    """Save each of ``models`` as ``out/<name>.keras``, checked as the grader will load it.

    Lambda layers are refused; ``predict(model)`` must run on ``inputs`` (else ``fix``
    says what to do) and pass its own checks (ExportError); then
    :func:`save_and_reload` proves that the saved file predicts the same.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, model in models.items():
        refuse_lambda_layers(name, model)
        try:
            expected = predict(model)
        except ExportError as err:
            raise ExportError(f"models['{name}']: {err}") from None
        except Exception as err:
            raise ExportError(
                f"models['{name}'] cannot predict on {inputs} ({first_line(err)}); {fix}"
            ) from err
        paths[name] = out / f"{name}.keras"
        save_and_reload(model, paths[name], predict, expected, tolerance, advice)
    return paths


@dataclass(frozen=True)
class Histories:
    """``history.json``: for each of ``names``, the Keras lists ``keys`` and ``seconds_per_epoch``.

    ``hint`` says how training produces the lists.
    """

    names: tuple[str, ...]
    keys: tuple[str, ...]
    hint: str = "fit with validation data"

    def record(self, name: str, history) -> dict:
        """The entry of ``history.json`` for a Keras History (or its dict); ExportError if not."""
        record = dict(getattr(history, "history", history))
        for key in self.keys:
            values = record.get(key)
            if not isinstance(values, list | tuple) or not values:
                raise ExportError(
                    f"histories['{name}'] needs a non-empty list '{key}' ({self.hint})"
                )
        if len({len(record[key]) for key in self.keys}) != 1:
            raise ExportError(f"histories['{name}']: the lists {self.keys} differ in length")
        seconds = record.get("seconds_per_epoch")
        if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
            raise ExportError(
                f"histories['{name}'] needs 'seconds_per_epoch', a positive number (see EpochTimer)"
            )
        return {
            **{key: [float(v) for v in record[key]] for key in self.keys},
            "seconds_per_epoch": float(seconds),
        }

    def check_file(self, folder: Path, relative: str, title: str) -> tuple[str, bool, str]:
        """The public check of ``folder/relative`` as written on export."""
        records = read_json(folder, relative)
        if records is None:
            return title, False, f"not checked: {relative} is missing or not JSON"
        if not isinstance(records, dict) or set(records) != set(self.names):
            keys = sorted(records) if isinstance(records, dict) else type(records).__name__
            return title, False, f"needs exactly the keys {self.names}; got {keys}"
        try:
            for name in self.names:
                if not isinstance(records[name], dict):
                    raise ExportError(f"histories['{name}'] must be a dict of lists")
                self.record(name, records[name])
        except ExportError as err:
            return title, False, str(err)
        except (TypeError, ValueError) as err:
            return title, False, f"values must be numbers ({err})"
        epochs = ", ".join(f"{name} {len(records[name]['loss'])}" for name in self.names)
        return title, True, f"epochs: {epochs}"


def contract_paths(assignment_id: str) -> dict[str, str]:
    """Each artifact's path in the submission folder, as the public contract names it."""
    return {artifact.name: artifact.path for artifact in load_contract(assignment_id).artifacts}


def is_course_view(dataset: str) -> bool:
    """Whether the copy of ``dataset`` found is a course view (its graded part left out)."""
    from assignments import data

    try:
        return data.view_manifest(data.locate(dataset, download=False)).is_file()
    except data.DataError:
        return False


def own_split_tiers(tiers: dict, name: str, dataset: str) -> dict:
    """The contract's tiers of model ``name``; their ``gap`` (how much worse the reference
    did on the graded data than on the split the notebook keeps) applies only to a course view
    of ``dataset``: the full data set's split may hold graded data itself."""
    found = dict(tiers[name])
    if not is_course_view(dataset):
        found.pop("gap", None)
    return found


def read_json(folder: Path, relative: str):
    """The JSON document at ``folder/relative``; None when it is missing or not JSON."""
    try:
        return json.loads((folder / relative).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def first_line(err: BaseException) -> str:
    """The first line of an error's message (Keras errors span many), at most 200 characters."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
