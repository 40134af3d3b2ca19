"""Stage 1, intake (trusted): check a submission and prepare the copy that will run.

Intake finds the notebook, enforces the size limits, parses and validates it,
repairs missing or duplicate cell ids and restores the cells the student may
not change from the release notebook, the way nbgrader's ``OverwriteCells``
does, and further: cells the student deleted are put back in place. Answer
cells keep the student's source but get their nbgrader metadata back, so
points and grade ids cannot be edited. The result is written into a scratch
folder with a copy of the submitted files (regular files only).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.spec import Spec
from autograder.submissions import submitted_files

MB = 1024 * 1024
#: Files a notebook could load a model trained elsewhere from: never copied when it runs.
MODEL_SUFFIXES = (
    ".keras",
    ".h5",
    ".hdf5",
    ".npz",
    ".npy",
    ".pkl",
    ".pickle",
    ".joblib",
    ".ckpt",
    ".pt",
    ".tflite",
    ".pb",
    ".onnx",
    ".safetensors",
)


class IntakeError(RuntimeError):
    """The submission cannot be graded; the message is for the student."""


@dataclass
class Intake:
    notebook: Path
    notes: list[str] = field(default_factory=list)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_answer(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def intake(
    submission: Path, spec: Spec, release_notebook: Path, scratch: Path, *, execute: bool = True
) -> Intake:
    """Copy ``submission`` into ``scratch`` with its notebook checked and restored.

    When the notebook is to be executed, the models it ships are not copied: only
    what this run writes is graded (a model trained elsewhere, even on the hidden
    items of a public data set, never counts).
    """
    notes: list[str] = []
    found = find_notebook(submission, spec, release_notebook, notes)
    check_sizes(submission, found, spec)
    notebook, repaired = read_notebook(found)
    release = nbformat.read(release_notebook, as_version=4)
    notes += repaired
    notes += restore_cells(notebook, release)
    shipped = copy_submission(
        submission, scratch, skip=found, leave_out=shipped_models(spec) if execute else None
    )
    if shipped:
        notes.append(
            f"ignored {len(shipped)} model file(s) the submission shipped "
            f"({', '.join(shipped[:4])}{', ...' if len(shipped) > 4 else ''}): grading runs "
            "your notebook and grades only the files it writes"
        )
    target = scratch / spec.notebook
    nbformat.write(notebook, target)
    return Intake(target, notes)


def find_notebook(submission: Path, spec: Spec, release_notebook: Path, notes: list[str]) -> Path:
    """The submitted notebook; a single differently named one is accepted with a note."""
    expected = submission / spec.notebook
    if expected.is_file():
        return expected
    candidates = sorted(p for p in submission.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "no notebook"
        raise IntakeError(f"expected {spec.notebook} in the submission, found {found}")
    other = _assignment_of(candidates[0], release_notebook.parent.parent)
    if other and other != spec.id:
        raise IntakeError(
            f"{candidates[0].name} is a notebook of assignment '{other}', "
            f"not of '{spec.id}': was it submitted to the wrong assignment?"
        )
    notes.append(f"graded {candidates[0].name} as {spec.notebook}")
    return candidates[0]


def _assignment_of(path: Path, releases: Path) -> str | None:
    """The assignment (a folder of ``releases``) whose grade ids the notebook shares most."""
    try:
        ids = {grade_id(c) for c in json.loads(path.read_text("utf-8")).get("cells", [])}
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    best, best_overlap = None, 0
    for release in releases.glob("*/*.ipynb"):
        release_ids = {grade_id(c) for c in nbformat.read(release, as_version=4).cells} - {None}
        overlap = len(ids & release_ids)
        if overlap > best_overlap:
            best, best_overlap = release.parent.name, overlap
    return best


def check_sizes(submission: Path, notebook: Path, spec: Spec) -> None:
    size = notebook.stat().st_size
    if size > spec.limits.max_notebook_mb * MB:
        raise IntakeError(
            f"{notebook.name} is {size / MB:.1f} MB, over the limit of "
            f"{spec.limits.max_notebook_mb} MB: clear large outputs and resubmit"
        )
    total = sum(p.stat().st_size for p in submitted_files(submission))
    limit = spec.limits.max_artifacts_mb + spec.limits.max_notebook_mb
    if total > limit * MB:
        raise IntakeError(f"the submission is {total / MB:.1f} MB, over the limit of {limit} MB")


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode, list[str]]:
    """Parse, repair the cell ids of, and validate the notebook; say what was repaired."""
    try:
        raw = json.loads(path.read_text("utf-8"))
    except UnicodeDecodeError as err:
        raise IntakeError(f"{path.name} is not UTF-8 text: {err}") from err
    except json.JSONDecodeError as err:
        raise IntakeError(
            f"{path.name} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
            "it may have been truncated or edited by hand"
        ) from err
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise IntakeError(f"{path.name} is not a Jupyter notebook: it has no list of cells")
    fixed = repair_cell_ids(raw["cells"])
    try:
        notebook = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(notebook)
    except Exception as err:  # nbformat raises several unrelated types for bad documents
        raise IntakeError(f"{path.name} is not a valid Jupyter notebook: {err}") from err
    return notebook, [f"repaired {fixed} missing or duplicate cell id(s)"] if fixed else []


def repair_cell_ids(cells: list) -> int:
    """Give every cell a unique id (nbformat 4.5); return how many were fixed."""
    seen: set[str] = set()
    fixed = 0
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise IntakeError(f"cell {index} of the notebook is not a cell")
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not cell_id or cell_id in seen:
            cell_id = f"cell-{index}"
            while cell_id in seen:
                cell_id += "-r"
            cell["id"] = cell_id
            fixed += 1
        seen.add(cell_id)
    return fixed


def restore_cells(notebook: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[str]:
    """Put the release's locked and test cells back; keep answers, re-insert deleted cells."""
    released = {grade_id(c): c for c in release.cells if grade_id(c)}
    notes, cells, placed = [], [], set()
    for cell in notebook.cells:
        key = grade_id(cell)
        if key not in released or key in placed:
            if key:  # unknown or repeated grade id: keep the cell, but it grades nothing
                cell.metadata.pop("nbgrader", None)
            cells.append(cell)
            continue
        original = released[key]
        if is_answer(original):
            cell.metadata["nbgrader"] = dict(original.metadata["nbgrader"])
            cell.cell_type = original.cell_type
            restored = cell
        else:
            restored = _copy_cell(original, cell.get("id"))
            if restored.source != cell.source:
                notes.append(f"restored locked cell '{key}'")
        cells.append(restored)
        placed.add(key)
    position = 0
    for cell in release.cells:
        key = grade_id(cell)
        if not key:
            continue
        if key in placed:
            position = next(i for i, c in enumerate(cells) if grade_id(c) == key) + 1
            continue
        cells.insert(position, _copy_cell(cell, None))
        position += 1
        notes.append(f"re-inserted deleted cell '{key}'")
    notebook.cells = cells
    repair_cell_ids(notebook.cells)
    return notes


def _copy_cell(cell, cell_id):
    copy = nbformat.from_dict(json.loads(json.dumps(cell)))
    copy.metadata.pop("id", None)
    if copy.cell_type == "code":
        copy.outputs, copy.execution_count = [], None
    if cell_id:
        copy["id"] = cell_id
    else:
        copy.pop("id", None)
    return copy


def shipped_models(spec: Spec):
    """Whether a submitted file (relative path) is a model or an artifact this run must write."""
    folders = {
        Path(path).parts[0] for path in spec.artifact_paths.values() if len(Path(path).parts) > 1
    }
    declared = set(spec.artifact_paths.values())

    def is_model(relative: Path) -> bool:
        return (
            relative.as_posix() in declared
            or relative.parts[0] in folders
            or relative.name.lower().endswith(MODEL_SUFFIXES)
        )

    return is_model


def copy_submission(submission: Path, scratch: Path, skip: Path, leave_out=None) -> list[str]:
    """Copy the submitted regular files (not symlinks, not the notebook) into ``scratch``.

    Files for which ``leave_out(relative_path)`` is true are not copied; their names are
    returned.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    left_out = []
    for path in submitted_files(submission):
        if path == skip:
            continue
        relative = path.relative_to(submission)
        if leave_out is not None and leave_out(relative):
            left_out.append(relative.as_posix())
            continue
        target = scratch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return left_out
