"""The ``rnn-course`` command (also ``python -m autograder``).

Start-up imports nothing heavy: TensorFlow, nbgrader and pandas are imported by
the subcommand that needs them, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: Notebook time limit of the demo: the sample class has a notebook that never ends.
DEMO_TIMEOUT_S = 360


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["RNN_COURSE_DATA"] = str(Path(args.data_dir).resolve())
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    from assignments.data import DataError
    from assignments.spec import SpecError

    try:
        return args.handler(args)
    except (DataError, SpecError, FileNotFoundError) as err:
        print(f"rnn-course: {err}", file=sys.stderr)
        return 1


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
    grade.add_argument("--out", metavar="DIR", help="where results go (default: the course folder)")
    grade.add_argument("--jobs", type=int, default=1, help="parallel workers (default 1)")
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
        type=int,
        metavar="SECONDS",
        help="time limit per notebook, instead of the assignment's own",
    )
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.set_defaults(handler=grade_assignment)

    calibrate = commands.add_parser(
        "calibrate", help="train the reference solution over seeds and write the threshold table"
    )
    calibrate.add_argument("assignment", metavar="ID")
    calibrate.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    calibrate.set_defaults(handler=calibrate_assignment)

    bench = commands.add_parser(
        "bench", help="time `grade` against `nbgrader autograde` on copies of one submission"
    )
    bench.add_argument("assignment", metavar="ID")
    bench.add_argument("submission", metavar="FOLDER", help="one submission folder")
    bench.add_argument("--copies", type=int, default=4, help="how many copies (default 4)")
    bench.add_argument("--jobs", type=int, default=1, help="workers for `grade` (default 1)")
    bench.set_defaults(handler=run_bench)

    gradescope = commands.add_parser(
        "gradescope", help="build a Gradescope autograder zip with otter that scores like `grade`"
    )
    gradescope.add_argument("assignment", metavar="ID")
    gradescope.add_argument("--out", metavar="ZIP", help="default: <ID>-gradescope.zip")
    gradescope.set_defaults(handler=build_gradescope)

    demo = commands.add_parser(
        "demo",
        help="the main job: verify data, release everything, grade the sample classes into demo/",
    )
    demo.set_defaults(handler=run_demo)
    return parser


def data_verify(args) -> int:
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


def data_fetch(args) -> int:
    from assignments import data

    target = Path(args.to) if args.to else data.cache_dir()
    failures = 0
    for name in data.DATASETS:
        try:
            print(f"ok       {name:12} {data.copy_to(name, target)}")
        except data.DataError as err:
            failures += 1
            print(f"FAILED   {name:12} {err}")
    return 1 if failures else 0


def release_assignments(args) -> int:
    from assignments import spec
    from autograder import release

    ids = args.assignments or spec.available()
    failures = 0
    for assignment_id in ids:
        try:
            result = release.generate(assignment_id)
        except (release.ReleaseError, spec.SpecError) as err:
            failures += 1
            print(f"FAILED   {assignment_id}: {err}", file=sys.stderr)
            continue
        names = ", ".join(p.name for p in result.notebooks)
        print(
            f"released {assignment_id}: {result.folder} ({names}); "
            "no solution or hidden test leaked"
        )
    if not ids:
        print("no assignment has a spec yet; nothing to release")
    return 1 if failures else 0


def grade_assignment(args) -> int:
    from assignments import data, spec
    from autograder import batch, record
    from autograder.course import REPO_ROOT

    assignment = spec.load(args.assignment)
    submissions = Path(args.submissions or REPO_ROOT / "submitted")
    out = Path(args.out or REPO_ROOT).resolve()
    view = data.student_view(assignment.datasets, data.cache_dir() / "student-view" / assignment.id)
    summary = batch.run_batch(
        assignment.id,
        submissions,
        out,
        jobs=args.jobs,
        scheduler=args.scheduler,
        force=args.force,
        execute=not args.no_execute,
        data_dir=view,
        notebook_timeout_s=args.timeout,
        progress=not args.no_progress,
    )
    print_grades(out, assignment.id)
    print(
        f"graded {len(summary.graded)}, rejected {len(summary.rejected)}, "
        f"failed {len(summary.failed)}, skipped (already graded) {len(summary.skipped)} "
        f"in {summary.seconds:.0f} s"
    )
    print(f"gradebook: {out / 'gradebook.db'}  grades: {out / record.GRADES_FILE}")
    print(f"feedback:  {out / 'feedback'}/<student>/{assignment.id}/feedback.html")
    return 1 if summary.failed else 0


def print_grades(out: Path, assignment_id: str) -> None:
    import pandas as pd

    from autograder.record import GRADES_FILE

    path = out / GRADES_FILE
    if not path.is_file():
        return
    grades = pd.read_csv(path)
    grades = grades[grades["assignment"] == assignment_id]
    print(grades[["student", "status", "total", "max"]].to_string(index=False))


def calibrate_assignment(args) -> int:
    import importlib

    solution = importlib.import_module(f"solutions.{args.assignment}")
    table = solution.calibrate(seeds=tuple(range(args.seeds)))
    print(table)
    return 0


def run_bench(args) -> int:
    from autograder import bench

    result = bench.run(args.assignment, Path(args.submission), args.copies, args.jobs)
    print(result.report())
    return 0


def build_gradescope(args) -> int:
    from autograder import gradescope

    path = gradescope.build(args.assignment, Path(args.out or f"{args.assignment}-gradescope.zip"))
    print(f"Gradescope autograder: {path} (upload it as the assignment's autograder zip)")
    return 0


def run_demo(args) -> int:
    """Verify the data, release every assignment, grade each sample class into ``demo/``."""
    from assignments import spec
    from autograder.course import REPO_ROOT

    print("== data: checking the course data sets")
    status = data_verify(args)
    print("\n== release: generating the student notebooks")
    status |= release_assignments(argparse.Namespace(assignments=[]))
    out = REPO_ROOT / "demo"
    for assignment_id in spec.available():
        sample = REPO_ROOT / "tests" / "files" / assignment_id / "submitted"
        if not sample.is_dir():
            continue
        print(f"\n== grade: the sample class of {assignment_id} ({sample})")
        print("   (first run: a few minutes, one notebook trains three models; reruns resume)")
        status |= grade_assignment(
            argparse.Namespace(
                assignment=assignment_id,
                submissions=str(sample),
                out=str(out),
                jobs=2,
                scheduler=None,
                force=False,
                no_execute=False,
                timeout=DEMO_TIMEOUT_S,
                no_progress=False,
            )
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
