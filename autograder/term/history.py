"""Regrading: each replaced result is kept, and a changed score is said, with why.

Before a submission's ``grading.json`` is replaced, it is copied into
``.records/<student>/<id>/history/<time>.json``, beside the copy of the current
record and out of reach of nbgrader's commands, so a grade that drops can be traced
and restored. :func:`change` compares the totals before and after a regrade and names
what moved them: the status, each check whose points changed, a hand grade cleared.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime

from autograder.core.course import Results
from autograder.core.results import Outcome
from autograder.term.feedback import HandGrade


@dataclass(frozen=True)
class Change:
    """A regrade that changed a student's points."""

    student: str
    old: float
    new: float
    why: str


def keep(results: Results, student: str, assignment_id: str) -> None:
    """Copy the recorded result, if any, into the history before it is replaced."""
    current = results.grading_file(student, assignment_id)
    if not current.is_file():
        return
    history = results.history(student, assignment_id)
    history.mkdir(parents=True, exist_ok=True)
    shutil.copy2(current, history / f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}.json")


def change(
    previous: Outcome, outcome: Outcome, old: float, new: float, cleared: list[HandGrade]
) -> Change | None:
    """What a regrade changed (totals ``old`` -> ``new``), or None when nothing did."""
    why = []
    if previous.status != outcome.status:
        why.append(f"{previous.status} -> {outcome.status}: {outcome.message}".rstrip(": "))
    before = {check.name: check.points for check in previous.checks}
    after = {check.name: check.points for check in outcome.checks}
    for name in [*after, *(name for name in before if name not in after)]:
        if before.get(name) != after.get(name):
            why.append(f"{name} {_points(before.get(name))} -> {_points(after.get(name))}")
    for grade in cleared:
        why.append(f"hand grade of '{grade.cell}' ({grade.points:g}) cleared: the answer changed")
    if old == new and not why:
        return None
    return Change(outcome.student, old, new, "; ".join(why))


def table(changes: list[Change]) -> str:
    """The changes as a text table: student, old, new, why."""
    import pandas as pd

    frame = pd.DataFrame([vars(change) for change in changes], columns=list(Change.__annotations__))
    return frame.to_string(index=False)


def _points(points: float | None) -> str:
    return "none" if points is None else f"{points:g}"
