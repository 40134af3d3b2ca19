"""Batch: finding submissions (folders and zips), safe unpacking, what a rerun regrades."""

from __future__ import annotations

import json
import zipfile

from autograder import batch, record


def make_folder(root, student, files):
    folder = root / student / "toy"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_discover_folders_and_zips(tmp_path):
    submissions = tmp_path / "submitted"
    make_folder(submissions, "alice", {"toy.ipynb": "{}"})
    (submissions / "bob" / "other_assignment").mkdir(parents=True)
    with zipfile.ZipFile(submissions / "carol_attempt_2026-11-01.zip", "w") as archive:
        archive.writestr("carol/toy.ipynb", "{}")
        archive.writestr("carol/models/lstm.keras", "zip")
    found = batch.discover("toy", submissions, tmp_path / "out")
    assert [s.student for s in found] == ["alice", "carol"]
    carol = found[1].folder
    assert sorted(str(p.relative_to(carol)) for p in carol.rglob("*")) == [
        "models",
        "models/lstm.keras",
        "toy.ipynb",
    ]


def test_unpack_skips_unsafe_members(tmp_path):
    archive_path = tmp_path / "mallory.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("toy.ipynb", "{}")
        archive.writestr("../../escape.txt", "outside")
        archive.writestr("/etc/evil", "absolute")
        link = zipfile.ZipInfo("link")
        link.external_attr = 0xA1FF << 16
        archive.writestr(link, "/etc/passwd")
    target = batch.unpack(archive_path, tmp_path / "out" / "mallory")
    assert sorted(p.name for p in target.rglob("*")) == ["toy.ipynb"]
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "escape.txt").exists()


def test_unreadable_zip_is_kept_as_a_message(tmp_path):
    (tmp_path / "dave.zip").write_bytes(b"not a zip")
    target = batch.unpack(tmp_path / "dave.zip", tmp_path / "out" / "dave")
    assert "dave.zip" in (target / "UNREADABLE_ZIP.txt").read_text()


def test_digest_follows_the_files(tmp_path):
    folder = make_folder(tmp_path, "alice", {"toy.ipynb": "{}", "models/a.json": "1"})
    first = batch.digest(folder)
    assert batch.digest(folder) == first
    (folder / "models" / "a.json").write_text("2")
    assert batch.digest(folder) != first


def test_pending_regrades_only_new_changed_or_failed(tmp_path):
    out = tmp_path / "out"
    subs = [
        batch.Submission(name, tmp_path, digest)
        for name, digest in [("same", "d1"), ("changed", "d2"), ("failed", "d3"), ("new", "d4")]
    ]
    for student, digest, status in [
        ("same", "d1", "graded"),
        ("changed", "old", "graded"),
        ("failed", "d3", "failed"),
    ]:
        path = record.submission_dir(out, "autograded", student, "toy") / record.GRADING_FILE
        record.atomic_write(path, json.dumps({"digest": digest, "status": status}))
    todo, done = batch.pending("toy", subs, out, force=False)
    assert [s.student for s in todo] == ["changed", "failed", "new"]
    assert [s.student for s in done] == ["same"]
    todo, done = batch.pending("toy", subs, out, force=True)
    assert len(todo) == 4 and not done


def crash_for_mallory(task: dict) -> dict:
    """A stand-in worker that dies (like an out-of-memory kill) on one student's task."""
    import os

    if task["student"] == "mallory":
        os._exit(1)
    return {"outcome": {"student": task["student"], "status": "graded"}, "executed": None}


def test_a_dying_worker_fails_only_its_own_submission():
    tasks = [
        {"student": name, "assignment": "toy", "digest": "d"}
        for name in ("alice", "mallory", "bob", "carol")
    ]
    results = {
        task["student"]: result["outcome"]["status"]
        for task, result in batch._execute(tasks, 2, None, worker=crash_for_mallory)
    }
    assert results == {"alice": "graded", "bob": "graded", "carol": "graded", "mallory": "failed"}
