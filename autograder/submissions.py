"""Stage "collect": find the submissions of a class, unpack zips safely, fingerprint each.

Two layouts are read: nbgrader's ``SUBMISSIONS/<student>/<assignment_id>/...`` and a
folder of zips, ``SUBMISSIONS/<student>.zip`` or ``<student>_<anything>.zip``, holding
the submission's files, optionally under one top folder. A student with both a folder
and a zip is graded from the folder.

A wrong path (missing, a file, an empty folder, one student's folder) raises
:class:`SubmissionsError`, so a typo is never graded as a class of zeros. A bad
submission (an unreadable, oversized or crafted zip, files over the size limit) fails
only its own student: its :class:`Submission` carries a ``problem`` sentence.

Nothing here reads a file it has not first checked by ``lstat``: only regular files are
opened (never symlinks or FIFOs), sizes count at their apparent size (sparse files at
full size), and a submission over ``max_bytes`` is never read at all.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MB = 2**20
CHUNK = MB
ZIP_MAX_MEMBERS = 10_000
SKIPPED_DIRS = frozenset({".ipynb_checkpoints", "__pycache__", ".git"})
ZIP_JUNK_DIRS = frozenset({"__MACOSX"})
_ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,  # encrypted members
    zlib.error,
)
_GRADER_SIDE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class SubmissionsError(ValueError):
    """The submissions path given is not a class folder; the message says what to give instead."""


@dataclass(frozen=True)
class Submission:
    """One student's submission: where its files are, their fingerprint, and any problem."""

    student: str
    folder: Path  # the files to grade (for a zip: where it was unpacked)
    digest: str  # sha256 over relative names and contents (or names+sizes when too large)
    problem: str | None = None  # set when this one submission cannot be graded


# --------------------------------------------------------------------------- the class folder


def find_submissions(
    assignment_id: str,
    submissions: Path,
    unpack_to: Path,
    *,
    max_bytes: int,
    zip_limit_bytes: int = 512 * MB,
) -> list[Submission]:
    """Every submission of the assignment, sorted by student.

    Raises :class:`SubmissionsError` for a wrong path; a zip is unpacked into
    ``unpack_to/<student>/<assignment_id>/`` (cleared first).
    """
    submissions = Path(submissions)
    _check_is_folder(assignment_id, submissions)
    folders: dict[str, Path] = {}
    archives: dict[str, Path] = {}
    for entry in _entries(submissions):
        if entry.name.startswith("."):
            continue  # .DS_Store, ._alice.zip (macOS), .collected, ...
        if entry.is_dir() and (Path(entry.path) / assignment_id).is_dir():
            folders[entry.name] = Path(entry.path) / assignment_id
        elif entry.name.lower().endswith(".zip") and not entry.is_dir():
            student = entry.name[: -len(".zip")].split("_")[0]
            if student:
                archives.setdefault(student, Path(entry.path))
    if not folders and not archives:
        raise SubmissionsError(_why_nothing_found(assignment_id, submissions))

    found = []
    for student in sorted(folders.keys() | archives.keys()):
        if student in folders:
            found.append(_from_folder(student, folders[student], max_bytes))
        else:
            target = Path(unpack_to) / student / assignment_id
            problem = unpack(archives[student], target, zip_limit_bytes)
            if problem:
                found.append(
                    Submission(
                        student, target, _file_digest(archives[student], zip_limit_bytes), problem
                    )
                )
            else:
                found.append(_from_folder(student, target, max_bytes))
    return found


def _from_folder(student: str, folder: Path, max_bytes: int) -> Submission:
    hexdigest, total = digest(folder, max_bytes)
    problem = None
    if total > max_bytes:
        problem = f"the submission is {total / MB:.1f} MB, over the limit of {_mb(max_bytes)} MB"
    return Submission(student, folder, hexdigest, problem)


def _check_is_folder(assignment_id: str, submissions: Path) -> None:
    give = (
        f"give the class folder that holds <student>/{assignment_id}/ folders "
        "(nbgrader's submitted/) or <student>.zip files"
    )
    if not submissions.exists():
        raise SubmissionsError(f"submissions folder {submissions} does not exist: {give}")
    if submissions.is_dir():
        return
    if submissions.is_file() and (
        submissions.suffix.lower() == ".zip" or zipfile.is_zipfile(submissions)
    ):
        raise SubmissionsError(
            f"submissions path {submissions} is a zip file, not a folder: unzip it and "
            f"give the folder it holds, or {give}"
        )
    kind = "a file" if submissions.is_file() else "not a regular folder"
    raise SubmissionsError(f"submissions path {submissions} is {kind}, not a folder: {give}")


def _why_nothing_found(assignment_id: str, submissions: Path) -> str:
    give = (
        f"give the class folder that holds <student>/{assignment_id}/ folders "
        "(nbgrader's submitted/) or <student>.zip files"
    )
    entries = [e for e in _entries(submissions) if not e.name.startswith(".")]
    if not entries:
        return f"submissions folder {submissions} is empty: {give}"
    dirs = [e for e in entries if e.is_dir()]
    files = [e for e in entries if not e.is_dir()]
    notebooks = [e for e in files if e.name.endswith(".ipynb")]
    student_folder = f"give the class folder that holds every <student>/{assignment_id}/ folder"
    if any(e.name == assignment_id for e in dirs):
        return (
            f"submissions folder {submissions} looks like one student's folder (it holds "
            f"{assignment_id}/ directly): {student_folder}, e.g. {submissions.parent}"
        )
    if notebooks or submissions.name == assignment_id:
        why = (
            f"it holds {_count(len(notebooks), '.ipynb file')} directly"
            if notebooks
            else f"it is named {assignment_id} and holds no student folders"
        )
        return (
            f"submissions folder {submissions} looks like one student's submission ({why}): "
            f"{student_folder}, e.g. {submissions.parent.parent}"
        )
    parts = []
    if dirs:
        others = sorted({f"{s.name}/" for d in dirs for s in _entries(Path(d.path)) if s.is_dir()})
        hint = f" (they hold {', '.join(others[:3])}{', ...' if len(others) > 3 else ''})"
        parts.append(
            f"{_count(len(dirs), 'folder')}, none with {assignment_id}/" + (hint if others else "")
        )
    if files:
        parts.append(f"{_count(len(files), 'file')}, none a .zip")
    return (
        f"submissions folder {submissions} holds no submission of {assignment_id}: it holds "
        f"{' and '.join(parts)}; {give}"
    )


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _mb(n: int) -> str:
    return f"{n // MB}" if n % MB == 0 else f"{n / MB:.1f}"


# --------------------------------------------------------------------------- files and digests


def _walk(folder: Path) -> list[tuple[Path, int]]:
    """(path, apparent size) of every regular file, by lstat: no symlinks, FIFOs, devices."""
    found = []
    stack = [Path(folder)]
    while stack:
        for entry in _entries(stack.pop()):
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                if entry.name not in SKIPPED_DIRS:
                    stack.append(Path(entry.path))
            elif stat.S_ISREG(info.st_mode):
                found.append((Path(entry.path), info.st_size))
    return sorted(found, key=lambda item: item[0].relative_to(folder).parts)


def submitted_files(folder: Path) -> Iterator[Path]:
    """Regular files under ``folder``, sorted; no symlinks, no checkpoint, cache or .git dirs."""
    for path, _size in _walk(folder):
        yield path


def digest(folder: Path, max_bytes: int) -> tuple[str, int]:
    """(SHA-256 hex digest, total apparent bytes) of the submitted files.

    Sizes are checked before anything is read. Within ``max_bytes`` the digest covers
    names and contents, streamed in 1 MiB chunks; over it, nothing is read and the
    digest covers names and sizes only, so a rerun still recognises the submission.
    """
    files = _walk(folder)
    total = sum(size for _path, size in files)
    hasher = hashlib.sha256()
    if total > max_bytes:
        hasher.update(b"names and sizes only\0")
        for path, size in files:
            hasher.update(f"{path.relative_to(folder)}\0{size}\0".encode())
        return hasher.hexdigest(), total
    budget = max_bytes
    for path, _size in files:
        content = hashlib.sha256()
        budget -= _hash_regular_file(path, content, budget)
        hasher.update(str(path.relative_to(folder)).encode() + b"\0")
        hasher.update(content.digest())
    return hasher.hexdigest(), total


def _hash_regular_file(path: Path, hasher, limit: int) -> int:
    """Feed at most ``limit`` bytes of ``path`` to ``hasher``, if it is (still) a regular file.

    Opened without following a symlink and without blocking (a file swapped for a FIFO
    after the walk would otherwise block forever); its size is read back from fstat.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return 0
    read = 0
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return 0
        left = min(info.st_size, max(limit, 0))
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while left > 0:
            n = os.readv(fd, [view[: min(CHUNK, left)]])
            if n <= 0:
                break
            hasher.update(view[:n])
            read += n
            left -= n
    except OSError:
        pass
    finally:
        os.close(fd)
    return read


def _file_digest(path: Path, max_bytes: int) -> str:
    """Digest of a zip that could not be unpacked: name, size, and contents within ``max_bytes``."""
    hasher = hashlib.sha256()
    try:
        size = os.stat(path).st_size
    except OSError:
        size = -1
    hasher.update(f"archive\0{path.name}\0{size}\0".encode())
    if 0 <= size <= max_bytes:
        _hash_regular_file(path, hasher, size)
    return hasher.hexdigest()


# --------------------------------------------------------------------------- zips


def unpack(archive: Path, target: Path, limit_bytes: int) -> str | None:
    """Extract a submitted zip into ``target`` (cleared first); a problem sentence, or None.

    Declared sizes are checked before anything is written, and extraction stops when a
    member's real data exceeds its declared size. Absolute, ``..``, symlink and
    ``__MACOSX`` members are skipped: nothing is ever written outside ``target``. When
    the zip is refused, ``target`` is left empty.
    """
    archive, target = Path(archive), Path(target)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    name = archive.name
    try:
        info = os.stat(archive)
    except OSError as err:
        return f"{name} could not be read ({err.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return f"{name} is not a regular file, so it cannot be a zip file"
    if info.st_size > limit_bytes:
        return f"{name} is {info.st_size / MB:.1f} MB, over the limit of {_mb(limit_bytes)} MB"
    try:
        problem = _extract(archive, target, limit_bytes)
    except _ZIP_READ_ERRORS as err:
        problem = f"{name} is not a readable zip file ({err})"
    except OSError as err:
        if err.errno in _GRADER_SIDE_ERRNOS:
            raise  # the grader's disk, not the student's zip
        problem = f"{name} could not be unpacked ({err.strerror or err})"
    if problem:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
    return problem


def _extract(archive: Path, target: Path, limit_bytes: int) -> str | None:
    name = archive.name
    with zipfile.ZipFile(archive) as zipped:
        infos = zipped.infolist()
        if len(infos) > ZIP_MAX_MEMBERS:
            return f"{name} holds {len(infos)} entries, over the limit of {ZIP_MAX_MEMBERS}"
        members = [m for m in infos if not m.is_dir()]
        declared = sum(m.file_size for m in members)
        if declared > limit_bytes:
            return (
                f"{name} unpacks to {declared / MB:.1f} MB, over the limit of {_mb(limit_bytes)} MB"
            )
        safe = [m for m in members if _safe_name(m)]
        prefix = _common_folder([m.filename for m in safe])
        written = 0
        for member in safe:
            relative = Path(member.filename[len(prefix) :])
            if not relative.parts:
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with zipped.open(member) as source, open(destination, "wb") as sink:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    written += len(chunk)
                    if size > member.file_size or written > limit_bytes:
                        return (
                            f"{name} holds more data than it declares "
                            f"(in {member.filename}): it is damaged or a zip bomb"
                        )
                    sink.write(chunk)
    return None


def _safe_name(member: zipfile.ZipInfo) -> bool:
    path = Path(member.filename)
    return not (
        not member.filename
        or path.is_absolute()
        or ".." in path.parts
        or (path.parts and path.parts[0] in ZIP_JUNK_DIRS)
        or stat.S_ISLNK(member.external_attr >> 16)
    )


def _common_folder(names: list[str]) -> str:
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        return tops.pop() + "/"
    return ""
