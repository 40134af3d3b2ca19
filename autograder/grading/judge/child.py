"""The judge's child: run the hidden checks as pytest tests, in this process.

The hidden checks of an assignment are the pytest files ``check_*.py`` of its
plugin folder (:mod:`autograder.core.spec`). Each check carries ``@pytest.mark.points(N)`` and
``@pytest.mark.grade_cell("<grade_id>")``: its points count towards that
autograded cell of the notebook in the gradebook. The checks read only data
that crossed the sandbox boundary (``.keras`` loaded with ``safe_mode=True``,
JSON, ``.npz`` without pickle), through the fixtures of :mod:`autograder.checks.fixtures`.

A student sees each check's title (its docstring's first line), points and
failure message, never its source: assertions are not rewritten, tracebacks
are dropped, and only the exception's message is kept.

After the checks, the judge's child asks the plugin for what the feedback page shows
beside them (:func:`feedback_extras`): figures rendered there, where the models and
the hidden data already are, and texts such as the judge's own samples. They come
back as data, capped.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import pytest

from autograder.checks.fixtures import NotGraded
from autograder.core.plugin import load_plugin
from autograder.core.results import CheckResult
from autograder.core.spec import BUILTIN_PLUGINS, Spec, load_folder
from autograder.core.text import MESSAGE_CHARS, error_text, student_text
from autograder.grading.judge import JudgeError
from autograder.grading.judge.extras import feedback_extras

CHECKS_INI = BUILTIN_PLUGINS / "pytest.ini"


class _Collector:
    """pytest plugin that turns reports into :class:`CheckResult` rows.

    ``report(kind, payload)``, when given, hears of the checks as soon as they are
    collected (``"collected"``: every check with 0 points) and of each one as it ends
    (``"result"``), so that a judge stopped half-way still knows which checks it owes.
    """

    def __init__(self, report=None) -> None:
        self.results: dict[str, CheckResult] = {}
        self.errors: list[str] = []
        self._report = report or (lambda kind, payload: None)

    def pytest_collection_finish(self, session):
        self._report("collected", [_unfinished(item).to_json() for item in session.items])

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None and report.failed:
            report.student_message = _message(call.excinfo)
            report.cause = call.excinfo.value.cause if call.excinfo.errisinstance(NotGraded) else ""

    def pytest_runtest_logreport(self, report):
        check = dict(report.user_properties)
        if "points" not in check:
            return
        name = report.nodeid.split("::")[-1]
        if report.when == "teardown" and name in self.results:
            self._report("result", self.results[name].to_json())
        cause = ""
        withheld = 0.0
        if report.when == "call" and report.passed and check.get("review"):
            withheld, points = float(check["points"]), 0.0
            message = f"withheld for the instructor's review: {check['review']}. " + check.get(
                "measured", ""
            )
        elif report.when == "call" and report.passed:
            points, message = float(check["points"]), check.get("measured", "")
        elif report.failed:
            points, message = 0.0, getattr(report, "student_message", "") or "check failed"
            cause = getattr(report, "cause", "")
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
            message=student_text(message, limit=MESSAGE_CHARS),
            cause=cause,
            value=check.get("value"),
            model=check.get("model"),
            withheld=withheld,
            review=check.get("review", "") if withheld else "",
        )

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext}")


def _unfinished(item) -> CheckResult:
    check = dict(item.user_properties)
    return CheckResult(
        name=item.nodeid.split("::")[-1],
        title=check["title"],
        grade_cell=check["grade_cell"],
        max_points=float(check["points"]),
        points=0.0,
        message="",
    )


def judge(spec: Spec, judged_dir: Path, report=None) -> list[CheckResult]:
    """Run the hidden checks of ``spec`` on the run-stage output ``judged_dir``, in this process.

    Only for trusted inputs or inside :class:`JudgeProcess`: the checks load the
    student's models. ``report`` follows the checks as they run (see ``_Collector``).
    """
    checks = spec.folder
    if not any(checks.glob("check_*.py")):
        raise JudgeError(f"no hidden checks (check_*.py) for '{spec.id}' in {checks}")
    collector = _Collector(report)
    args = [
        str(checks),
        "--rootdir",  # check modules are named <id>.check_*: two assignments' never collide
        str(checks.parent),
        "-c",
        str(CHECKS_INI),
        "-p",
        "no:cacheprovider",
        "-p",
        "autograder.checks.fixtures",
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
    if isinstance(error, AssertionError | pytest.fail.Exception):
        return str(error).strip() or "check failed"
    return error_text(type(error).__name__, str(error))


def _skip_message(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return "skipped"


def serve() -> None:
    """The child's loop: one JSON request per line on stdin, JSON messages on the saved stdout."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to the log, never into the channel

    def send(kind: str, payload) -> None:
        channel.write(json.dumps([kind, payload]) + "\n")
        channel.flush()

    import keras  # noqa: F401 (loaded before the first request, as every check needs it)

    for line in sys.stdin:
        request = json.loads(line)
        try:
            spec, judged = load_folder(Path(request["spec"])), Path(request["judged"])
            judge(spec, judged, report=send)
            extras = feedback_extras(load_plugin(spec), judged)
            send(
                "extras", {"figures": extras.figures, "texts": extras.texts, "notes": extras.notes}
            )
            send("done", None)
        except Exception as err:  # a course problem: the parent raises it as a JudgeError
            send("error", f"{type(err).__name__}: {err}")


if __name__ == "__main__":
    serve()
