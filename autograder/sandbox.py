"""Launch the sandbox driver on untrusted code, with limits, and watch its process tree.

Isolation is bubblewrap where it works: every namespace unshared (no network,
own PIDs), uid/gid 65534, capabilities dropped, a read-only view of the system
(``/usr``, a few files of ``/etc``, the Python prefix, the virtual environment
and the student package ``assignments/``, never the grader's packages: where
those are installed inside the virtual environment an empty tmpfs hides them)
on a read-only root, the scratch folder as the only writable place (the
sandbox's ``/tmp`` lies in it too) and, read-only, the data mirror and the
grader's job folder (``/run/rnn-grader``). Where bubblewrap is missing or
fails its self-test the driver runs as a plain subprocess with rlimits, and a
loud warning says so (``RNN_COURSE_SANDBOX=rlimit`` forces that, ``bubblewrap``
forbids the fallback).

A grader started as root never runs student code as root: the sandbox starts
as the unprivileged host user :func:`sandbox_user` (``rnn-sandbox``, created
when missing), which owns the scratch folder; the folders it reads, wherever
they lie (``/root/.pyenv``, a 0700 temporary folder), are bound for it onto
staging points by the trusted wrapper before it drops root.

Limits, enforced whichever way the sandbox runs:

- memory and processes: where the grader can create a child cgroup (v2, or
  v1's ``memory`` and ``pids``), the kernel limits and counts the whole tree
  (shared pages once, files in the sandbox's tmpfs mounts included) and the
  verdict comes from its OOM and task-limit events; elsewhere the parent sums
  the proportional set size (PSS) of the tree. The parent also counts the
  processes every ``WATCH_INTERVAL_S`` and kills the tree over the limit;
- disk: as root, :func:`scratch_space` runs the notebook in a copy of the
  scratch folder on a size-limited file system (a loop-mounted ext4 image in
  ``/run/rnn-scratch``, freed when unmounted); without root the parent measures
  the scratch folder instead (a soft limit, and says so);
- time: the CPU time of the whole tree (the cgroup's ``cpu.stat``, or v1's
  ``cpuacct.usage``; elsewhere the CPU times of the tree's processes, each with the
  exited children it waited for), so that a busy machine slows a notebook without
  failing it, and a wall-clock backstop for a run that waits without computing;
- RLIMIT_FSIZE caps each file, RLIMIT_CORE is 0.

The driver's report (each cell's ``execute_reply`` status, timeouts, a dead
kernel) comes back on a pipe that only the driver holds (it makes itself
non-dumpable, so the kernel's processes cannot reach its descriptors), never
through a file that student code could rewrite. stdout/stderr of the sandbox
are kept only as a capped log.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import json
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
PRIVATE_DIR = ".sandbox"  # in scratch: homes, caches and /tmp of the sandbox
SANDBOX_UID = 65534
WATCH_INTERVAL_S = 0.25
#: Every time limit counts CPU time; this many times the limit in wall-clock time stops
#: what waits without computing.
WALL_CLOCK_FACTOR = 3
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
SANDBOX_USER = "rnn-sandbox"
FALLBACK_USER = "nobody"
REPORT_CAP_BYTES = 16 * MB
THREAD_ALLOWANCE = 1024  # pids.max counts threads too: TensorFlow starts many per process
DISK_SLACK_BYTES = MB  # a size-limited scratch with less free space than this is full
SCRATCH_CHECK_S = 1.0  # how often an unmounted scratch folder is measured
MAX_SCRATCH_FILES = 250_000
# Runs first in the child, as the grader's user: limits, joins the run's cgroup; as
# root, binds the folders the sandbox reads onto staging points the sandbox user can
# reach (in a mount namespace of its own, invisible to the host) and drops root for
# that user (where it can reach what it runs); then execs.
WRAPPER = """\
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize"], cfg["fsize"]))
for procs in cfg["cgroups"]:
    with open(procs, "w") as handle:
        handle.write(str(os.getpid()))
if cfg["binds"]:
    libc = ctypes.CDLL(None, use_errno=True)
    def check(result, what):
        if result != 0:
            raise OSError(ctypes.get_errno(), what)
    check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
    check(libc.mount(b"none", b"/", None, (1 << 14) | (1 << 18), None), "make / private")
    for source, target in cfg["binds"]:
        check(libc.mount(source.encode(), target.encode(), None, 4096 | (1 << 14), None), target)
if cfg["user"]:
    uid, gid = cfg["user"]
    os.setgroups([])
    os.setegid(gid)
    os.seteuid(uid)
    reachable = all(os.access(p, m, effective_ids=True) for p, m in cfg["must_reach"])
    os.seteuid(0)
    os.setegid(0)
    if reachable:
        os.setgid(gid)
        os.setuid(uid)
    else:
        print("rnn-sandbox: !!! the sandbox user cannot reach the interpreter or the "
              "scratch folder: running as root !!!", file=sys.stderr, flush=True)
os.execv(sys.argv[2], sys.argv[2:])
"""


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


def cpu_cores() -> int:
    """The cores a run may use at once: a time limit of N s allows N s of CPU time on each.

    An honest run that ends within N s on a quiet machine never uses more.
    """
    return len(os.sched_getaffinity(0))


@functools.cache
def sandbox_user() -> tuple[int, int] | None:
    """The host (uid, gid) that untrusted code runs as when the grader is root, else None.

    That is the system user ``rnn-sandbox``, created here when missing (``useradd
    --system``), or ``nobody`` where it cannot be created. Reusable by any trusted code
    that runs something untrusted in a child process: drop to these ids before it starts.
    """
    if os.geteuid() != 0:
        return None
    for attempt in range(2):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(SANDBOX_USER)
            return entry.pw_uid, entry.pw_gid
        if attempt == 0 and shutil.which("useradd"):
            command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            done = subprocess.run([*command, SANDBOX_USER], capture_output=True, text=True)
            if done.returncode not in (0, 9):  # 9: created meanwhile by another worker
                log.warning("could not create the user %s: %s", SANDBOX_USER, done.stderr.strip())
    try:
        entry = pwd.getpwnam(FALLBACK_USER)
    except KeyError:
        log.warning(
            "!!! no user %s nor %s: the sandbox runs as root !!!", SANDBOX_USER, FALLBACK_USER
        )
        return None
    log.warning(
        "the sandbox runs as %s (create the user %s for a dedicated one)",
        FALLBACK_USER,
        SANDBOX_USER,
    )
    return entry.pw_uid, entry.pw_gid


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
    """Whether ``bwrap`` can start the virtual environment's Python with our mounts.

    As root it is tried as :func:`sandbox_user` first; where that fails (bubblewrap
    needs unprivileged user namespaces for it), as root, with a loud warning.
    """
    _BWRAP_AS_ROOT[0] = False
    if shutil.which("bwrap") is None:
        return False
    user = sandbox_user()
    if user is not None and _bwrap_self_test(user):
        return True
    works = _bwrap_self_test(None)
    if works and user is not None:
        _BWRAP_AS_ROOT[0] = True
        log.warning(
            "!!! bubblewrap does not start as the unprivileged user %s (uid %d) here: are "
            "unprivileged user namespaces disabled (sysctl kernel.unprivileged_userns_clone, "
            "kernel.apparmor_restrict_unprivileged_userns)? The sandbox runs as ROOT outside "
            "its namespaces. !!!",
            SANDBOX_USER,
            user[0],
        )
    return works


_BWRAP_AS_ROOT = [False]  # bubblewrap works here, but only when started as root
SELF_TEST = "import assignments, nbclient; open('self-test', 'w').write('ok')"


def _bwrap_user() -> tuple[int, int] | None:
    """The host user that starts bubblewrap (None: the grader's own)."""
    return None if _BWRAP_AS_ROOT[0] else sandbox_user()


def _bwrap_self_test(user: tuple[int, int] | None) -> bool:
    with tempfile.TemporaryDirectory(prefix="rnn-bwrap-test-") as tmp:
        scratch, job = Path(tmp, "scratch"), Path(tmp, "job")
        (scratch / PRIVATE_DIR / "tmp").mkdir(parents=True)
        _write_job_files(job, {})
        if user is not None:
            _give_to(scratch, user)
        binds = host_binds(scratch, job, None) if user is not None else []
        with _staged(binds) as staged:
            argv = bwrap_argv(
                [python_inside(), "-c", SELF_TEST],
                scratch=scratch,
                job_dir=job,
                env=sandbox_env(scratch, None),
                staged=staged,
            )
            command = _wrapped(argv, fsize=64 * MB, user=user, staged=staged)
            try:
                done = subprocess.run(command, capture_output=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                return False
        if done.returncode != 0:
            log.info("bubblewrap self-test (user %s) failed: %s", user, done.stderr[-2000:])
        return done.returncode == 0 and (scratch / "self-test").is_file()


def python_inside() -> str:
    """The virtual environment's interpreter (bound at the same path in the sandbox)."""
    return str(Path(sys.prefix) / "bin" / "python")


def sandbox_env(
    scratch: Path, data_dir: Path | None, isolation: str = "bubblewrap"
) -> dict[str, str]:
    """The whole environment of the sandboxed run: homes, caches and temporary files in scratch."""
    private = scratch / PRIVATE_DIR
    env = {
        # the grading worker's share of the cores (set when workers run side by side)
        **{name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        "PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": sys.prefix,
        "HOME": f"{private}/home",
        "TMPDIR": "/tmp" if isolation == "bubblewrap" else f"{private}/tmp",
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


def host_binds(scratch: Path, job_dir: Path, data_dir: Path | None) -> list[tuple[str, Path, str]]:
    """What bubblewrap binds from the host, in order: (option, host path, path inside)."""
    binds = [
        ("--ro-bind", job_dir / "passwd", "/etc/passwd"),
        ("--ro-bind", job_dir / "group", "/etc/group"),
        ("--bind", scratch / PRIVATE_DIR / "tmp", "/tmp"),  # before scratch: it may lie in /tmp
    ]
    binds += [("--ro-bind", path.resolve(), str(path)) for path in _mounted()]
    binds.append(("--bind", scratch, str(scratch)))
    if data_dir is not None:
        binds.append(("--ro-bind", data_dir, str(data_dir)))
    binds.append(("--ro-bind", job_dir, JOB_MOUNT))
    return binds


def _mounted() -> tuple[Path, ...]:
    return (Path(sys.base_prefix), Path(sys.prefix), STUDENT_PACKAGE)


def bwrap_argv(
    command: Sequence[str],
    *,
    scratch: Path,
    job_dir: Path,
    env: dict[str, str],
    data_dir: Path | None = None,
    staged: Mapping[str, str] | None = None,
) -> list[str]:
    """The bubblewrap command line that runs ``command`` in the sandbox.

    A host path found in ``staged`` is bound from its staging point instead (see
    :func:`_staged`): bubblewrap started as the sandbox user need not reach the original.
    """
    staged = staged or {}
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
    argv += ["--proc", "/proc", "--dev", "/dev"]
    mounted = [path.resolve() for path in _mounted()]
    for option, source, inside in host_binds(scratch, job_dir, data_dir):
        argv += [option, staged.get(str(source), str(source)), inside]
        if source == mounted[-1]:  # the read-only prefixes are in: hide the grader's packages
            for hidden in grader_packages():
                if any(hidden.is_relative_to(path) for path in mounted):
                    argv += ["--tmpfs", str(hidden)]
    argv += ["--remount-ro", "/", "--chdir", str(scratch), "--clearenv"]
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
    job_dir.chmod(0o755)  # the sandbox user reads it
    shutil.copyfile(DRIVER, job_dir / DRIVER.name)
    (job_dir / "job.json").write_text(json.dumps(job))
    (job_dir / "passwd").write_text(PASSWD)
    (job_dir / "group").write_text(GROUP)
    for path in job_dir.iterdir():
        path.chmod(0o644)


@contextlib.contextmanager
def _staged(binds: Sequence[tuple[str, Path, str]]) -> Iterator[dict[str, str]]:
    """Staging points for the binds' host paths: {host path: staging point}.

    The host paths may lie below folders only root can pass (``/root/.pyenv``, a 0700
    temporary folder), which bubblewrap started as the sandbox user cannot reach. The
    wrapper, still root, binds each one onto its staging point (empty, in a folder of
    mode 0755) in a mount namespace of its own; bubblewrap then binds from there.
    """
    if not binds:
        yield {}
        return
    folder = Path(tempfile.mkdtemp(prefix="rnn-stage-"))
    try:
        folder.chmod(0o755)
        staged: dict[str, str] = {}
        for _, source, _ in binds:
            if str(source) in staged:
                continue
            point = folder / str(len(staged))
            if source.is_dir():
                point.mkdir(mode=0o755)
            else:
                point.touch(mode=0o644)
            staged[str(source)] = str(point)
        yield staged
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # empty here: the binds live in the wrapper


def _give_to(folder: Path, user: tuple[int, int]) -> None:
    """Make ``user`` the owner of ``folder`` and everything in it (symlinks not followed)."""
    uid, gid = user
    os.chown(folder, uid, gid, follow_symlinks=False)
    for _, dirs, files, root_fd in os.fwalk(folder, follow_symlinks=False):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(name, uid, gid, dir_fd=root_fd, follow_symlinks=False)


def _wrapped(
    command: list[str],
    *,
    fsize: int,
    user: tuple[int, int] | None,
    cgroups: Sequence[str] = (),
    must_reach: Sequence[tuple[str, int]] = (),
    staged: Mapping[str, str] | None = None,
) -> list[str]:
    """``command`` behind :data:`WRAPPER`: rlimits, the run's cgroup, then the sandbox user."""
    config = {
        "fsize": fsize,
        "user": user,
        "cgroups": list(cgroups),
        "must_reach": list(must_reach),
        "binds": list((staged or {}).items()),
    }
    return [sys.executable, "-c", WRAPPER, json.dumps(config), *_which(command)]


def run_driver(
    job: dict,
    *,
    scratch: Path,
    limits: Limits,
    hard_timeout_s: float,
    cpu_limit_s: float | None = None,
    data_dir: Path | None = None,
    space: ScratchSpace | None = None,
) -> SandboxOutcome:
    """Run ``sandbox_driver.py`` on ``job`` in the sandbox and watch it until it ends.

    The run is killed after ``cpu_limit_s`` of CPU time, or ``hard_timeout_s`` of wall-clock
    time. ``space`` (from :func:`scratch_space`) is the scratch folder's disk limit, if any.
    """
    isolation = isolation_mode()
    user = _bwrap_user() if isolation == "bubblewrap" else sandbox_user()
    env = sandbox_env(scratch, data_dir, isolation)
    for key in ("HOME", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "MPLCONFIGDIR", "KERAS_HOME"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    (scratch / PRIVATE_DIR / "tmp").mkdir(parents=True, exist_ok=True)
    if user is not None:
        _give_to(scratch, user)
    fsize = 2 * max(limits.max_artifacts_mb, limits.max_notebook_mb, limits.max_output_mb) * MB
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="rnn-job-"))
        Path(tmp).chmod(0o755)  # the rlimit fallback's user reads the driver from here
        job_dir = Path(tmp, "job")
        _write_job_files(job_dir, job)
        report = os.pipe()
        inside = JOB_MOUNT if isolation == "bubblewrap" else str(job_dir)
        command = [python_inside(), f"{inside}/{DRIVER.name}", f"{inside}/job.json", str(report[1])]
        staged: dict[str, str] = {}
        if isolation == "bubblewrap":
            binds = host_binds(scratch, job_dir, data_dir)
            staged = stack.enter_context(_staged(binds if user is not None else []))
            command = bwrap_argv(
                command, scratch=scratch, job_dir=job_dir, env=env, data_dir=data_dir, staged=staged
            )
            must_reach = [(_which(command)[0], os.X_OK)]
        else:
            must_reach = [
                (python_inside(), os.X_OK),
                (str(job_dir / DRIVER.name), os.R_OK),
                (str(scratch), os.W_OK | os.X_OK),
                (str(STUDENT_PACKAGE), os.R_OK | os.X_OK),
            ]
            if data_dir is not None:
                must_reach.append((str(data_dir), os.R_OK | os.X_OK))
        cgroup = Cgroup.create(limits.memory_mb * MB, limits.max_processes + THREAD_ALLOWANCE)
        if cgroup is not None:
            stack.callback(cgroup.remove)
        command = _wrapped(
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
    if user is not None and WRAPPER_STAYED_ROOT not in outcome.log:
        outcome.uid = user[0]
    return outcome


WRAPPER_STAYED_ROOT = "rnn-sandbox: !!!"


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
    cpu_limit_s: float | None = None,
    report: tuple[int, int] | None = None,
    cgroup: Cgroup | None = None,
    space: ScratchSpace | None = None,
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
            _kill_tree(proc, cgroup)
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
    cgroup: Cgroup | None = None,
    space: ScratchSpace | None = None,
) -> str | None:
    """The name of the limit the process tree is over, if any (and update the peaks)."""
    if time.monotonic() - started > hard_timeout_s:
        return "timeout"
    procs = list(_tree(pid))
    counted = cgroup.cpu_seconds() if cgroup is not None else None
    outcome.cpu_s = max(outcome.cpu_s, counted if counted is not None else cpu_seconds(procs))
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
    tmpfs = _private_tmpfs_bytes(procs) if count_tmpfs else 0
    used = sum(_rss(p) for p in procs) + tmpfs
    if used > limit:  # RSS counts a shared page once per process; PSS splits it among them
        used = sum(_pss(p) for p in procs) + tmpfs
    outcome.peak_memory_mb = max(outcome.peak_memory_mb, used / MB)
    if used > limit:
        return "memory"
    return None


def _kernel_events(cgroup: Cgroup | None) -> str | None:
    """``memory`` after an OOM kill in the run's cgroup, ``processes`` after a refused fork."""
    if cgroup is None:
        return None
    if cgroup.oom_kills():
        return "memory"
    if cgroup.task_limit_hits():
        return "processes"
    return None


def _tree(pid: int) -> Iterator[psutil.Process]:
    try:
        root = psutil.Process(pid)
        yield root
        yield from root.children(recursive=True)
    except psutil.NoSuchProcess:
        return


def cpu_seconds(procs: Sequence[psutil.Process]) -> float:
    """CPU seconds of ``procs``, each with the exited children it waited for (an orphan
    reaped outside them is not counted: a cgroup counts it, and the wall clock stops it)."""
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of the process ``pid`` and its descendants (see :func:`cpu_seconds`)."""
    return cpu_seconds(list(_tree(pid)))


def _rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def _pss(proc: psutil.Process) -> int:
    """Proportional set size: each shared page split among the processes that map it."""
    try:
        return proc.memory_full_info().pss
    except psutil.AccessDenied:
        return _rss(proc)
    except (psutil.Error, AttributeError):
        return 0


def _private_tmpfs_bytes(procs: list[psutil.Process]) -> int:
    """Bytes stored in the sandbox's private tmpfs mounts (memory, not RSS): /, /dev.

    Looked up in each mount namespace of the tree but ours (the wrapper's own, with
    the host's file systems, counts nothing).
    """
    seen = {os.stat("/proc/self/ns/mnt").st_ino}
    used = 0
    for proc in procs:
        with contextlib.suppress(OSError):
            namespace = os.stat(f"/proc/{proc.pid}/ns/mnt").st_ino
            if namespace not in seen:
                seen.add(namespace)
                used += _tmpfs_usage(f"/proc/{proc.pid}/root")
    return used


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
    for mount in ("", "dev", "dev/shm"):
        with contextlib.suppress(OSError):
            path = f"{root}/{mount}"
            device = os.stat(path).st_dev
            if device not in host:
                st = os.statvfs(path)
                used[device] = (st.f_blocks - st.f_bfree) * st.f_frsize
    return sum(used.values())


def _kill_tree(proc: subprocess.Popen, cgroup: Cgroup | None = None) -> None:
    """SIGKILL the process, its session and all descendants (repeated: they may fork)."""
    for _ in range(20):
        procs = list(_tree(proc.pid))
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if cgroup is not None:
            cgroup.kill()
        if len(procs) <= 1:
            return
        psutil.wait_procs(procs, timeout=0.5)


# --------------------------------------------------------------------------- cgroups


class Cgroup:
    """A child of the grader's own cgroup for one run: the kernel limits and counts its tree.

    ``memory.max`` (v1: ``memory.limit_in_bytes``) holds the memory of every process
    in it, shared pages once, the files of its tmpfs mounts included; an OOM kill in
    it is the memory verdict. ``pids.max`` bounds its tasks (threads count) so that a
    fork bomb stops at once; the watcher counts processes for the verdict. Its CPU time
    (``cpu.stat``, v1: ``cpuacct.usage``) counts every process that ran in it.
    """

    _names = itertools.count()

    def __init__(self, kind: str, dirs: dict[str, Path]) -> None:
        self.kind = kind  # "cgroup v2" | "cgroup v1"
        self.dirs = dirs  # controller ("memory", "pids") -> folder (the same one in v2)

    @classmethod
    def create(cls, memory_bytes: int, max_tasks: int) -> Cgroup | None:
        """A new cgroup with these limits, or None where the grader cannot make one."""
        name = f"rnn-sandbox-{os.getpid()}-{next(cls._names)}"
        for make in (cls._v2, cls._v1):
            try:
                made = make(name, memory_bytes, max_tasks)
            except (OSError, ValueError) as err:
                log.debug("no %s cgroup: %s", make.__name__, err)
                continue
            if made is not None:
                return made
        if not _NO_CGROUP_LOGGED:
            _NO_CGROUP_LOGGED.append(True)
            log.warning(
                "no cgroup for the sandbox (the grader cannot create one with the memory "
                "and pids controllers): memory is measured as the PSS of its processes"
            )
        return None

    @classmethod
    def _v2(cls, name: str, memory_bytes: int, max_tasks: int) -> Cgroup | None:
        own, mount = _own_cgroups().get(""), _cgroup_mount("cgroup2", "")
        if own is None or mount is None:
            return None
        parent = _cgroup_dir(mount, own)
        control = parent / "cgroup.subtree_control"
        if not {"memory", "pids"} <= set(control.read_text().split()):
            control.write_text("+memory +pids")  # refused where the parent runs processes
        _remove_stale_cgroups(parent)
        folder = parent / name
        folder.mkdir()
        made = cls("cgroup v2", {"memory": folder, "pids": folder, "cpuacct": folder})
        try:
            (folder / "memory.max").write_text(str(memory_bytes))
            if (folder / "memory.swap.max").exists():
                (folder / "memory.swap.max").write_text("0")
            (folder / "pids.max").write_text(str(max_tasks))
        except OSError:
            made.remove()
            raise
        return made

    @classmethod
    def _v1(cls, name: str, memory_bytes: int, max_tasks: int) -> Cgroup | None:
        own = _own_cgroups()
        made = cls("cgroup v1", {})
        try:
            for controller in ("memory", "pids", "cpuacct"):
                mount = _cgroup_mount("cgroup", controller)
                if mount is not None and controller in own:
                    parent = _cgroup_dir(mount, own[controller])
                    _remove_stale_cgroups(parent)
                    folder = parent / name
                    folder.mkdir()
                    made.dirs[controller] = folder
            if "memory" not in made.dirs:
                made.remove()
                return None
            memory = made.dirs["memory"]
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):  # swap accounting may be off
                (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            if "pids" in made.dirs:
                (made.dirs["pids"] / "pids.max").write_text(str(max_tasks))
        except OSError:
            made.remove()
            raise
        return made

    def _folders(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid into to join."""
        return [str(folder / "cgroup.procs") for folder in self._folders()]

    def _read(self, controller: str, v2: str, v1: str) -> str:
        folder = self.dirs.get(controller)
        if folder is None:
            return ""
        try:
            return (folder / (v2 if self.kind == "cgroup v2" else v1)).read_text()
        except OSError:
            return ""

    def memory_used(self) -> int:
        return _number(self._read("memory", "memory.current", "memory.usage_in_bytes"))

    def memory_peak(self) -> int:
        return _number(self._read("memory", "memory.peak", "memory.max_usage_in_bytes"))

    def oom_kills(self) -> int:
        return _keyed(self._read("memory", "memory.events", "memory.oom_control")).get(
            "oom_kill", 0
        )

    def cpu_seconds(self) -> float | None:
        """CPU seconds of every process that ran in it (None: not counted here)."""
        text = self._read("cpuacct", "cpu.stat", "cpuacct.usage")
        if not text:
            return None
        if self.kind == "cgroup v2":
            return _keyed(text).get("usage_usec", 0) / 1e6
        return _number(text) / 1e9

    def task_limit_hits(self) -> int:
        return _keyed(self._read("pids", "pids.events", "pids.events")).get("max", 0)

    def pids(self) -> list[int]:
        return [int(p) for p in self._read("memory", "cgroup.procs", "cgroup.procs").split()]

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, until none is left (they may fork)."""
        if self.kind == "cgroup v2" and (self.dirs["memory"] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.dirs["memory"] / "cgroup.kill").write_text("1")
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> None:
        """Kill what is left in it and remove it."""
        for folder in reversed(self._folders()):
            for attempt in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as err:
                    if attempt == 49:
                        log.warning("could not remove the cgroup %s: %s", folder, err)
                    self.kill()
                    time.sleep(0.05)


_NO_CGROUP_LOGGED: list[bool] = []


def _remove_stale_cgroups(parent: Path) -> None:
    """Remove the empty cgroups that graders which died (killed mid-run) left in ``parent``."""
    for folder in parent.glob("rnn-sandbox-*-*"):
        owner = folder.name.split("-")[2]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            with contextlib.suppress(OSError):  # still busy: left for the next one
                folder.rmdir()


def _own_cgroups() -> dict[str, str]:
    """The grader's own cgroup per v1 controller name, and under ``""`` its v2 cgroup."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    return own


def _cgroup_mount(fstype: str, controller: str) -> tuple[str, Path] | None:
    """(root inside the hierarchy, mount point) of the cgroup file system with ``controller``."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        rest = fields[fields.index("-") + 1 :]
        if rest[0] != fstype:
            continue
        if fstype == "cgroup" and controller not in rest[2].split(","):
            continue
        return _unescape(fields[3]), Path(_unescape(fields[4]))
    return None


def _unescape(field: str) -> str:
    """A path of /proc/self/mountinfo, its octal escapes (``\\040``) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _cgroup_dir(mount: tuple[str, Path], path: str) -> Path:
    root, point = mount
    root = root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        raise ValueError(f"cgroup {path} lies outside the mounted part {root}")
    return point / path[len(root) :].lstrip("/")


def _number(text: str) -> int:
    try:
        return int(text.split()[0])
    except (IndexError, ValueError):
        return 0


def _keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.events, pids.events, memory.oom_control) as a dict."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            values[key] = int(value)
    return values


# --------------------------------------------------------------------------- disk


@dataclass
class ScratchSpace:
    """The scratch folder and its disk limit: a size-limited file system, or a watched folder."""

    path: Path
    limit_mb: int
    kind: str  # "file system" (hard: writes past it fail) | "watched" (measured while it runs)
    base_bytes: int = 0  # what the submission brought (not counted)
    _next_check: float = 0.0

    def full(self, *, now: bool = False) -> bool:
        """Whether the notebook has used up the limit (a watched folder: measured at most
        every ``SCRATCH_CHECK_S``, unless ``now``)."""
        if self.kind == "file system":
            try:
                st = os.statvfs(self.path)
            except OSError:
                return False
            no_inodes = st.f_files > 0 and st.f_favail == 0
            return st.f_bavail * st.f_frsize < DISK_SLACK_BYTES or no_inodes
        began = time.monotonic()
        if began < self._next_check and not now:
            return False
        used, files = _folder_usage(self.path, MAX_SCRATCH_FILES)
        took = time.monotonic() - began
        self._next_check = time.monotonic() + max(SCRATCH_CHECK_S, 10 * took)
        return files > MAX_SCRATCH_FILES or used - self.base_bytes > self.limit_mb * MB


def _folder_usage(folder: Path, max_files: int) -> tuple[int, int]:
    """(bytes allocated, entries) under ``folder`` (no symlink followed), up to ``max_files``."""
    used = files = 0
    with contextlib.suppress(OSError):
        for _, dirs, names, root_fd in os.fwalk(folder, follow_symlinks=False):
            for name in dirs + names:
                files += 1
                with contextlib.suppress(OSError):
                    used += os.stat(name, dir_fd=root_fd, follow_symlinks=False).st_blocks * 512
            if files > max_files:
                break
    return used, files


def _can_mount() -> bool:
    """Whether this grader can mount a size-limited file system for the scratch folder."""
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("mkfs.ext4", "mount", "umount"))


@contextlib.contextmanager
def scratch_space(scratch: Path, limits: Limits) -> Iterator[ScratchSpace]:
    """Where the run happens: a copy of ``scratch`` with room for ``limits.max_scratch_mb``.

    As root: a new ext4 file system of that size (a sparse image file, unlinked as soon
    as it is loop-mounted) is mounted on a mount point of its own in
    :data:`SCRATCH_MOUNTS`, ``scratch`` is copied in, and it is unmounted on exit (what
    the run wrote is read before that). Writes past it fail (ENOSPC) and the host disk
    never fills. A grader killed meanwhile leaves only that mount point, never a mount
    inside the course's folders; the next one unmounts it. Without root, ``scratch``
    itself is used and measured while the run goes on: a soft limit, overshot by about
    a second of writing.
    """
    scratch = scratch.resolve()
    base, _ = _folder_usage(scratch, MAX_SCRATCH_FILES)
    if _can_mount():
        try:
            point = _mount_point()
        except OSError as err:
            log.warning("no mount point for a size-limited scratch (%s): watching it", err)
        else:
            try:
                _mount_image(point, limits.max_scratch_mb * MB + base)
            except (OSError, subprocess.CalledProcessError) as err:
                detail = getattr(err, "stderr", "") or err
                log.warning("could not mount a size-limited scratch (%s): watching it", detail)
                point.rmdir()
            else:
                try:
                    shutil.copytree(scratch, point, symlinks=True, dirs_exist_ok=True)
                    yield ScratchSpace(point, limits.max_scratch_mb, "file system")
                finally:
                    _unmount(point)
                    with contextlib.suppress(OSError):
                        point.rmdir()
                return
    elif not _SOFT_DISK_LOGGED:
        _SOFT_DISK_LOGGED.append(True)
        log.warning(
            "the scratch folder's disk limit is watched, not enforced (a size-limited "
            "file system needs root, mkfs.ext4 and loop devices)"
        )
    yield ScratchSpace(scratch, limits.max_scratch_mb, "watched", base)


SCRATCH_MOUNTS = Path("/run/rnn-scratch" if Path("/run").is_dir() else "/var/tmp/rnn-scratch")
_MOUNT_NAMES = itertools.count()
_SOFT_DISK_LOGGED: list[bool] = []


def _mount_point() -> Path:
    """A new, empty mount point ``SCRATCH_MOUNTS/<pid>-<n>`` (stale ones cleared first)."""
    SCRATCH_MOUNTS.mkdir(mode=0o755, exist_ok=True)
    st = os.lstat(SCRATCH_MOUNTS)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise PermissionError(f"{SCRATCH_MOUNTS} is not a folder only root can write")
    _unmount_stale()
    point = SCRATCH_MOUNTS / f"{os.getpid()}-{next(_MOUNT_NAMES)}"
    point.mkdir(mode=0o755)
    return point


def _unmount_stale() -> None:
    """Unmount and remove the mount points of graders that died (killed mid-run)."""
    mounted = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(_unescape(line.split()[4]))
        if point.parent == SCRATCH_MOUNTS:
            mounted.add(point)
    for point in SCRATCH_MOUNTS.iterdir():
        owner = point.name.split("-")[0]
        if not owner.isdigit() or psutil.pid_exists(int(owner)):
            continue
        if point in mounted:
            subprocess.run(["umount", "--lazy", str(point)], capture_output=True)
            log.warning("unmounted the scratch of a grader that died: %s", point)
        with contextlib.suppress(OSError):
            point.rmdir()


def _mount_image(point: Path, room: int) -> None:
    """Mount a new, empty ext4 file system with ``room`` bytes free on ``point``."""
    size = int(room * 1.04) + 16 * MB  # inode tables and the rest of ext4's own blocks
    owner = sandbox_user() or (os.getuid(), os.getgid())
    handle, image = tempfile.mkstemp(prefix="rnn-scratch-", suffix=".img")
    try:
        os.ftruncate(handle, size)
        os.close(handle)
        mkfs = ["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-i", "8192"]
        mkfs += ["-E", f"root_owner={owner[0]}:{owner[1]}", image]
        subprocess.run(mkfs, check=True, capture_output=True, text=True)
        mount = ["mount", "-t", "ext4", "-o", "loop,nosuid,nodev", image, str(point)]
        subprocess.run(mount, check=True, capture_output=True, text=True)
    finally:
        os.unlink(image)  # the loop device holds it until the file system is unmounted
    with contextlib.suppress(OSError):
        (point / "lost+found").rmdir()


def _unmount(point: Path) -> None:
    for _ in range(10):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    subprocess.run(["umount", "--lazy", str(point)], capture_output=True)
    log.warning("the scratch file system on %s was busy: detached lazily", point)


# --------------------------------------------------------------------------- reading pipes


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
