"""``rnn-course-student check``: the public checks of a submission, run locally.

Like ``otter check``, it tells a student before submitting whether the folder
holds what the grader needs, as the public contract
(``assignments/<id>/contract.toml``) says:

- the notebook the contract names exists and is a valid notebook;
- every artifact of the contract exists and is a regular file; a ``.keras``
  model loads with ``safe_mode=True`` (as the grader loads it), a ``.json``
  file parses, an ``.npz`` file loads without pickles;
- the assignment's own public checks, when ``assignments/<id>/helpers.py``
  defines ``public_checks(folder) -> list[(title, passed, message)]``.

These checks test shapes, types and the export format only. The grade comes
from hidden checks on data the student never sees; nothing here knows them.
Importing this module is cheap: TensorFlow is imported only when a model is
loaded.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ASSIGNMENTS_DIR = Path(__file__).resolve().parent
CONTRACT = "contract.toml"
MAX_MESSAGE = 300


class UsageError(ValueError):
    """A wrong argument: unknown assignment, missing folder, no notebook there."""


@dataclass(frozen=True)
class Result:
    title: str
    passed: bool
    message: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.title}: {self.message}"


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
    return Contract(assignment_id, raw["notebook"], artifacts)


def one_line(err: BaseException | str) -> str:
    """An error as one short line (Keras errors span many lines)."""
    text = str(err).strip()
    first = text.splitlines()[0].strip() if text else type(err).__name__
    if isinstance(err, BaseException) and not isinstance(err, RuntimeError | ValueError):
        first = f"{type(err).__name__}: {first}"
    return first if len(first) <= MAX_MESSAGE else first[: MAX_MESSAGE - 3] + "..."


def check_notebook(folder: Path, name: str) -> Result:
    title = f"notebook {name}"
    path = folder / name
    if not path.exists():
        others = sorted(p.name for p in folder.glob("*.ipynb"))
        return Result(
            title,
            False,
            f"not found in {folder}; found {', '.join(others)}: the grader looks for "
            f"'{name}' (rename your notebook)",
        )
    if path.is_symlink() or not path.is_file():
        return Result(title, False, "is not a regular file (submit the notebook itself)")
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return Result(title, False, f"is not valid JSON ({one_line(err)}); was it truncated?")
    if (
        not isinstance(notebook, dict)
        or notebook.get("nbformat") != 4
        or not isinstance(notebook.get("cells"), list)
    ):
        return Result(title, False, "is JSON but not a Jupyter notebook in nbformat 4")
    try:  # nbformat comes with Jupyter; validate with it where it is installed
        import nbformat
    except ImportError:
        pass
    else:
        try:
            nbformat.validate(nbformat.reads(json.dumps(notebook), as_version=4))
        except Exception as err:
            return Result(title, False, f"is not a valid notebook ({one_line(err)})")
    return Result(title, True, f"valid notebook, {len(notebook['cells'])} cells")


def check_artifact(folder: Path, artifact: Artifact) -> Result:
    title = artifact.path
    path = folder / artifact.path
    if not path.exists() and not path.is_symlink():
        return Result(
            title,
            False,
            "missing; run the notebook's export cell (expected: "
            f"{artifact.description or artifact.kind})",
        )
    if path.is_symlink() or not path.is_file():
        return Result(title, False, "is not a regular file (a link or a folder); save the file")
    try:
        if artifact.kind == "keras":
            return Result(title, True, _load_keras(path))
        if artifact.kind == "json":
            json.loads(path.read_text(encoding="utf-8"))
            return Result(title, True, "valid JSON")
        if artifact.kind == "npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as arrays:
                return Result(title, True, f"arrays {', '.join(arrays.files) or '(none)'}")
    except Exception as err:
        return Result(title, False, f"does not load as {artifact.kind}: {one_line(err)}")
    return Result(title, False, f"unknown artifact kind '{artifact.kind}' in the contract")


def _load_keras(path: Path) -> str:
    import keras

    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    return f"loads with safe_mode=True ({type(model).__name__} '{model.name}')"


def assignment_checks(assignment_id: str, folder: Path) -> list[Result]:
    """The results of ``public_checks`` in ``assignments/<id>/helpers.py``, if it has one."""
    if not (ASSIGNMENTS_DIR / assignment_id / "helpers.py").is_file():
        return []
    helpers = importlib.import_module(f"assignments.{assignment_id}.helpers")
    checks = getattr(helpers, "public_checks", None)
    if checks is None:
        return []
    return [Result(title, bool(passed), message) for title, passed, message in checks(folder)]


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
    results = [check_notebook(folder, contract.notebook)]
    results += [check_artifact(folder, artifact) for artifact in contract.artifacts]
    results += assignment_checks(assignment_id, folder)
    return results


def check(assignment_id: str, folder: str | Path = ".", out: TextIO | None = None) -> int:
    """Print one line per check and a summary; 0 when all pass, 1 otherwise.

    :class:`UsageError` is raised (not printed) for a wrong argument.
    """
    out = out or sys.stdout
    results = run_checks(assignment_id, folder)
    for result in results:
        print(result.line(), file=out, flush=True)
    failed = sum(not result.passed for result in results)
    print(
        f"{len(results) - failed} of {len(results)} public checks passed"
        + (f", {failed} failed" if failed else "")
        + ". They test the export format only: the grade comes from hidden checks "
        "on data you have not seen.",
        file=out,
    )
    return 1 if failed else 0
