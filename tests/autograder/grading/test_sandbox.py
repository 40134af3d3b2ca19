"""The sandbox's own mechanics: cgroups, the sandbox user, the report pipe, the disk limit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder.core.spec import Limits
from autograder.core.units import MB
from autograder.grading import run
from autograder.grading.sandbox import bubblewrap, cgroups, disk, watch


@pytest.fixture
def fake_v2(tmp_path, monkeypatch):
    """A cgroup v2 tree in a plain folder, the grader in ``/grader``."""
    grader = tmp_path / "grader"
    grader.mkdir()
    (grader / "cgroup.subtree_control").write_text("cpu memory pids\n")
    monkeypatch.setattr(cgroups, "_own_cgroups", lambda: {"": "/grader"})
    monkeypatch.setattr(
        cgroups,
        "_cgroup_mount",
        lambda fstype, controller: ("/", tmp_path) if fstype == "cgroup2" else None,
    )
    return grader


def test_a_v2_cgroup_gets_the_limits_and_reports_the_kernels_events(fake_v2):
    cgroup = cgroups.Cgroup.create(512 * MB, 1024 + 64)
    assert cgroup is not None and cgroup.kind == "cgroup v2"
    (folder,) = {cgroup.dirs["memory"], cgroup.dirs["pids"]}
    assert folder.parent == fake_v2 and folder.name.startswith("rnn-sandbox-")
    assert (folder / "memory.max").read_text() == str(512 * MB)
    assert (folder / "pids.max").read_text() == "1088"
    assert cgroup.procs_files() == [str(folder / "cgroup.procs")]
    (folder / "memory.current").write_text("1234\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 0\n")
    (folder / "pids.events").write_text("max 0\n")
    assert (cgroup.memory_used(), watch._kernel_events(cgroup)) == (1234, None)
    (folder / "pids.events").write_text("max 3\n")
    assert watch._kernel_events(cgroup) == "processes"
    (folder / "memory.events").write_text("oom 1\noom_kill 1\n")
    assert watch._kernel_events(cgroup) == "memory"  # memory first: it explains the rest
    shutil.rmtree(folder)  # the kernel's files vanish with the folder; here, by hand
    cgroup.remove()


def test_the_empty_cgroups_of_graders_that_died_are_removed(fake_v2):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, alive = fake_v2 / f"rnn-sandbox-{dead.pid}-0", fake_v2 / f"rnn-sandbox-{os.getpid()}-0"
    stale.mkdir()
    alive.mkdir()
    cgroup = cgroups.Cgroup.create(MB, 10)
    assert not stale.exists() and alive.exists()
    shutil.rmtree(cgroup.dirs["memory"])
    alive.rmdir()


def test_no_v2_cgroup_where_its_controllers_cannot_be_enabled(fake_v2, monkeypatch):
    """The parent runs processes (not the root): the kernel refuses (EBUSY); v1 is next."""
    (fake_v2 / "cgroup.subtree_control").write_text("cpu\n")
    monkeypatch.setattr(Path, "write_text", _refused_for("cgroup.subtree_control"))
    with pytest.raises(OSError):
        cgroups.Cgroup._v2("x", MB, 10)
    assert not (fake_v2 / "x").exists()
    monkeypatch.setattr(cgroups, "_own_cgroups", lambda: {"": "/grader", "cpu": "/"})
    assert cgroups.Cgroup._v1("x", MB, 10) is None  # no v1 memory controller either
    assert cgroups.Cgroup.create(MB, 10) is None


def _refused_for(name):
    original = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name == name:
            raise OSError(16, "Device or resource busy", name)
        return original(self, *args, **kwargs)

    return write_text


def test_cgroup_paths_and_files_are_parsed():
    assert cgroups._cgroup_dir(("/", Path("/sys/fs/cgroup")), "/a/b") == Path("/sys/fs/cgroup/a/b")
    assert cgroups._cgroup_dir(("/a", Path("/mnt")), "/a/b") == Path("/mnt/b")
    with pytest.raises(ValueError):
        cgroups._cgroup_dir(("/a", Path("/mnt")), "/ab")
    assert cgroups.unescape(r"/sys/fs/my\040cgroup") == "/sys/fs/my cgroup"
    assert cgroups._keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")["oom_kill"] == 2
    assert cgroups._number("") == 0 and cgroups._number("42\n") == 42


def test_this_machines_cgroups_are_found_where_there_are_any():
    own = cgroups._own_cgroups()
    assert "" in own or "memory" in own  # v2, or v1 (hybrid: both)


def test_sandbox_user_is_none_unless_root(monkeypatch):
    bubblewrap.sandbox_user.cache_clear()
    try:
        monkeypatch.setattr(bubblewrap.os, "geteuid", lambda: 1000)
        assert bubblewrap.sandbox_user() is None
    finally:
        bubblewrap.sandbox_user.cache_clear()


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_sandbox_user_as_root_is_an_unprivileged_user():
    uid, gid = bubblewrap.sandbox_user()
    assert uid != 0 and gid != 0


def test_the_report_pipe_keeps_the_drivers_lines_and_skips_the_rest():
    read_end, write_end = os.pipe()
    reader = watch._ReportReader(read_end)
    lines = [
        {"cell": {"cell": 0, "status": "ok"}},
        "not json",
        ["a", "list"],
        {"cell": "not a dict"},
        {"cell": {"cell": 1, "status": "error", "ename": "E", "evalue": "v"}},
        {"report": {"cells_run": 2, "error": None}},
    ]
    with os.fdopen(write_end, "w") as out:
        for line in lines:
            out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    reader.join()
    assert [c["cell"] for c in reader.cells] == [0, 1]
    assert reader.report == {"cells_run": 2, "error": None}


def outcome(killed: str | None = None, **kwargs) -> watch.SandboxOutcome:
    return watch.SandboxOutcome("bubblewrap", 0, killed, 1.0, **kwargs)


REPORT = {"cells_run": 2, "timed_out_cells": [], "kernel_died_cell": None, "error": None}
SCRATCH = Path("/run/rnn-scratch/1-0")


def verdict(sandboxed, report, errors=(), limits=None, nb=None):
    return run._verdict(sandboxed, report, list(errors), nb, limits or Limits(), (), SCRATCH)


def test_the_verdict_comes_from_the_replies_not_from_the_notebook():
    cells = [
        {"cell": 0, "status": "ok", "execution_count": 1},
        {"cell": 1, "status": "error", "execution_count": 2},  # no ename: the kernel sent none
    ]
    errors = run._cell_errors(cells, None, SCRATCH)
    assert errors == [{"cell": 1, "execution_count": 2, "ename": "", "evalue": "", "hidden": True}]
    status, message = verdict(outcome(cells=cells, report=REPORT), REPORT, errors)
    assert status == "cell_errors"
    assert message == (
        "Cell #2 (In [2]) raised an error its output does not show "
        "(its output does not show the error)."
    )
    ok = [{"cell": 0, "status": "ok"}, {"cell": 1, "status": "ok"}]
    assert verdict(outcome(cells=ok, report=REPORT), REPORT) == (
        "ok",
        "All 2 cells ran without errors.",
    )
    # no final report from the driver: never "ok", whatever the notebook shows
    assert verdict(outcome(cells=ok), {})[0] == "crashed"


def test_the_disk_verdict_says_which_limit_applied():
    limits = Limits(max_scratch_mb=100, memory_mb=2048)
    status, message = verdict(outcome(killed="disk"), {}, limits=limits)
    assert status == "disk"
    assert message == (
        "Disk limit: the notebook wrote more than 100 MB (or too many files) to its folder "
        "and /tmp; the run was killed. This is the disk limit, not the memory limit (2048 MB)."
    )


def test_a_killed_run_names_the_cell_it_was_in():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1") for _ in range(3)]
    nb.cells[2].metadata["nbgrader"] = {"grade_id": "train"}
    cells = [
        {"cell": 0, "status": "started"},
        {"cell": 0, "status": "ok", "execution_count": 1},
        {"cell": 2, "status": "started"},
    ]
    status, message = verdict(outcome("memory", cells=cells), {}, limits=Limits(), nb=nb)
    assert (status, message) == (
        "memory",
        'Memory limit of 8192 MB exceeded in cell #3 (id "train"); the run was killed.',
    )
    error = {"status": "error", "ename": "E", "evalue": f"{SCRATCH}/models/a.keras"}
    assert run._cell_errors([*cells, {"cell": 1, **error}], nb, SCRATCH) == [
        {
            "cell": 1,
            "execution_count": None,
            "ename": "E",
            "evalue": "models/a.keras",
            "hidden": True,
        }
    ]
    driver_error = {**REPORT, "error": "\x1b[31mRuntimeError: kernel died before replying\x1b[0m"}
    assert verdict(outcome(cells=cells[:2]), driver_error)[1] == (
        "The notebook could not be run: RuntimeError: kernel died before replying."
    )


def test_a_watched_folder_counts_what_was_written_beyond_the_submission(tmp_path):
    (tmp_path / "shipped.bin").write_bytes(b"1" * (3 * MB))
    space = disk.ScratchSpace(tmp_path, 2, "watched", disk._folder_usage(tmp_path, 10)[0])
    assert not space.full(now=True)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/written.bin").write_bytes(b"1" * MB)
    (tmp_path / "link").symlink_to("/usr")  # never followed
    assert not space.full(now=True)
    (tmp_path / "sub/more.bin").write_bytes(b"1" * (2 * MB))
    assert not space.full()  # measured at most every SCRATCH_CHECK_S
    assert space.full(now=True)


needs_mount = pytest.mark.skipif(
    not disk._can_mount(), reason="needs root, mkfs.ext4 and loop devices"
)


@needs_mount
def test_a_mounted_scratch_is_a_copy_with_the_limit_then_goes(tmp_path):
    scratch = tmp_path / "scratch"
    (scratch / "models").mkdir(parents=True)
    (scratch / "models/shipped.bin").write_bytes(b"1" * (5 * MB))
    (scratch / "hw.ipynb").write_text("{}")
    with disk.scratch_space(scratch, Limits(max_scratch_mb=20)) as space:
        point = space.path
        assert space.kind == "file system" and os.path.ismount(point)
        assert point.parent == disk.SCRATCH_MOUNTS
        assert (point / "models/shipped.bin").stat().st_size == 5 * MB
        assert sorted(p.name for p in point.iterdir()) == ["hw.ipynb", "models"]
        assert point.stat().st_uid == (bubblewrap.sandbox_user() or (os.getuid(),))[0]
        assert not space.full()
        with pytest.raises(OSError), open(point / "big.bin", "wb") as big:
            for _ in range(40):
                big.write(b"0" * MB)
                big.flush()
        assert space.full()
        free = os.statvfs(point)
        assert free.f_blocks * free.f_frsize < 40 * MB  # 20 MB + the submission + ext4's own
    assert not point.exists()
    assert sorted(p.name for p in scratch.iterdir()) == ["hw.ipynb", "models"]
    assert not (scratch / "big.bin").exists()


@needs_mount
def test_the_scratch_of_a_grader_that_died_is_unmounted_by_the_next(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    disk.SCRATCH_MOUNTS.mkdir(mode=0o755, exist_ok=True)
    stale = disk.SCRATCH_MOUNTS / f"{dead.pid}-0"
    stale.mkdir()
    disk._mount_image(stale, MB)
    assert os.path.ismount(stale)
    point = disk._mount_point()
    try:
        assert not stale.exists()
        assert point.name.startswith(f"{os.getpid()}-")
    finally:
        point.rmdir()


def test_the_workers_share_of_the_cores_reaches_the_notebook(monkeypatch, tmp_path):
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = bubblewrap.sandbox_env(tmp_path, None)
    assert env["TF_NUM_INTRAOP_THREADS"] == "1" and "OMP_NUM_THREADS" not in env
