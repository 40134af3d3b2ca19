"""The ``rnn-course`` command (also ``python -m autograder``): one module per command.

Each command module adds its subcommand (``add_parser``) and runs it (``run``);
:mod:`.common` holds what they share. Start-up imports nothing heavy: TensorFlow,
nbgrader and pandas are imported by the command that needs them, so ``--help``
answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.cli import (
    bench,
    calibrate,
    data,
    demo,
    feedback,
    grade,
    gradescope,
    release,
    report,
    review,
)
from autograder.cli.common import CommandError

#: The subcommands, in the order ``--help`` lists them.
COMMANDS = (data, release, grade, feedback, calibrate, bench, gradescope, report, review, demo)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["RNN_COURSE_DATA"] = str(Path(args.data_dir).resolve())
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    from assignments.data import DataError
    from autograder.core.course import CourseError
    from autograder.core.spec import SpecError
    from autograder.grading.collect import SubmissionsError

    try:
        return args.handler(args)
    except (DataError, SpecError, CourseError, SubmissionsError) as err:
        print(f"rnn-course: {err}", file=sys.stderr)
        return 1
    except (CommandError, FileNotFoundError) as err:
        print(f"rnn-course: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C; a grading run says what it recorded
        print(f"rnn-course: {err or 'interrupted'}", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnn-course",
        description="Autograded RNN assignments: data, releases, grading.",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="local data mirror (takes priority over $RNN_COURSE_DATA and the download cache)",
    )
    parser.add_argument(
        "--course",
        metavar="DIR",
        help="the course folder, holding nbgrader_config.py (default: the current directory)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
