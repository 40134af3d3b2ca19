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

After the checks, the judge's child asks the plugin for what the feedback page shows
beside them (:func:`feedback_extras`): figures rendered there, where the models and
the hidden data already are, and texts such as the judge's own samples. They come
back as data, capped.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from autograder import sandbox
from autograder.spec import BUILTIN_PLUGINS, Limits, Spec, load_folder

if TYPE_CHECKING:
    from autograder.plugin import Plugin

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
    # the problem this check's failure follows from (the run's, or the judge's stop), which
    # the feedback shows once above the checks; "" when the message alone explains it
    cause: str = ""
    # what the check measured (``measured(text, value, model)``), for the class report
    value: float | None = None
    model: str | None = None
    # points earned but withheld until the instructor reviews the model (``review`` says why);
    # a released review turns them into ``points`` (:mod:`autograder.review`)
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


class JudgeError(RuntimeError):
    """The hidden checks themselves could not run (a course bug, not the student's)."""


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
            from autograder.fixtures import NotGraded  # the module the checks' fixtures raise from

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
    if isinstance(error, AssertionError | pytest.fail.Exception):
        return str(error).strip() or "check failed"
    return error_text(type(error).__name__, str(error))


_ABSOLUTE_PATH = re.compile(r"(?<![\w./:])/(?:[^\s'\"/:,;()]+/)+([^\s'\"/:,;()]*)")
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MESSAGE_CHARS = 2000
ERROR_CHARS = 300
NOT_WRITTEN = "NotImplementedError (the code is not written yet)"


def without_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part: no grader path reaches a student."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1) or "<folder>", text)


def student_text(text: str, folder: str | Path | None = None, limit: int = ERROR_CHARS) -> str:
    """``text`` fit for a student: no terminal escapes, no grader path, one line, capped.

    Paths inside ``folder`` (where the notebook ran) become relative to it; any other
    absolute path is cut to its last part.
    """
    text = _CONTROLS.sub(" ", _ESCAPES.sub("", str(text)))
    if folder is not None:
        text = text.replace(f"{folder}/", "").replace(str(folder), ".")
    text = " ".join(without_paths(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def error_text(ename: str, evalue: str) -> str:
    """``Name: message`` of an exception raised by student code, whole without a message too."""
    ename, evalue = student_text(ename, limit=100), student_text(evalue)
    if evalue:
        return f"{ename}: {evalue}"
    return NOT_WRITTEN if ename == "NotImplementedError" else ename


def _skip_message(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return "skipped"


# --------------------------------------------------------------------------- the page's extras

#: A figure's PNG data URL may take this much; a larger one is left out, with a note.
FIGURE_CHARS = 400_000
MAX_FIGURES = 8
#: A text (a sample) is cut to this many characters, and at most MAX_TEXTS are kept.
TEXT_CHARS = 2000
MAX_TEXTS = 12
PNG_URL = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]+={0,2}")


def feedback_extras(plugin: Plugin, judged_dir: Path) -> Judgement:
    """The plugin's figures and texts for the page of ``judged_dir`` (no checks), capped.

    A figure must be a PNG data URL of at most :data:`FIGURE_CHARS` characters, else it
    is left out with a note; each text is cut to :data:`TEXT_CHARS`. A plugin that
    fails to make them costs the student nothing: the page just has none.
    """
    from autograder.course import Judged

    notes, figures, texts = [], {}, {}
    try:
        made = plugin.feedback_figures(Judged(judged_dir))
    except Exception as err:
        made, notes = {}, [f"the judge's figures could not be drawn ({type(err).__name__})"]
    for title, url in list(made.items())[:MAX_FIGURES]:
        title = student_text(title, limit=200)
        if isinstance(url, str) and len(url) > FIGURE_CHARS:
            notes.append(
                f"figure '{title}' left out: its image takes {len(url) // 1000} kB, over the "
                f"page's cap of {FIGURE_CHARS // 1000} kB per figure"
            )
        elif not isinstance(url, str) or not PNG_URL.fullmatch(url):
            notes.append(f"figure '{title}' left out: it is not a PNG image")
        else:
            figures[title] = url
    try:
        written = plugin.feedback_texts(Judged(judged_dir))
    except Exception as err:
        written, notes = {}, [*notes, f"the judge's texts could not be made ({type(err).__name__})"]
    for title, text in list(written.items())[:MAX_TEXTS]:
        text = str(text)
        cut = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
        texts[student_text(title, limit=200)] = cut
    return Judgement([], figures, texts, notes)


# --------------------------------------------------------------------------- under limits


class JudgeProcess:
    """A child process that runs the hidden checks, and so loads the student's models.

    The models are untrusted: a model can be made slow (a very long sequence length)
    or huge. The child runs without network (bubblewrap, where it works) and under
    the spec's ``judge_timeout_s`` and ``judge_memory_mb``, watched from this process;
    over a limit it is killed, the checks it had not finished fail with a message
    naming the limit, and the next submission gets a new child. Between submissions
    the child stays up, so TensorFlow and the hidden data load once per worker.

    The time limit counts the child's CPU time (``judge_timeout_s`` on each of
    :func:`autograder.sandbox.cpu_cores`), with a wall-clock backstop of
    :data:`autograder.sandbox.WALL_CLOCK_FACTOR` times it.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._log: Any = None
        self._pending = b""  # what the child sent after the last whole message

    def judge(self, spec: Spec, judged_dir: Path, limits: Limits) -> Judgement:
        """The hidden checks' results for ``judged_dir`` and the page's extras, the child
        stopped at a limit (the extras are then lost)."""
        process = self._start()
        request = {"spec": str(spec.folder), "judged": str(Path(judged_dir).resolve())}
        try:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
        except OSError:
            self.close()
            raise JudgeError(f"the judge process could not start: {self._log_tail()}") from None
        collected: dict[str, CheckResult] = {}
        extras = Judgement([])
        deadline = time.monotonic() + STARTUP_LIMIT_S  # the course's own start-up
        cpu_limit = None  # CPU seconds of the child at which it is stopped
        while True:
            message, stopped = self._next(process, deadline, limits, cpu_limit)
            if stopped:
                self.close()
                if not collected:
                    raise JudgeError(
                        f"the judge process stopped ({stopped}) before any check ran: "
                        + self._log_tail()
                    )
                return Judgement(_stopped(collected, stopped, limits))
            kind, payload = message
            if kind == "collected":  # from here on, the student's models are loaded and run
                collected = {c["name"]: CheckResult(**c) for c in payload}
                timeout = limits.judge_timeout_s
                deadline = time.monotonic() + sandbox.WALL_CLOCK_FACTOR * timeout
                cpu_limit = sandbox.tree_cpu_seconds(process.pid) + sandbox.cpu_cores() * timeout
            elif kind == "result":
                collected[payload["name"]] = CheckResult(**payload)
            elif kind == "extras":
                extras = Judgement([], **payload)
            elif kind == "done":
                checks = sorted(collected.values(), key=lambda r: (r.grade_cell, r.name))
                return replace(extras, checks=checks)
            elif kind == "error":
                raise JudgeError(payload)

    def _next(self, process, deadline: float, limits: Limits, cpu_limit: float | None):
        """The child's next message, or why it was stopped (``cpu``, ``timeout`` for the wall
        clock, ``memory``, ``died``)."""
        while b"\n" not in self._pending:
            ready, _, _ = select.select([process.stdout], [], [], WATCH_INTERVAL_S)
            if ready:
                chunk = os.read(process.stdout.fileno(), 1 << 16)
                if not chunk:
                    return None, "died"
                self._pending += chunk
            elif process.poll() is not None:
                return None, "died"
            elif time.monotonic() > deadline:
                return None, "timeout"
            elif cpu_limit is not None and sandbox.tree_cpu_seconds(process.pid) > cpu_limit:
                return None, "cpu"
            elif _tree_memory(process.pid) > limits.judge_memory_mb << 20:
                return None, "memory"
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line), None

    def _start(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (open for the life of the child)
        command = [sys.executable, "-m", "autograder.judge"]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        if shutil.which("bwrap") and sandbox.isolation_mode() == "bubblewrap":
            command = [*NETWORKLESS, "--", *command]
            env.update(TMPDIR=PRIVATE_TMP, KERAS_HOME=PRIVATE_TMP)
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )
        self._pending = b""
        return self._process

    def close(self) -> None:
        """Stop the child (and everything it started)."""
        if self._process is not None:
            with contextlib.suppress(OSError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, self._log.tell() - 2000))
        return self._log.read().decode("utf-8", errors="replace")


@functools.cache
def worker_judge() -> JudgeProcess:
    """The judge child of this grading worker (started on first use, reused after)."""
    return JudgeProcess()


#: The judge's child sees the machine read-only, with no network; it writes only to a tmpfs.
PRIVATE_TMP = "/dev/shm"  # an existing mount point in the read-only view
NETWORKLESS = (
    "bwrap",
    "--ro-bind", "/", "/",
    "--dev", "/dev",
    "--proc", "/proc",
    "--tmpfs", PRIVATE_TMP,
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-pid",
    "--cap-drop", "ALL",
    "--die-with-parent",
)  # fmt: skip
WATCH_INTERVAL_S = 0.25
#: Time the child may take to start and collect the checks (the grader's cost, not the model's).
STARTUP_LIMIT_S = 300
STOPPED = {
    "cpu": "the judge stopped your models after {cpu} s of CPU time (the time limit for loading "
    "them and predicting on the hidden data: {timeout} s on each of {cores} cores): is a "
    "sequence length or a layer far too large?",
    "timeout": "the judge stopped your models after {wall} s of wall-clock time (the backstop, "
    "{factor} x the time limit of {timeout} s of CPU time for loading them and predicting on "
    "the hidden data): is a sequence length or a layer far too large?",
    "memory": "your models used more than {memory} MB while the judge ran them (memory limit): "
    "is a vocabulary, embedding or sequence length far too large?",
    "died": "the judge's process running your models ended abruptly",
}


def _stopped(collected: dict[str, CheckResult], why: str, limits: Limits) -> list[CheckResult]:
    """Every check: those that finished as they did, the others failed with the reason."""
    timeout, cores, factor = limits.judge_timeout_s, sandbox.cpu_cores(), sandbox.WALL_CLOCK_FACTOR
    text = STOPPED[why].format(
        timeout=timeout,
        cpu=timeout * cores,
        cores=cores,
        wall=timeout * factor,
        factor=factor,
        memory=limits.judge_memory_mb,
    )
    results = [
        check if check.message or check.passed else replace(check, message=text, cause=text)
        for check in collected.values()
    ]
    return sorted(results, key=lambda r: (r.grade_cell, r.name))


def _tree_memory(pid: int) -> int:
    """Resident bytes of the process ``pid`` and its descendants."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in tree:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


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
            extras = feedback_extras(spec.plugin(), judged)
            send(
                "extras", {"figures": extras.figures, "texts": extras.texts, "notes": extras.notes}
            )
            send("done", None)
        except Exception as err:  # a course problem: the parent raises it as a JudgeError
            send("error", f"{type(err).__name__}: {err}")


if __name__ == "__main__":
    serve()
