"""``rnn-course calibrate ID``: train the reference over seeds and write the threshold table."""

from __future__ import annotations

from autograder.cli.common import course_of, positive_int


def add_parser(commands) -> None:
    calibrate = commands.add_parser(
        "calibrate", help="train the reference solution over seeds and write the threshold table"
    )
    calibrate.add_argument("assignment", metavar="ID")
    calibrate.add_argument(
        "--seeds", type=positive_int, default=3, help="number of seeds (default 3)"
    )
    calibrate.set_defaults(handler=run)


def run(args) -> int:
    from autograder.authoring.calibrate import calibrate, table

    spec = course_of(args).spec(args.assignment)
    print(table(spec, calibrate(spec, list(range(args.seeds)))))
    return 0
