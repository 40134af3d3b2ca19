"""Collect: finding a class's submissions, refusing wrong paths, safe zips, bounded digests."""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import threading
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from autograder.core.units import MB
from autograder.grading import collect
from autograder.grading.collect import SubmissionsError, digest, find_submissions, unpack

AID = "a1_imdb_sentiment"


def make_folder(root: Path, student: str, files: dict[str, str]) -> Path:
    folder = root / student / AID
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def make_zip(path: Path, files: dict[str, bytes | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def find(submitted: Path, tmp_path: Path, **limits) -> list[collect.Submission]:
    limits.setdefault("max_bytes", 220 * MB)
    return find_submissions(AID, submitted, tmp_path / "out" / ".collected", **limits)


# --------------------------------------------------------------------------- wrong paths


def test_a_missing_folder_is_an_error_not_an_empty_class(tmp_path):
    with pytest.raises(SubmissionsError, match="does not exist: give the class folder"):
        find(tmp_path / "submited", tmp_path)


def test_an_empty_folder_is_an_error(tmp_path):
    (tmp_path / "submitted").mkdir()
    with pytest.raises(SubmissionsError, match="is empty: give the class folder"):
        find(tmp_path / "submitted", tmp_path)


def test_a_class_zip_given_instead_of_a_folder_is_an_error(tmp_path):
    class_zip = make_zip(tmp_path / "class.zip", {f"alice/{AID}/nb.ipynb": "{}"})
    with pytest.raises(SubmissionsError, match="is a zip file, not a folder: unzip it"):
        find(class_zip, tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SubmissionsError, match="is a file, not a folder"):
        find(tmp_path / "notes.txt", tmp_path)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("submitted/alice", f"it holds {AID}/ directly"),
        (f"submitted/alice/{AID}", "it holds 1 .ipynb file directly"),
    ],
)
def test_one_students_folder_given_is_an_error(tmp_path, given, says):
    make_folder(tmp_path / "submitted", "alice", {"imdb.ipynb": "{}", "models/m.keras": "k"})
    with pytest.raises(SubmissionsError) as raised:
        find(tmp_path / given, tmp_path)
    message = str(raised.value)
    assert "looks like one student's" in message and says in message
    assert f"e.g. {tmp_path / 'submitted'}" in message
    assert "\n" not in message


def test_a_folder_without_this_assignment_says_what_it_holds(tmp_path):
    for student in ("alice", "bob", "carol"):
        (tmp_path / "submitted" / student / "a2_char_rnn").mkdir(parents=True)
    (tmp_path / "submitted" / "README.txt").write_text("x")
    with pytest.raises(SubmissionsError) as raised:
        find(tmp_path / "submitted", tmp_path)
    assert f"it holds 3 folders, none with {AID}/ (they hold a2_char_rnn/)" in str(raised.value)
    assert "1 file, none a .zip" in str(raised.value)


def test_a_folder_of_loose_notebooks_says_what_layout_is_expected(tmp_path):
    loose = tmp_path / "downloads"
    loose.mkdir()
    for student in ("alice", "bob", "carol"):
        (loose / f"{student}.ipynb").write_text("{}")
    with pytest.raises(SubmissionsError) as raised:
        find(loose, tmp_path)
    message = str(raised.value)
    assert "holds 3 .ipynb files directly, not a folder per student" in message
    assert f"put each student's files in <student>/{AID}/" in message
    assert "e.g." not in message  # no folder around it to suggest grading instead


# --------------------------------------------------------------------------- student ids


def test_a_folder_name_that_is_not_utf8_is_rejected_and_the_others_are_graded(tmp_path):
    submitted = tmp_path / "submitted"
    make_folder(submitted, "alice", {"imdb.ipynb": "{}"})
    os.makedirs(os.fsencode(submitted) + b"/bad\xffname/" + AID.encode())
    make_zip(Path(os.fsdecode(os.fsencode(submitted) + b"/z\xfe.zip")), {"imdb.ipynb": "{}"})
    found = find(submitted, tmp_path)
    assert [(s.student, s.problem is None) for s in found] == [
        ("alice", True),
        ("bad\\xffname", False),
        ("z\\xfe", False),
    ]
    for rejected in found[1:]:
        rejected.student.encode("utf-8")  # printable, storable in the gradebook
        assert "is not valid UTF-8 text, so it is no student id: rename it" in rejected.problem
    assert "the folder 'bad\\xffname'" in found[1].problem
    assert "the zip 'z\\xfe.zip'" in found[2].problem


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("tab\there", "holds control characters"),
        (" alice", "begins or ends with a space"),
        ("a*b", "holds *"),
        ("back\\slash", "holds \\"),
        ("x" * 129, "is longer than 128 characters"),
    ],
)
def test_every_name_that_is_no_student_id_is_rejected_under_a_distinct_stand_in(name, why):
    assert why in collect.student_id_problem(name)
    stand_in = collect.student_id(name)
    assert stand_in != name and stand_in.isprintable() and len(stand_in) <= 128
    assert "\\" in stand_in  # which no student id holds: no stand-in is a real student's id
    assert collect.student_id(name + "x") != stand_in


def test_valid_ids_are_kept_as_they_are():
    for name in ("alice", "Zoë Müller", "s1234567", "a.b@uni.edu", "x" * 128):
        assert collect.student_id_problem(name) is None and collect.student_id(name) == name


def test_a_student_folder_that_is_a_symbolic_link_is_rejected(tmp_path):
    submitted = tmp_path / "submitted"
    make_folder(tmp_path / "elsewhere", "source", {"imdb.ipynb": "{}"})
    submitted.mkdir()
    (submitted / "mallory").symlink_to(tmp_path / "elsewhere" / "source")
    make_folder(submitted, "trudy", {})
    (submitted / "trudy" / AID).rmdir()
    (submitted / "trudy" / AID).symlink_to(tmp_path / "elsewhere" / "source" / AID)
    found = find(submitted, tmp_path)
    assert [s.student for s in found] == ["mallory", "trudy"]
    assert "mallory is a symbolic link: links are not followed" in found[0].problem
    assert f"{AID} is a symbolic link: links are not followed" in found[1].problem


# --------------------------------------------------------------------------- layouts


def test_folders_and_zips_are_found_and_a_folder_wins_over_a_zip(tmp_path):
    submitted = tmp_path / "submitted"
    make_folder(submitted, "alice", {"imdb.ipynb": "{}"})
    make_zip(submitted / "alice.zip", {"imdb.ipynb": "from the zip"})
    (submitted / "bob" / "a2_char_rnn").mkdir(parents=True)
    make_zip(
        submitted / "carol_attempt_2026-11-01.zip",
        {
            "carol/imdb.ipynb": "{}",
            "carol/models/lstm.keras": "zip",
            "__MACOSX/carol/._imdb.ipynb": "apple double",  # must not defeat the top-folder strip
        },
    )
    make_zip(submitted / "._dave.zip", {"x": "macOS resource fork, not a student"})
    found = find(submitted, tmp_path)
    assert [(s.student, s.problem) for s in found] == [("alice", None), ("carol", None)]
    assert found[0].folder == submitted / "alice" / AID
    carol = found[1].folder
    assert carol == tmp_path / "out" / ".collected" / "carol" / AID
    assert [str(p.relative_to(carol)) for p in collect.submitted_files(carol)] == [
        "imdb.ipynb",
        "models/lstm.keras",
    ]


# --------------------------------------------------------------------------- bad zips fail alone


def test_an_oversized_zip_fails_only_its_own_student(tmp_path):
    submitted = tmp_path / "submitted"
    make_zip(submitted / "alice.zip", {"imdb.ipynb": "{}"})
    make_zip(submitted / "mallory.zip", {"imdb.ipynb": "{}", "weights.bin": b"\0" * (3 * MB)})
    make_folder(submitted, "zoe", {"imdb.ipynb": "{}"})
    found = find(submitted, tmp_path, zip_limit_bytes=MB)
    assert [s.student for s in found] == ["alice", "mallory", "zoe"]
    assert found[0].problem is None and found[2].problem is None
    assert found[1].problem == "mallory.zip unpacks to 3.0 MB, over the limit of 1 MB"
    assert list(found[1].folder.iterdir()) == []  # nothing extracted


def test_a_broken_zip_fails_only_its_own_student(tmp_path):
    submitted = tmp_path / "submitted"
    (submitted / "dave").mkdir(parents=True)
    (submitted / "dave.zip").write_bytes(b"not a zip")
    make_zip(submitted / "erin.zip", {"imdb.ipynb": "{}"})
    found = find(submitted, tmp_path)
    assert [(s.student, s.problem) for s in found] == [
        ("dave", "dave.zip is not a readable zip file (File is not a zip file)"),
        ("erin", None),
    ]
    assert list(found[0].folder.iterdir()) == []
    assert find(submitted, tmp_path)[0].digest == found[0].digest  # a rerun recognises it


def test_a_zip_whose_data_exceeds_its_declared_size_is_refused(tmp_path):
    archive = make_zip(tmp_path / "submitted" / "bomb.zip", {"big.bin": b"\0" * (4 * MB)})
    raw = bytearray(archive.read_bytes())
    local, central = raw.index(b"PK\x03\x04"), raw.index(b"PK\x01\x02")
    raw[local + 22 : local + 26] = (1000).to_bytes(4, "little")  # uncompressed size: a lie
    raw[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    assert zipfile.ZipFile(archive).getinfo("big.bin").file_size == 1000
    (found,) = find(tmp_path / "submitted", tmp_path, zip_limit_bytes=MB)
    assert found.problem is not None and found.problem.startswith("bomb.zip ")
    assert list(found.folder.iterdir()) == []


def test_unsafe_zip_members_are_skipped(tmp_path):
    archive = make_zip(
        tmp_path / "mallory.zip",
        {"imdb.ipynb": "{}", "../../escape.txt": "outside", "/etc/evil": "absolute"},
    )
    with zipfile.ZipFile(archive, "a") as zipped:
        link = zipfile.ZipInfo("link")
        link.external_attr = 0xA1FF << 16
        zipped.writestr(link, "/etc/passwd")
    target = tmp_path / "out" / "mallory"
    assert unpack(archive, target, 10 * MB) is None
    assert sorted(p.name for p in target.rglob("*")) == ["imdb.ipynb"]
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "escape.txt").exists()


# --------------------------------------------------------------------------- never opened


def _run_with_timeout(function, seconds: float = 20.0):
    result: dict = {}

    def target():
        try:
            result["value"] = function()
        except BaseException as err:  # reported in the main thread
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return thread.is_alive(), result


def test_fifos_are_never_opened(tmp_path):
    submitted = tmp_path / "submitted"
    folder = make_folder(submitted, "alice", {"imdb.ipynb": "{}"})
    os.mkfifo(folder / "pipe")
    os.mkfifo(submitted / "mallory.zip")
    hung, result = _run_with_timeout(lambda: find(submitted, tmp_path))
    if hung:  # release the blocked open() so the test process can exit, then fail
        for fifo in (folder / "pipe", submitted / "mallory.zip"):
            with contextlib.suppress(OSError):  # ENXIO: nobody was reading this one
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("collecting submissions blocked on a FIFO")
    assert "error" not in result, result.get("error")
    alice, mallory = result["value"]
    assert alice.problem is None
    assert [p.name for p in collect.submitted_files(alice.folder)] == ["imdb.ipynb"]
    assert mallory.problem == "mallory.zip is not a regular file, so it cannot be a zip file"


@pytest.fixture
def no_reading(monkeypatch):
    """Make every way of opening a file fail for the paths in the returned set."""
    forbidden: set[str] = set()

    def guard(real):
        def opener(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and os.fsdecode(file) in forbidden:
                raise AssertionError(f"{file} was opened")
            return real(file, *args, **kwargs)

        return opener

    monkeypatch.setattr(os, "open", guard(os.open))
    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(io, "open", guard(io.open))
    return forbidden


def test_a_huge_sparse_file_is_sized_but_never_read(tmp_path, no_reading):
    submitted = tmp_path / "submitted"
    folder = make_folder(submitted, "mallory", {"imdb.ipynb": "{}"})
    sparse = folder / "weights.bin"
    sparse.touch()
    os.truncate(sparse, 2 * 2**30)  # 2 GiB apparent, nothing on disk
    no_reading.add(str(sparse))
    no_reading.add(str(folder / "imdb.ipynb"))  # over the limit: nothing at all is read
    hexdigest, total = digest(folder, 220 * MB)
    assert total == 2 * 2**30 + 2
    (mallory,) = find(submitted, tmp_path)
    assert mallory.problem == "the submission is 2048.0 MB, over the limit of 220 MB"
    assert mallory.digest == hexdigest == digest(folder, 220 * MB)[0]  # a rerun recognises it
    os.truncate(sparse, 3 * 2**30)
    assert digest(folder, 220 * MB)[0] != hexdigest  # and sees a changed size


def test_digest_streams_files_instead_of_reading_them_whole(tmp_path):
    folder = make_folder(tmp_path, "alice", {"imdb.ipynb": "{}"})
    big = folder / "weights.bin"
    big.touch()
    os.truncate(big, 64 * MB)
    tracemalloc.start()
    try:
        _hexdigest, total = digest(folder, 220 * MB)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 64 * MB + 2
    assert peak < 8 * MB, f"digest held {peak / MB:.1f} MB at once"


# --------------------------------------------------------------------------- digests


def test_digest_is_stable_and_follows_names_and_contents(tmp_path):
    folder = make_folder(tmp_path, "alice", {"imdb.ipynb": "{}", "models/a.json": "1"})
    first, size = digest(folder, MB)
    assert size == 3 and digest(folder, MB) == (first, size)
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "imdb-checkpoint.ipynb").write_text("old")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (folder / "passwd").symlink_to("/etc/passwd")
    (folder / "outside").symlink_to(tmp_path, target_is_directory=True)
    assert digest(folder, MB) == (first, size)  # none of those are submitted files
    (folder / "models" / "a.json").write_text("2")
    changed = digest(folder, MB)[0]
    assert changed != first
    (folder / "models" / "a.json").rename(folder / "models" / "b.json")
    assert digest(folder, MB)[0] not in (first, changed)
