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
full size), and a submission over ``max_bytes`` is never read at all. No link is
followed: a student's folder or submission folder that is a symbolic link is rejected.

Every student id, from a folder or a zip name, must be one nbgrader's gradebook and
file layout accept (:func:`student_id_problem`); a submission under any other name is
rejected under a printable stand-in id (:func:`stand_in_id`), and the others are graded.

JSON a student controls is read only through :func:`autograder.core.safe_json.load_json`.
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
from dataclasses import dataclass, replace
from pathlib import Path

from autograder.core.units import MB

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
#: nbgrader's gradebook keeps student ids of at most this many characters.
MAX_ID_CHARS = 128
#: Characters no student id may hold: path separators, and nbgrader's glob characters.
ID_FORBIDDEN = frozenset("/\\*?[]")
#: JSON from a submission may nest this deep (a notebook needs about 10 levels).


class SubmissionsError(ValueError):
    """The submissions path given is not a class folder; the message says what to give instead."""


@dataclass(frozen=True)
class Submission:
    """One student's submission: where its files are, their fingerprint, and any problem."""

    student: str
    folder: Path  # the files to grade (for a zip: where it was unpacked)
    digest: str  # sha256 over relative names and contents (or names+sizes when too large)
    problem: str | None = None  # set when this one submission cannot be graded
    archive: Path | None = None  # the zip it was unpacked from, if any


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
    folders: dict[str, tuple[str, Path]] = {}  # student id -> (name in the folder, its path)
    archives: dict[str, tuple[str, Path]] = {}
    for entry in _entries(submissions):
        if entry.name.startswith("."):
            continue  # .DS_Store, ._alice.zip (macOS), .collected, ...
        if entry.is_dir() and (Path(entry.path) / assignment_id).is_dir():
            folders[student_id(entry.name)] = (entry.name, Path(entry.path))
        elif entry.name.lower().endswith(".zip") and not entry.is_dir():
            name = entry.name[: -len(".zip")].split("_")[0]
            if name:
                archives.setdefault(student_id(name), (name, Path(entry.path)))
    if not folders and not archives:
        raise SubmissionsError(_why_nothing_found(assignment_id, submissions))

    found = []
    for student in sorted(folders.keys() | archives.keys()):
        if student in folders:
            name, path = folders[student]
            found.append(_from_folder(student, name, path, assignment_id, max_bytes))
            continue
        name, archive = archives[student]
        rejected = Submission(
            student, archive, _file_digest(archive, zip_limit_bytes), None, archive
        )
        if why := student_id_problem(name):
            found.append(replace(rejected, problem=f"the zip {_shown(archive.name)} {why}"))
            continue
        target = Path(unpack_to) / student / assignment_id
        if problem := unpack(archive, target, zip_limit_bytes):
            found.append(replace(rejected, folder=target, problem=problem))
        else:
            found.append(replace(_regular_folder(student, target, max_bytes), archive=archive))
    return found


def _from_folder(
    student: str, name: str, path: Path, assignment_id: str, max_bytes: int
) -> Submission:
    """The submission in the folder ``path/<assignment_id>`` of the student named ``name``."""
    folder = path / assignment_id
    if why := student_id_problem(name):
        problem = f"the folder {_shown(name)} {why}"
    elif linked := next((p for p in (path, folder) if p.is_symlink()), None):
        problem = f"{linked.name} is a symbolic link: links are not followed, submit the files"
    else:
        return _regular_folder(student, folder, max_bytes)
    hexdigest = hashlib.sha256(f"refused\0{problem}".encode()).hexdigest()
    return Submission(student, folder, hexdigest, problem)


def _regular_folder(student: str, folder: Path, max_bytes: int) -> Submission:
    hexdigest, total = digest(folder, max_bytes)
    problem = None
    if total > max_bytes:
        problem = f"the submission is {total / MB:.1f} MB, over the limit of {_mb(max_bytes)} MB"
    return Submission(student, folder, hexdigest, problem)


# --------------------------------------------------------------------------- student ids


def student_id_problem(name: str) -> str | None:
    """Why ``name`` (a file name, undecodable bytes as surrogates) is no student id, or None.

    A student id is what nbgrader's gradebook and file layout take: UTF-8 text, printable,
    without spaces at either end (nbgrader strips them), path separators or the glob
    characters of nbgrader's ``--student``, at most :data:`MAX_ID_CHARS` characters.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        why = "is not valid UTF-8 text"
    else:
        forbidden = " ".join(sorted(ID_FORBIDDEN & set(name)))
        why = (
            "holds control characters" if not name.isprintable()
            else "begins or ends with a space" if name != name.strip()
            else f"holds {forbidden}" if forbidden
            else f"is longer than {MAX_ID_CHARS} characters" if len(name) > MAX_ID_CHARS
            else None
        )  # fmt: skip
    return f"{why}, so it is no student id: {ID_RULE}" if why else None


ID_RULE = (
    f"rename it to printable text of at most {MAX_ID_CHARS} characters, without spaces "
    "at either end or any of / \\ * ? [ ], and grade again"
)


def student_id(name: str) -> str:
    """``name`` when it is a student id, else a printable stand-in, distinct for each name.

    The stand-in doubles backslashes, writes undecodable bytes as ``\\xNN`` and other
    unprintable or space characters as ``\\uNNNN`` (else it starts with ``\\_``): it always
    holds a backslash, which no student id does, and is cut to :data:`MAX_ID_CHARS`
    characters with a digest of the name.
    """
    if not student_id_problem(name):
        return name
    raw = os.fsencode(name)
    text = raw.replace(b"\\", b"\\\\").decode("utf-8", errors="backslashreplace")
    text = "".join(c if c.isprintable() and not c.isspace() else f"\\u{ord(c):04x}" for c in text)
    if "\\" not in text:  # refused for its length or a glob character only
        text = "\\_" + text
    if len(text) > MAX_ID_CHARS:
        text = text[: MAX_ID_CHARS - 13] + "~" + hashlib.sha256(raw).hexdigest()[:12]
    return text


def _shown(name: str) -> str:
    """A file name fit to print: undecodable bytes and unprintable characters escaped."""
    return ascii(os.fsencode(name))[1:]


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
    if len(notebooks) > 1:
        return (
            f"submissions folder {submissions} holds {len(notebooks)} .ipynb files directly, "
            f"not a folder per student: put each student's files in <student>/{assignment_id}/ "
            "(nbgrader's submitted/ layout) or give a folder of <student>.zip files"
        )
    if any(e.name == assignment_id for e in dirs):
        return (
            f"submissions folder {submissions} looks like one student's folder (it holds "
            f"{assignment_id}/ directly): {student_folder}"
            + _for_example(submissions.parent, assignment_id)
        )
    if notebooks or submissions.name == assignment_id:
        why = (
            f"it holds {_count(len(notebooks), '.ipynb file')} directly"
            if notebooks
            else f"it is named {assignment_id} and holds no student folders"
        )
        return (
            f"submissions folder {submissions} looks like one student's submission ({why}): "
            f"{student_folder}" + _for_example(submissions.parent.parent, assignment_id)
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


def _for_example(folder: Path, assignment_id: str) -> str:
    """``, e.g. FOLDER`` when ``folder`` holds a ``<student>/<assignment_id>/`` folder, else ''."""
    holds = any((Path(e.path) / assignment_id).is_dir() for e in _entries(folder) if e.is_dir())
    return f", e.g. {folder}" if holds else ""


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
    return _scan(folder)[0]


def _scan(folder: Path) -> tuple[list[tuple[Path, int]], list[Path]]:
    """The regular files under ``folder`` with their apparent sizes, and the symbolic links.

    Found by lstat, so no link is followed; both lists are sorted by relative path.
    """
    found, links = [], []
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
            elif stat.S_ISLNK(info.st_mode):
                links.append(Path(entry.path))

    def order(path: Path) -> tuple[str, ...]:
        return path.relative_to(folder).parts

    return sorted(found, key=lambda item: order(item[0])), sorted(links, key=order)


def symbolic_links(folder: Path) -> list[Path]:
    """The symbolic links under ``folder``, which nothing here follows, sorted."""
    return _scan(folder)[1]


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
            hasher.update(os.fsencode(path.relative_to(folder)) + f"\0{size}\0".encode())
        return hasher.hexdigest(), total
    budget = max_bytes
    for path, _size in files:
        content = hashlib.sha256()
        budget -= _hash_regular_file(path, content, budget)
        hasher.update(os.fsencode(path.relative_to(folder)) + b"\0")
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
    hasher.update(b"archive\0" + os.fsencode(path.name) + f"\0{size}\0".encode())
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
