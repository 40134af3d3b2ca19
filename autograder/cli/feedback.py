"""``rnn-course feedback ID``: after hand grading in formgrader, merge the hand grades into
the feedback pages, results.json and the grades CSV."""

from __future__ import annotations

from autograder.cli.common import (
    CommandError,
    course_of,
    output_folder,
    print_grades,
    print_lost,
    print_paths,
    print_restored,
)


def add_parser(commands) -> None:
    feedback = commands.add_parser(
        "feedback",
        help="after hand grading in formgrader: merge the hand grades into the feedback "
        "pages, results.json and the grades CSV",
    )
    feedback.add_argument("assignment", metavar="ID")
    feedback.add_argument(
        "--out", metavar="DIR", help="the output folder of `grade` (default: the course folder)"
    )
    feedback.add_argument(
        "--student", action="append", default=[], metavar="NAME", help="only this student"
    )
    feedback.set_defaults(handler=run)


def run(args) -> int:
    """Merge the hand grades of the gradebook into the pages, results.json and the CSV."""
    from autograder.core.course import Results
    from autograder.grading import record
    from autograder.term import late

    course = course_of(args)
    spec = course.spec(args.assignment)
    source = course.source_notebook(spec)
    results = Results(output_folder(args, course))
    recovery = record.recover(results, spec.id, source, args.student)
    graded = {path.parent.parent.name for path in results.grading_files(spec.id)}
    if not graded and not recovery.lost:
        raise CommandError(
            f"nothing of {spec.id} is graded in {results.root}: run `rnn-course grade {spec.id}`"
        )
    if unknown := sorted(set(args.student) - graded - set(recovery.lost)):
        raise CommandError(f"{', '.join(unknown)} has no graded {spec.id} in {results.root}")
    print_restored(results, recovery.restored)
    marks, restored = record.merge(results, spec.id, source, late.policy(course), args.student)
    print_grades(results, spec.id)
    waiting = [
        f"{m.outcome.student} ({', '.join(g.cell for g in m.hand_grades if g.points is None)})"
        for m in marks
        if m.needs_manual_grade
    ]
    if waiting:
        print(f"still to grade by hand in formgrader: {'; '.join(waiting)}")
    if restored:
        print(f"restored the missing feedback page of {', '.join(restored)}")
    print(f"merged the hand grades of {len(marks)} submission(s)")
    print_paths(results, spec.id)
    print_lost(results, spec.id, recovery.lost)
    return 1 if recovery.lost else 0
