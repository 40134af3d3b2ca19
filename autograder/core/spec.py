"""What an assignment is, declaratively: its plugin folder's ``spec.toml``.

An assignment is a plugin folder, ``autograder/plugins/<id>/`` (built in) or
``<course>/plugins/<id>/`` (added by a course), holding:

- ``spec.toml``: title, data sets, limits of the sandboxed run, probes, thresholds,
  the curves its feedback plots, what its release never ships, how it is calibrated;
- ``plugin.py`` (optional): a :class:`autograder.core.plugin.Plugin` subclass named
  ``AssignmentPlugin`` (the student's data view, hidden data, reference training);
- ``check_*.py`` and ``conftest.py``: the hidden checks, run by :mod:`autograder.grading.judge`;
- ``calibration.json``: thresholds written by ``rnn-course calibrate``, which take
  priority over the defaults of ``spec.toml``.

The public part of the contract (the notebook's name and the artifacts it
exports) lives in the student package, ``assignments/<id>/contract.toml``, so
students can check their exports; a course plugin may declare it in its own
``spec.toml`` instead.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import assignments
from autograder.core.units import MB

BUILTIN_PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
STUDENT_PACKAGE = Path(assignments.__file__).resolve().parent
ARTIFACT_KINDS = ("keras", "json", "npz")


class SpecError(ValueError):
    """An assignment spec is missing or malformed."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of the sandboxed run (disk too) and of what a submission may contain."""

    notebook_timeout_s: int = 1800
    cell_timeout_s: int = 900
    memory_mb: int = 8192
    max_processes: int = 512
    max_output_mb: int = 20
    max_notebook_mb: int = 20
    max_artifacts_mb: int = 200
    max_scratch_mb: int = 2048
    # the judge's child process, which loads the (untrusted) exported models
    judge_timeout_s: int = 120
    judge_memory_mb: int = 4096

    @property
    def max_submission_bytes(self) -> int:
        return (self.max_artifacts_mb + self.max_notebook_mb) * MB


@dataclass(frozen=True)
class Artifact:
    """A file the notebook exports, relative to the notebook's folder."""

    name: str
    path: str
    kind: str
    description: str = ""


@dataclass(frozen=True)
class Probe:
    """A call of a graded function, made by the grader after the notebook ran.

    ``output`` says how the return value crosses the sandbox boundary:
    ``keras`` (a model saved as ``.keras``), ``npz`` (an array) or ``json``.
    """

    name: str
    function: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    output: str = "json"


@dataclass(frozen=True)
class Curves:
    """Learning curves the feedback plots: a JSON artifact of Keras-style histories.

    The artifact maps each model's name to ``{metric: [value per epoch], "val_" + metric: ...}``.
    """

    artifact: str
    metrics: tuple[str, ...] = ("loss",)


@dataclass(frozen=True)
class Calibration:
    """How ``rnn-course calibrate`` turns reference runs into thresholds.

    For each model, the full-credit threshold ``<metric>_<model>`` is the worst
    seed's value less ``margin`` (``better = "higher"``) or plus it (``"lower"``);
    the basic tier ``<metric>_basic_<model>`` sits halfway between the best
    trivial baseline and that threshold.
    """

    metric: str
    models: tuple[str, ...]
    better: str = "higher"
    margin: float = 0.0
    # validity: the loss of quality required without the recurrence is this share of the
    # reference's smallest loss over seeds (``min_ablation_loss_<model>``), and a model is
    # flagged when the hidden data beats the controls by more than the reference's largest
    # gap plus ``contamination_slack`` (``contamination_margin_<model>``)
    ablation_share: float = 0.25
    contamination_slack: float = 0.0


@dataclass(frozen=True)
class Allowance:
    """Which submitted files besides the notebook enter the grading run.

    Files matching ``patterns`` (globs on the path inside the submission), up to
    ``max_kb`` in all; without execution, the declared artifacts too. Everything
    else stays out of the sandbox and is listed in the feedback: a notebook cannot
    bring a copy of the hidden data in under an innocent name.
    """

    patterns: tuple[str, ...] = ()
    max_kb: int = 0


@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    notebook: str
    folder: Path
    datasets: dict[str, str] = field(default_factory=dict)
    limits: Limits = Limits()
    artifacts: tuple[Artifact, ...] = ()
    probes: tuple[Probe, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)
    curves: Curves | None = None
    release_ignore: tuple[str, ...] = ()
    calibration: Calibration | None = None
    allowance: Allowance = Allowance()

    @property
    def artifact_paths(self) -> dict[str, str]:
        return {a.name: a.path for a in self.artifacts}


def plugin_roots(course_root: Path | None = None) -> list[Path]:
    """Folders holding plugin folders, highest priority first."""
    roots = [Path(course_root) / "plugins"] if course_root is not None else []
    return [*roots, BUILTIN_PLUGINS]


def available(course_root: Path | None = None) -> list[str]:
    """Ids of the assignments that have a spec."""
    return sorted(
        {
            path.parent.name
            for root in plugin_roots(course_root)
            for path in root.glob("*/spec.toml")
        }
    )


def load(assignment_id: str, course_root: Path | None = None) -> Spec:
    """The spec of ``assignment_id``, with its public contract and calibrated thresholds."""
    for root in plugin_roots(course_root):
        if (root / assignment_id / "spec.toml").is_file():
            return load_folder(root / assignment_id)
    known = ", ".join(available(course_root)) or "none"
    raise SpecError(f"unknown assignment '{assignment_id}'; known: {known}")


def load_folder(folder: Path) -> Spec:
    """The spec of the plugin folder ``folder``."""
    folder = Path(folder).resolve()
    path = folder / "spec.toml"
    raw = {**_read_toml(STUDENT_PACKAGE / folder.name / "contract.toml"), **_read_toml(path)}
    try:
        calibration = raw.get("calibration")
        curves = raw.get("feedback", {}).get("curves")
        spec = Spec(
            id=raw["id"],
            title=raw["title"],
            notebook=raw["notebook"],
            folder=folder,
            datasets=dict(raw.get("datasets", {})),
            limits=Limits(**raw.get("limits", {})),
            artifacts=tuple(
                Artifact(name=name, **fields) for name, fields in raw.get("artifacts", {}).items()
            ),
            probes=tuple(Probe(**fields) for fields in raw.get("probes", [])),
            thresholds={**raw.get("thresholds", {}), **_calibrated(folder)},
            curves=Curves(curves["artifact"], tuple(curves["metrics"])) if curves else None,
            release_ignore=tuple(raw.get("release", {}).get("ignore", ())),
            calibration=Calibration(
                metric=calibration["metric"],
                models=tuple(calibration["models"]),
                better=calibration.get("better", "higher"),
                margin=float(calibration.get("margin", 0.0)),
                ablation_share=float(calibration.get("ablation_share", 0.25)),
                contamination_slack=float(calibration.get("contamination_slack", 0.0)),
            )
            if calibration
            else None,
            allowance=Allowance(
                patterns=tuple(raw.get("intake", {}).get("allow", ())),
                max_kb=int(raw.get("intake", {}).get("allow_kb", 0)),
            ),
        )
    except (KeyError, TypeError) as err:
        raise SpecError(f"{path}: missing or malformed entry {err}") from err
    _validate(spec, path)
    return spec


def _validate(spec: Spec, path: Path) -> None:
    if spec.id != path.parent.name:
        raise SpecError(f"{path}: id '{spec.id}' does not match its folder '{path.parent.name}'")
    for item in (*spec.artifacts, *spec.probes):
        kind = item.kind if isinstance(item, Artifact) else item.output
        if kind not in ARTIFACT_KINDS:
            raise SpecError(f"{path}: '{item.name}' has kind '{kind}', not one of {ARTIFACT_KINDS}")
    if spec.curves and spec.curves.artifact not in spec.artifact_paths:
        raise SpecError(
            f"{path}: feedback curves name an unknown artifact '{spec.curves.artifact}'"
        )
    if spec.calibration and spec.calibration.better not in ("higher", "lower"):
        raise SpecError(f"{path}: calibration.better must be 'higher' or 'lower'")


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: {err}") from err


def _calibrated(folder: Path) -> dict[str, float]:
    path = folder / "calibration.json"
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text())["thresholds"])
