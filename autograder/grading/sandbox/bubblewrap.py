"""How the sandbox isolates: bubblewrap where it works (its arguments, binds and
self-test), the unprivileged host user, the trusted wrapper that limits and drops root,
and the plain subprocess with rlimits where bubblewrap is missing.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from assignments.data import MIRROR_ENV
from autograder.core.spec import STUDENT_PACKAGE
from autograder.core.units import MB

log = logging.getLogger(__name__)

ISOLATION_ENV = "RNN_COURSE_SANDBOX"
DRIVER = Path(__file__).with_name("driver.py")
JOB_MOUNT = "/run/rnn-grader"
GRADER_PACKAGES = ("autograder", "solutions")
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
PRIVATE_DIR = ".sandbox"  # in scratch: homes, caches and /tmp of the sandbox
SANDBOX_UID = 65534
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


def bwrap_user() -> tuple[int, int] | None:
    """The host user that starts bubblewrap (None: the grader's own)."""
    return None if _BWRAP_AS_ROOT[0] else sandbox_user()


def _bwrap_self_test(user: tuple[int, int] | None) -> bool:
    with tempfile.TemporaryDirectory(prefix="rnn-bwrap-test-") as tmp:
        scratch, job = Path(tmp, "scratch"), Path(tmp, "job")
        (scratch / PRIVATE_DIR / "tmp").mkdir(parents=True)
        write_job_files(job, {})
        if user is not None:
            give_to(scratch, user)
        binds = host_binds(scratch, job, None) if user is not None else []
        with stage_binds(binds) as staged:
            argv = bwrap_argv(
                [python_inside(), "-c", SELF_TEST],
                scratch=scratch,
                job_dir=job,
                env=sandbox_env(scratch, None),
                staged=staged,
            )
            command = wrapped(argv, fsize=64 * MB, user=user, staged=staged)
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


def write_job_files(job_dir: Path, job: dict) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    job_dir.chmod(0o755)  # the sandbox user reads it
    shutil.copyfile(DRIVER, job_dir / DRIVER.name)
    (job_dir / "job.json").write_text(json.dumps(job))
    (job_dir / "passwd").write_text(PASSWD)
    (job_dir / "group").write_text(GROUP)
    for path in job_dir.iterdir():
        path.chmod(0o644)


@contextlib.contextmanager
def stage_binds(binds: Sequence[tuple[str, Path, str]]) -> Iterator[dict[str, str]]:
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


def give_to(folder: Path, user: tuple[int, int]) -> None:
    """Make ``user`` the owner of ``folder`` and everything in it (symlinks not followed)."""
    uid, gid = user
    os.chown(folder, uid, gid, follow_symlinks=False)
    for _, dirs, files, root_fd in os.fwalk(folder, follow_symlinks=False):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(name, uid, gid, dir_fd=root_fd, follow_symlinks=False)


def wrapped(
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
    return [sys.executable, "-c", WRAPPER, json.dumps(config), *which(command)]


WRAPPER_STAYED_ROOT = "rnn-sandbox: !!!"


def which(command: list[str]) -> list[str]:
    return [shutil.which(command[0]) or command[0], *command[1:]]
