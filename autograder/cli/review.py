"""``rnn-course review ID``: the points withheld for review; release them or keep them."""

from __future__ import annotations

from autograder.cli.common import CommandError, course_of, print_grades


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "review",
        help="list the points withheld for review; release them (or keep them withheld)",
    )
    parser.add_argument("assignment", metavar="ID")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--release", metavar="STUDENT", nargs="+", default=[])
    what.add_argument("--keep", metavar="STUDENT", nargs="+", default=[])
    parser.add_argument("--note", default="", help="why (kept with the decision)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from autograder.core.course import Results
    from autograder.grading import record
    from autograder.term import late
    from autograder.term.review import decide, waiting, withheld

    course = course_of(args)
    spec = course.spec(args.assignment)
    results = Results(course.root)
    rows = waiting(results, spec.id)
    students = args.release or args.keep
    if students:
        outcomes = {outcome.student: outcome for outcome, _ in rows}
        if unknown := sorted(set(students) - set(outcomes)):
            raise CommandError(
                f"{', '.join(unknown)}: no points of {spec.id} withheld for review "
                f"(`rnn-course review {spec.id}` lists them)"
            )
        for student in students:
            decide(results, outcomes[student], released=bool(args.release), note=args.note)
        record.merge(results, spec.id, course.source_notebook(spec), late.policy(course), students)
        verb = "released" if args.release else "kept withheld"
        print(f"{verb}: the withheld points of {', '.join(students)}")
        print_grades(results, spec.id)
        return 0
    if not rows:
        print(f"no points of {spec.id} are withheld for review in {results.root}")
        return 0
    for outcome, decision in rows:
        state = "waiting"
        if decision is not None:
            state = "released" if decision.released else "kept withheld"
            state += f" {decision.decided}" + (f" ({decision.note})" if decision.note else "")
        print(f"{outcome.student}: {withheld(outcome):g} point(s), {state}")
        for reason in sorted({check.review for check in outcome.checks if check.withheld}):
            print(f"  {reason}")
    print(f"release with `rnn-course review {spec.id} --release STUDENT` after looking")
    return 0
