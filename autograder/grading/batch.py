"""Grading a whole class: find submissions, grade each (intake, run, judge), record.

Submissions are read in nbgrader's layout, ``SUBMISSIONS/<student>/<id>/``, or
as a folder of zips (``<student>.zip`` or ``<student>_<anything>.zip``, holding
the files of the submission, optionally under one top folder). Each one is
graded by :func:`grade_submission` in a worker: a local process pool by
default, or a Dask distributed cluster; several classes can share one pool
(:func:`run_batches`). The parent records each outcome as it arrives; a rerun
grades only submissions that are new or whose files changed, or the students it
names. Each run writes its log (:mod:`autograder.term.runlog`) and reports the scores
a regrade changed (:mod:`autograder.term.history`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.core.course import Course, Judged, Results
from autograder.core.plugin import load_plugin
from autograder.core.results import GradingTask, Outcome
from autograder.core.safe_json import load_json
from autograder.core.spec import Spec
from autograder.grading import record, scan
from autograder.grading.collect import Submission, SubmissionsError, find_submissions
from autograder.grading.intake import IntakeError, intake
from autograder.grading.sandbox import bubblewrap
from autograder.term import feedback, gradebook, history
from autograder.term.runlog import RunLog

if TYPE_CHECKING:  # nbgrader, imported where a run starts, not in every worker
    from autograder.term.late import LatePolicy


@dataclass
class BatchSummary:
    graded: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    changes: list[history.Change] = field(default_factory=list)
    seconds: float = 0.0
    log: Path | None = None

    def report(self) -> str:
        return (
            f"graded {len(self.graded)}, rejected {len(self.rejected)}, "
            f"failed {len(self.failed)}, skipped (already graded) {len(self.skipped)} "
            f"in {self.seconds:.0f} s"
        )


# --------------------------------------------------------------------------- one submission


def grade_submission(task: GradingTask) -> Outcome:
    """Intake, sandboxed run and judge of one submission; returns its outcome (data only).

    Runs in a worker process. Nothing here raises for a bad submission: every
    failure becomes a message and zero points on the checks that depend on it.
    """
    from autograder.core.results import Judgement
    from autograder.grading.judge import JudgeError
    from autograder.grading.judge.parent import worker_judge
    from autograder.grading.run import run_submission

    started = time.perf_counter()
    if task.threads:  # this worker's share of the cores: its notebooks' and its judge's
        os.environ.update(dict.fromkeys(bubblewrap.THREAD_VARIABLES, str(task.threads)))
    spec = task.spec
    limits = spec.limits
    if task.notebook_timeout_s:
        limits = replace(limits, notebook_timeout_s=task.notebook_timeout_s)
    shutil.rmtree(task.work, ignore_errors=True)
    scratch, judged = task.work / "scratch", Judged(task.work / "judged")
    judged.root.mkdir(parents=True)
    notes: list[str] = []
    answers: dict[str, str] = {}
    signals: list[str] = []
    submitted = None  # the notebook as submitted: the one to keep when none is executed
    try:
        if task.problem:
            raise IntakeError(task.problem)
        taken = intake(task.submission, spec, task.release_notebook, scratch, execute=task.execute)
        notes, answers = taken.notes, gradebook.answers(taken.notebook)
        signals = _signals(task.submission, spec)
        submitted = None if task.execute else taken.notebook
        result = run_submission(
            taken.notebook,
            scratch,
            judged.root,
            limits=limits,
            probes=spec.probes,
            artifacts=spec.artifact_paths,
            data_dir=task.data_dir,
            execute=task.execute,
        )
        run = result.to_json()
        notes = notes + result.notes
    except IntakeError as err:
        run = {"status": "rejected", "message": f"The submission could not be graded: {err}"}
        record.atomic_write(judged.run_json, json.dumps(run))
    status = "rejected" if run["status"] == "rejected" else "graded"
    judging = time.perf_counter()
    try:
        judgement = worker_judge().judge(spec, judged.root, limits)
    except JudgeError as err:
        judgement, status = Judgement([]), "failed"
        run = {**run, "message": f"Grading failed (a course problem, not yours): {err}"}
    return Outcome.of(
        task,
        status,
        run,
        checks=judgement.checks,
        notes=notes + judgement.notes,
        learning_curves=_learning_curves(spec, judged),
        figures=judgement.figures,
        texts=judgement.texts,
        seconds=round(time.perf_counter() - started, 1),
        judge_seconds=round(time.perf_counter() - judging, 1),
        answers=answers,
        signals=signals,
        executed=judged.executed if judged.executed.is_file() else submitted,
    )


def _signals(submission: Path, spec: Spec) -> list[str]:
    """What the scan of the submitted files tells the instructor (it decides no points)."""
    try:
        found = scan.scan(submission, scan.index_of(load_plugin(spec)))
    except Exception as err:  # a second signal: its failure costs the student nothing
        return [f"the scan for hidden data could not run: {type(err).__name__}: {err}"]
    return [found] if found else []


def _learning_curves(spec: Spec, judged: Judged) -> str | None:
    """The plot of the curves the spec declares, from the exported history (if any)."""
    if spec.curves is None:
        return None
    path = judged.artifact(spec.artifact_paths[spec.curves.artifact])
    if not path.is_file():
        return None
    try:
        return feedback.learning_curves_png(load_json(path.read_bytes(), path.name), spec.curves)
    except Exception:  # a plot of student data, worth no points: the checks judge the file
        return None


# --------------------------------------------------------------------------- the batch


def pending(
    spec: Spec, submissions: list[Submission], results: Results, force: bool
) -> tuple[list[Submission], list[Submission]]:
    """Split into (to grade, already recorded with the same files)."""
    todo, done = [], []
    for submission in submissions:
        earlier = record.recorded(results, submission.student, spec.id)
        unchanged = (
            earlier is not None
            and earlier.digest == submission.digest
            and earlier.status != "failed"
        )
        (done if unchanged and not force else todo).append(submission)
    return todo, done


@dataclass
class ClassRequest:
    """One assignment's class to grade in a run: its submissions and their time limits.

    ``notebook_timeout_s`` replaces the assignment's time limit per notebook, and
    ``student_timeouts`` replaces it again for the students it names. ``students``,
    when given, are regraded whatever is recorded, and no one else is.
    """

    spec: Spec
    submissions: Path
    notebook_timeout_s: int | None = None
    student_timeouts: dict[str, int] = field(default_factory=dict)
    students: Sequence[str] = ()


def run_batch(
    spec: Spec,
    course: Course,
    submissions: Path,
    results: Results,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    execute: bool = True,
    notebook_timeout_s: int | None = None,
    student_timeouts: dict[str, int] | None = None,
    students: Sequence[str] = (),
    progress: bool = True,
) -> BatchSummary:
    """Grade every submission of ``spec`` under ``submissions`` into ``results``.

    The options are those of :class:`ClassRequest` and :func:`run_batches`.
    """
    request = ClassRequest(spec, submissions, notebook_timeout_s, student_timeouts or {}, students)
    return run_batches(
        course,
        [request],
        results,
        jobs=jobs,
        scheduler=scheduler,
        force=force,
        execute=execute,
        progress=progress,
    )[0]


def run_batches(
    course: Course,
    requests: Sequence[ClassRequest],
    results: Results,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    execute: bool = True,
    progress: bool = True,
) -> list[BatchSummary]:
    """Grade the classes of ``requests`` into ``results`` with one pool of ``jobs`` workers.

    The submissions of the classes take turns in the queue, so that no class waits
    for another to finish and the workers stay busy to the end. Each class keeps its
    own log and summary (returned in the order of ``requests``).

    Raises :class:`autograder.grading.collect.SubmissionsError` (or
    :class:`autograder.core.course.CourseError`) before grading anything when a folder or
    the course is not what grading needs.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    found = [_find(request, results) for request in requests]
    settings = [f"output {results.root}", f"jobs {jobs}"]
    settings += [f"scheduler {scheduler}"] if scheduler else []
    settings += [] if execute else ["without execution"]
    settings += ["force"] if force else []
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    runs: list[_ClassRun] = []
    try:
        for request, submissions in zip(requests, found, strict=True):
            runs.append(
                _ClassRun.start(
                    course,
                    request,
                    submissions,
                    results,
                    settings,
                    force=force,
                    execute=execute,
                    threads=threads,
                )
            )
        queues = [run.tasks for run in runs]
        tasks = [task for turn in itertools.zip_longest(*queues) for task in turn if task]
        run_of = {(run.spec.id, task.student): run for run in runs for task in run.tasks}
        names = ", ".join(run.spec.id for run in runs)
        bar = tqdm(total=len(tasks), desc=f"grading {names}", unit="sub", disable=not progress)
        with contextlib.closing(_execute(tasks, jobs, scheduler)) as outcomes:
            for task, outcome in outcomes:
                run_of[task.spec.id, task.student].record(task, outcome, started)
                bar.update()
        bar.close()
        for run in runs:
            run.finish(started)
    except KeyboardInterrupt:  # Ctrl-C: the workers are stopped, what is recorded stays
        message = _interrupted(runs)
        for run in runs:
            run.log.write(f"stopped  {message}")
        raise Interrupted(message) from None
    except BaseException as err:  # a killed or broken run: each log says where it stopped
        for run in runs:
            run.log.write(f"stopped  {type(err).__name__}: {err}")
        raise
    finally:
        for run in runs:
            run.log.close()
    return [run.summary for run in runs]


def _storable(outcome: Outcome) -> Outcome:
    """``outcome`` with every text made valid UTF-8, so that recording it cannot fail.

    Messages quote what student code raised or printed; an unpaired surrogate there
    (``\\udcff``) would stop the gradebook, the CSV and the pages: it is escaped.
    """

    def valid(value):
        if isinstance(value, str):
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        if isinstance(value, list):
            return [valid(item) for item in value]
        if isinstance(value, dict):
            return {valid(key): valid(item) for key, item in value.items()}
        return value

    return replace(Outcome.from_json(valid(outcome.to_json())), executed=outcome.executed)


class Interrupted(KeyboardInterrupt):
    """A grading run stopped by Ctrl-C; the message says what is recorded and how to resume."""


def _interrupted(runs: list[_ClassRun]) -> str:
    """What an interrupted run leaves: how many submissions are recorded, how to go on."""
    if not runs:
        return "interrupted before grading began: nothing was recorded"
    done = sum(len(r.summary.graded + r.summary.rejected + r.summary.failed) for r in runs)
    total = sum(len(r.tasks) for r in runs)
    before = sum(len(r.summary.skipped) for r in runs)
    earlier = f", besides {before} recorded before" if before else ""
    return (
        f"interrupted: {done} of the {total} submission(s) to grade were recorded{earlier}; "
        f"run the same command again to grade the other {total - done} (it resumes)"
    )


def _find(request: ClassRequest, results: Results) -> list[Submission]:
    """The submissions of ``request``, after checking that every student it names has one."""
    spec = request.spec
    found = find_submissions(
        spec.id,
        request.submissions,
        results.collected,
        max_bytes=spec.limits.max_submission_bytes,
    )
    names = {s.student for s in found}
    named_by = (("a time limit", request.student_timeouts), ("a regrade", request.students))
    for what, named in named_by:
        if unknown := sorted(set(named) - names):
            raise SubmissionsError(
                f"{what} names {', '.join(unknown)}, who has no submission in {request.submissions}"
            )
    return found


@dataclass
class _ClassRun:
    """One class in a grading run: its tasks, and where its outcomes are recorded."""

    spec: Spec
    results: Results
    source: Path
    policy: LatePolicy
    log: RunLog
    summary: BatchSummary
    tasks: list[GradingTask]

    @classmethod
    def start(
        cls,
        course: Course,
        request: ClassRequest,
        found: list[Submission],
        results: Results,
        settings: list[str],
        *,
        force: bool,
        execute: bool,
        threads: int | None,
    ) -> _ClassRun:
        """Open the class's log, restore what is graded already and list what is not."""
        from assignments.data import cache_dir
        from autograder.term import late, nbgrader_tools

        spec = request.spec
        policy = late.policy(course)
        source = course.source_notebook(spec)
        release = course.release_notebook(spec)
        data_dir = (
            load_plugin(spec).student_view(cache_dir() / "student-view" / spec.id)
            if execute
            else None
        )
        gradebook.register_assignment(results, spec.id, source, policy.duedate(spec.id))
        nbgrader_tools.open_output(course, results, spec)
        if request.students:
            todo, done = [s for s in found if s.student in request.students], []
        else:
            todo, done = pending(spec, found, results, force)
        named = [f"students {' '.join(request.students)}"] if request.students else []
        log = RunLog.start(
            results, spec.id, ", ".join([f"submissions {request.submissions}", *settings, *named])
        )
        run = cls(spec, results, source, policy, log, BatchSummary(log=log.path), [])
        run.summary.skipped = [s.student for s in done]
        restored = []
        for submission in done:  # the class-level files agree with the records, whatever happened
            outcome = record.recorded(results, submission.student, spec.id)
            restored.append(record.restore(results, outcome, source, policy))
            log.write(f"skipped  {outcome.student}: graded before, same files ({outcome.score:g})")
        record.write_grades_csv(results, restored)
        run.tasks = [
            GradingTask(
                spec=spec,
                student=s.student,
                submission=s.folder,
                digest=s.digest,
                release_notebook=release,
                work=results.work(spec.id, s.student),
                execute=execute,
                data_dir=data_dir,
                notebook_timeout_s=request.student_timeouts.get(
                    s.student, request.notebook_timeout_s
                ),
                problem=s.problem,
                threads=threads,
                timestamp=_timestamp(s, log),
            )
            for s in todo
        ]
        return run

    def record(self, task: GradingTask, outcome: Outcome, started: float) -> None:
        """Record one outcome: its files, the gradebook, the log and the summary."""
        outcome = _storable(outcome)
        change = record.record(self.results, outcome, self.source, self.policy)
        shutil.rmtree(task.work, ignore_errors=True)
        getattr(self.summary, outcome.status).append(task.student)
        self.log.outcome(outcome)
        if change:
            self.summary.changes.append(change)
        self.summary.seconds = time.perf_counter() - started

    def finish(self, started: float) -> None:
        """Log the scores that changed and the totals (the class's time: to its last outcome)."""
        if self.summary.changes:
            self.log.write(f"scores this run changed:\n{history.table(self.summary.changes)}")
        if not self.tasks:
            self.summary.seconds = time.perf_counter() - started
        self.log.write(self.summary.report())


def _timestamp(submission: Submission, log: RunLog) -> str | None:
    """When the submission was collected (:func:`autograder.term.late.submission_time`), logged."""
    from autograder.term import late

    time, source = late.submission_time(submission.folder, submission.archive)
    log.write(f"time     {submission.student}: {time or 'unknown'} from {source}")
    return time


def _execute(
    tasks: list[GradingTask], jobs: int, scheduler: str | None, worker=None
) -> Iterator[tuple[GradingTask, Outcome]]:
    """Yield ``(task, outcome)`` as workers finish: Dask when ``scheduler`` is set, else a pool."""
    worker = worker or grade_submission
    if not tasks:
        return
    if scheduler:
        yield from _execute_dask(tasks, jobs, scheduler)
        return
    broken = yield from _execute_pool(tasks, jobs, worker)
    for task in broken:  # one at a time, so that a worker that dies again is its task's
        yield from _execute_pool([task], 1, worker, retry=False)


def _execute_pool(tasks: list[GradingTask], jobs: int, worker, retry: bool = True):
    """Run ``tasks`` in a process pool; return the tasks a dying worker took down with it.

    Stopped early (Ctrl-C, or the caller closes the generator), it cancels the queued
    tasks and ends the running workers at once, instead of waiting for them.
    """
    broken = []
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))
    try:
        futures = {pool.submit(worker, task): task for task in tasks}
        for future in as_completed(futures):
            if retry and isinstance(future.exception(), BrokenProcessPool):
                broken.append(futures[future])
                continue
            yield futures[future], _result_or_failure(futures[future], future)
    except BaseException:
        workers = multiprocessing.active_children()  # the pool's: the parent starts no other
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        raise
    pool.shutdown()
    return broken


def _execute_dask(
    tasks: list[GradingTask], jobs: int, scheduler: str
) -> Iterator[tuple[GradingTask, Outcome]]:
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True)
    try:
        with Client(cluster or scheduler) as client:
            futures = {
                client.submit(grade_submission, task, pure=False, key=_key(task)): task
                for task in tasks
            }
            for future in dask_completed(futures):
                yield futures[future], _result_or_failure(futures[future], future)
    finally:
        if cluster is not None:
            cluster.close()


def _key(task: GradingTask) -> str:
    """The task's name on a Dask cluster (unique in a run of several classes)."""
    return f"grade-{task.spec.id}-{task.student}"


def _result_or_failure(task: GradingTask, future) -> Outcome:
    """The worker's outcome, or a recorded failure when the worker itself died."""
    try:
        return future.result()
    except Exception as err:  # a dead worker must not stop the batch
        message = (
            f"Grading stopped ({type(err).__name__}: {err}); "
            "the submission is graded again on the next run"
        )
        return Outcome.of(task, "failed", {"status": "failed", "message": message})
