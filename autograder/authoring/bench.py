"""Benchmarks, each printing ratios of runs made side by side in one go.

``rnn-course bench ID SUBMISSION --copies N`` copies one submission folder N
times into a scratch course, grades the copies with ``rnn-course grade`` and
with ``nbgrader autograde`` (no sandbox, hidden tests in the student's kernel)
one after the other in the same run, and prints seconds per submission for
each and their ratio. ``--judge`` times the judge on the submission's exported
models against a plain script doing the bare work; ``--scaling`` grades the
copies with one worker, then two. Absolute times on shared machines are noisy;
the ratio from one run is the number to compare.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.core.course import Course, ensure_venv_on_path
from autograder.core.plugin import load_plugin
from autograder.core.spec import Spec


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
        "from pathlib import Path\nfrom autograder.core.course import configure\n"
        "configure(get_config(), Path(__file__).resolve().parent)\n"
        "get_config().Autograde.exporter_class = 'nbconvert.exporters.NotebookExporter'\n"
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


# --------------------------------------------------------------------------- the judge


@dataclass(frozen=True)
class JudgeBench:
    plain_s: float
    judge_cold_s: float
    judge_warm_s: float

    def report(self) -> str:
        return (
            f"plain script (load the models, predict the hidden data)  {self.plain_s:7.1f} s\n"
            f"judge, a new child (start, hidden data, every check)     {self.judge_cold_s:7.1f} s"
            f"   ratio {self.judge_cold_s / self.plain_s:5.2f}\n"
            f"judge, the same child again (the next submission)        {self.judge_warm_s:7.1f} s"
            f"   ratio {self.judge_warm_s / self.plain_s:5.2f}"
        )


PLAIN_SCRIPT = (
    "import sys; from pathlib import Path; from autograder.core import spec; "
    "from autograder.core.course import Judged; from autograder.core.plugin import load_plugin; "
    "load_plugin(spec.load_folder(Path(sys.argv[1]))).bare_inference(Judged(Path(sys.argv[2])))"
)


def judge_bench(assignment: Spec, submission: Path) -> JudgeBench:
    """The judge on a submission's exported models against the bare work it has to do.

    The plain script is a fresh process that loads the models and predicts the
    hidden data (the plugin's ``bare_inference``); the judge runs every hidden
    check in its child process, first freshly started, then warm.
    """
    from autograder.grading.judge.parent import JudgeProcess

    with tempfile.TemporaryDirectory(prefix="rnn-bench-judge-") as scratch:
        judged = Path(scratch) / "judged"
        for relative in assignment.artifact_paths.values():
            if (submission / relative).is_file():
                (judged / "artifacts" / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(submission / relative, judged / "artifacts" / relative)
        load_plugin(assignment).cache_hidden()
        plain_s = timed(
            [sys.executable, "-c", PLAIN_SCRIPT, str(assignment.folder), str(judged)], Path.cwd()
        )
        process = JudgeProcess()
        try:
            cold_s = _timed_judge(process, assignment, judged)
            warm_s = _timed_judge(process, assignment, judged)
        finally:
            process.close()
    return JudgeBench(plain_s, cold_s, warm_s)


def _timed_judge(process, assignment: Spec, judged: Path) -> float:
    started = time.perf_counter()
    process.judge(assignment, judged, assignment.limits)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- parallel workers


def jobs_bench(assignment: Spec, course: Course, submission: Path, copies: int) -> str:
    """Grade ``copies`` copies with ``--jobs 1`` then ``--jobs 2`` (no execution); the speed-up."""
    bin_dir = Path(sys.executable).parent
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="rnn-bench-jobs-") as scratch:
        root = make_course(assignment, course, submission.resolve(), copies, Path(scratch))
        for jobs in (1, 2):
            seconds[jobs] = timed(
                [
                    str(bin_dir / "rnn-course"),
                    "grade",
                    assignment.id,
                    str(root / "submitted"),
                    "--out",
                    str(root / f"jobs{jobs}"),
                    "--jobs",
                    str(jobs),
                    "--no-execute",
                    "--no-progress",
                ],
                root,
            )
    return (
        f"{copies} submissions, judged without execution\n"
        f"--jobs 1   {seconds[1]:7.1f} s\n"
        f"--jobs 2   {seconds[2]:7.1f} s   speed-up {seconds[1] / seconds[2]:5.2f}x"
    )
