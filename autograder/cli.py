"""The ``rnn-course`` command (also ``python -m autograder``).

Start-up imports nothing heavy: TensorFlow, nbgrader and pandas are imported by
the subcommand that needs them, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

from autograder import report, review

#: How many submissions the demo grades at a time (one pool for every sample class).
DEMO_JOBS = 2
#: The sample classes the demo grades: ``<course>/tests/files/<id>/``, each with this file.
SAMPLE_CLASS_FILE = "sample_class.toml"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["RNN_COURSE_DATA"] = str(Path(args.data_dir).resolve())
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    from assignments.data import DataError
    from autograder.course import CourseError
    from autograder.spec import SpecError
    from autograder.submissions import SubmissionsError

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


def student_timeout(text: str) -> tuple[str, int]:
    """``NAME=SECONDS`` of ``--student-timeout``."""
    name, _, seconds = text.partition("=")
    if not name or not seconds:
        raise argparse.ArgumentTypeError(f"expected NAME=SECONDS, got {text!r}")
    return name, positive_int(seconds)


def course_of(args):
    """The course folder: ``--course DIR`` or the current directory."""
    from autograder.course import Course

    return Course.find(args.course)


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

    data = commands.add_parser("data", help="check or fetch the course data sets")
    data_commands = data.add_subparsers(title="data commands", metavar="ACTION", required=True)
    verify = data_commands.add_parser("verify", help="check every data set's file and checksum")
    verify.set_defaults(handler=data_verify)
    fetch = data_commands.add_parser(
        "fetch", help="download missing data sets (or copy them from --data-dir) into a folder"
    )
    fetch.add_argument("--to", metavar="DIR", help="target folder (default: the download cache)")
    fetch.set_defaults(handler=data_fetch)

    release = commands.add_parser(
        "release", help="generate student releases with nbgrader and check them for leaks"
    )
    release.add_argument("assignments", nargs="*", metavar="ID", help="default: all")
    release.set_defaults(handler=release_assignments)

    grade = commands.add_parser(
        "grade", help="grade every submission of an assignment (intake, sandbox, judge, record)"
    )
    grade.add_argument("assignment", metavar="ID")
    grade.add_argument(
        "submissions",
        nargs="?",
        metavar="SUBMISSIONS",
        help="folder in nbgrader's layout <student>/<ID>/, or of <student>.zip "
        "(default: submitted/)",
    )
    grade.add_argument(
        "--out",
        metavar="DIR",
        help="where results go (default: the course folder); formgrader and "
        "`nbgrader export` work there as in the course folder",
    )
    grade.add_argument("--jobs", type=positive_int, default=1, help="parallel workers (default 1)")
    grade.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on a Dask cluster at ADDRESS, or 'local' for a LocalCluster of --jobs workers",
    )
    grade.add_argument("--force", action="store_true", help="regrade what is already recorded")
    grade.add_argument(
        "--no-execute",
        action="store_true",
        help="do not run notebooks; judge the shipped artifacts",
    )
    grade.add_argument(
        "--timeout",
        type=positive_int,
        metavar="SECONDS",
        help="time limit per notebook, instead of the assignment's own",
    )
    grade.add_argument(
        "--student-timeout",
        type=student_timeout,
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="time limit for one student's notebook (repeatable), instead of --timeout",
    )
    grade.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="NAME",
        help="regrade this student only, whatever is recorded (repeatable)",
    )
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.set_defaults(handler=grade_assignment)

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
    feedback.set_defaults(handler=merge_feedback)

    calibrate = commands.add_parser(
        "calibrate", help="train the reference solution over seeds and write the threshold table"
    )
    calibrate.add_argument("assignment", metavar="ID")
    calibrate.add_argument(
        "--seeds", type=positive_int, default=3, help="number of seeds (default 3)"
    )
    calibrate.set_defaults(handler=calibrate_assignment)

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
    bench.set_defaults(handler=run_bench)

    gradescope = commands.add_parser(
        "gradescope", help="build a Gradescope autograder zip with otter that scores like `grade`"
    )
    gradescope.add_argument("assignment", metavar="ID")
    gradescope.add_argument("--out", metavar="ZIP", help="default: <ID>-gradescope.zip")
    gradescope.set_defaults(handler=build_gradescope)

    report.add_parser(commands)
    review.add_parser(commands)

    demo = commands.add_parser(
        "demo",
        help="the main job: verify data, release everything, grade the sample classes into demo/",
    )
    demo.set_defaults(handler=run_demo)
    return parser


def data_verify(args) -> int:
    from assignments.cli import verify_data

    return verify_data()


def data_fetch(args) -> int:
    from assignments.cli import fetch_data

    return fetch_data(Path(args.to) if args.to else None)


def release_assignments(args) -> int:
    from autograder import release

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


def grade_assignment(args) -> int:
    from autograder import batch, record
    from autograder.course import Results

    course = course_of(args)
    spec = course.spec(args.assignment)
    submissions = Path(args.submissions) if args.submissions else course.submitted
    results = Results(output_folder(args, course))
    recovery = record.recover(results, spec.id, course.source_notebook(spec))
    print_restored(results, recovery.restored)
    summary = batch.run_batch(
        spec,
        course,
        submissions.resolve(),
        results,
        jobs=args.jobs,
        scheduler=args.scheduler,
        force=args.force,
        execute=not args.no_execute,
        notebook_timeout_s=args.timeout,
        student_timeouts=dict(args.student_timeout),
        students=args.student,
        progress=not args.no_progress,
    )
    print_summary(results, spec.id, summary)
    if results.root != course.root:
        print(f"nbgrader:  formgrader and `nbgrader export` work in {results.root}")
    lost = [s for s in recovery.lost if record.recorded(results, s, spec.id) is None]
    if regraded := [s for s in recovery.lost if s not in lost]:
        print(f"graded again, their record gone with its copy: {', '.join(regraded)}")
    print_lost(results, spec.id, lost)
    return 1 if summary.failed or lost else 0


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
        from autograder import history

        print(f"scores this run changed:\n{history.table(summary.changes)}")
    print(summary.report())
    if waiting := [o.student for o, d in review.waiting(results, assignment_id) if d is None]:
        print(
            f"points withheld for review: {', '.join(waiting)} "
            f"(`rnn-course review {assignment_id}` says why)"
        )
    print_paths(results, assignment_id)
    print(f"log:       {summary.log}")


def merge_feedback(args) -> int:
    """Merge the hand grades of the gradebook into the pages, results.json and the CSV."""
    from autograder import late, record
    from autograder.course import Results

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


def print_grades(results, assignment_id: str) -> None:
    """The class's rows of the grades CSV: every part of the total, and what each run went
    through beside its status (``graded (notebook timed out)``)."""
    from autograder import grades
    from autograder.task import Outcome

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


def calibrate_assignment(args) -> int:
    from autograder.calibrate import calibrate, table

    spec = course_of(args).spec(args.assignment)
    print(table(spec, calibrate(spec, list(range(args.seeds)))))
    return 0


def run_bench(args) -> int:
    from autograder import bench

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


def build_gradescope(args) -> int:
    from autograder import gradescope

    spec = course_of(args).spec(args.assignment)
    output = Path(args.out or f"{spec.id}-gradescope.zip").resolve()
    if not output.parent.is_dir():
        raise CommandError(f"cannot write {output}: the folder {output.parent} does not exist")
    path = gradescope.build(spec, output)
    print(f"Gradescope autograder: {path} (upload it as the assignment's autograder zip)")
    return 0


def run_demo(args) -> int:
    """Verify the data, release every assignment, grade the sample classes into ``demo/``
    (one pool for all of them) and write each class's report."""
    from autograder import batch
    from autograder.course import Results

    course = course_of(args)
    print("== data: checking the course data sets")
    status = data_verify(args)
    print("\n== release: generating the student notebooks")
    status |= release_assignments(argparse.Namespace(assignments=[], course=args.course))
    results = Results(course.root / "demo")
    print(f"\n== grade: the sample classes, {DEMO_JOBS} submissions at a time (reruns resume)")
    requests = []
    for assignment_id in course.assignment_ids():
        sample = course.root / "tests" / "files" / assignment_id
        if not (sample / SAMPLE_CLASS_FILE).is_file():
            continue
        with open(sample / SAMPLE_CLASS_FILE, "rb") as handle:
            settings = tomllib.load(handle)
        print(f"   {assignment_id}: {sample / 'submitted'} ({settings['description']})")
        requests.append(
            batch.ClassRequest(
                course.spec(assignment_id),
                (sample / "submitted").resolve(),
                notebook_timeout_s=settings["notebook_timeout_s"],
                student_timeouts=dict(settings.get("student_timeouts", {})),
            )
        )
    summaries = batch.run_batches(course, requests, results, jobs=DEMO_JOBS)
    parser = build_parser()
    for request, summary in zip(requests, summaries, strict=True):
        print(f"\n== graded: the sample class of {request.spec.id}")
        print_summary(results, request.spec.id, summary)
        status |= 1 if summary.failed else 0
        print(f"\n== report: the class report of {request.spec.id}")
        reporting = [*course_argv(args), "report", request.spec.id, "--out", str(results.root)]
        status |= report.run_report(parser.parse_args(reporting))
    return status


def course_argv(args) -> list[str]:
    """The global options of ``args`` as a command line, for the demo's own commands."""
    options = {"--course": args.course, "--data-dir": args.data_dir}
    return [part for option, value in options.items() if value for part in (option, value)]


if __name__ == "__main__":
    raise SystemExit(main())
