"""Student releases: ``nbgrader generate_assignment`` plus a leak check.

The release of ``source/<id>/<id>.ipynb`` is written by nbgrader into
``release/<id>/``. Afterwards every release notebook is checked against its
source: no nbgrader markers, no outputs, and no line of a solution or hidden
test (a line that only the solution regions of the source contain). A release
that leaks is deleted and reported, never left behind.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.core.course import Course, nbgrader_api

MARKERS = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS|MARK SCHEME)")
REGION = re.compile(r"^\s*#+ BEGIN (SOLUTION|HIDDEN TESTS)\s*$(.*?)^\s*#+ END \1\s*$", re.M | re.S)


class ReleaseError(RuntimeError):
    """nbgrader failed, or the release leaks solutions or hidden tests."""


@dataclass(frozen=True)
class Release:
    assignment_id: str
    folder: Path
    notebooks: tuple[Path, ...]


def generate(assignment_id: str, course: Course) -> Release:
    """Write ``release/<assignment_id>/`` from ``source/`` and prove it leaks nothing."""
    source = course.source_dir(assignment_id)
    if not any(source.glob("*.ipynb")):
        raise ReleaseError(f"no source notebook in {source}")
    result = nbgrader_api(course.root).generate_assignment(assignment_id, force=True)
    folder = course.release_dir(assignment_id)
    if not result["success"]:
        raise ReleaseError(
            f"nbgrader generate_assignment {assignment_id} failed:\n"
            + (result.get("error") or result.get("log") or "")
        )
    notebooks = tuple(sorted(folder.glob("*.ipynb")))
    problems = [
        f"{released.name}: {problem}"
        for released in notebooks
        for problem in find_leaks(source / released.name, released)
    ]
    problems += leaks_in_other_files(source, folder)
    if problems:
        shutil.rmtree(folder)
        raise ReleaseError("release deleted, it leaks:\n  " + "\n  ".join(problems))
    return Release(assignment_id, folder, notebooks)


def hidden_lines(source: nbformat.NotebookNode) -> set[str]:
    """Lines that appear only inside solutions or hidden tests of ``source``."""
    hidden, visible = set(), set()
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        text = cell.source
        if cell.cell_type == "markdown" and meta.get("solution"):
            hidden.update(_lines(text))
            continue
        inside = "".join(match.group(2) for match in REGION.finditer(text))
        hidden.update(_lines(inside))
        visible.update(_lines(REGION.sub("", text)))
    return hidden - visible


def find_leaks(source_path: Path, release_path: Path) -> list[str]:
    """What ``release_path`` gives away of ``source_path`` (empty when nothing)."""
    source = nbformat.read(source_path, as_version=4)
    release = nbformat.read(release_path, as_version=4)
    problems = []
    secret = hidden_lines(source)
    for index, cell in enumerate(release.cells):
        if MARKERS.search(cell.source):
            problems.append(f"cell {index} still has an nbgrader marker")
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count):
            problems.append(f"cell {index} has outputs")
        leaked = sorted(secret & set(_lines(cell.source)))
        if leaked:
            problems.append(f"cell {index} contains solution lines, e.g. {leaked[0]!r}")
    return problems


def leaks_in_other_files(source: Path, folder: Path) -> list[str]:
    """Files of the release other than notebooks that hold solution or hidden-test lines."""
    secret = set()
    for notebook in source.glob("*.ipynb"):
        secret |= hidden_lines(nbformat.read(notebook, as_version=4))
    problems = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix != ".ipynb":
            text = path.read_text("utf-8", errors="replace")
            if MARKERS.search(text) or secret & set(_lines(text)):
                problems.append(f"{path.relative_to(folder)} holds solution or hidden-test lines")
    return problems


def _lines(text: str) -> list[str]:
    """Stripped lines long enough to be specific (short ones like ``return x`` recur)."""
    return [line.strip() for line in text.splitlines() if len(line.strip()) >= 12]
