"""``rnn-course grade ID``: grade every submission of an assignment (intake, sandbox, judge,
record)."""

from __future__ import annotations

import argparse
from pathlib import Path

from autograder.cli.common import (
    course_of,
    output_folder,
    positive_int,
    print_lost,
    print_restored,
    print_summary,
)


def student_timeout(text: str) -> tuple[str, int]:
    """``NAME=SECONDS`` of ``--student-timeout``."""
    name, _, seconds = text.partition("=")
    if not name or not seconds:
        raise argparse.ArgumentTypeError(f"expected NAME=SECONDS, got {text!r}")
    return name, positive_int(seconds)


def add_parser(commands) -> None:
    grade = commands.add_parser(
        "grade", help="grade every submission of an assignment (intake, sandbox, judge, record)"
    )
    grade.add_argument("assignment", metavar="ID")
    grade.add_argument(
        "submissions",
        nargs="?",
        metavar="SUBMISSIONS",
        help="folder in nbgrader's layout <student>/<ID>/, or of <student>.zip "
        "(default: submitted/)",
    )
    grade.add_argument(
        "--out",
        metavar="DIR",
        help="where results go (default: the course folder); formgrader and "
        "`nbgrader export` work there as in the course folder",
    )
    grade.add_argument("--jobs", type=positive_int, default=1, help="parallel workers (default 1)")
    grade.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on a Dask cluster at ADDRESS, or 'local' for a LocalCluster of --jobs workers",
    )
    grade.add_argument("--force", action="store_true", help="regrade what is already recorded")
    grade.add_argument(
        "--no-execute",
        action="store_true",
        help="do not run notebooks; judge the shipped artifacts",
    )
    grade.add_argument(
        "--timeout",
        type=positive_int,
        metavar="SECONDS",
        help="time limit per notebook, instead of the assignment's own",
    )
    grade.add_argument(
        "--student-timeout",
        type=student_timeout,
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="time limit for one student's notebook (repeatable), instead of --timeout",
    )
    grade.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="NAME",
        help="regrade this student only, whatever is recorded (repeatable)",
    )
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.set_defaults(handler=run)


def run(args) -> int:
    from autograder.core.course import Results
    from autograder.grading import batch, record

    course = course_of(args)
    spec = course.spec(args.assignment)
    submissions = Path(args.submissions) if args.submissions else course.submitted
    results = Results(output_folder(args, course))
    recovery = record.recover(results, spec.id, course.source_notebook(spec))
    print_restored(results, recovery.restored)
    summary = batch.run_batch(
        spec,
        course,
        submissions.resolve(),
        results,
        jobs=args.jobs,
        scheduler=args.scheduler,
        force=args.force,
        execute=not args.no_execute,
        notebook_timeout_s=args.timeout,
        student_timeouts=dict(args.student_timeout),
        students=args.student,
        progress=not args.no_progress,
    )
    print_summary(results, spec.id, summary)
    if results.root != course.root:
        print(f"nbgrader:  formgrader and `nbgrader export` work in {results.root}")
    lost = [s for s in recovery.lost if record.recorded(results, s, spec.id) is None]
    if regraded := [s for s in recovery.lost if s not in lost]:
        print(f"graded again, their record gone with its copy: {', '.join(regraded)}")
    print_lost(results, spec.id, lost)
    return 1 if summary.failed or lost else 0
