"""``rnn-course release [ID...]``: generate the student releases and check them for leaks."""

from __future__ import annotations

import sys

from autograder.cli.common import CommandError, course_of


def add_parser(commands) -> None:
    release = commands.add_parser(
        "release", help="generate student releases with nbgrader and check them for leaks"
    )
    release.add_argument("assignments", nargs="*", metavar="ID", help="default: all")
    release.set_defaults(handler=run)


def run(args) -> int:
    from autograder.authoring import release

    course = course_of(args)
    ids = args.assignments or course.assignment_ids()
    for assignment_id in ids:
        course.spec(assignment_id)  # an unknown id fails before anything is released
    failures = 0
    for assignment_id in ids:
        try:
            result = release.generate(assignment_id, course)
        except release.ReleaseError as err:
            failures += 1
            print(f"FAILED   {assignment_id}: {err}", file=sys.stderr)
            continue
        names = ", ".join(p.name for p in result.notebooks)
        print(
            f"released {assignment_id}: {result.folder} ({names}); "
            "no solution or hidden test leaked"
        )
    if not ids:
        raise CommandError(f"{course.root} has no assignment: no source/<ID>/ with a spec for <ID>")
    return 1 if failures else 0
