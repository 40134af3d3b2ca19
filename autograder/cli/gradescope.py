"""``rnn-course gradescope ID``: a Gradescope autograder zip, built with otter, that scores
like `grade`."""

from __future__ import annotations

from pathlib import Path

from autograder.cli.common import CommandError, course_of


def add_parser(commands) -> None:
    gradescope = commands.add_parser(
        "gradescope", help="build a Gradescope autograder zip with otter that scores like `grade`"
    )
    gradescope.add_argument("assignment", metavar="ID")
    gradescope.add_argument("--out", metavar="ZIP", help="default: <ID>-gradescope.zip")
    gradescope.set_defaults(handler=run)


def run(args) -> int:
    from autograder.authoring import gradescope

    spec = course_of(args).spec(args.assignment)
    output = Path(args.out or f"{spec.id}-gradescope.zip").resolve()
    if not output.parent.is_dir():
        raise CommandError(f"cannot write {output}: the folder {output.parent} does not exist")
    path = gradescope.build(spec, output)
    print(f"Gradescope autograder: {path} (upload it as the assignment's autograder zip)")
    return 0
