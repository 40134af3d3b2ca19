"""The interface an assignment implements on the grader side.

An assignment's plugin folder (see :mod:`autograder.core.spec`) may hold ``plugin.py``
with a class ``AssignmentPlugin(Plugin)``. The engine calls only the methods
below and never branches on an assignment's name:

- :meth:`Plugin.student_view`: the data the notebook may see when it runs for
  grading (the hidden held-out part removed);
- :meth:`Plugin.hidden`: the held-out data the hidden checks grade on, built
  once per grading process;
- :meth:`Plugin.reference_run` and :meth:`Plugin.baselines`: the reference
  training and the trivial baselines that ``rnn-course calibrate`` turns into
  thresholds (:mod:`autograder.authoring.calibrate`);
- :meth:`Plugin.feedback_figures` and :meth:`Plugin.feedback_texts`: what the
  student's page shows beside the checks, made in the judge's child after the
  checks ran (what the checks computed is at hand through :meth:`Plugin.remember`).

An assignment without ``plugin.py`` gets this base class: every declared data
set is visible whole, nothing is held out, and it cannot be calibrated.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autograder.core.spec import Spec

PLUGIN_FILE = "plugin.py"
_LOADED: dict[Path, Plugin] = {}


@dataclass(frozen=True)
class ReferenceResult:
    """One model of one reference run: the judge's metric on hidden data and the training cost."""

    value: float
    epochs: int
    seconds_per_epoch: float
    # the same metric with the recurrence removed
    # (:func:`autograder.checks.validity.recurrence_removed`)
    ablated: float | None = None
    # the same metric on comparable data the reference never trained on, by control name
    controls: dict[str, float] | None = None


class Plugin:
    """The grader-side part of an assignment; one instance per grading process."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._hidden: Any = None
        self._judged: tuple[str, dict[str, Any]] = ("", {})  # what the checks left, by name

    def remember(self, judged, name: str, value: Any) -> None:
        """Keep what a hidden check computed on the submission ``judged`` (a
        :class:`autograder.core.course.Judged`) for its feedback; forgotten at the next one."""
        if self._judged[0] != str(judged.root):
            self._judged = (str(judged.root), {})
        self._judged[1][name] = value

    def remembered(self, judged) -> dict[str, Any]:
        """What the checks kept (:meth:`remember`) for the submission ``judged``."""
        return self._judged[1] if self._judged[0] == str(judged.root) else {}

    def feedback_figures(self, judged) -> dict[str, str]:
        """Figures for the student's page of ``judged``: title -> PNG data URL (none here).

        Run in the judge's child after the checks; capped by the engine
        (:func:`autograder.grading.judge.extras.feedback_extras`).
        """
        return {}

    def feedback_texts(self, judged) -> dict[str, str]:
        """Plain texts for the student's page of ``judged`` (title -> text; none here)."""
        return {}

    def student_view(self, target: Path) -> Path:
        """Fill ``target`` with what the notebook may read while it runs; return it."""
        from assignments import data

        target.mkdir(parents=True, exist_ok=True)
        for name in self.spec.datasets:
            data.copy_to(name, target)
        return target

    @staticmethod
    def write_view(name: str, payload: bytes, target: Path) -> Path:
        """Write a course view of data set ``name`` (part of it held out) into ``target``.

        The student package's loaders accept it in place of the published file
        because of the manifest beside it (``assignments.data.check_file``).
        """
        import hashlib
        import json

        from assignments import data

        path = target / data.DATASETS[name].filename
        target.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        manifest = {"dataset": name, "sha256": hashlib.sha256(payload).hexdigest()}
        data.view_manifest(path).write_text(json.dumps(manifest))
        return path

    def load_hidden(self) -> Any:
        """The held-out data the hidden checks grade on (``None``: nothing held out)."""
        return None

    def hidden(self) -> Any:
        """:meth:`load_hidden`, once per process: from the grader's cache when it holds it."""
        if self._hidden is None:
            cached = self.hidden_cache()
            self._hidden = read_arrays(cached) if cached.is_file() else self.load_hidden()
        return self._hidden

    def hidden_cache(self) -> Path:
        """Where :meth:`cache_hidden` keeps the held-out data (keyed by the plugin's code)."""
        from assignments.data import cache_dir

        code = self.spec.folder / PLUGIN_FILE
        key = hashlib.sha256(code.read_bytes() if code.is_file() else b"").hexdigest()[:16]
        return cache_dir() / "hidden" / f"{self.spec.id}-{key}.npz"

    def cache_hidden(self) -> None:
        """Build the held-out data once for a whole batch (run by the trusted parent).

        Grading workers then read it instead of parsing the data sets again. Only
        tuples of arrays and strings are cached; anything else is rebuilt per worker.
        """
        path = self.hidden_cache()
        if path.is_file():
            return
        arrays = to_arrays(self.load_hidden())
        if arrays is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.part")
            with open(partial, "wb") as handle:
                np.savez(handle, **arrays)
            partial.replace(path)

    def controls(self) -> dict[str, Any]:
        """Comparable data that an honest notebook never trains on either, by a name the
        student understands ("your validation stretch"); the hidden checks score each model
        on it too (:class:`autograder.checks.validity.Contamination`). Built once per process."""
        return {}

    def hidden_passages(self) -> list[str]:
        """The hidden data as text, for the scan of submitted sources (none by default)."""
        return []

    def reference_run(self, seed: int) -> dict[str, ReferenceResult]:
        """Train the reference solution with ``seed``; its metric per model, as the judge scores."""
        raise NotImplementedError(f"assignment '{self.spec.id}' has no reference training")

    def bare_inference(self, judged) -> None:
        """Load the exported models of ``judged`` and predict the hidden data, nothing more.

        The baseline ``rnn-course bench ID FOLDER --judge`` compares the judge with.
        """
        raise NotImplementedError(f"assignment '{self.spec.id}' has no bare inference to time")

    def reference_description(self) -> str:
        """One sentence on the reference and the hidden data, for the calibration table."""
        return ""

    def baselines(self) -> dict[str, float]:
        """The metric of trivial models (majority class, unigram, persistence...), by name."""
        raise NotImplementedError(f"assignment '{self.spec.id}' declares no trivial baselines")


def to_arrays(value: Any) -> dict[str, np.ndarray] | None:
    """A tuple of arrays (strings allowed) as plain arrays for ``np.savez``; None if not one."""
    items = value if isinstance(value, tuple) else (value,)
    arrays: dict[str, np.ndarray] = {}
    for index, item in enumerate(items):
        if isinstance(item, str):
            arrays[f"{index}_text"] = np.frombuffer(item.encode(), dtype=np.uint8)
        elif isinstance(item, np.ndarray) and item.dtype == object:
            if not all(isinstance(text, str) for text in item):
                return None
            encoded = [text.encode() for text in item]
            arrays[f"{index}_strings"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            arrays[f"{index}_ends"] = np.cumsum([len(text) for text in encoded], dtype=np.int64)
        elif isinstance(item, np.ndarray):
            arrays[f"{index}_array"] = item
        else:
            return None
    arrays["tuple"] = np.array(isinstance(value, tuple))
    return arrays


def read_arrays(path: Path) -> Any:
    """What :func:`to_arrays` stored at ``path`` (no pickles)."""
    with np.load(path, allow_pickle=False) as stored:
        items: dict[int, Any] = {}
        for name in stored.files:
            index, _, kind = name.partition("_")
            if kind == "text":
                items[int(index)] = stored[name].tobytes().decode()
            elif kind == "strings":
                data, ends = stored[name].tobytes(), stored[f"{index}_ends"]
                starts = np.concatenate([[0], ends[:-1]])
                texts = [data[a:b].decode() for a, b in zip(starts, ends, strict=True)]
                items[int(index)] = np.array(texts, dtype=object)
            elif kind == "array":
                items[int(index)] = stored[name]
        values = tuple(items[index] for index in sorted(items))
        return values if bool(stored["tuple"]) else values[0]


def load_plugin(spec: Spec) -> Plugin:
    """The plugin of ``spec`` (``plugin.py`` of its folder, else the base class), cached."""
    if spec.folder not in _LOADED:
        path = spec.folder / PLUGIN_FILE
        if not path.is_file():
            _LOADED[spec.folder] = Plugin(spec)
        else:
            name = f"rnn_plugin_{spec.id}_{len(_LOADED)}"  # unique per folder in this process
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            _LOADED[spec.folder] = module.AssignmentPlugin(spec)
    return _LOADED[spec.folder]
