"""The log of one grading run: ``logs/<id>-<time>.log`` in the output folder.

One line per event, each with the time: the run's settings, each submission
graded, rejected, failed or skipped (with the cause, the seconds it took and the
time limits it had), the scores a regrade changed, and the totals. Lines are
written as they happen, so a killed run's log says how far it got.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from autograder.core.course import Results
from autograder.core.results import Outcome
from autograder.grading.intake import IGNORED, LEFT_OUT


class RunLog:
    """An open run log; :meth:`write` adds a line."""

    def __init__(self, path: Path, handle: TextIO) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def start(cls, results: Results, assignment_id: str, settings: str) -> RunLog:
        """A new log for a run of ``assignment_id`` (never an earlier run's file)."""
        results.logs.mkdir(parents=True, exist_ok=True)
        stamp = f"{assignment_id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        for attempt in range(1, 1000):
            path = results.logs / (f"{stamp}.log" if attempt == 1 else f"{stamp}-{attempt}.log")
            try:
                log = cls(path, path.open("x", encoding="utf-8"))
            except FileExistsError:
                continue
            log.write(f"grading {assignment_id}: {settings}")
            return log
        raise FileExistsError(f"too many logs named {stamp}*.log")

    def write(self, line: str) -> None:
        self._handle.write(f"{datetime.now(UTC):%H:%M:%S} {line}\n")
        self._handle.flush()

    def outcome(self, outcome: Outcome) -> None:
        """The line of a submission just judged: its status, score, cause and times."""
        score = f"{outcome.score:g} / {outcome.max_score:g}"
        took = f"{outcome.seconds:g} s (judge {outcome.judge_seconds:g} s)"
        cause = f": {outcome.message}" if outcome.status != "graded" and outcome.message else ""
        run = outcome.run.get("status", "")
        held = sum(check.withheld for check in outcome.checks)
        review = f", {held:g} point(s) withheld for review" if held else ""
        review += "".join(f"; {signal}" for signal in outcome.signals)
        self.write(
            f"{outcome.status:<8} {outcome.student} {score}{review} in {took}, run {run}{cause}"
        )
        if limits := time_limits(outcome.run.get("limits") or {}):
            self.write(f"         {outcome.student}: {limits}")
        for note in outcome.notes:
            if note.startswith((IGNORED, LEFT_OUT)):
                self.write(f"         {outcome.student}: {note}")

    def close(self) -> None:
        self._handle.close()


def time_limits(limits: dict) -> str:
    """The time limits a run had, as recorded in its ``run.json`` ('' without them)."""
    if "judge_timeout_s" not in limits:
        return ""
    cores, factor = limits.get("cpu_cores"), limits.get("wall_clock_factor")
    clock = (
        f"CPU time on each of {cores} cores, wall-clock backstop {factor} x"
        if cores and factor
        else "wall-clock time"
    )
    return (
        f"time limits: notebook {limits['notebook_timeout_s']} s, cell "
        f"{limits['cell_timeout_s']} s, judge {limits['judge_timeout_s']} s ({clock})"
    )
