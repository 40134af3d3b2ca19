"""The pytest plugin of the hidden checks: fixtures every check may use.

:mod:`autograder.grading.judge` loads it with ``-p autograder.checks.fixtures`` and passes
``--submission`` (a judged folder, :class:`autograder.core.course.Judged`) and
``--assignment-folder`` (the plugin folder of the assignment). Everything is
read as data: Keras files with ``safe_mode=True``, ``.npz`` with
``allow_pickle=False``, JSON through :func:`autograder.core.safe_json.load_json` (nested
at most 100 levels).
"""

from __future__ import annotations

import gc
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder.core import spec as specs
from autograder.core.course import Judged
from autograder.core.plugin import load_plugin
from autograder.core.safe_json import JSONError, load_json
from autograder.core.text import error_text


class NotGraded(pytest.fail.Exception):
    """A check that cannot be graded because of ``cause``, a problem of the whole run."""

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message, pytrace=False)
        self.cause = cause


def pytest_addoption(parser):
    parser.addoption("--submission", required=True, help="run-stage output folder")
    parser.addoption("--assignment-folder", required=True, help="the assignment's plugin folder")


def pytest_collection_modifyitems(items):
    for item in items:
        points, cell = item.get_closest_marker("points"), item.get_closest_marker("grade_cell")
        if points is None or cell is None:
            raise pytest.UsageError(f"{item.nodeid}: a hidden check needs points and grade_cell")
        doc = (getattr(item, "function", None).__doc__ or item.name).strip()
        title = doc.splitlines()[0]
        if hasattr(item, "callspec"):
            title = f"{title} [{item.callspec.id}]"
        item.user_properties += [
            ("points", points.args[0]),
            ("grade_cell", cell.args[0]),
            ("title", title),
        ]


def pytest_sessionfinish(session):
    """Free the submission's models before the worker judges the next one."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    gc.collect()


@pytest.fixture(scope="session")
def judged(request) -> Judged:
    return Judged(Path(request.config.getoption("--submission")))


@pytest.fixture(scope="session")
def spec(request) -> specs.Spec:
    return specs.load_folder(Path(request.config.getoption("--assignment-folder")))


@pytest.fixture(scope="session")
def plugin(spec):
    """The assignment's plugin: ``plugin.hidden()`` is its held-out data."""
    return load_plugin(spec)


@pytest.fixture(scope="session")
def thresholds(spec) -> dict[str, float]:
    return spec.thresholds


@pytest.fixture
def measured(record_property):
    """``measured(text, value, model)``: what the check measured, with its threshold.

    The text is shown pass or fail; the number ``value`` of the model ``model`` goes
    into the check's result for the class report (against the spec's thresholds).
    """

    def record(text: str, value: float | None = None, model: str | None = None) -> None:
        record_property("measured", text)
        if value is not None:
            record_property("value", float(value))
            record_property("model", model)

    return record


@pytest.fixture
def withhold(record_property):
    """``withhold(reason)``: if this check passes, its points wait for the instructor's review.

    For a metric the model may not have earned honestly (see
    :class:`autograder.checks.validity.Contamination`): the student's page says why, the
    log and the class report list it, and ``rnn-course review`` releases the points.
    """

    def hold(reason: str) -> None:
        record_property("review", reason)

    return hold


@pytest.fixture(scope="session")
def run_result(judged) -> dict:
    path = judged.run_json
    return json.loads(path.read_text()) if path.is_file() else {}


def _missing(what: str, run_result: dict):
    """Fail: ``what`` (a file, a call) is missing, tied to the run's problem when it had one."""
    status = run_result.get("status")
    if status in (None, "ok", "not_executed"):
        why = {
            "ok": ", although the notebook ran without errors",
            "not_executed": ": the submission does not include it",
        }.get(status, "")
        pytest.fail(what + why, pytrace=False)
    problem = run_result.get("message") or f"the run ended with status {status}"
    raise NotGraded(f"{what}: {problem}", cause=problem)


@pytest.fixture(scope="session")
def artifact_path(judged, spec, run_result):
    """``artifact_path(name)``: the exported file, or the check fails saying why it is missing."""

    def get(name: str) -> Path:
        relative = spec.artifact_paths[name]
        path = judged.artifact(relative)
        if not path.is_file():
            _missing(f"missing artifact {relative}", run_result)
        return path

    return get


@pytest.fixture(scope="session")
def keras_artifact(artifact_path):
    """``keras_artifact(name)``: the exported model, loaded with ``safe_mode=True``."""
    loaded: dict[str, object] = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = _load_keras(artifact_path(name))
        if isinstance(loaded[name], str):
            pytest.fail(loaded[name], pytrace=False)
        return loaded[name]

    return get


@pytest.fixture(scope="session")
def json_artifact(artifact_path):
    """``json_artifact(name)``: the exported JSON document."""

    def get(name: str):
        path = artifact_path(name)
        try:
            return load_json(path.read_bytes(), path.name)
        except JSONError as err:
            pytest.fail(str(err), pytrace=False)

    return get


@pytest.fixture(scope="session")
def npz_artifact(artifact_path):
    """``npz_artifact(name)``: the arrays of an exported ``.npz`` (no pickles)."""

    def get(name: str) -> dict[str, np.ndarray]:
        return _load_npz(artifact_path(name))

    return get


@pytest.fixture(scope="session")
def probe(judged, spec, run_result):
    """``probe(name)``: what the graded function returned when the grader called it."""
    index_path = judged.probe_index
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    probes = {p.name: p for p in spec.probes}
    loaded: dict[str, object] = {}
    unreadable: dict[str, str] = {}  # why a probe's result could not be read

    def get(name: str):
        declared = probes[name]
        call = f"{declared.function}({_kwargs_text(declared.kwargs)})"
        entry = index.get(name) or {}
        if entry.get("ename"):
            raised = error_text(str(entry["ename"]), str(entry.get("evalue") or ""))
            pytest.fail(f"{call} raised {raised}", pytrace=False)
        if entry.get("problem"):
            pytest.fail(f"{call}: {entry['problem']}", pytrace=False)
        if not entry.get("ok"):
            _missing(f"{call} was not called", run_result)
        if name not in loaded and name not in unreadable:
            path = judged.probes / str(entry.get("file"))
            if declared.output == "keras":
                model = _load_keras(path)
                (unreadable if isinstance(model, str) else loaded)[name] = model
            elif declared.output == "npz":
                loaded[name] = _load_npz(path)
            else:
                try:
                    loaded[name] = load_json(path.read_bytes(), path.name)
                except JSONError as err:
                    unreadable[name] = str(err)
        if name in unreadable:
            pytest.fail(f"{call}: {unreadable[name]}", pytrace=False)
        return loaded[name]

    return get


def _kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


def _load_keras(path: Path):
    """The model at ``path``, or a message saying why it cannot be loaded safely."""
    import keras

    if not path.is_file():
        return f"{path.name} is missing"
    if not zipfile.is_zipfile(path):
        return (
            f"{path.name} is damaged: it is not a complete .keras file (truncated, or not "
            "saved with model.save); export it again"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # any failure to load is the student's file, reported as such
        text = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        return f"{path.name} could not be loaded with safe_mode=True: {type(err).__name__}: {text}"


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except (ValueError, OSError) as err:
        pytest.fail(f"{path.name} is not a valid .npz of plain arrays: {err}", pytrace=False)
