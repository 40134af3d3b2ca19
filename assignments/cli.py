"""The ``rnn-course-student`` command (also ``python -m assignments.cli``).

- ``check ID [FOLDER]``: the public checks of a submission folder (default: the
  current directory), before submitting: the notebook's run, its stubs, the exports,
  and each model against the grading tiers on the student's own data;
- ``data verify``: is every course data set present with an accepted checksum?
- ``data fetch [--to DIR]``: download the data sets (or copy them from
  ``--data-dir``) into DIR, by default the download cache.

Start-up imports nothing heavy (TensorFlow only when a model is checked), so
``--help`` and argument errors answer at once. :func:`verify_data` and
:func:`fetch_data` are the same code as the grader's ``rnn-course data ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PROG = "rnn-course-student"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["RNN_COURSE_DATA"] = str(Path(args.data_dir).resolve())
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    from assignments.check import UsageError
    from assignments.data import DataError

    try:
        return args.handler(args)
    except UsageError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except (DataError, FileNotFoundError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="RNN course, student side: check a submission before handing it in, "
        "verify or fetch the course data.",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="local data folder (takes priority over $RNN_COURSE_DATA and the download cache)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="run the public checks of an assignment on your notebook and exported models",
        description="Run the public checks of assignment ID on FOLDER: the notebook (valid, "
        "run top to bottom, no stub left), the files it exported (they load, and come from "
        "its last run), and each model measured on your own data against the grading tiers "
        "(an estimate, never the grade). Each line is PASS, WARN (points likely lost) or FAIL "
        "(points lost). Exit status 0 when none fails, 1 when one fails, 2 for a wrong "
        "argument.",
    )
    check.add_argument("assignment", metavar="ID", help="assignment id, e.g. a1_imdb_sentiment")
    check.add_argument(
        "folder",
        nargs="?",
        default=".",
        metavar="FOLDER",
        help="the folder of your notebook (default: the current directory)",
    )
    check.set_defaults(handler=_check)

    data = commands.add_parser("data", help="check or fetch the course data sets")
    data_commands = data.add_subparsers(title="data commands", metavar="ACTION", required=True)
    verify = data_commands.add_parser("verify", help="check every data set's file and checksum")
    verify.set_defaults(handler=lambda args: verify_data())
    fetch = data_commands.add_parser(
        "fetch", help="download missing data sets (or copy them from --data-dir) into a folder"
    )
    fetch.add_argument("--to", metavar="DIR", help="target folder (default: the download cache)")
    fetch.set_defaults(handler=lambda args: fetch_data(Path(args.to) if args.to else None))
    return parser


def _check(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no TensorFlow start-up chatter
    from assignments.check import check

    return check(args.assignment, Path(args.folder))


def verify_data() -> int:
    """Print one line per data set (found with an accepted checksum, or why not); 1 if any fails."""
    from assignments import data

    failures = 0
    for name in data.DATASETS:
        try:
            path = data.locate(name, download=False)
            print(f"ok       {name:12} {path}")
        except data.DataError as err:
            failures += 1
            print(f"FAILED   {name:12} {err}")
    print(f"{len(data.DATASETS) - failures} of {len(data.DATASETS)} data sets verified")
    return 1 if failures else 0


def fetch_data(target: Path | None = None) -> int:
    """Put every data set into ``target`` (default: the download cache); 1 if any fails."""
    from assignments import data

    target = Path(target) if target else data.cache_dir()
    failures = 0
    for name in data.DATASETS:
        try:
            print(f"ok       {name:12} {data.copy_to(name, target)}")
        except data.DataError as err:
            failures += 1
            print(f"FAILED   {name:12} {err}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
