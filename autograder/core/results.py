"""What passes between the grading stages, as plain data: a task, and what each stage found.

A :class:`GradingTask` goes from the batch (trusted parent) to a worker process
or a Dask worker, so it holds plain, picklable data: the loaded spec and paths.
The run stage finds a :class:`RunResult`, the judge a :class:`Judgement` of
:class:`CheckResult` rows; the worker returns an :class:`Outcome`, which the record
stage writes; its JSON form is ``autograded/<student>/<id>/grading.json``, read back
to resume.

Importing this module imports no test runner, nbgrader or TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.core.spec import Spec

STATUSES = ("graded", "rejected", "failed")
#: How a run ended (:attr:`RunResult.status`); "rejected": refused at intake, nothing ran.
RUN_STATUSES = (
    "ok",
    "cell_errors",
    "timeout",
    "memory",
    "disk",
    "crashed",
    "not_executed",
    "rejected",
)
#: Run statuses that are not a problem of the run.
RUN_OK = ("ok", "not_executed")
#: What a graded submission's run went through, when it did not end well (by run status).
RUN_CAUSES = {
    "timeout": "notebook timed out",
    "memory": "notebook ran out of memory",
    "disk": "notebook over its disk limit",
    "crashed": "notebook crashed",
    "cell_errors": "cells raised errors",
}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one hidden check."""

    name: str
    title: str
    grade_cell: str
    max_points: float
    points: float
    message: str
    # the problem this check's failure follows from (the run's, or the judge's stop), which
    # the feedback shows once above the checks; "" when the message alone explains it
    cause: str = ""
    # what the check measured (``measured(text, value, model)``), for the class report
    value: float | None = None
    model: str | None = None
    # points earned but withheld until the instructor reviews the model (``review`` says why);
    # a released review turns them into ``points`` (:mod:`autograder.term.review`)
    withheld: float = 0.0
    review: str = ""

    @property
    def passed(self) -> bool:
        return self.points == self.max_points

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Judgement:
    """What the judge's child returns for one submission."""

    checks: list[CheckResult]
    figures: dict[str, str] = field(default_factory=dict)  # title -> PNG data URL
    texts: dict[str, str] = field(default_factory=dict)  # title -> plain text
    notes: list[str] = field(default_factory=list)  # what was left out, and why


@dataclass
class RunResult:
    """What stage 2 found; ``message`` is one sentence a student can act on."""

    status: str
    message: str
    isolation: str
    duration_s: float
    cell_errors: list[dict] = field(default_factory=list)
    probes: dict[str, dict] = field(default_factory=dict)
    output_truncated: bool = False
    notes: list[str] = field(default_factory=list)
    # the limits this run had: a Limits as a dict, with cpu_cores and wall_clock_factor
    limits: dict = field(default_factory=dict)
    cpu_s: float = 0.0  # CPU seconds of the sandbox's processes

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RunResult:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class GradingTask:
    """Grade one submission of ``spec`` from ``submission`` in the scratch folder ``work``."""

    spec: Spec
    student: str
    submission: Path
    digest: str
    release_notebook: Path
    work: Path
    execute: bool = True
    data_dir: Path | None = None
    notebook_timeout_s: int | None = None
    problem: str | None = None  # found when collecting: the submission is rejected unread
    threads: int | None = None  # TensorFlow threads per worker (the cores shared by the jobs)
    timestamp: str | None = None  # when it was submitted (UTC, ISO), from its timestamp.txt


@dataclass
class Outcome:
    """The recorded result of one submission (``status`` is one of :data:`STATUSES`)."""

    student: str
    assignment: str
    digest: str
    status: str
    message: str = ""
    notes: list[str] = field(default_factory=list)
    run: dict = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    learning_curves: str | None = None
    # what the judge's child made for the page
    # (:func:`autograder.grading.judge.extras.feedback_extras`)
    figures: dict[str, str] = field(default_factory=dict)  # title -> PNG data URL
    texts: dict[str, str] = field(default_factory=dict)  # title -> plain text
    seconds: float = 0.0
    judge_seconds: float = 0.0
    timestamp: str | None = None  # when it was submitted (UTC, ISO)
    answers: dict[str, str] = field(default_factory=dict)  # hand-graded cell -> source digest
    # what the instructor should look at, deciding no points (:func:`autograder.grading.scan.scan`)
    signals: list[str] = field(default_factory=list)
    # the notebook to keep (executed, or as submitted without execution), still in the scratch
    executed: Path | None = None

    @classmethod
    def of(cls, task: GradingTask, status: str, run: dict, **rest) -> Outcome:
        return cls(
            student=task.student,
            assignment=task.spec.id,
            digest=task.digest,
            status=status,
            message=run.get("message", ""),
            run=run,
            timestamp=task.timestamp,
            **rest,
        )

    @property
    def shown_status(self) -> str:
        """The status with what its run went through: ``graded (notebook timed out)``."""
        cause = RUN_CAUSES.get(self.run.get("status", ""))
        return f"{self.status} ({cause})" if self.status == "graded" and cause else self.status

    @property
    def score(self) -> float:
        return sum(check.points for check in self.checks)

    @property
    def max_score(self) -> float:
        return sum(check.max_points for check in self.checks)

    def to_json(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "executed"}
        data["checks"] = [check.to_json() for check in self.checks]
        return {**data, "score": self.score, "max_score": self.max_score}

    @classmethod
    def read(cls, path: Path) -> Outcome | None:
        """The outcome recorded in ``path`` (a ``grading.json``), None when there is none."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def from_json(cls, data: dict) -> Outcome:
        known = {f.name for f in fields(cls)} - {"executed", "checks"}
        return cls(
            **{key: value for key, value in data.items() if key in known},
            checks=[CheckResult(**check) for check in data.get("checks", [])],
        )
