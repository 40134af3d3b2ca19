"""How limits are counted on a process tree: CPU time (a limit of N s allows N s on each
core, with a wall-clock backstop), resident and proportional memory, tmpfs files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence

import psutil

from autograder.grading.sandbox import cgroups

log = logging.getLogger(__name__)

#: Every time limit counts CPU time; this many times the limit in wall-clock time stops
#: what waits without computing.
WALL_CLOCK_FACTOR = 3


def cpu_cores() -> int:
    """The cores a run may use at once: a time limit of N s allows N s of CPU time on each.

    An honest run that ends within N s on a quiet machine never uses more.
    """
    return len(os.sched_getaffinity(0))


def process_tree(pid: int) -> Iterator[psutil.Process]:
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
    return cpu_seconds(list(process_tree(pid)))


def rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def pss(proc: psutil.Process) -> int:
    """Proportional set size: each shared page split among the processes that map it."""
    try:
        return proc.memory_full_info().pss
    except psutil.AccessDenied:
        return rss(proc)
    except (psutil.Error, AttributeError):
        return 0


def private_tmpfs_bytes(procs: list[psutil.Process]) -> int:
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


def kill_tree(proc: subprocess.Popen, cgroup: cgroups.Cgroup | None = None) -> None:
    """SIGKILL the process, its session and all descendants (repeated: they may fork)."""
    for _ in range(20):
        procs = list(process_tree(proc.pid))
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
