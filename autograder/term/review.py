"""Points withheld for the instructor's review, and the instructor's decisions.

A hidden check withholds the points of a metric the model may not have earned
honestly (:class:`autograder.checks.validity.Contamination`: markedly better on the
hidden data than on comparable data no notebook trains on): the check's
:attr:`~autograder.core.results.CheckResult.withheld` holds them and ``review`` says why.
The student's page says so, the run log and the class report list it, and

    rnn-course review ID                      # the submissions waiting, with the reasons
    rnn-course review ID --release STUDENT    # give the withheld points (after looking)
    rnn-course review ID --keep STUDENT       # decide they stay withheld

record the decision in the gradebook (table ``rnn_course_reviews`` of
``gradebook.db``, beside nbgrader's own tables) for the submission's digest: it
holds across regrades while the submission is unchanged, and a new submission is
reviewed anew. Recorded outcomes keep the judged result; the decision is applied
whenever scores and pages are written (:func:`applied`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.core.course import Results
    from autograder.core.results import Outcome

TABLE = "rnn_course_reviews"
WITHHELD = "withheld for the instructor's review"
RELEASED = "released after the instructor's review"


@dataclass(frozen=True)
class Decision:
    """The instructor's decision on one submission's withheld points."""

    student: str
    assignment: str
    digest: str  # the submission it was made for
    released: bool
    note: str = ""
    decided: str = ""  # when (UTC, ISO)


@contextlib.contextmanager
def _table(results: Results):
    connection = sqlite3.connect(results.gradebook)
    try:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (student TEXT, assignment TEXT, digest TEXT, "
            "released INTEGER, note TEXT, decided TEXT, PRIMARY KEY (student, assignment, digest))"
        )
        yield connection
        connection.commit()
    finally:
        connection.close()


def decisions(results: Results, assignment_id: str) -> dict[tuple[str, str], Decision]:
    """Every recorded decision of ``assignment_id``, by (student, digest)."""
    if not results.gradebook.is_file():
        return {}
    with _table(results) as table:
        rows = table.execute(
            f"SELECT student, digest, released, note, decided FROM {TABLE} WHERE assignment = ?",
            (assignment_id,),
        ).fetchall()
    return {
        (student, digest): Decision(student, assignment_id, digest, bool(released), note, decided)
        for student, digest, released, note, decided in rows
    }


def decide(results: Results, outcome: Outcome, released: bool, note: str = "") -> Decision:
    """Record the decision on ``outcome``'s withheld points (replacing an earlier one)."""
    decision = Decision(
        outcome.student,
        outcome.assignment,
        outcome.digest,
        released,
        note,
        datetime.now(UTC).isoformat(timespec="seconds"),
    )
    with _table(results) as table:
        table.execute(
            f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)",
            (
                decision.student,
                decision.assignment,
                decision.digest,
                int(released),
                note,
                decision.decided,
            ),
        )
    return decision


def withheld(outcome: Outcome) -> float:
    """The points of ``outcome`` that wait for (or were kept by) a review."""
    return sum(check.withheld for check in outcome.checks)


def applied(results: Results, outcome: Outcome) -> Outcome:
    """``outcome`` with its withheld points given when the instructor released them."""
    if not withheld(outcome):
        return outcome
    decision = decisions(results, outcome.assignment).get((outcome.student, outcome.digest))
    if decision is None or not decision.released:
        return outcome
    checks = [
        replace(
            check,
            points=check.points + check.withheld,
            withheld=0.0,
            message=check.message.replace(WITHHELD, RELEASED, 1),
        )
        if check.withheld
        else check
        for check in outcome.checks
    ]
    return replace(outcome, checks=checks)


def waiting(results: Results, assignment_id: str) -> list[tuple[Outcome, Decision | None]]:
    """The recorded outcomes with withheld points, and the decision on each (None: waiting)."""
    from autograder.core.results import Outcome

    found = decisions(results, assignment_id)
    rows = []
    for path in results.grading_files(assignment_id):
        outcome = Outcome.read(path)
        if outcome is not None and withheld(outcome):
            rows.append((outcome, found.get((outcome.student, outcome.digest))))
    return sorted(rows, key=lambda row: row[0].student)
