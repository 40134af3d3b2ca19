"""Run the sandbox driver on a job and watch its process tree until it ends: limits,
the driver's report on its own pipe, the capped log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from autograder.core.spec import STUDENT_PACKAGE, Limits
from autograder.core.units import MB
from autograder.grading.sandbox import bubblewrap, cgroups, disk, measure

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25
LOG_CAP_BYTES = 256 * 1024
REPORT_CAP_BYTES = 16 * MB
THREAD_ALLOWANCE = 1024  # pids.max counts threads too: TensorFlow starts many per process


@dataclass
class SandboxOutcome:
    """How the sandboxed process ended, seen from the trusted side."""

    isolation: str
    returncode: int | None
    killed: str | None  # "cpu" | "timeout" (wall clock) | "memory" | "disk" | "processes" | None
    duration_s: float
    cpu_s: float = 0.0  # CPU seconds of the whole tree
    peak_memory_mb: float = 0.0
    peak_processes: int = 0
    log: str = ""
    log_truncated: bool = False
    # what the driver reported on its pipe: one entry per executed cell (its execute_reply
    # status, ename, evalue), and the final report ({} when the driver never finished)
    cells: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    memory_counted_by: str = ""  # "cgroup v2" | "cgroup v1" | "pss"
    disk_limit: str = ""  # "file system" (a hard limit) | "watched" | ""
    uid: int | None = None  # the host uid the sandbox ran as (None: the grader's own)


def run_driver(
    job: dict,
    *,
    scratch: Path,
    limits: Limits,
    hard_timeout_s: float,
    cpu_limit_s: float | None = None,
    data_dir: Path | None = None,
    space: disk.ScratchSpace | None = None,
) -> SandboxOutcome:
    """Run ``sandbox_driver.py`` on ``job`` in the sandbox and watch it until it ends.

    The run is killed after ``cpu_limit_s`` of CPU time, or ``hard_timeout_s`` of wall-clock
    time. ``space`` (from :func:`scratch_space`) is the scratch folder's disk limit, if any.
    """
    isolation = bubblewrap.isolation_mode()
    user = bubblewrap.bwrap_user() if isolation == "bubblewrap" else bubblewrap.sandbox_user()
    env = bubblewrap.sandbox_env(scratch, data_dir, isolation)
    for key in ("HOME", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "MPLCONFIGDIR", "KERAS_HOME"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    (scratch / bubblewrap.PRIVATE_DIR / "tmp").mkdir(parents=True, exist_ok=True)
    if user is not None:
        bubblewrap.give_to(scratch, user)
    fsize = 2 * max(limits.max_artifacts_mb, limits.max_notebook_mb, limits.max_output_mb) * MB
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="rnn-job-"))
        Path(tmp).chmod(0o755)  # the rlimit fallback's user reads the driver from here
        job_dir = Path(tmp, "job")
        bubblewrap.write_job_files(job_dir, job)
        report = os.pipe()
        inside = bubblewrap.JOB_MOUNT if isolation == "bubblewrap" else str(job_dir)
        command = [
            bubblewrap.python_inside(),
            f"{inside}/{bubblewrap.DRIVER.name}",
            f"{inside}/job.json",
            str(report[1]),
        ]
        staged: dict[str, str] = {}
        if isolation == "bubblewrap":
            binds = bubblewrap.host_binds(scratch, job_dir, data_dir)
            staged = stack.enter_context(bubblewrap.stage_binds(binds if user is not None else []))
            command = bubblewrap.bwrap_argv(
                command, scratch=scratch, job_dir=job_dir, env=env, data_dir=data_dir, staged=staged
            )
            must_reach = [(bubblewrap.which(command)[0], os.X_OK)]
        else:
            must_reach = [
                (bubblewrap.python_inside(), os.X_OK),
                (str(job_dir / bubblewrap.DRIVER.name), os.R_OK),
                (str(scratch), os.W_OK | os.X_OK),
                (str(STUDENT_PACKAGE), os.R_OK | os.X_OK),
            ]
            if data_dir is not None:
                must_reach.append((str(data_dir), os.R_OK | os.X_OK))
        cgroup = cgroups.Cgroup.create(
            limits.memory_mb * MB, limits.max_processes + THREAD_ALLOWANCE
        )
        if cgroup is not None:
            stack.callback(cgroup.remove)
        command = bubblewrap.wrapped(
            command,
            fsize=fsize,
            user=user,
            cgroups=cgroup.procs_files() if cgroup is not None else [],
            must_reach=must_reach,
            staged=staged,
        )
        outcome = _watch(
            command,
            isolation=isolation,
            env=env,
            cwd=scratch,
            limits=limits,
            hard_timeout_s=hard_timeout_s,
            cpu_limit_s=cpu_limit_s,
            report=report,
            cgroup=cgroup,
            space=space,
        )
    if user is not None and bubblewrap.WRAPPER_STAYED_ROOT not in outcome.log:
        outcome.uid = user[0]
    return outcome


def _watch(
    command: list[str],
    *,
    isolation: str,
    env: dict[str, str],
    cwd: Path,
    limits: Limits,
    hard_timeout_s: float,
    cpu_limit_s: float | None = None,
    report: tuple[int, int] | None = None,
    cgroup: cgroups.Cgroup | None = None,
    space: disk.ScratchSpace | None = None,
) -> SandboxOutcome:
    """Start ``command`` in its own session and enforce the limits until it exits.

    ``hard_timeout_s`` is wall-clock time; ``cpu_limit_s`` (None: none) the CPU time of
    the whole tree.

    ``report`` is a pipe (read end, write end): the write end goes to the child only,
    and what the driver writes on it becomes ``outcome.cells`` and ``outcome.report``.
    """
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            pass_fds=report[1:] if report else (),
        )
    finally:
        if report is not None:
            os.close(report[1])  # the child's copy is the only one: EOF when it is gone
    capture = _LogCapture(proc.stdout)
    reader = _ReportReader(report[0]) if report is not None else None
    outcome = SandboxOutcome(
        isolation=isolation,
        returncode=None,
        killed=None,
        duration_s=0.0,
        memory_counted_by=cgroup.kind if cgroup is not None else "pss",
        disk_limit=space.kind if space is not None else "",
    )
    try:
        while proc.poll() is None:
            outcome.killed = _check_limits(
                proc.pid,
                started,
                limits,
                hard_timeout_s,
                outcome,
                cpu_limit_s=cpu_limit_s,
                count_tmpfs=isolation == "bubblewrap",
                cgroup=cgroup,
                space=space,
            )
            if outcome.killed:
                break
            time.sleep(WATCH_INTERVAL_S)
        if not outcome.killed:  # what the kernel counted since the last look
            outcome.killed = _kernel_events(cgroup) or (
                "disk" if space is not None and space.full(now=True) else None
            )
    finally:
        if proc.returncode is None:  # still running or a zombie: its pid is still ours
            measure.kill_tree(proc, cgroup)
        with contextlib.suppress(OSError):  # leftovers of its session
            os.killpg(proc.pid, signal.SIGKILL)
        if cgroup is not None:  # leftovers that left the session
            cgroup.kill()
        outcome.returncode = proc.wait()
        outcome.duration_s = time.monotonic() - started
        capture.join()
        if reader is not None:
            reader.join()
            outcome.cells, outcome.report = reader.cells, reader.report
    if cgroup is not None:
        outcome.peak_memory_mb = max(outcome.peak_memory_mb, cgroup.memory_peak() / MB)
        outcome.cpu_s = max(outcome.cpu_s, cgroup.cpu_seconds() or 0.0)
    outcome.log, outcome.log_truncated = capture.text(), capture.truncated
    return outcome


def _check_limits(
    pid: int,
    started: float,
    limits: Limits,
    hard_timeout_s: float,
    outcome: SandboxOutcome,
    *,
    cpu_limit_s: float | None = None,
    count_tmpfs: bool,
    cgroup: cgroups.Cgroup | None = None,
    space: disk.ScratchSpace | None = None,
) -> str | None:
    """The name of the limit the process tree is over, if any (and update the peaks)."""
    if time.monotonic() - started > hard_timeout_s:
        return "timeout"
    procs = list(measure.process_tree(pid))
    counted = cgroup.cpu_seconds() if cgroup is not None else None
    outcome.cpu_s = max(
        outcome.cpu_s, counted if counted is not None else measure.cpu_seconds(procs)
    )
    if cpu_limit_s is not None and outcome.cpu_s > cpu_limit_s:
        return "cpu"
    outcome.peak_processes = max(outcome.peak_processes, len(procs))
    if len(procs) > limits.max_processes:
        return "processes"
    if space is not None and space.full():
        return "disk"
    if cgroup is not None:  # the kernel enforces the limit; its events say when it did
        outcome.peak_memory_mb = max(outcome.peak_memory_mb, cgroup.memory_used() / MB)
        return _kernel_events(cgroup)
    limit = limits.memory_mb * MB
    tmpfs = measure.private_tmpfs_bytes(procs) if count_tmpfs else 0
    used = sum(measure.rss(p) for p in procs) + tmpfs
    if used > limit:  # RSS counts a shared page once per process; PSS splits it among them
        used = sum(measure.pss(p) for p in procs) + tmpfs
    outcome.peak_memory_mb = max(outcome.peak_memory_mb, used / MB)
    if used > limit:
        return "memory"
    return None


def _kernel_events(cgroup: cgroups.Cgroup | None) -> str | None:
    """``memory`` after an OOM kill in the run's cgroup, ``processes`` after a refused fork."""
    if cgroup is None:
        return None
    if cgroup.oom_kills():
        return "memory"
    if cgroup.task_limit_hits():
        return "processes"
    return None


class _ReportReader:
    """Reads the driver's report pipe in a thread: JSON lines, ``{"cell": ...}`` per cell
    and ``{"report": ...}`` at the end. Capped; a line that is not that is skipped."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.cells: list[dict] = []
        self.report: dict = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        read = 0
        with os.fdopen(self._fd, "rb") as stream:
            for line in stream:
                read += len(line)
                if read > REPORT_CAP_BYTES:
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict) and isinstance(item.get("cell"), dict):
                    self.cells.append(item["cell"])
                elif isinstance(item, dict) and isinstance(item.get("report"), dict):
                    self.report = item["report"]

    def join(self) -> None:
        self._thread.join(timeout=10)


class _LogCapture:
    """Reads the sandbox's stdout/stderr in a thread, keeping only the last bytes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._tail = bytearray()
        self.truncated = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while chunk := self._stream.read1(65536):
            self._tail += chunk
            if len(self._tail) > LOG_CAP_BYTES:
                del self._tail[: len(self._tail) - LOG_CAP_BYTES]
                self.truncated = True

    def join(self) -> None:
        self._thread.join(timeout=5)

    def text(self) -> str:
        return self._tail.decode("utf-8", errors="replace")
