"""The course folder (nbgrader's layout) and the nbgrader settings every stage shares."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from traitlets.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent
COURSE_ID = "rnn-course"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"


def configure(c: Config, root: Path) -> Config:
    """Apply the course's nbgrader settings to ``c`` for the course folder ``root``."""
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    # never released: the notebooks' jupytext twins (source/<id>/*.py hold the solutions)
    # and what running the source notebook exports (models/)
    c.CourseDirectory.ignore = [
        ".ipynb_checkpoints",
        "*.pyc",
        "__pycache__",
        "feedback",
        "*.py",
        "models",
        "*.keras",
    ]
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.ClearSolutions.text_stub = TEXT_STUB
    return c


def ensure_venv_on_path() -> None:
    """Put this interpreter's ``bin`` first on PATH: nbgrader runs ``alembic`` from there."""
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def nbgrader_api(root: Path):
    """nbgrader's own API object for the course folder ``root``."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    ensure_venv_on_path()
    config = configure(Config(), Path(root).resolve())
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
