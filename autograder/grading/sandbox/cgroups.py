"""A child cgroup (v2, or v1's ``memory`` and ``pids``) that limits and counts a run's
whole process tree, where the grader can create one.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import signal
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


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
        return unescape(fields[3]), Path(unescape(fields[4]))
    return None


def unescape(field: str) -> str:
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
