"""Stage 1, intake (trusted): check a submission and prepare the copy that will run.

Intake finds the notebook, enforces the size limits, parses and validates it,
repairs missing or duplicate cell ids and restores the cells the student may
not change from the release notebook, the way nbgrader's ``OverwriteCells``
does, and further: cells the student deleted are put back in place. Answer
cells keep the student's source but get their nbgrader metadata back, so
points and grade ids cannot be edited; cells whose metadata an editor dropped
are matched to the release's by cell id, content and position, and get it
back. The result is written into a scratch folder with a copy of the submitted
files (regular files only).
"""

from __future__ import annotations

import difflib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.core.safe_json import JSONError, load_json
from autograder.core.spec import Spec
from autograder.core.units import MB
from autograder.grading.collect import submitted_files, symbolic_links
from autograder.term.late import TIMESTAMP_FILE

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


#: How the notes on submitted files kept out of the run begin (the run log repeats them).
IGNORED, LEFT_OUT = "ignored", "left out"


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

    Only the files the spec lets in are copied (:func:`entering`): when the notebook
    is to be executed, the models it ships are not copied (only what this run writes
    is graded: a model trained elsewhere, even on the hidden items of a public data
    set, never counts), and no other file enters beyond the spec's small allowance.
    """
    notes: list[str] = []
    found = find_notebook(submission, spec, notes)
    check_sizes(submission, found, spec)
    notebook, repaired = read_notebook(found)
    other = _assignment_of(notebook.cells, release_notebook.parent.parent, spec.id)
    if other:
        raise IntakeError(
            f"{found.name} is a notebook of assignment '{other}', not of '{spec.id}': "
            "was it submitted to the wrong assignment?"
        )
    release = nbformat.read(release_notebook, as_version=4)
    notes += repaired
    notes += restore_cells(notebook, release)
    left_out = copy_submission(submission, scratch, skip=found, keep=entering(spec, execute))
    notes += left_out_notes(left_out, spec)
    target = scratch / spec.notebook
    nbformat.write(notebook, target)
    return Intake(target, notes)


def find_notebook(submission: Path, spec: Spec, notes: list[str]) -> Path:
    """The submitted notebook; a single differently named one is accepted with a note.

    No symbolic link is followed: a notebook that is one is refused, wherever it points.
    """
    expected = submission / spec.notebook
    if expected.is_symlink():
        target = expected.resolve()
        where = "inside" if target.is_relative_to(submission.resolve()) else "outside"
        raise IntakeError(
            f"{spec.notebook} is a symbolic link to a file {where} the submission, not a "
            "notebook: links are not followed, submit the notebook file itself"
        )
    if expected.is_file():
        return expected
    candidates = sorted(p for p in submission.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "no notebook"
        raise IntakeError(f"expected {spec.notebook} in the submission, found {found}")
    notes.append(f"graded {candidates[0].name} as {spec.notebook}")
    return candidates[0]


def _assignment_of(cells: list, releases: Path, assignment_id: str) -> str | None:
    """Another assignment (a folder of ``releases``) whose notebook this one is, or None.

    That is the release sharing the most grade ids and cell ids with ``cells``, when it
    shares more than the release of ``assignment_id`` does.
    """

    def marks(notebook_cells: list) -> set[str]:
        return {mark for c in notebook_cells for mark in (grade_id(c), c.get("id")) if mark}

    submitted = marks(cells)
    overlaps = {
        release.parent.name: len(submitted & marks(nbformat.read(release, as_version=4).cells))
        for release in sorted(releases.glob("*/*.ipynb"))
    }
    best = max(overlaps, key=overlaps.get, default=None)
    if best is None or best == assignment_id or not overlaps[best]:
        return None
    return best if overlaps[best] > overlaps.get(assignment_id, 0) else None


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
        raw = load_json(path.read_bytes(), path.name)
    except JSONError as err:
        hint = "; it may have been truncated or edited by hand" if "valid JSON" in str(err) else ""
        raise IntakeError(f"{err}{hint}") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise IntakeError(f"{path.name} is not a Jupyter notebook: it has no list of cells")
    fixed = repair_cell_ids(raw["cells"])
    if raw.get("nbformat") == 4 and raw.get("nbformat_minor", 0) < 5:
        raw["nbformat_minor"] = 5  # cell ids need nbformat 4.5; Colab still saves 4.0
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


STUB_LINES = frozenset({"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"})
SIMILAR = 0.9  # a locked cell this similar to the release's (difflib ratio) is that cell, edited
RESEMBLES = 0.5  # an unpaired locked or ungraded cell this similar keeps its place when aligning
COMPARED = 8  # at most this many student cells are compared in full with a locked cell
MANY = 3  # more cells than this repaired the same way are named in one note


def restore_cells(notebook: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[str]:
    """Put the release's locked and test cells back; keep answers, re-insert deleted cells.

    Cells whose nbgrader metadata an editor dropped first get it back from the
    release cell they are paired with (:func:`match_cells`).
    """
    pairs, methods = match_cells(notebook.cells, release.cells)
    for index in methods:
        cell, original = notebook.cells[index], release.cells[pairs[index]]
        cell.metadata["nbgrader"] = dict(original.metadata["nbgrader"])
        if not is_answer(original) and cell.source.strip() == original.source.strip():
            cell.source = original.source  # only whitespace differs: nothing to report
    notes = [_metadata_note(methods)] if methods else []
    released = {grade_id(c): c for c in release.cells if grade_id(c)}
    cells, placed, edited = [], set(), []
    for cell in notebook.cells:
        key = grade_id(cell)
        if key not in released or key in placed:
            # no, an unknown or a repeated grade id: keep the cell, but it grades nothing
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
                edited.append(key)
        cells.append(restored)
        placed.add(key)
    anchors = {j: cells[i] for i, j in pairs.items()}  # release index -> its cell, as placed
    position, inserted = 0, []
    for j, cell in enumerate(release.cells):
        if j in anchors:
            position = next(k for k, c in enumerate(cells) if c is anchors[j]) + 1
        elif grade_id(cell):
            cells.insert(position, _copy_cell(cell, None))
            position += 1
            inserted.append(grade_id(cell))
    notes += _cell_notes("restored locked cell", "restored {} locked cells", edited)
    notes += _cell_notes("re-inserted deleted cell", "re-inserted {} deleted cells", inserted)
    notebook.cells = cells
    repair_cell_ids(notebook.cells)
    return notes


def match_cells(cells: list, release_cells: list) -> tuple[dict[int, int], dict[int, str]]:
    """Pair the student's cells with the release's: ``{student index: release index}``.

    A cell that claims a grade id is paired by it (the first claim wins). A cell
    without one, whose nbgrader metadata an editor may have dropped (VS Code, Colab,
    ``ClearMetadataPreprocessor``, cells pasted into a fresh notebook), is paired, in
    order of confidence: by its cell id; with a locked or ungraded cell, by its source
    (equal but for whitespace, else a difflib ratio of at least ``SIMILAR``); with an
    answer cell, by position: the cells left between two pairs are aligned in order,
    same cell type. Cells paired with nothing stay unpaired.

    Also returns how each cell paired here with a graded cell was found ("cell id",
    "content" or "position"). Pairing earns nothing: a locked or test cell gets the
    release's source back, an answer cell only the metadata of its place.
    """
    index = {grade_id(c): j for j, c in enumerate(release_cells) if grade_id(c)}
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for i, cell in enumerate(cells):
        j = index.get(grade_id(cell))
        if j is not None and j not in taken:
            pairs[i] = j
            taken.add(j)
    free = [i for i, c in enumerate(cells) if grade_id(c) is None]
    methods: dict[int, str] = {}

    def pair(i: int, j: int, method: str) -> None:
        pairs[i] = j
        taken.add(j)
        if grade_id(release_cells[j]):
            methods[i] = method

    ids = {c.get("id"): j for j, c in enumerate(release_cells) if c.get("id")}
    for i in free:
        j = ids.get(cells[i].get("id"))
        if j is None or j in taken:
            continue
        if not is_answer(release_cells[j]) or cells[i].cell_type == release_cells[j].cell_type:
            pair(i, j, "cell id")

    fixed = [j for j, c in enumerate(release_cells) if not is_answer(c) and c.source.strip()]
    for exact in (True, False):  # equal sources first, then similar ones
        for j in fixed:
            if j in taken:
                continue
            original = release_cells[j]
            candidates = [
                i for i in free if i not in pairs and cells[i].cell_type == original.cell_type
            ]
            scores = _similarities([cells[i].source for i in candidates], original.source, exact)
            before = max((i for i, k in pairs.items() if k < j), default=-1)
            ranked = [  # the most similar; of equals, the first after the pair before
                (-score, i <= before, i)
                for i, score in zip(candidates, scores, strict=True)
                if score
            ]
            if ranked:
                pair(min(ranked)[2], j, "content")

    bounds = [(-1, -1), *_increasing(sorted(pairs.items())), (len(cells), len(release_cells))]
    for (i0, j0), (i1, j1) in zip(bounds, bounds[1:], strict=False):
        students = [i for i in free if i0 < i < i1 and i not in pairs]
        originals = [j for j in range(j0 + 1, j1) if j not in taken]
        aligned = _align([cells[i] for i in students], [release_cells[j] for j in originals])
        for a, b in aligned:
            if is_answer(release_cells[originals[b]]):  # the others only hold their place
                pair(students[a], originals[b], "position")
    return pairs, methods


def _similarities(sources: list[str], original: str, exact: bool) -> list[float]:
    """How similar each source is to ``original``, outer whitespace stripped.

    1 when equal; else, unless ``exact``, difflib's ratio where it is at least
    ``SIMILAR``; else 0. Only the ``COMPARED`` sources likeliest to pass (by difflib's
    cheap upper bounds) are compared in full: many long cells cannot stall intake.
    """
    b = original.strip()
    scores = [1.0 if source.strip() == b else 0.0 for source in sources]
    if exact:
        return scores
    matcher = difflib.SequenceMatcher(None, b=b, autojunk=False)
    bounds = []
    for k, source in enumerate(sources):
        a = source.strip()
        if scores[k] or 2 * min(len(a), len(b)) < SIMILAR * (len(a) + len(b)):
            continue
        matcher.set_seq1(a)
        if (quick := matcher.quick_ratio()) >= SIMILAR:
            bounds.append((-quick, k))
    for _, k in sorted(bounds)[:COMPARED]:
        matcher.set_seq1(sources[k].strip())
        ratio = matcher.ratio()
        scores[k] = ratio if ratio >= SIMILAR else 0.0
    return scores


def _word_likeness(source: str, original: str) -> float:
    """difflib's ratio of the two sources' words; 0 where its upper bounds are below RESEMBLES."""
    a, b = source.split(), original.split()
    if not a or not b or 2 * min(len(a), len(b)) < RESEMBLES * (len(a) + len(b)):
        return 0.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.ratio() if matcher.quick_ratio() >= RESEMBLES else 0.0


def _lines(source: str) -> frozenset[str]:
    return frozenset(line.strip() for line in source.splitlines()) - {""}


def _fit(cell, lines: frozenset[str], original, original_lines: frozenset[str]) -> float | None:
    """How well ``cell`` (its ``lines``) fits the place of the release's ``original``.

    None: not at all. The score grows with the share of the original's lines, stub
    aside, that the cell still has.
    """
    if cell.cell_type != original.cell_type:
        return None
    wanted = original_lines - STUB_LINES
    kept = len(wanted & lines) / len(wanted) if wanted else 0.0
    if is_answer(original):  # any cell may be the answer; one that kept the stub's marker more so
        return 1 + 2 * kept + 0.5 * bool(STUB_LINES & original_lines & lines)
    likeness = max(kept, _word_likeness(cell.source, original.source))
    return 1 + 2 * likeness if likeness >= RESEMBLES else None


def _align(students: list, originals: list) -> list[tuple[int, int]]:
    """Order-keeping pairs (student position, release position) of the highest total fit.

    Ties go to the earliest student cell: a same-type cell after an answer is taken
    for an addition, as Jupyter inserts new cells below the current one.
    """
    n, m = len(students), len(originals)
    if not n or not m:
        return []
    lines = [_lines(c.source) for c in students]
    original_lines = [_lines(c.source) for c in originals]
    fit = [
        [_fit(s, ls, o, lo) for o, lo in zip(originals, original_lines, strict=True)]
        for s, ls in zip(students, lines, strict=True)
    ]
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for a in reversed(range(n)):
        for b in reversed(range(m)):
            take = fit[a][b] + best[a + 1][b + 1] if fit[a][b] is not None else 0.0
            best[a][b] = max(take, best[a + 1][b], best[a][b + 1])
    aligned, a, b = [], 0, 0
    while a < n and b < m:
        if fit[a][b] is not None and fit[a][b] + best[a + 1][b + 1] == best[a][b]:
            aligned.append((a, b))
            a, b = a + 1, b + 1
        elif best[a + 1][b] == best[a][b]:
            a += 1
        else:
            b += 1
    return aligned


def _increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest run of ``pairs`` (sorted by student index) whose release indexes increase."""
    chains: list[list[tuple[int, int]]] = []  # chains[k]: the longest ending with pairs[k]
    for k, (_, j) in enumerate(pairs):
        before = [chains[m] for m in range(k) if pairs[m][1] < j]
        chains.append([*max(before, key=len, default=[]), pairs[k]])
    return max(chains, key=len, default=[])


def _metadata_note(methods: dict[int, str]) -> str:
    used = [m for m in ("cell id", "content", "position") if m in methods.values()]
    how = f"{', '.join(used[:-1])} and {used[-1]}" if len(used) > 1 else used[0]
    count = len(methods)
    return (
        f"restored the grading metadata of {count} cell{'s' * (count != 1)} (matched by {how}: "
        "your notebook's cells had lost it, as some editors do)"
    )


def _cell_notes(one: str, many: str, keys: list[str]) -> list[str]:
    """A note per cell for a few cells, else one note naming them all."""
    if len(keys) <= MANY:
        return [f"{one} '{key}'" for key in keys]
    return [f"{many.format(len(keys))}: " + ", ".join(f"'{key}'" for key in keys)]


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


def is_model(relative: Path, spec: Spec) -> bool:
    """Whether a submitted file is a model or an artifact the run must write itself."""
    folders = {
        Path(path).parts[0] for path in spec.artifact_paths.values() if len(Path(path).parts) > 1
    }
    return (
        relative.as_posix() in spec.artifact_paths.values()
        or relative.parts[0] in folders
        or relative.name.lower().endswith(MODEL_SUFFIXES)
    )


def entering(spec: Spec, execute: bool):
    """``keep(relative, size)``: '' when the submitted file enters the run, else why not.

    Executed: the files the spec's allowance matches, up to its total size, never a
    model. Not executed: the declared artifacts too (they are what is graded).
    """
    allowance = spec.allowance
    budget = [allowance.max_kb * 1024]

    def keep(relative: Path, size: int) -> str:
        if not execute and relative.as_posix() in spec.artifact_paths.values():
            return ""
        if execute and is_model(relative, spec):
            return "model"
        if not any(relative.match(pattern) for pattern in allowance.patterns):
            return "undeclared"
        if size > budget[0]:
            return "over the allowance"
        budget[0] -= size
        return ""

    return keep


def left_out_notes(left_out: dict[str, list[str]], spec: Spec) -> list[str]:
    """The feedback's lines on the submitted files that did not enter the run."""

    def names(paths: list[str]) -> str:
        return ", ".join(paths[:4]) + (", ..." if len(paths) > 4 else "")

    notes = []
    if models := left_out.get("model"):
        notes.append(
            f"{IGNORED} {len(models)} model file(s) the submission shipped ({names(models)}): "
            "grading runs your notebook and grades only the files it writes"
        )
    if links := left_out.get("link"):
        notes.append(
            f"{LEFT_OUT} {len(links)} symbolic link(s) ({names(links)}): links are not "
            "followed, submit the files themselves"
        )
    others = left_out.get("undeclared", []) + left_out.get("over the allowance", [])
    others = sorted(path for path in others if path != TIMESTAMP_FILE)  # nbgrader's, read by batch
    if others:
        allowed = spec.allowance
        extra = (
            f" (and {', '.join(allowed.patterns)} files up to {allowed.max_kb} KB in all)"
            if allowed.patterns and allowed.max_kb
            else ""
        )
        notes.append(
            f"{LEFT_OUT} {len(others)} submitted file(s) ({names(others)}): only the notebook"
            f"{extra} enters the grading run; get data from the course's loaders"
        )
    return notes


def copy_submission(submission: Path, scratch: Path, skip: Path, keep) -> dict[str, list[str]]:
    """Copy the submitted regular files (not symlinks, not the notebook) into ``scratch``.

    ``keep(relative_path, size)`` says why a file stays out ('' to copy it); the
    files left out are returned by that reason, in path order (links under "link").
    """
    scratch.mkdir(parents=True, exist_ok=True)
    left_out: dict[str, list[str]] = {}
    if links := symbolic_links(submission):
        left_out["link"] = [link.relative_to(submission).as_posix() for link in links]
    for path in sorted(submitted_files(submission)):
        if path == skip:
            continue
        relative = path.relative_to(submission)
        why = keep(relative, path.stat().st_size)
        if why:
            left_out.setdefault(why, []).append(relative.as_posix())
            continue
        target = scratch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return left_out
