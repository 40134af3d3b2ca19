"""What nbgrader's own tools do in a course graded here.

``nbgrader autograde`` (formgrader's *Autograde* button too) is refused before it
touches anything: it would delete the record in ``autograded/<student>/<id>/``, run
the student's code outside the sandbox and score the public tests instead of the
hidden checks. :func:`autograder.core.course.configure` makes :class:`RefusedAutograde`
its exporter, which nbgrader builds before it removes or converts anything.

An output folder other than the course folder (``rnn-course grade --out DIR``) is
opened for formgrader and ``nbgrader export`` by :func:`open_output`: a generated
``nbgrader_config.py`` that loads the course's own (due dates, late policy, export
columns) and points nbgrader at the folder, the assignment's source notebook, and
``submitted/<student>/<id>/timestamp.txt`` holding the time of each graded
submission as the gradebook has it (formgrader counts a submission as autograded
only when the two agree).
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from nbconvert.exporters import NotebookExporter
from nbgrader.converters.base import NbGraderException
from traitlets.config import Config

from autograder.core.course import CONFIG_FILE, OUTPUT_CONFIG, Course, Results

TIMESTAMP_FILE = "timestamp.txt"


class RefusedAutograde(NotebookExporter):
    """nbgrader autograde's exporter in this course: says why it refuses, and raises."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        coursedir = getattr(self.parent, "coursedir", None)
        assignment = getattr(coursedir, "assignment_id", "") or "ID"
        student = getattr(coursedir, "student_id", "*")
        student = "NAME" if student in ("", "*") else student
        line = (
            "nbgrader autograde is turned off in this course (it would delete the grades of "
            "rnn-course and run student code outside the sandbox): run "
            f"`rnn-course grade {assignment} --student {student}` instead"
        )
        self.log.error(line)
        raise NbGraderException(line)


def configure_output(c: Config, course_root: Path, folder: Path) -> Config:
    """The settings of an output folder: the course's own, with nbgrader pointed at ``folder``."""
    c.merge(Course.find(course_root).config())
    results = Results(Path(folder))
    c.CourseDirectory.root = str(results.root)
    c.CourseDirectory.db_url = results.db_url
    return c


def open_output(course: Course, results: Results, spec) -> None:
    """Open the output folder ``results`` to nbgrader's tools (nothing to do in the course)."""
    if results.root.resolve() == course.root.resolve():
        return
    config = results.root / CONFIG_FILE
    if config.is_file() and not results.is_output:
        return  # a course folder of its own: its settings stay
    results.root.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"{OUTPUT_CONFIG}\n"
        '"""nbgrader settings of this output folder: those of its course, with this folder\n'
        'as the course folder (formgrader, nbgrader export)."""\n\n'
        "from pathlib import Path\n\n"
        "from autograder.term.nbgrader_tools import configure_output\n\n"
        f"configure_output(get_config(), Path({str(course.root)!r}), Path(__file__).parent)"
        "  # noqa: F821\n"
    )
    source = course.source_notebook(spec)
    copy = results.root / "source" / spec.id / source.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, copy)


def mirror_timestamp(
    results: Results, student: str, assignment_id: str, timestamp: datetime | None
) -> None:
    """Write the submission's time (the gradebook's, UTC) where formgrader compares it.

    Only in an output folder; a folder that holds a submission is left as it is.
    """
    if not results.is_output:
        return
    folder = results.root / "submitted" / student / assignment_id
    if folder.is_dir() and any(path.name != TIMESTAMP_FILE for path in folder.iterdir()):
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TIMESTAMP_FILE
    if timestamp is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(f"{timestamp:%Y-%m-%d %H:%M:%S.%f} UTC\n")
