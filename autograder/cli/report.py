"""``rnn-course report ID``: the class report of a graded assignment, for the instructor."""

from __future__ import annotations

from pathlib import Path

from autograder.cli.common import CommandError, course_of


def add_parser(commands) -> None:
    report = commands.add_parser(
        "report",
        help="a class report for the instructor: scores, checks, metrics, runs, similar code",
    )
    report.add_argument("assignment", metavar="ID")
    report.add_argument(
        "--out", metavar="DIR", help="the results folder of `grade --out` (default: the course)"
    )
    report.add_argument(
        "--to", metavar="DIR", help="where the page goes (default: <results>/reports/<ID>/)"
    )
    report.set_defaults(handler=run)


def run(args) -> int:
    """Write the page and its CSV files, say where."""
    from autograder.core.course import Results
    from autograder.term.report import grading_files, write_report

    course = course_of(args)
    spec = course.spec(args.assignment)
    results = Results(Path(args.out).resolve() if args.out else course.root)
    if not results.root.is_dir():
        raise CommandError(f"results folder {results.root} does not exist")
    if not grading_files(results, spec.id):
        raise CommandError(
            f"{results.root} holds no grading of '{spec.id}': give the folder of "
            f"`rnn-course grade {spec.id} --out DIR` with --out DIR"
        )
    folder = Path(args.to).resolve() if args.to else results.root / "reports" / spec.id
    page = write_report(spec, course, results, folder)
    print(f"report: {page} (and its tables as CSV files beside it)")
    return 0
