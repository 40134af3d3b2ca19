"""``rnn-course bench ID FOLDER``: time `grade` against `nbgrader autograde`, or the judge."""

from __future__ import annotations

from pathlib import Path

from autograder.cli.common import CommandError, course_of, positive_int


def add_parser(commands) -> None:
    bench = commands.add_parser(
        "bench", help="time `grade` against `nbgrader autograde` on copies of one submission"
    )
    bench.add_argument("assignment", metavar="ID")
    bench.add_argument("submission", metavar="FOLDER", help="one submission folder")
    bench.add_argument("--copies", type=positive_int, default=4, help="how many copies (default 4)")
    bench.add_argument(
        "--jobs", type=positive_int, default=1, help="workers for `grade` (default 1)"
    )
    what = bench.add_mutually_exclusive_group()
    what.add_argument(
        "--judge",
        action="store_true",
        help="time the judge on the folder's exported models against a plain script",
    )
    what.add_argument(
        "--scaling",
        action="store_true",
        help="grade the copies (without execution) with --jobs 1, then --jobs 2",
    )
    bench.set_defaults(handler=run)


def run(args) -> int:
    from autograder.authoring import bench

    course = course_of(args)
    folder = Path(args.submission)
    if not folder.is_dir():
        raise CommandError(f"{folder} is not a folder: give one submission folder")
    spec = course.spec(args.assignment)
    if args.judge:
        print(bench.judge_bench(spec, folder).report())
    elif args.scaling:
        print(bench.jobs_bench(spec, course, folder, args.copies))
    else:
        print(bench.run(spec, course, folder, args.copies, args.jobs).report())
    return 0
