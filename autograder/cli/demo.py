"""``rnn-course demo``: verify the data, release everything, grade the sample classes into
``demo/`` and write each class's report."""

from __future__ import annotations

import argparse
import tomllib

from autograder.cli import data, release, report
from autograder.cli.common import course_of, print_summary

#: How many submissions the demo grades at a time (one pool for every sample class).
DEMO_JOBS = 2
#: The sample classes the demo grades: ``<course>/tests/files/<id>/``, each with this file.
SAMPLE_CLASS_FILE = "sample_class.toml"


def add_parser(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="the main job: verify data, release everything, grade the sample classes into demo/",
    )
    demo.set_defaults(handler=run)


def run(args) -> int:
    """Verify the data, release every assignment, grade the sample classes into ``demo/``
    (one pool for all of them) and write each class's report."""
    from autograder.core.course import Results
    from autograder.grading import batch

    course = course_of(args)
    print("== data: checking the course data sets")
    status = data.verify(args)
    print("\n== release: generating the student notebooks")
    status |= release.run(argparse.Namespace(assignments=[], course=args.course))
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
    for request, summary in zip(requests, summaries, strict=True):
        print(f"\n== graded: the sample class of {request.spec.id}")
        print_summary(results, request.spec.id, summary)
        status |= 1 if summary.failed else 0
        print(f"\n== report: the class report of {request.spec.id}")
        reporting = argparse.Namespace(
            course=args.course, assignment=request.spec.id, out=str(results.root), to=None
        )
        status |= report.run(reporting)
    return status
