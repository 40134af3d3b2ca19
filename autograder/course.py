"""The course folder, a grading run's output folder and a judged submission: their layouts.

As in nbgrader, the course folder is the current directory (the one holding
``nbgrader_config.py``) or the folder given with ``--course``, never the folder
the package was installed in:

    nbgrader_config.py
    source/<id>/<notebook>          the instructor's notebook (solutions, hidden tests)
    release/<id>/<notebook>         the student release (``rnn-course release``)
    submitted/<student>/<id>/       submissions (nbgrader's collect layout)
    plugins/<id>/                   assignments the course adds (optional; see autograder.spec)

A grading run writes into an output folder (the course folder by default):

    gradebook.db                               nbgrader's gradebook (formgrader, export)
    grades_by_check.csv                        one row per student and assignment
                                               (not grades.csv: `nbgrader export` writes that)
    autograded/<student>/<id>/<notebook>       the executed notebook, checks in its test cells
    autograded/<student>/<id>/results.json     Gradescope-style results
    autograded/<student>/<id>/feedback.html    the feedback page (nbgrader's generate_feedback
                                               copies it into feedback/ again)
    autograded/<student>/<id>/grading.json     the full outcome (used to resume)
    autograded/<student>/<id>/grading-history/ the outcomes a regrade replaced
    feedback/<student>/<id>/feedback.html      what the student reads
    logs/<id>-<time>.log                       what each grading run did
    .work/<id>/<student>/                      scratch of a submission being graded
    .collected/<student>/<id>/                 zipped submissions, unpacked
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

COURSE_ID = "rnn-course"
CONFIG_FILE = "nbgrader_config.py"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
#: Never released, whatever the assignment: editor and build leftovers.
ALWAYS_IGNORED = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")
#: The grader's records beside a graded notebook: never copied to a student's feedback folder.
RECORDS = ("grading.json", "grading-history")


class CourseError(ValueError):
    """The course folder, or something it must hold, is missing; the message says what to do."""


@dataclass(frozen=True)
class Course:
    """A course folder in nbgrader's layout."""

    root: Path

    @classmethod
    def find(cls, folder: Path | str | None = None) -> Course:
        """The course at ``folder`` (default: the current directory); it must hold the config."""
        root = Path(folder or Path.cwd()).resolve()
        if not root.is_dir():
            raise CourseError(f"course folder {root} does not exist")
        if not (root / CONFIG_FILE).is_file():
            raise CourseError(
                f"{root} is not a course folder (it has no {CONFIG_FILE}): run rnn-course "
                "in the course folder, or give it with --course DIR"
            )
        return cls(root)

    def spec(self, assignment_id: str):
        """The assignment's spec, looking in this course's ``plugins/`` first."""
        from autograder import spec as specs

        return specs.load(assignment_id, self.root)

    def assignment_ids(self) -> list[str]:
        """The assignments of this course: a spec (here or in the package) and a source folder."""
        from autograder import spec as specs

        return [id_ for id_ in specs.available(self.root) if self.source_dir(id_).is_dir()]

    def source_dir(self, assignment_id: str) -> Path:
        return self.root / "source" / assignment_id

    def release_dir(self, assignment_id: str) -> Path:
        return self.root / "release" / assignment_id

    def source_notebook(self, spec) -> Path:
        path = self.source_dir(spec.id) / spec.notebook
        if not path.is_file():
            raise CourseError(f"{path} is missing: the course has no source of '{spec.id}'")
        return path

    def release_notebook(self, spec) -> Path:
        path = self.release_dir(spec.id) / spec.notebook
        if not path.is_file():
            raise CourseError(f"{path} is missing: run `rnn-course release {spec.id}` first")
        return path

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    def config(self) -> Config:
        """The course's nbgrader settings: its ``nbgrader_config.py``, read as nbgrader does."""
        from traitlets.config.loader import PyFileConfigLoader

        try:
            return PyFileConfigLoader(CONFIG_FILE, path=str(self.root)).load_config()
        except Exception as err:  # the course's own Python file: any error it raises
            why = f"{type(err).__name__}: {err}".splitlines()[0]
            raise CourseError(f"{self.root / CONFIG_FILE} cannot be read: {why}") from err


@dataclass(frozen=True)
class Results:
    """The output folder of grading runs (nbgrader's layout, see the module docstring)."""

    root: Path

    GRADING_FILE = "grading.json"
    HISTORY_DIR = "grading-history"
    FEEDBACK_PAGE = "feedback.html"
    GRADES_FILE = "grades_by_check.csv"

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.gradebook.resolve()}"

    @property
    def grades_csv(self) -> Path:
        return self.root / self.GRADES_FILE

    def autograded(self, student: str, assignment_id: str) -> Path:
        return self.root / "autograded" / student / assignment_id

    def feedback(self, student: str, assignment_id: str) -> Path:
        return self.root / "feedback" / student / assignment_id

    def grading_file(self, student: str, assignment_id: str) -> Path:
        return self.autograded(student, assignment_id) / self.GRADING_FILE

    def grading_files(self, assignment_id: str = "*") -> list[Path]:
        return sorted((self.root / "autograded").glob(f"*/{assignment_id}/{self.GRADING_FILE}"))

    def history(self, student: str, assignment_id: str) -> Path:
        return self.autograded(student, assignment_id) / self.HISTORY_DIR

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def work(self, assignment_id: str, student: str) -> Path:
        return self.root / ".work" / assignment_id / student

    @property
    def collected(self) -> Path:
        return self.root / ".collected"


@dataclass(frozen=True)
class Judged:
    """What the run stage copied out of the sandbox for one submission: data only."""

    root: Path

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def artifact(self, relative: str) -> Path:
        return self.artifacts / relative

    @property
    def probes(self) -> Path:
        return self.root / "probes"

    @property
    def probe_index(self) -> Path:
        return self.probes / "index.json"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def run_log(self) -> Path:
        return self.root / "run.log"

    @property
    def executed(self) -> Path:
        return self.root / "executed.ipynb"


def configure(c: Config, root: Path) -> Config:
    """Apply the course's nbgrader settings to ``c`` for the course folder ``root``.

    Releases never ship the source notebooks' jupytext twins (``<notebook>.py``,
    which hold the solutions) nor what any assignment's spec lists under
    ``[release] ignore`` (what running its source notebook exports), so that
    ``nbgrader generate_assignment`` run by hand is as safe as ``rnn-course release``.
    nbgrader's own ``generate_feedback`` copies no grading record to a student, its
    ``autograde`` applies the course's late policy and its ``export`` writes the
    course's columns (:mod:`autograder.late`, :mod:`autograder.grades`).
    """
    from autograder import spec as specs

    root = Path(root)
    twins = {f"{notebook.stem}.py" for notebook in root.glob("source/*/*.ipynb")}
    declared = {
        pattern
        for assignment_id in specs.available(root)
        for pattern in specs.load(assignment_id, root).release_ignore
    }
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.CourseDirectory.ignore = [*ALWAYS_IGNORED, *RECORDS, *sorted(twins | declared)]
    c.AssignLatePenalties.plugin_class = "autograder.late.LatePolicy"
    c.ExportApp.plugin_class = "autograder.grades.GradesExport"
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
