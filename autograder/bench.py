"""Benchmark: our grader against ``nbgrader autograde`` on the same submissions.

``rnn-course bench ID SUBMISSION --copies N`` copies one submission folder N
times into a scratch course, grades the copies with ``rnn-course grade`` and
with ``nbgrader autograde`` (no sandbox, hidden tests in the student's kernel)
one after the other in the same run, and prints seconds per submission for
each and their ratio. Absolute times on shared machines are noisy; the ratio
from one run is the number to compare.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.course import Course, ensure_venv_on_path
from autograder.spec import Spec


@dataclass(frozen=True)
class BenchResult:
    copies: int
    ours_s: float
    nbgrader_s: float

    def report(self) -> str:
        ours, theirs = self.ours_s / self.copies, self.nbgrader_s / self.copies
        return (
            f"{self.copies} submissions\n"
            f"rnn-course grade      {ours:8.1f} s per submission  (sandbox + hidden data)\n"
            f"nbgrader autograde    {theirs:8.1f} s per submission  (same notebooks, no sandbox)\n"
            f"ratio ours/nbgrader   {ours / theirs:8.2f}"
        )


def make_course(
    assignment: Spec, course: Course, submission: Path, copies: int, root: Path
) -> Path:
    """A scratch course with the source notebook and ``copies`` copies of ``submission``."""
    shutil.copytree(course.source_dir(assignment.id), root / "source" / assignment.id)
    shutil.copytree(course.release_dir(assignment.id), root / "release" / assignment.id)
    if (course.root / "plugins").is_dir():
        shutil.copytree(course.root / "plugins", root / "plugins")
    (root / "nbgrader_config.py").write_text(
        "from pathlib import Path\nfrom autograder.course import configure\n"
        "configure(get_config(), Path(__file__).resolve().parent)\n"
    )
    for index in range(copies):
        shutil.copytree(submission, root / "submitted" / f"bench{index:03d}" / assignment.id)
    return root


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run(
    assignment: Spec, course: Course, submission: Path, copies: int, jobs: int = 1
) -> BenchResult:
    assignment_id = assignment.id
    ensure_venv_on_path()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="rnn-bench-") as scratch:
        course = make_course(assignment, course, submission.resolve(), copies, Path(scratch))
        timed([str(bin_dir / "nbgrader"), "generate_assignment", assignment_id, "--force"], course)
        ours_s = timed(
            [
                str(bin_dir / "rnn-course"),
                "grade",
                assignment_id,
                str(course / "submitted"),
                "--out",
                str(course / "ours"),
                "--jobs",
                str(jobs),
                "--no-progress",
            ],
            course,
        )
        nbgrader_s = timed(
            [
                str(bin_dir / "nbgrader"),
                "autograde",
                assignment_id,
                "--force",
                f"--Execute.timeout={assignment.limits.cell_timeout_s}",
            ],
            course,
        )
    return BenchResult(copies, ours_s, nbgrader_s)
