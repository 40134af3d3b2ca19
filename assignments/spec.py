"""What an assignment is, declaratively: read from ``assignments/<id>/spec.toml``.

The spec names the notebook, the data sets the student may see, the limits of
the sandboxed run, the artifacts the notebook must export (the grading
contract), the probes (graded functions the grader calls on inputs it chooses)
and the thresholds of the hidden checks. Thresholds calibrated by
``rnn-course calibrate`` live beside it in ``calibration.json`` and take
priority over the defaults written in the spec.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ASSIGNMENTS_DIR = Path(__file__).resolve().parent
ARTIFACT_KINDS = ("keras", "json", "npz")


class SpecError(ValueError):
    """An assignment spec is missing or malformed."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of the sandboxed run and of what a submission may contain."""

    notebook_timeout_s: int = 1800
    cell_timeout_s: int = 900
    memory_mb: int = 8192
    max_processes: int = 512
    max_output_mb: int = 20
    max_notebook_mb: int = 20
    max_artifacts_mb: int = 200


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
class Spec:
    id: str
    title: str
    notebook: str
    datasets: dict[str, str]
    limits: Limits
    artifacts: tuple[Artifact, ...]
    probes: tuple[Probe, ...]
    thresholds: dict[str, float]
    folder: Path

    @property
    def artifact_paths(self) -> dict[str, str]:
        return {a.name: a.path for a in self.artifacts}


def available() -> list[str]:
    """Ids of the assignments that have a spec."""
    return sorted(p.parent.name for p in ASSIGNMENTS_DIR.glob("*/spec.toml"))


def load(assignment_id: str) -> Spec:
    """The spec of ``assignment_id``, with calibrated thresholds applied."""
    folder = ASSIGNMENTS_DIR / assignment_id
    path = folder / "spec.toml"
    if not path.is_file():
        raise SpecError(
            f"unknown assignment '{assignment_id}'; known: {', '.join(available()) or 'none'}"
        )
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    try:
        artifacts = tuple(
            Artifact(name=name, **fields) for name, fields in raw.get("artifacts", {}).items()
        )
        probes = tuple(Probe(**fields) for fields in raw.get("probes", []))
        spec = Spec(
            id=raw["id"],
            title=raw["title"],
            notebook=raw["notebook"],
            datasets=dict(raw.get("datasets", {})),
            limits=Limits(**raw.get("limits", {})),
            artifacts=artifacts,
            probes=probes,
            thresholds={**raw.get("thresholds", {}), **_calibrated(folder)},
            folder=folder,
        )
    except (KeyError, TypeError) as err:
        raise SpecError(f"{path}: {err}") from err
    if spec.id != assignment_id:
        raise SpecError(f"{path}: id '{spec.id}' does not match its folder '{assignment_id}'")
    for item in (*spec.artifacts, *spec.probes):
        kind = item.kind if isinstance(item, Artifact) else item.output
        if kind not in ARTIFACT_KINDS:
            raise SpecError(f"{path}: '{item.name}' has kind '{kind}', not one of {ARTIFACT_KINDS}")
    return spec


def _calibrated(folder: Path) -> dict[str, float]:
    path = folder / "calibration.json"
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text())["thresholds"])
