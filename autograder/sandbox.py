"""Launch the sandbox driver on untrusted code, with limits, and watch its process tree.

Isolation is bubblewrap where it works: every namespace unshared (no network,
own PIDs), uid/gid 65534, capabilities dropped, a read-only view of the system
(``/usr``, a few files of ``/etc``, the Python prefix, the virtual environment
and the student package ``assignments/``, never the grader's packages: where
those are installed inside the virtual environment an empty tmpfs hides them)
on a read-only root, a private ``/tmp``, the
scratch folder as the only writable place and, read-only, the data mirror and
the grader's job folder (``/run/rnn-grader``). Where bubblewrap is missing or
fails its self-test the driver runs as a plain subprocess with rlimits, and a
loud warning says so (``RNN_COURSE_SANDBOX=rlimit`` forces that, ``bubblewrap``
forbids the fallback).

Either way the trusted parent enforces, every ``WATCH_INTERVAL_S``: the wall
time of the whole run, the memory (RSS of the whole process tree plus what it
put in its private tmpfs mounts) and the number of processes, killing the
tree when one is exceeded. RLIMIT_FSIZE caps each file, RLIMIT_CORE is 0.
stdout/stderr of the sandbox are kept only as a capped log.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from assignments.data import MIRROR_ENV
from autograder.spec import STUDENT_PACKAGE, Limits

log = logging.getLogger(__name__)

ISOLATION_ENV = "RNN_COURSE_SANDBOX"
DRIVER = Path(__file__).with_name("sandbox_driver.py")
JOB_MOUNT = "/run/rnn-grader"
GRADER_PACKAGES = ("autograder", "solutions")
SANDBOX_UID = 65534
WATCH_INTERVAL_S = 0.25
LOG_CAP_BYTES = 256 * 1024
MB = 1 << 20
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "nsswitch.conf",
    "hosts",
    "ssl",
    "ca-certificates",
    "fonts",
    "alternatives",
    "mime.types",
)
PASSWD = "nobody:x:65534:65534:sandbox:/nonexistent:/usr/sbin/nologin\n"
GROUP = "nogroup:x:65534:\n"
RLIMIT_WRAPPER = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1]))); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


@dataclass
class SandboxOutcome:
    """How the sandboxed process ended, seen from the trusted side."""

    isolation: str
    returncode: int | None
    killed: str | None  # "timeout" | "memory" | "processes" | None
    duration_s: float
    peak_memory_mb: float = 0.0
    peak_processes: int = 0
    log: str = ""
    log_truncated: bool = False


def isolation_mode() -> str:
    """``bubblewrap`` or ``rlimit``: what this machine can give, or what the env var forces."""
    wanted = os.environ.get(ISOLATION_ENV, "auto")
    if wanted != "rlimit" and bubblewrap_works():
        return "bubblewrap"
    if wanted == "bubblewrap":
        raise RuntimeError(f"{ISOLATION_ENV}=bubblewrap but bubblewrap is missing or broken")
    why = f"{ISOLATION_ENV}=rlimit" if wanted == "rlimit" else "bubblewrap is missing or broken"
    log.warning(
        "!!! %s: student code runs WITHOUT a sandbox (a plain subprocess with rlimits, "
        "the grader's user, files and network). Install the 'bubblewrap' package. !!!",
        why,
    )
    return "rlimit"


@functools.cache
def bubblewrap_works() -> bool:
    """Whether ``bwrap`` can start the virtual environment's Python with our mounts."""
    if shutil.which("bwrap") is None:
        return False
    with tempfile.TemporaryDirectory(prefix="rnn-bwrap-test-") as tmp:
        scratch, job = Path(tmp, "scratch"), Path(tmp, "job")
        scratch.mkdir()
        _write_job_files(job, {})
        argv = bwrap_argv(
            [python_inside(), "-c", "import assignments"],
            scratch=scratch,
            job_dir=job,
            env=sandbox_env(scratch, None),
            tmp_mb=64,
        )
        try:
            done = subprocess.run(argv, capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


def python_inside() -> str:
    """The virtual environment's interpreter (bound at the same path in the sandbox)."""
    return str(Path(sys.prefix) / "bin" / "python")


def sandbox_env(scratch: Path, data_dir: Path | None) -> dict[str, str]:
    """The whole environment of the sandboxed run: homes and caches inside scratch."""
    private = scratch / ".sandbox"
    env = {
        "PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": sys.prefix,
        "HOME": f"{private}/home",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "JUPYTER_RUNTIME_DIR": f"{private}/jupyter-runtime",
        "JUPYTER_DATA_DIR": f"{private}/jupyter-data",
        "JUPYTER_CONFIG_DIR": f"{private}/jupyter-config",
        "IPYTHONDIR": f"{private}/ipython",
        "MPLCONFIGDIR": f"{private}/matplotlib",
        "KERAS_HOME": f"{private}/keras",
        "XDG_CACHE_HOME": f"{private}/cache",
        "RNN_COURSE_CACHE": f"{private}/cache/rnn-course",
        "RNN_COURSE_OFFLINE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg",
    }
    if data_dir is not None:
        env[MIRROR_ENV] = str(data_dir)
    return env


def bwrap_argv(
    command: Sequence[str],
    *,
    scratch: Path,
    job_dir: Path,
    env: dict[str, str],
    tmp_mb: int,
    data_dir: Path | None = None,
) -> list[str]:
    """The bubblewrap command line that runs ``command`` in the sandbox."""
    argv = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("bin", "lib", "lib64", "sbin"):
        path = Path("/", name)
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    argv += [
        "--ro-bind",
        str(job_dir / "passwd"),
        "/etc/passwd",
        "--ro-bind",
        str(job_dir / "group"),
        "/etc/group",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(tmp_mb * MB),
        "--tmpfs",
        "/tmp",
    ]
    mounted = (Path(sys.base_prefix), Path(sys.prefix), STUDENT_PACKAGE)
    for path in mounted:
        argv += ["--ro-bind", str(path.resolve()), str(path)]
    for hidden in grader_packages():
        if any(hidden.is_relative_to(path.resolve()) for path in mounted):
            argv += ["--tmpfs", str(hidden)]
    argv += ["--bind", str(scratch), str(scratch)]
    if data_dir is not None:
        argv += ["--ro-bind", str(data_dir), str(data_dir)]
    argv += [
        "--ro-bind",
        str(job_dir),
        JOB_MOUNT,
        "--remount-ro",
        "/",
        "--chdir",
        str(scratch),
        "--clearenv",
    ]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return [*argv, "--", *command]


def grader_packages() -> list[Path]:
    """The folders of the grader's own packages (engine, hidden checks, solutions)."""
    folders = []
    for name in GRADER_PACKAGES:
        found = importlib.util.find_spec(name)
        if found is not None and found.submodule_search_locations:
            folders += [Path(p).resolve() for p in found.submodule_search_locations]
    return folders


def _write_job_files(job_dir: Path, job: dict) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DRIVER, job_dir / DRIVER.name)
    (job_dir / "job.json").write_text(json.dumps(job))
    (job_dir / "passwd").write_text(PASSWD)
    (job_dir / "group").write_text(GROUP)


def run_driver(
    job: dict, *, scratch: Path, limits: Limits, hard_timeout_s: float, data_dir: Path | None = None
) -> SandboxOutcome:
    """Run ``sandbox_driver.py`` on ``job`` in the sandbox and watch it until it ends."""
    isolation = isolation_mode()
    env = sandbox_env(scratch, data_dir)
    for key in ("HOME", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "MPLCONFIGDIR", "KERAS_HOME"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rnn-job-") as tmp:
        job_dir = Path(tmp, "job")
        _write_job_files(job_dir, job)
        inside = JOB_MOUNT if isolation == "bubblewrap" else str(job_dir)
        command = [python_inside(), f"{inside}/{DRIVER.name}", f"{inside}/job.json"]
        if isolation == "bubblewrap":
            command = bwrap_argv(
                command,
                scratch=scratch,
                job_dir=job_dir,
                env=env,
                tmp_mb=max(64, limits.memory_mb // 2),
                data_dir=data_dir,
            )
        fsize = 2 * max(limits.max_artifacts_mb, limits.max_notebook_mb, limits.max_output_mb)
        command = [sys.executable, "-c", RLIMIT_WRAPPER, str(fsize * MB), *_which(command)]
        return _watch(
            command,
            isolation=isolation,
            env=env,
            cwd=scratch,
            limits=limits,
            hard_timeout_s=hard_timeout_s,
        )


def _which(command: list[str]) -> list[str]:
    return [shutil.which(command[0]) or command[0], *command[1:]]


def _watch(
    command: list[str],
    *,
    isolation: str,
    env: dict[str, str],
    cwd: Path,
    limits: Limits,
    hard_timeout_s: float,
) -> SandboxOutcome:
    """Start ``command`` in its own session and enforce the limits until it exits."""
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    capture = _LogCapture(proc.stdout)
    outcome = SandboxOutcome(isolation=isolation, returncode=None, killed=None, duration_s=0.0)
    try:
        while proc.poll() is None:
            outcome.killed = _check_limits(
                proc.pid,
                started,
                limits,
                hard_timeout_s,
                outcome,
                count_tmpfs=isolation == "bubblewrap",
            )
            if outcome.killed:
                break
            time.sleep(WATCH_INTERVAL_S)
    finally:
        if proc.returncode is None:  # still running or a zombie: its pid is still ours
            _kill_tree(proc)
        with contextlib.suppress(OSError):  # leftovers of its session
            os.killpg(proc.pid, signal.SIGKILL)
        outcome.returncode = proc.wait()
        outcome.duration_s = time.monotonic() - started
        capture.join()
    outcome.log, outcome.log_truncated = capture.text(), capture.truncated
    return outcome


def _check_limits(
    pid: int,
    started: float,
    limits: Limits,
    hard_timeout_s: float,
    outcome: SandboxOutcome,
    *,
    count_tmpfs: bool,
) -> str | None:
    """The name of the limit the process tree is over, if any (and update the peaks)."""
    if time.monotonic() - started > hard_timeout_s:
        return "timeout"
    procs = list(_tree(pid))
    outcome.peak_processes = max(outcome.peak_processes, len(procs))
    if len(procs) > limits.max_processes:
        return "processes"
    used = sum(_rss(p) for p in procs)
    if count_tmpfs:
        used += _private_tmpfs_bytes(procs)
    outcome.peak_memory_mb = max(outcome.peak_memory_mb, used / MB)
    if used > limits.memory_mb * MB:
        return "memory"
    return None


def _tree(pid: int) -> Iterator[psutil.Process]:
    try:
        root = psutil.Process(pid)
        yield root
        yield from root.children(recursive=True)
    except psutil.NoSuchProcess:
        return


def _rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def _private_tmpfs_bytes(procs: list[psutil.Process]) -> int:
    """Bytes stored in the sandbox's private tmpfs mounts (memory, not RSS): /, /tmp, /dev."""
    own_mnt = os.stat("/proc/self/ns/mnt").st_ino
    for proc in procs:
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{proc.pid}/ns/mnt").st_ino != own_mnt:
                return _tmpfs_usage(f"/proc/{proc.pid}/root")
    return 0


def _tmpfs_usage(root: str) -> int:
    """Bytes used on the sandbox's own mounts under ``root``, never on the host's.

    While bubblewrap sets up, a process of the tree may still see the host's
    file systems; a mount whose device is one of the host's is not counted.
    """
    host = set()
    for mount in ("/", "/tmp", "/dev", "/dev/shm"):
        with contextlib.suppress(OSError):
            host.add(os.stat(mount).st_dev)
    used = {}
    for mount in ("", "tmp", "dev", "dev/shm"):
        with contextlib.suppress(OSError):
            path = f"{root}/{mount}"
            device = os.stat(path).st_dev
            if device not in host:
                st = os.statvfs(path)
                used[device] = (st.f_blocks - st.f_bfree) * st.f_frsize
    return sum(used.values())


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the process, its session and all descendants (repeated: they may fork)."""
    for _ in range(20):
        procs = list(_tree(proc.pid))
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if len(procs) <= 1:
            return
        psutil.wait_procs(procs, timeout=0.5)


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
