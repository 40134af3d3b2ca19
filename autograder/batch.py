"""Grading a whole class: find submissions, grade each (intake, run, judge), record.

Submissions are read in nbgrader's layout, ``SUBMISSIONS/<student>/<id>/``, or
as a folder of zips (``<student>.zip`` or ``<student>_<anything>.zip``, holding
the files of the submission, optionally under one top folder). Each one is
graded by :func:`grade_submission` in a worker: a local process pool by
default, or a Dask distributed cluster. The parent records each outcome as it
arrives; a rerun grades only submissions that are new or whose files changed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from assignments import spec as specs
from autograder import record
from autograder.course import REPO_ROOT
from autograder.intake import IntakeError, intake, submitted_files

ZIP_LIMIT_MB = 512


@dataclass(frozen=True)
class Submission:
    student: str
    folder: Path
    digest: str


@dataclass
class BatchSummary:
    graded: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def release_notebook(assignment: specs.Spec, course_root: Path = REPO_ROOT) -> Path:
    path = course_root / "release" / assignment.id / assignment.notebook
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `rnn-course release {assignment.id}` first"
        )
    return path


def source_notebook(assignment: specs.Spec, course_root: Path = REPO_ROOT) -> Path:
    return course_root / "source" / assignment.id / assignment.notebook


def digest(folder: Path) -> str:
    """SHA-256 over the names and contents of the submitted files."""
    hasher = hashlib.sha256()
    for path in submitted_files(folder):
        hasher.update(str(path.relative_to(folder)).encode() + b"\0")
        hasher.update(hashlib.sha256(path.read_bytes()).digest())
    return hasher.hexdigest()


def discover(assignment_id: str, submissions: Path, out: Path) -> list[Submission]:
    """Every submission of ``assignment_id`` under ``submissions``, sorted by student."""
    found = {}
    for folder in sorted(submissions.glob(f"*/{assignment_id}")):
        if folder.is_dir():
            found[folder.parent.name] = folder
    for archive in sorted(submissions.glob("*.zip")):
        student = archive.stem.split("_")[0]
        found.setdefault(student, unpack(archive, out / ".collected" / student / assignment_id))
    return [
        Submission(student, folder, digest(folder)) for student, folder in sorted(found.items())
    ]


def unpack(archive: Path, target: Path) -> Path:
    """Extract a submitted zip safely: no absolute or ``..`` paths, no links, size-capped."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > ZIP_LIMIT_MB * 1024 * 1024:
                raise IntakeError(f"{archive.name} unpacks to more than {ZIP_LIMIT_MB} MB")
            prefix = _common_folder([m.filename for m in members])
            for member in members:
                relative = Path(member.filename[len(prefix) :])
                if (
                    relative.is_absolute()
                    or ".." in relative.parts
                    or (member.external_attr >> 28) == 0xA
                ):
                    continue  # unsafe member: skipped, never written outside the target
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(zipped.read(member))
    except (zipfile.BadZipFile, OSError) as err:
        (target / "UNREADABLE_ZIP.txt").write_text(f"{archive.name}: {err}")
    return target


def _common_folder(names: list[str]) -> str:
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        return tops.pop() + "/"
    return ""


# --------------------------------------------------------------------------- one submission


def grade_submission(task: dict) -> dict:
    """Intake, sandboxed run and judge of one submission; returns the outcome (data only).

    Runs in a worker process. Nothing here raises for a bad submission: every
    failure becomes a message and zero points on the checks that depend on it.
    """
    from autograder.judge import JudgeError, judge
    from autograder.run import run_submission

    started = time.perf_counter()
    assignment = specs.load(task["assignment"])
    limits = assignment.limits
    if task.get("notebook_timeout_s"):
        limits = replace(limits, notebook_timeout_s=task["notebook_timeout_s"])
    work = Path(task["work"])
    shutil.rmtree(work, ignore_errors=True)
    scratch, judged = work / "scratch", work / "judged"
    judged.mkdir(parents=True)
    notes: list[str] = []
    try:
        taken = intake(Path(task["submission"]), assignment, Path(task["release"]), scratch)
        notes = taken.notes
        result = run_submission(
            taken.notebook,
            scratch,
            judged,
            limits=limits,
            probes=assignment.probes,
            artifacts=assignment.artifact_paths,
            data_dir=Path(task["data_dir"]) if task.get("data_dir") else None,
            execute=task["execute"],
        )
        run = result.to_json()
        notes = notes + result.notes
    except IntakeError as err:
        run = {"status": "rejected", "message": f"The submission could not be graded: {err}"}
        record.atomic_write(judged / "run.json", json.dumps(run))
    status = "rejected" if run["status"] == "rejected" else "graded"
    judging = time.perf_counter()
    try:
        checks = [check.to_json() for check in judge(assignment.id, judged)]
    except JudgeError as err:
        checks, status = [], "failed"
        run = {**run, "message": f"Grading failed (a course problem, not yours): {err}"}
    judge_seconds = round(time.perf_counter() - judging, 1)
    outcome = _outcome(
        task,
        status,
        run,
        checks=checks,
        notes=notes,
        learning_curves=_learning_curves(assignment, judged),
        seconds=round(time.perf_counter() - started, 1),
        judge_seconds=judge_seconds,
    )
    executed = judged / "executed.ipynb"
    return {"outcome": outcome, "executed": str(executed) if executed.is_file() else None}


def _outcome(
    task: dict, status: str, run: dict, checks=(), notes=(), learning_curves=None, **timing
) -> dict:
    """The recorded outcome of one submission (plain data); ``timing`` in seconds."""
    return {
        "student": task["student"],
        "assignment": task["assignment"],
        "digest": task["digest"],
        "status": status,
        "message": run.get("message", ""),
        "notes": list(notes),
        "run": run,
        "checks": list(checks),
        "score": sum(c["points"] for c in checks),
        "max_score": sum(c["max_points"] for c in checks),
        "learning_curves": learning_curves,
        **timing,
    }


def _learning_curves(assignment: specs.Spec, judged: Path) -> str | None:
    relative = assignment.artifact_paths.get("history")
    path = judged / "artifacts" / relative if relative else None
    if path is None or not path.is_file():
        return None
    try:
        return record.learning_curves_png(json.loads(path.read_text("utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


# --------------------------------------------------------------------------- the batch


def pending(
    assignment_id: str, submissions: list[Submission], out: Path, force: bool
) -> tuple[list[Submission], list[Submission]]:
    """Split into (to grade, already recorded with the same files)."""
    todo, done = [], []
    for submission in submissions:
        earlier = record.recorded(out, submission.student, assignment_id)
        unchanged = (
            earlier and earlier.get("digest") == submission.digest and earlier["status"] != "failed"
        )
        (done if unchanged and not force else todo).append(submission)
    return todo, done


def run_batch(
    assignment_id: str,
    submissions: Path,
    out: Path,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    execute: bool = True,
    data_dir: Path | None = None,
    notebook_timeout_s: int | None = None,
    progress: bool = True,
) -> BatchSummary:
    """Grade every submission of ``assignment_id`` under ``submissions`` into ``out``."""
    from tqdm import tqdm

    started = time.perf_counter()
    assignment = specs.load(assignment_id)
    release = release_notebook(assignment)
    source = source_notebook(assignment)
    out.mkdir(parents=True, exist_ok=True)
    record.register_assignment(out, assignment_id, source)
    todo, done = pending(assignment_id, discover(assignment_id, submissions, out), out, force)
    summary = BatchSummary(skipped=[s.student for s in done])
    tasks = [
        {
            "assignment": assignment_id,
            "student": s.student,
            "submission": str(s.folder),
            "digest": s.digest,
            "release": str(release),
            "work": str(out / ".work" / assignment_id / s.student),
            "execute": execute,
            "data_dir": str(data_dir) if data_dir else None,
            "notebook_timeout_s": notebook_timeout_s,
        }
        for s in todo
    ]
    bar = tqdm(total=len(tasks), desc=f"grading {assignment_id}", unit="sub", disable=not progress)
    for task, result in _execute(tasks, jobs, scheduler):
        outcome = result["outcome"]
        executed = Path(result["executed"]) if result["executed"] else None
        record.record(out, outcome, source, executed)
        shutil.rmtree(task["work"], ignore_errors=True)
        getattr(summary, outcome["status"]).append(task["student"])
        bar.update()
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _execute(
    tasks: list[dict], jobs: int, scheduler: str | None, worker=None
) -> Iterator[tuple[dict, dict]]:
    """Yield ``(task, result)`` as workers finish: Dask when ``scheduler`` is set, else a pool."""
    worker = worker or grade_submission
    if not tasks:
        return
    if scheduler:
        yield from _execute_dask(tasks, jobs, scheduler)
        return
    broken = yield from _execute_pool(tasks, jobs, worker)
    for task in broken:  # one at a time, so that a worker that dies again is its task's
        yield from _execute_pool([task], 1, worker, retry=False)


def _execute_pool(tasks: list[dict], jobs: int, worker, retry: bool = True):
    """Run ``tasks`` in a process pool; return the tasks a dying worker took down with it."""
    broken = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(worker, task): task for task in tasks}
        for future in as_completed(futures):
            if retry and isinstance(future.exception(), BrokenProcessPool):
                broken.append(futures[future])
                continue
            yield futures[future], _result_or_failure(futures[future], future)
    return broken


def _execute_dask(tasks: list[dict], jobs: int, scheduler: str) -> Iterator[tuple[dict, dict]]:
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True)
    try:
        with Client(cluster or scheduler) as client:
            futures = {
                client.submit(
                    grade_submission, task, pure=False, key=f"grade-{task['student']}"
                ): task
                for task in tasks
            }
            for future in dask_completed(futures):
                yield futures[future], _result_or_failure(futures[future], future)
    finally:
        if cluster is not None:
            cluster.close()


def _result_or_failure(task: dict, future) -> dict:
    """The worker's result, or a recorded failure when the worker itself died."""
    try:
        return future.result()
    except Exception as err:  # a dead worker must not stop the batch
        message = (
            f"Grading stopped ({type(err).__name__}: {err}); "
            "the submission is graded again on the next run"
        )
        run = {"status": "failed", "message": message}
        return {"outcome": _outcome(task, "failed", run), "executed": None}
