"""Due dates, submission times and the late policy, as nbgrader keeps them.

The course sets them in ``nbgrader_config.py``::

    c.LatePolicy.duedates = {"<assignment id>": "2025-03-28 23:59:00 Australia/Sydney"}
    c.LatePolicy.penalty_method = "per_day"  # none (default), zero, per_hour or per_day
    c.LatePolicy.points = 2                  # points off per started hour or day late

``rnn-course grade`` writes each due date to its assignment in the gradebook
(nbgrader's ``duedate``; without one here, a due date set in formgrader stays) and
each submission's time (nbgrader's ``timestamp``, :func:`submission_time`). The
penalty, computed by :class:`LatePolicy` from nbgrader's ``total_seconds_late`` (an
extension granted in nbgrader counts), goes to nbgrader's ``late_submission_penalty``.
:func:`autograder.core.course.configure` makes the class nbgrader's late-penalty plugin too,
so ``nbgrader autograde`` would apply the same rule.
"""

from __future__ import annotations

import math
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from traitlets import Dict, Enum, Float, TraitError, Unicode

from autograder.core.course import CONFIG_FILE, Course, CourseError

TIMESTAMP_FILE = "timestamp.txt"
UNITS = {"per_hour": (3600, "hour"), "per_day": (86400, "day")}


class LatePolicy(LateSubmissionPlugin):
    """The course's due dates and late penalty (nbgrader's late-submission plugin)."""

    penalty_method = Enum(
        ("none", "zero", "per_hour", "per_day"),
        default_value="none",
        help="none: no penalty; zero: a late submission scores 0; "
        "per_hour, per_day: `points` off per started hour or day late",
    ).tag(config=True)
    points = Float(0.0, min=0.0, help="points off per started hour or day late").tag(config=True)
    duedates = Dict(
        value_trait=Unicode(),
        help="the due date of each assignment, e.g. {'a1': '2025-03-28 23:59:00 Europe/Paris'}",
    ).tag(config=True)

    def duedate(self, assignment_id: str) -> datetime | None:
        """The assignment's due date in UTC, or None when the course sets none."""
        text = self.duedates.get(assignment_id)
        if text is None:
            return None
        try:
            return parse_utc(text)
        except (ValueError, OverflowError):
            raise CourseError(
                f"{CONFIG_FILE}: LatePolicy.duedates[{assignment_id!r}] = {text!r} is not a date "
                "(write e.g. '2025-03-28 23:59:00 Europe/Paris')"
            ) from None

    def late_submission_penalty(
        self, student_id: str, score: float, total_seconds_late: float
    ) -> float | None:
        """Points off for a submission ``total_seconds_late`` late (None: no penalty)."""
        if total_seconds_late <= 0 or self.penalty_method == "none":
            return None
        if self.penalty_method == "zero":
            return score
        seconds, _ = UNITS[self.penalty_method]
        return self.points * math.ceil(total_seconds_late / seconds)

    def describe(self) -> str:
        if self.penalty_method == "zero":
            return "a late submission scores 0"
        if self.penalty_method == "none":
            return "no penalty"
        return f"{self.points:g} points off per started {UNITS[self.penalty_method][1]} late"


def policy(course: Course) -> LatePolicy:
    """The late policy of the course's ``nbgrader_config.py``."""
    try:
        return LatePolicy(config=course.config())
    except TraitError as err:
        raise CourseError(f"{course.root / CONFIG_FILE}: {str(err).splitlines()[0]}") from None


def submitted_at(folder: Path) -> str | None:
    """The time in the submission's ``timestamp.txt`` (UTC, ISO), None without one.

    Raises ValueError when the file is there but holds no time.
    """
    path = folder / TIMESTAMP_FILE
    try:
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > 200:
        raise ValueError(f"{path} is not a small regular file")
    text = path.read_text("utf-8", errors="replace").strip()
    try:
        return parse_utc(text).isoformat()
    except (ValueError, OverflowError):
        raise ValueError(f"{path} holds {text[:40]!r}, not a time") from None


def submission_time(folder: Path, archive: Path | None = None) -> tuple[str | None, str]:
    """When a submission was collected (UTC, ISO, or None) and where that time comes from.

    A folder in nbgrader's layout has the ``timestamp.txt`` that ``nbgrader collect``
    writes; without one it has no time and is never late, as in nbgrader (formgrader
    matches that file against the gradebook). A zip's own ``timestamp.txt`` is the
    student's, so a zip's time is its file time.
    """
    if archive is not None:
        return _file_time(archive), "the zip's file time (a timestamp.txt inside it never counts)"
    try:
        collected = submitted_at(folder)
    except ValueError as err:
        return None, f"none ({err}): never late"
    if collected:
        return collected, f"{TIMESTAMP_FILE} (written by nbgrader collect)"
    return None, f"none (no {TIMESTAMP_FILE}, which nbgrader collect writes): never late"


def _file_time(path: Path) -> str | None:
    """The modification time of ``path`` itself (not of a link's target), UTC."""
    try:
        seconds = os.lstat(path).st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat()


def lateness(seconds: float) -> str:
    """``2 d 3 h``, ``5 h 12 min``, ``40 min``: how late, to the minute."""
    minutes = math.ceil(seconds / 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    shown = [f"{value} {unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0 min"
