"""The disk limit: as root, a copy of the scratch folder on a size-limited file system (a
loop-mounted ext4 image), freed when unmounted; without root, the folder is measured.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from autograder.core.spec import Limits
from autograder.core.units import MB
from autograder.grading.sandbox import bubblewrap, cgroups

log = logging.getLogger(__name__)

DISK_SLACK_BYTES = MB  # a size-limited scratch with less free space than this is full
SCRATCH_CHECK_S = 1.0  # how often an unmounted scratch folder is measured
MAX_SCRATCH_FILES = 250_000


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
        point = Path(cgroups.unescape(line.split()[4]))
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
    owner = bubblewrap.sandbox_user() or (os.getuid(), os.getgid())
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
