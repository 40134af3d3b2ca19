"""What the generators of the sample classes share.

Each ``make_sample_class.py`` edits its assignment's reference and release notebooks
into one submission per student and writes them with :func:`write`, into
``tests/files/<assignment>/submitted/<student>/<assignment>/<assignment>.ipynb``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

FILES = Path(__file__).resolve().parent
ROOT = FILES.parents[1]
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def cell_by_id(notebook, grade_id: str):
    cells = notebook.cells
    return next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def edit(notebook, grade_id: str, old: str, new: str) -> None:
    cell = cell_by_id(notebook, grade_id)
    if old not in cell.source:
        raise SystemExit(f"cell '{grade_id}' no longer contains {old!r}: update this script")
    cell.source = cell.source.replace(old, new)


def reference(assignment: str) -> nbformat.NotebookNode:
    """The source notebook with its solutions as a student's answers (markers removed)."""
    notebook = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    for cell in notebook.cells:
        cell.source = MARKER.sub("", cell.source)
    return notebook


def release(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)


def render(submission: nbformat.NotebookNode | str) -> str:
    """The file of a submission: a notebook without outputs, or text as it is."""
    if isinstance(submission, str):
        return submission
    cleaned = copy.deepcopy(submission)
    for cell in cleaned.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(cleaned) + "\n"


def notebook_path(assignment: str, student: str) -> Path:
    """Where the class of ``assignment`` keeps the notebook of ``student``."""
    return FILES / assignment / "submitted" / student / assignment / f"{assignment}.ipynb"


def write(assignment: str, students: dict[str, nbformat.NotebookNode | str]) -> None:
    """Write each student's submission into the class of ``assignment``."""
    for student, submission in students.items():
        target = notebook_path(assignment, student)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(submission))
        print("wrote", target.relative_to(ROOT))
