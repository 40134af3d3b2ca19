"""The judge seen from a grading worker: a child process per worker, watched under limits."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from autograder.core.results import CheckResult, Judgement
from autograder.core.spec import Limits, Spec
from autograder.core.units import MB
from autograder.grading.judge import JudgeError
from autograder.grading.sandbox import bubblewrap, measure


class JudgeProcess:
    """A child process that runs the hidden checks, and so loads the student's models.

    The models are untrusted: a model can be made slow (a very long sequence length)
    or huge. The child runs without network (bubblewrap, where it works) and under
    the spec's ``judge_timeout_s`` and ``judge_memory_mb``, watched from this process;
    over a limit it is killed, the checks it had not finished fail with a message
    naming the limit, and the next submission gets a new child. Between submissions
    the child stays up, so TensorFlow and the hidden data load once per worker.

    The time limit counts the child's CPU time (``judge_timeout_s`` on each of
    :func:`autograder.grading.sandbox.measure.cpu_cores`), with a wall-clock backstop of
    :data:`autograder.grading.sandbox.measure.WALL_CLOCK_FACTOR` times it.
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
                deadline = time.monotonic() + measure.WALL_CLOCK_FACTOR * timeout
                cpu_limit = measure.tree_cpu_seconds(process.pid) + measure.cpu_cores() * timeout
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
            elif cpu_limit is not None and measure.tree_cpu_seconds(process.pid) > cpu_limit:
                return None, "cpu"
            elif _tree_memory(process.pid) > limits.judge_memory_mb * MB:
                return None, "memory"
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line), None

    def _start(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (open for the life of the child)
        command = [sys.executable, "-m", "autograder.grading.judge.child"]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        if shutil.which("bwrap") and bubblewrap.isolation_mode() == "bubblewrap":
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
    timeout, cores, factor = limits.judge_timeout_s, measure.cpu_cores(), measure.WALL_CLOCK_FACTOR
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
