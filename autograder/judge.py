"""Stage 3, judge (trusted, no student code): run the hidden checks as pytest tests.

The hidden checks of an assignment are the pytest files ``check_*.py`` of its
plugin folder (:mod:`autograder.spec`). Each check carries ``@pytest.mark.points(N)`` and
``@pytest.mark.grade_cell("<grade_id>")``: its points count towards that
autograded cell of the notebook in the gradebook. The checks read only data
that crossed the sandbox boundary (``.keras`` loaded with ``safe_mode=True``,
JSON, ``.npz`` without pickle), through the fixtures of :mod:`autograder.fixtures`.

A student sees each check's title (its docstring's first line), points and
failure message, never its source: assertions are not rewritten, tracebacks
are dropped, and only the exception's message is kept.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from autograder.spec import BUILTIN_PLUGINS, Spec

CHECKS_INI = BUILTIN_PLUGINS / "pytest.ini"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one hidden check."""

    name: str
    title: str
    grade_cell: str
    max_points: float
    points: float
    message: str

    @property
    def passed(self) -> bool:
        return self.points == self.max_points

    def to_json(self) -> dict:
        return asdict(self)


class JudgeError(RuntimeError):
    """The hidden checks themselves could not run (a course bug, not the student's)."""


class _Collector:
    """pytest plugin that turns reports into :class:`CheckResult` rows."""

    def __init__(self) -> None:
        self.results: dict[str, CheckResult] = {}
        self.errors: list[str] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None and report.failed:
            report.student_message = _message(call.excinfo)

    def pytest_runtest_logreport(self, report):
        check = dict(report.user_properties)
        if "points" not in check:
            return
        name = report.nodeid.split("::")[-1]
        if report.when == "call" and report.passed:
            points, message = float(check["points"]), ""
        elif report.failed:
            points, message = 0.0, getattr(report, "student_message", "") or "check failed"
        elif report.skipped:
            points, message = 0.0, _skip_message(report)
        else:
            return
        if name in self.results and not self.results[name].passed:
            return  # the first failure (e.g. in a fixture) is the one that explains
        self.results[name] = CheckResult(
            name=name,
            title=check["title"],
            grade_cell=check["grade_cell"],
            max_points=float(check["points"]),
            points=points,
            message=message,
        )

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext}")


def judge(spec: Spec, judged_dir: Path) -> list[CheckResult]:
    """Run the hidden checks of ``spec`` on the run-stage output ``judged_dir``."""
    checks = spec.folder
    if not any(checks.glob("check_*.py")):
        raise JudgeError(f"no hidden checks (check_*.py) for '{spec.id}' in {checks}")
    collector = _Collector()
    args = [
        str(checks),
        "--rootdir",  # check modules are named <id>.check_*: two assignments' never collide
        str(checks.parent),
        "-c",
        str(CHECKS_INI),
        "-p",
        "no:cacheprovider",
        "-p",
        "autograder.fixtures",
        "--assert=plain",
        "--import-mode=importlib",
        "-q",
        "--no-header",
        f"--submission={judged_dir}",
        f"--assignment-folder={checks}",
    ]
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        code = pytest.main(args, plugins=[collector])
    if collector.errors or code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        raise JudgeError(
            "hidden checks could not run:\n" + "\n".join(collector.errors) + captured.getvalue()
        )
    if not collector.results:
        raise JudgeError(f"no hidden check with points collected from {checks}")
    return sorted(collector.results.values(), key=lambda r: (r.grade_cell, r.name))


def _message(excinfo) -> str:
    """The student-facing message of a failed check: the exception's text only."""
    error = excinfo.value
    text = str(error).strip()
    if isinstance(error, AssertionError | pytest.fail.Exception):
        return text or "check failed"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _skip_message(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return "skipped"
