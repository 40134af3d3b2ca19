"""``rnn-course-student check``: the public checks of a submission, run locally.

Like ``otter check``, it tells a student before submitting what the grader will
find, as the public contract (``assignments/<id>/contract.toml``) says:

- the notebook the contract names exists, is a valid notebook, ran top to bottom
  (every code cell executed, in order, no error output) and holds no unanswered
  stub of the release (``# YOUR CODE HERE`` / ``raise NotImplementedError()``,
  ``YOUR ANSWER HERE``);
- every artifact of the contract exists and is a regular file; a ``.keras``
  model loads with ``safe_mode=True`` (as the grader loads it), a ``.json``
  file parses, an ``.npz`` file loads without pickles; and the files were
  written by the notebook's last run (its cells' execution times where it
  records them, else its file's modification time);
- the assignment's own public checks, when ``assignments/<id>/helpers.py``
  defines ``public_checks(folder) -> list[(title, outcome, message)]``: the
  export format, and each model measured on the student's own test split
  against the grading tiers of the contract (:func:`tier_verdict`).

Each check is PASS, WARN (points are likely lost) or FAIL (points are lost).
The measurements are estimates on data the student has: the grade comes from
hidden checks on data they have not seen. Importing this module is cheap:
TensorFlow is imported only when a model is loaded.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ASSIGNMENTS_DIR = Path(__file__).resolve().parent
CONTRACT = "contract.toml"
MAX_MESSAGE = 300
PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
#: The stubs the release puts in each answer cell (nbgrader's ClearSolutions).
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
#: The line of the code stub that fails when it runs.
STUB_RAISE = CODE_STUB.splitlines()[-1]
#: Clock and file-system slack when comparing a file's time with a cell's.
CLOCK_SLACK_S = 2.0
#: Without recorded execution times: how much older than the notebook file an
#: export may be before it looks like an earlier run's (a run plus final edits).
FILE_TIME_SLACK_S = 3600.0


class UsageError(ValueError):
    """A wrong argument: unknown assignment, missing folder, no notebook there."""


@dataclass(frozen=True)
class Result:
    title: str
    status: str  # PASS, WARN or FAIL
    message: str

    def line(self) -> str:
        return f"{self.status}  {self.title}: {self.message}"


@dataclass(frozen=True)
class Artifact:
    name: str
    path: str
    kind: str
    description: str = ""


@dataclass(frozen=True)
class Contract:
    assignment_id: str
    notebook: str
    artifacts: tuple[Artifact, ...]
    tiers: dict = field(default_factory=dict)


def known_ids() -> list[str]:
    """Ids of the assignments that have a public contract."""
    return sorted(path.parent.name for path in ASSIGNMENTS_DIR.glob(f"*/{CONTRACT}"))


def load_contract(assignment_id: str) -> Contract:
    path = ASSIGNMENTS_DIR / assignment_id / CONTRACT
    if assignment_id not in known_ids():
        raise UsageError(
            f"unknown assignment '{assignment_id}'; known: {', '.join(known_ids()) or 'none'}"
        )
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    artifacts = tuple(
        Artifact(name=name, **fields) for name, fields in raw.get("artifacts", {}).items()
    )
    return Contract(assignment_id, raw["notebook"], artifacts, raw.get("tiers", {}))


def one_line(err: BaseException | str) -> str:
    """An error as one short line (Keras errors span many lines)."""
    text = str(err).strip()
    first = text.splitlines()[0].strip() if text else type(err).__name__
    if isinstance(err, BaseException) and not isinstance(err, RuntimeError | ValueError):
        first = f"{type(err).__name__}: {first}"
    return first if len(first) <= MAX_MESSAGE else first[: MAX_MESSAGE - 3] + "..."


# --------------------------------------------------------------------------- the notebook


def read_notebook(folder: Path, name: str) -> tuple[Result, dict | None]:
    """The check that ``folder/name`` is a valid notebook, and the notebook (None if not)."""
    title = f"notebook {name}"
    path = folder / name
    if not path.exists():
        others = sorted(p.name for p in folder.glob("*.ipynb"))
        return Result(
            title,
            FAIL,
            f"not found in {folder}; found {', '.join(others)}: the grader looks for "
            f"'{name}' (rename your notebook)",
        ), None
    if path.is_symlink() or not path.is_file():
        return Result(title, FAIL, "is not a regular file (submit the notebook itself)"), None
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return Result(title, FAIL, f"is not valid JSON ({one_line(err)}); was it truncated?"), None
    if (
        not isinstance(notebook, dict)
        or notebook.get("nbformat") != 4
        or not isinstance(notebook.get("cells"), list)
    ):
        return Result(title, FAIL, "is JSON but not a Jupyter notebook in nbformat 4"), None
    try:  # nbformat comes with Jupyter; validate with it where it is installed
        import nbformat
    except ImportError:
        pass
    else:
        try:
            nbformat.validate(nbformat.reads(json.dumps(notebook), as_version=4))
        except Exception as err:
            return Result(title, FAIL, f"is not a valid notebook ({one_line(err)})"), None
    return Result(title, PASS, f"valid notebook, {len(notebook['cells'])} cells"), notebook


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _cell_name(cells: list[dict], index: int) -> str:
    grade_id = cells[index].get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"cell {index + 1} ({grade_id})" if grade_id else f"cell {index + 1}"


def _code_cells(notebook: dict) -> list[int]:
    """Indices of the code cells that hold code."""
    return [
        index
        for index, cell in enumerate(notebook["cells"])
        if cell.get("cell_type") == "code" and _source(cell).strip()
    ]


def check_ran(notebook: dict) -> Result:
    """Did every code cell run, in order, without an error output (what the grader's run needs)?"""
    title = "the notebook ran top to bottom"
    cells, code = notebook["cells"], _code_cells(notebook)
    counts = [cells[index].get("execution_count") for index in code]
    not_run = [index for index, count in zip(code, counts, strict=True) if count is None]
    rerun = "run it top to bottom (Restart Kernel and Run All Cells) and save it"
    if code and len(not_run) == len(code):
        return Result(title, FAIL, f"none of its {len(code)} code cells has run: {rerun}")
    if not_run:
        return Result(
            title,
            FAIL,
            f"{len(not_run)} of {len(code)} code cells have not run, the first "
            f"{_cell_name(cells, not_run[0])}: {rerun}",
        )
    for index in code:
        for output in cells[index].get("outputs", []):
            if output.get("output_type") == "error":
                error = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
                return Result(
                    title,
                    FAIL,
                    f"{_cell_name(cells, index)} ended with {one_line(error)}; the grader's "
                    "run stops at the first error",
                )
    for before, after in zip(code, code[1:], strict=False):
        if cells[after]["execution_count"] <= cells[before]["execution_count"]:
            return Result(
                title,
                WARN,
                f"{_cell_name(cells, after)} ran before {_cell_name(cells, before)}: the "
                f"grader runs the cells in order, so {rerun}",
            )
    if counts and counts != list(range(1, len(counts) + 1)):
        return Result(
            title,
            WARN,
            f"in order, but numbered {counts[0]} to {counts[-1]} for {len(counts)} cells: "
            f"other code ran in between; {rerun}",
        )
    return Result(title, PASS, f"all {len(code)} code cells ran in order, no error output")


def unanswered(notebook: dict) -> list[str]:
    """The cells a student writes in (not locked) that still hold the release's stub."""
    cells, found = notebook["cells"], []
    for index, cell in enumerate(cells):
        if cell.get("metadata", {}).get("nbgrader", {}).get("locked"):
            continue
        source = _source(cell)
        code_stub = cell.get("cell_type") == "code" and any(
            line.strip() == STUB_RAISE for line in source.splitlines()
        )
        text_stub = cell.get("cell_type") == "markdown" and TEXT_STUB in source
        if code_stub or text_stub:
            found.append(_cell_name(cells, index))
    return found


def check_stubs(notebook: dict) -> Result:
    title = "every answer is filled in"
    stubs = unanswered(notebook)
    if stubs:
        return Result(
            title,
            FAIL,
            f"{len(stubs)} cells still hold the release's stub ('{STUB_RAISE}' or "
            f"'{TEXT_STUB}'): {', '.join(stubs)}",
        )
    return Result(title, PASS, "no stub of the release left")


def _timestamp(text) -> datetime | None:
    try:  # Python 3.10's fromisoformat does not read a trailing Z
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def last_run(notebook: dict) -> tuple[datetime, datetime] | None:
    """(start, end) of the notebook's recorded executions, from its cells' execution times."""
    times = []
    for index in _code_cells(notebook):
        execution = notebook["cells"][index].get("metadata", {}).get("execution", {})
        for key in ("iopub.execute_input", "shell.execute_reply"):
            when = _timestamp(execution.get(key)) if key in execution else None
            if when is not None:
                times.append(when if when.tzinfo else when.replace(tzinfo=timezone.utc))
    return (min(times), max(times)) if times else None


def _age(seconds: float) -> str:
    """A duration in the largest unit that fits: 40 s, 12 min, 3.5 h, 2.0 days."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}" if unit != "min" else f"{seconds / size:.0f} min"
    return f"{seconds:.0f} s"


def check_export_times(folder: Path, contract: Contract, notebook: dict) -> Result:
    """Were the exported files written by the notebook's last run?"""
    title = "the exported files come from the notebook's last run"
    files = {}
    for artifact in contract.artifacts:
        path = folder / artifact.path
        if path.is_file() and not path.is_symlink():
            files[artifact.path] = path.lstat().st_mtime
    if not files:
        return Result(title, FAIL, "not checked: no exported file found")
    if all(notebook["cells"][i].get("execution_count") is None for i in _code_cells(notebook)):
        return Result(
            title, FAIL, "no cell of the notebook has run, so it did not export these files"
        )
    recorded = last_run(notebook)
    if recorded is not None:
        start, end = (when.timestamp() for when in recorded)
        source = "by its cells' recorded execution times"
        older = {
            path: start - mtime for path, mtime in files.items() if mtime < start - CLOCK_SLACK_S
        }
        if older:
            path, seconds = max(older.items(), key=lambda item: item[1])
            return Result(
                title,
                FAIL,
                f"{len(older)} of {len(files)} files are older than the notebook's last run "
                f"({source}), {path} by {_age(seconds)}: they come from an earlier run; run the "
                "notebook top to bottom and let it export",
            )
        newer = [path for path, mtime in files.items() if mtime > end + CLOCK_SLACK_S]
    else:
        saved = (folder / contract.notebook).stat().st_mtime
        source = "by the notebook file's modification time: it records no execution times"
        older = {
            path: saved - mtime
            for path, mtime in files.items()
            if mtime < saved - FILE_TIME_SLACK_S
        }
        if older:
            path, seconds = max(older.items(), key=lambda item: item[1])
            return Result(
                title,
                WARN,
                f"{len(older)} of {len(files)} files are older than the notebook ({source}), "
                f"{path} by {_age(seconds)}: if you changed code since, run the notebook top "
                "to bottom again",
            )
        newer = [path for path, mtime in files.items() if mtime > saved + CLOCK_SLACK_S]
    if newer:
        return Result(
            title,
            WARN,
            f"{', '.join(sorted(newer))} written after the notebook's last recorded run "
            f"({source}): save the notebook after running it",
        )
    return Result(title, PASS, f"{len(files)} files, written during the last run ({source})")


# --------------------------------------------------------------------------- the artifacts


def check_artifact(folder: Path, artifact: Artifact) -> Result:
    title = artifact.path
    path = folder / artifact.path
    if not path.exists() and not path.is_symlink():
        return Result(
            title,
            FAIL,
            "missing; run the notebook's export cell (expected: "
            f"{artifact.description or artifact.kind})",
        )
    if path.is_symlink() or not path.is_file():
        return Result(title, FAIL, "is not a regular file (a link or a folder); save the file")
    try:
        if artifact.kind == "keras":
            return Result(title, PASS, _load_keras(path))
        if artifact.kind == "json":
            json.loads(path.read_text(encoding="utf-8"))
            return Result(title, PASS, "valid JSON")
        if artifact.kind == "npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as arrays:
                return Result(title, PASS, f"arrays {', '.join(arrays.files) or '(none)'}")
    except Exception as err:
        return Result(title, FAIL, f"does not load as {artifact.kind}: {one_line(err)}")
    return Result(title, FAIL, f"unknown artifact kind '{artifact.kind}' in the contract")


def _load_keras(path: Path) -> str:
    import keras

    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    return f"loads with safe_mode=True ({type(model).__name__} '{model.name}')"


# --------------------------------------------------------------------------- the tiers


def _reaches(value: float, tier: float, better: str) -> bool:
    return value >= tier if better == "higher" else value <= tier


def tier_verdict(value: float, tiers: dict, better: str, points: str) -> tuple[str, str]:
    """(PASS, WARN or FAIL, why) for ``value`` measured on the student's own data.

    ``tiers`` holds ``full`` and ``partial`` (what the graded metric needs for full
    and partial credit) and optionally ``gap``, how much worse than on this data the
    reference models scored on the graded data; ``points`` names what is at stake.
    """
    full, partial, gap = tiers["full"], tiers["partial"], tiers.get("gap", 0.0)
    side = "at least" if better == "higher" else "at most"
    needs = f"partial credit needs {side} {partial:g}, full credit {full:g}"
    likely = value - gap if better == "higher" else value + gap
    graded = (
        f"; the reference models scored {gap:g} worse on the graded data than on this split"
        if gap
        else ""
    )
    if not _reaches(value, partial, better):
        return FAIL, f"{needs}: this earns none of {points}"
    if not _reaches(likely, partial, better):
        return WARN, f"{needs}{graded}: this likely earns none of {points}"
    if not _reaches(value, full, better):
        return WARN, f"{needs}: partial credit at best"
    if not _reaches(likely, full, better):
        return WARN, f"{needs}{graded}: likely partial credit only"
    return PASS, f"{needs}: full credit if the graded data agree"


# --------------------------------------------------------------------------- running


def assignment_checks(assignment_id: str, folder: Path) -> list[Result]:
    """The results of ``public_checks`` in ``assignments/<id>/helpers.py``, if it has one.

    Its outcomes are True (PASS), False (FAIL) or one of PASS, WARN, FAIL.
    """
    if not (ASSIGNMENTS_DIR / assignment_id / "helpers.py").is_file():
        return []
    helpers = importlib.import_module(f"assignments.{assignment_id}.helpers")
    checks = getattr(helpers, "public_checks", None)
    if checks is None:
        return []
    status = {True: PASS, False: FAIL}
    return [
        Result(title, status.get(outcome, outcome), message)
        for title, outcome, message in checks(folder)
    ]


def run_checks(assignment_id: str, folder: str | Path) -> list[Result]:
    """Every public check of ``assignment_id`` on the submission folder ``folder``.

    Raises :class:`UsageError` for an unknown id, a missing folder or a folder
    without any notebook.
    """
    contract = load_contract(assignment_id)
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"no folder {folder}")
    if not any(folder.glob("*.ipynb")):
        raise UsageError(
            f"no notebook in {folder.resolve()}; run the check in the folder of your "
            f"{contract.notebook}, or give that folder"
        )
    result, notebook = read_notebook(folder, contract.notebook)
    results = [result]
    if notebook is not None:
        results += [check_ran(notebook), check_stubs(notebook)]
    results += [check_artifact(folder, artifact) for artifact in contract.artifacts]
    if notebook is not None:
        results.append(check_export_times(folder, contract, notebook))
    results += assignment_checks(assignment_id, folder)
    return results


def check(assignment_id: str, folder: str | Path = ".", out: TextIO | None = None) -> int:
    """Print one line per check and a summary; 0 when none fails, 1 otherwise.

    :class:`UsageError` is raised (not printed) for a wrong argument.
    """
    out = out or sys.stdout
    results = run_checks(assignment_id, folder)
    for result in results:
        print(result.line(), file=out, flush=True)
    counts = {status: sum(r.status == status for r in results) for status in (PASS, WARN, FAIL)}
    extra = "".join(
        f", {counts[status]} {word}"
        for status, word in ((WARN, "warned"), (FAIL, "failed"))
        if counts[status]
    )
    print(
        f"{counts[PASS]} of {len(results)} checks passed{extra}. FAIL: points are lost; "
        "WARN: points are likely lost. Measurements on your own data are estimates: the "
        "grade comes from hidden checks on data you have not seen.",
        file=out,
    )
    return 1 if counts[FAIL] else 0
