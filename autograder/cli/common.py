"""What the commands share: the error of a command given the wrong thing, the course and
output folders, and the lines a grading command prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.term import review


class CommandError(ValueError):
    """A command was given the wrong thing; the message says what to give instead."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def course_of(args):
    """The course folder: ``--course DIR`` or the current directory."""
    from autograder.core.course import Course

    return Course.find(args.course)


def output_folder(args, course) -> Path:
    """The output folder: ``--out DIR`` or the course folder; a file there is an error."""
    if not args.out:
        return course.root
    folder = Path(args.out).resolve()
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {args.out} is a file: give a folder for the results")
    return folder


def print_restored(results, students: list[str]) -> None:
    if students:
        print(
            f"restored the record of {', '.join(students)} in {results.root / 'autograded'} "
            f"from the copy in {results.root / '.records'}"
        )


def print_lost(results, assignment_id: str, students: list[str]) -> None:
    """One line per student whose record is gone with its copy: what to run."""
    for student in students:
        print(
            f"rnn-course: the record of {student}'s {assignment_id} is gone from "
            f"{results.autograded(student, assignment_id)} and has no copy to restore: "
            f"grade it again with `rnn-course grade {assignment_id} --student {student}`",
            file=sys.stderr,
        )


def print_summary(results, assignment_id: str, summary) -> None:
    """What a grading run of one class did: the grade table, changed scores, totals, paths."""
    print_grades(results, assignment_id)
    if summary.changes:
        from autograder.term import history

        print(f"scores this run changed:\n{history.table(summary.changes)}")
    print(summary.report())
    if waiting := [o.student for o, d in review.waiting(results, assignment_id) if d is None]:
        print(
            f"points withheld for review: {', '.join(waiting)} "
            f"(`rnn-course review {assignment_id}` says why)"
        )
    print_paths(results, assignment_id)
    print(f"log:       {summary.log}")


def print_grades(results, assignment_id: str) -> None:
    """The class's rows of the grades CSV: every part of the total, and what each run went
    through beside its status (``graded (notebook timed out)``)."""
    from autograder.core.results import Outcome
    from autograder.term import grades

    table = grades.read(results.grades_csv)
    if table is None:
        return
    table = table[table["assignment"] == assignment_id]
    outcomes = [Outcome.read(results.grading_file(s, assignment_id)) for s in table["student"]]
    shown = [o.shown_status if o else s for o, s in zip(outcomes, table["status"], strict=True)]
    columns = ["student", "status", "autograded", "manual", "adjustments", "late_penalty"]
    columns += ["total", "max"]
    print(table.assign(status=shown).reindex(columns=columns).to_string(index=False))


def print_paths(results, assignment_id: str) -> None:
    print(f"gradebook: {results.gradebook}  grades: {results.grades_csv}")
    print(f"feedback:  {results.root / 'feedback'}/<student>/{assignment_id}/feedback.html")
