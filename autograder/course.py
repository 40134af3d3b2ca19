"""The course folder (nbgrader's layout) and the nbgrader settings every stage shares."""

from __future__ import annotations

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
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.ClearSolutions.text_stub = TEXT_STUB
    return c


def nbgrader_api(root: Path):
    """nbgrader's own API object for the course folder ``root``."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = configure(Config(), Path(root).resolve())
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
