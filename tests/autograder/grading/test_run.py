"""Stage 2, "run": untrusted notebooks in the sandbox, limits, probes and what comes out."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import textwrap
from dataclasses import asdict
from pathlib import Path

import nbformat
import numpy as np
import psutil
import pytest

from autograder.core.results import RunResult
from autograder.core.spec import Limits, Probe
from autograder.grading import probes as probing
from autograder.grading.run import run_submission
from autograder.grading.sandbox import bubblewrap, cgroups, disk, measure, watch

DATA = Path(os.environ.get("RNN_COURSE_DATA", "/work/shared/data"))
FAST = Limits(notebook_timeout_s=120, cell_timeout_s=60, memory_mb=4096, max_processes=64)
needs_bwrap = pytest.mark.skipif(not bubblewrap.bubblewrap_works(), reason="bubblewrap unusable")


def run_cells(
    tmp_path: Path,
    cells: list[str],
    *,
    limits: Limits = FAST,
    files: dict[str, str] | None = None,
    grade_ids: list[str | None] = (),
    **kwargs,
) -> tuple[RunResult, Path]:
    """Write a notebook of ``cells`` into a scratch folder, run it, return (result, out_dir).

    ``grade_ids`` gives the first cells nbgrader's metadata with these ids (None: none).
    """
    scratch, out_dir = tmp_path / "scratch", tmp_path / "out"
    scratch.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
    for cell, grade_id in zip(nb.cells, grade_ids, strict=False):
        if grade_id is not None:
            cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": True, "grade": False}
    nbformat.write(nb, str(scratch / "hw.ipynb"))
    for rel, text in (files or {}).items():
        (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
        (scratch / rel).write_text(text)
    result = run_submission(Path("submitted/hw.ipynb"), scratch, out_dir, limits=limits, **kwargs)
    assert RunResult.from_json(json.loads((out_dir / "run.json").read_text())) == result
    return result, out_dir


def executed(out_dir: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(out_dir / "executed.ipynb"), as_version=4)


GOOD = [
    "import assignments.data as d\ntext = d.load_shakespeare()\nprint(len(text))",
    """\
    import os
    os.makedirs("models", exist_ok=True)
    with open("models/counts.json", "w") as f:
        f.write('{"n": 3}')
    def double(values):
        return [2 * v for v in values]
    """,
    "double([1, 2])",
]


@needs_bwrap
def test_good_notebook_runs_and_exports(tmp_path):
    result, out_dir = run_cells(
        tmp_path,
        GOOD,
        data_dir=DATA,
        artifacts={"counts": "models/counts.json", "gone": "nope.keras"},
    )
    assert (result.status, result.isolation, result.cell_errors) == ("ok", "bubblewrap", [])
    outputs = [cell.outputs for cell in executed(out_dir).cells]
    assert outputs[0][0]["text"].strip() == str(len((DATA / "tinyshakespeare.txt").read_text()))
    assert outputs[2][0]["data"]["text/plain"] == "[2, 4]"
    assert json.loads((out_dir / "artifacts/models/counts.json").read_text()) == {"n": 3}
    assert not (out_dir / "artifacts/nope.keras").exists()
    assert result.message == "All 3 cells ran without errors."


@needs_bwrap
def test_error_in_the_middle_runs_the_later_cells(tmp_path):
    cells = ["x = 1", "raise ValueError('bad shape')", "y = x + 1\nprint('after', y)"]
    result, out_dir = run_cells(tmp_path, cells)
    assert result.status == "cell_errors"
    assert result.cell_errors == [
        {"cell": 1, "execution_count": 2, "ename": "ValueError", "evalue": "bad shape"}
    ]
    assert "Cell #2" in result.message and "ValueError: bad shape" in result.message
    assert executed(out_dir).cells[2].outputs[0]["text"] == "after 2\n"


CORES = measure.cpu_cores()
BUSY = "while True:\n    pass"
ASLEEP = "import time\nwhile True:\n    time.sleep(1)"


@pytest.fixture
def slow_machine(monkeypatch):
    """A wall-clock backstop far away, as if the machine were very busy: only CPU time counts."""
    monkeypatch.setattr(measure, "WALL_CLOCK_FACTOR", 100)


@pytest.mark.slow
@needs_bwrap
def test_a_busy_loop_is_stopped_by_the_cpu_time_limit(tmp_path, slow_machine):
    limits = Limits(notebook_timeout_s=4, cell_timeout_s=60)
    result, out_dir = run_cells(tmp_path, ["x = 1", BUSY, "print(x)"], limits=limits)
    assert result.status == "timeout"
    assert result.message == (
        f"The notebook was stopped after {4 * CORES} s of CPU time (the time limit: 4 s on "
        f"each of {CORES} cores) in cell #2."
    )
    assert result.cpu_s >= 4 * CORES
    error = executed(out_dir).cells[1].outputs[-1]
    assert (error["ename"], error["evalue"]) == (
        "TimeoutError",
        f"stopped after {4 * CORES} s of CPU time (notebook time limit)",
    )
    assert (result.limits["cpu_cores"], result.limits["wall_clock_factor"]) == (CORES, 100)


@pytest.mark.slow
@needs_bwrap
def test_a_notebook_that_waits_is_stopped_by_the_wall_clock_backstop(tmp_path):
    """Asleep, it uses almost no CPU time: past its CPU limit in wall-clock time, it goes on
    until the backstop."""
    limits = Limits(notebook_timeout_s=4, cell_timeout_s=60)
    result, out_dir = run_cells(tmp_path, ["x = 1", ASLEEP, "print(x)"], limits=limits)
    factor = measure.WALL_CLOCK_FACTOR
    assert result.status == "timeout"
    assert result.message.startswith(
        f"The notebook was stopped after {4 * factor} s of wall-clock time (the backstop, "
        f"{factor} x the time limit of 4 s of CPU time; it used "
    )
    assert result.message.endswith("s of CPU, so it was waiting, not computing) in cell #2.")
    assert result.cpu_s < 4 * CORES
    assert "wall-clock time (notebook time limit)" in executed(out_dir).cells[1].outputs[-1].evalue


@pytest.mark.slow
@needs_bwrap
def test_a_loop_that_ignores_interrupts_is_stopped_too(tmp_path, slow_machine):
    cell = f"import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n{BUSY}"
    result, _ = run_cells(tmp_path, [cell], limits=Limits(notebook_timeout_s=3, cell_timeout_s=60))
    assert result.status == "timeout"
    assert result.message.startswith(f"The notebook was stopped after {3 * CORES} s of CPU time")


def test_the_parent_kills_a_run_that_overstays(tmp_path):
    outcome = watch._watch(
        ["sleep", "100"], isolation="rlimit", env={}, cwd=tmp_path, limits=FAST, hard_timeout_s=1
    )
    assert outcome.killed == "timeout" and outcome.duration_s < 10


def test_the_parent_counts_cpu_time_over_the_tree_and_kills_at_its_limit(tmp_path):
    """A child's busy loop counts, not only the process the parent started."""
    busy = [
        sys.executable,
        "-c",
        "import subprocess, sys; subprocess.run([sys.executable, '-c', 'while True: pass'])",
    ]
    outcome = watch._watch(
        busy,
        isolation="rlimit",
        env={},
        cwd=tmp_path,
        limits=FAST,
        hard_timeout_s=600,
        cpu_limit_s=1,
    )
    assert outcome.killed == "cpu" and outcome.cpu_s > 1
    asleep = watch._watch(
        ["sleep", "100"],
        isolation="rlimit",
        env={},
        cwd=tmp_path,
        limits=FAST,
        hard_timeout_s=2,
        cpu_limit_s=1,
    )
    assert asleep.killed == "timeout" and asleep.cpu_s < 1


@pytest.mark.slow
@needs_bwrap
@pytest.mark.parametrize("clock", ["CPU time", "wall-clock time"])
def test_cell_time_limit_interrupts_one_cell_and_goes_on(tmp_path, monkeypatch, clock):
    if clock == "CPU time":
        monkeypatch.setattr(measure, "WALL_CLOCK_FACTOR", 100)
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=2)
    cell = BUSY if clock == "CPU time" else ASLEEP
    result, out_dir = run_cells(tmp_path, [cell, "print('next')"], limits=limits)
    seconds = 2 * (CORES if clock == "CPU time" else measure.WALL_CLOCK_FACTOR)
    assert result.status == "timeout"
    assert result.message.startswith(f"Cell #1 was stopped after {seconds} s of {clock} (the")
    assert "cell time limit" in result.message and result.message.endswith("the other cells ran.")
    assert executed(out_dir).cells[1].outputs[0]["text"] == "next\n"


@needs_bwrap
def test_memory_hog_is_killed(tmp_path):
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=60, memory_mb=1024)
    cells = ["import numpy as np", "big = np.ones(4 * 2**30 // 8)", "print('survived')"]
    result, _ = run_cells(tmp_path, cells, limits=limits)
    assert result.status == "memory"
    assert result.message == "Memory limit of 1024 MB exceeded in cell #2; the run was killed."


@needs_bwrap
@pytest.mark.parametrize("counted_by", ["kernel", "pss"])
def test_memory_in_private_tmpfs_counts(tmp_path, monkeypatch, counted_by):
    if counted_by == "pss":  # where the grader cannot create a cgroup
        monkeypatch.setattr(cgroups.Cgroup, "create", classmethod(lambda cls, *args: None))
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=60, memory_mb=1024)
    cells = [
        "block = b'0' * 2**20\nfor i in range(8):  # files under the RLIMIT_FSIZE cap\n"
        "    with open(f'/dev/shm/fill{i}', 'wb') as f:\n"
        "        for _ in range(200):\n            f.write(block)",
        "print('survived')",
    ]
    result, _ = run_cells(tmp_path, cells, limits=limits)
    assert result.status == "memory"


def test_host_file_systems_never_count_as_sandbox_memory():
    # seen from a process that still has the host's root (bubblewrap setting up)
    assert measure._tmpfs_usage("/") == 0


@needs_bwrap
def test_spawning_many_processes_is_bounded_and_killed(tmp_path):
    marker = "4321.5"
    cell = f"""\
    import os
    for _ in range(400):
        if os.fork() == 0:
            os.execv("/usr/bin/sleep", ["sleep", "{marker}"])
    """
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=60, max_processes=32)
    result, _ = run_cells(tmp_path, ["import time", cell, "time.sleep(30)"], limits=limits)
    assert result.status == "crashed"
    assert "more than 32 processes" in result.message
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]
    ]
    assert leftovers == []


@needs_bwrap
def test_the_sandbox_sees_nothing_of_the_course_and_writes_nowhere_else(tmp_path):
    host_tmp = tmp_path / "host-visible"
    host_tmp.mkdir()
    probe = f"""\
    import json, os, socket
    found = {{"uid": os.getuid()}}
    for path in ["/work/main/autograder/__init__.py", "/work/main/source", "/work/main/solutions",
                 "/work/main/tests", "/etc/shadow", "/root/.bashrc"]:
        try:
            found[path] = os.listdir(path) if os.path.isdir(path) else open(path).read()[:10]
        except OSError as err:
            found[path] = type(err).__name__
    for path in ["/work/main/pwned", "/etc/pwned", "/usr/pwned", "{host_tmp}/pwned",
                 "/tmp/private"]:
        try:
            open(path, "w").write("x")
            found[path] = "written"
        except OSError as err:
            found[path] = type(err).__name__
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=3)
        found["network"] = "reachable"
    except OSError as err:
        found["network"] = type(err).__name__
    json.dump(found, open("found.json", "w"))
    """
    result, out_dir = run_cells(tmp_path, [probe], artifacts={"found": "found.json"})
    assert result.status == "ok", result.message
    found = json.loads((out_dir / "artifacts/found.json").read_text())
    assert found.pop("uid") == 65534
    assert found.pop("/tmp/private") == "written"  # a private tmpfs
    assert found.pop("network") == "OSError"
    assert set(found.values()) <= {"FileNotFoundError", "OSError", "PermissionError"}, found
    for path in ["/work/main/pwned", "/etc/pwned", "/usr/pwned", host_tmp / "pwned"]:
        assert not Path(path).exists()


@needs_bwrap
def test_grader_packages_installed_in_the_environment_are_hidden(tmp_path, monkeypatch):
    """A non-editable install puts the engine and solutions into the mounted environment."""
    installed = Path(sysconfig.get_paths()["purelib"]) / "rnn_course_grader_probe"
    installed.mkdir()
    try:
        (installed / "__init__.py").write_text("ANSWER = 42\n")
        importlib.invalidate_caches()
        monkeypatch.setattr(bubblewrap, "GRADER_PACKAGES", ("rnn_course_grader_probe",))
        probe = """\
        import json
        try:
            import rnn_course_grader_probe as grader
            found = getattr(grader, "ANSWER", "nothing inside")
        except ImportError as err:
            found = type(err).__name__
        json.dump(found, open("found.json", "w"))
        """
        result, out_dir = run_cells(tmp_path, [probe], artifacts={"found": "found.json"})
    finally:
        shutil.rmtree(installed)
    assert result.status == "ok", result.message
    found = json.loads((out_dir / "artifacts/found.json").read_text())
    assert found in ("nothing inside", "ModuleNotFoundError")  # an empty tmpfs is all it sees


@needs_bwrap
def test_huge_output_is_truncated(tmp_path):
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=60, max_output_mb=2)
    cells = ["for _ in range(50):\n    print('x' * (1 << 20))", "print('tail')"]
    result, out_dir = run_cells(tmp_path, cells, limits=limits)
    assert result.status == "ok" and result.output_truncated
    assert (out_dir / "executed.ipynb").stat().st_size < 4 * 2**20
    first, second = (cell.outputs for cell in executed(out_dir).cells)
    assert "truncated by the grader" in first[-1]["text"]
    assert second[0]["text"] == "tail\n"


@needs_bwrap
def test_kernel_crash_is_reported(tmp_path):
    cells = ["x = 1", "import os\nos._exit(1)", "print(x)"]
    result, out_dir = run_cells(tmp_path, cells, probes=[Probe("p", "len", {"obj": []})])
    assert result.status == "crashed"
    assert "kernel died while running cell #2" in result.message
    assert executed(out_dir).cells[1].outputs[-1]["ename"] == "DeadKernelError"
    assert result.probes["p"]["ok"] is False


@needs_bwrap
def test_probes_save_data_and_survive_a_missing_function(tmp_path):
    cells = [
        """\
        import keras
        def build_model(units):
            return keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(units),
                                     keras.layers.Dense(1)])
        def noise(n):
            import numpy as np
            return np.random.rand(n)
        def summary(n):
            return {"n": n}
        """,
    ]
    probes = [
        Probe("model", "build_model", {"units": 4}, "keras"),
        Probe("missing", "build_modle", {}, "json"),
        Probe("noise", "noise", {"n": 3}, "npz"),
        Probe("summary", "summary", {"n": 2}, "json"),
        Probe("objects", "summary", {"n": 2}, "npz"),
    ]
    result, out_dir = run_cells(tmp_path, cells, probes=probes)
    assert result.status == "ok", result.message
    assert result.probes["missing"] == {
        "ok": False,
        "file": None,
        "ename": "NameError",
        "evalue": "name 'build_modle' is not defined",
    }
    assert result.probes["objects"]["ename"] == "TypeError"
    assert json.loads((out_dir / "probes/index.json").read_text()) == result.probes
    assert json.loads((out_dir / "probes/summary.json").read_text()) == {"n": 2}
    with np.load(out_dir / "probes/noise.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["value"], np.random.RandomState(0).rand(3))
    import keras

    model = keras.saving.load_model(out_dir / "probes/model.keras", safe_mode=True)
    assert model.output_shape == (None, 1)


RAISE_COLOURED = """\
import os, sys
def path_error():
    raise ValueError(f"\\x1b[1m{os.path.abspath('data/x.csv')}\\x1b[0m in {sys.prefix}")
"""


@needs_bwrap
def test_messages_name_the_nbgrader_cell_and_carry_no_escape_code_or_grader_path(tmp_path):
    cells = [RAISE_COLOURED, "raise NotImplementedError()", "path_error()", "x = 1"]
    probes = [Probe("p", "path_error"), Probe("q", "undefined")]
    result, _ = run_cells(
        tmp_path, cells, grade_ids=[None, "train", None], probes=probes, limits=FAST
    )
    assert result.message == (
        'Cell #2 (id "train", In [2]) raised NotImplementedError (the code is not written '
        "yet); 1 more cell failed after it."
    )
    assert result.cell_errors[1]["evalue"] == f"data/x.csv in {Path(sys.prefix).name}"
    assert result.probes["p"]["evalue"] == result.cell_errors[1]["evalue"]
    assert result.probes["q"]["ename"] == "NameError"
    assert result.limits == {**asdict(FAST), "cpu_cores": CORES, "wall_clock_factor": 3}


@needs_bwrap
def test_a_kernel_killed_by_a_probe_is_the_runs_problem(tmp_path):
    cells = ["import os\ndef crash():\n    os._exit(3)\ndef fine():\n    return 1"]
    probes = [Probe("a", "crash"), Probe("b", "fine")]
    result, _ = run_cells(tmp_path, cells, probes=probes)
    assert result.status == "crashed"
    assert result.message.startswith("The kernel died when the grader called crash()")
    assert result.probes["b"] == {"ok": False, "file": None}


def test_not_executed_copies_the_shipped_artifacts_only(tmp_path):
    scratch, out_dir = tmp_path / "scratch", tmp_path / "out"
    (scratch / "models").mkdir(parents=True)
    (scratch / "hw.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (scratch / "models/a.json").write_text("{}")
    (scratch / "models/secret.json").symlink_to("/etc/passwd")
    artifacts = {
        "a": "models/a.json",
        "s": "models/secret.json",
        "up": "../out/x",
        "abs": "/etc/passwd",
    }
    result = run_submission(
        scratch / "hw.ipynb", scratch, out_dir, limits=FAST, artifacts=artifacts, execute=False
    )
    assert (result.status, result.probes) == ("not_executed", {})
    assert sorted(p.name for p in (out_dir / "artifacts").rglob("*") if p.is_file()) == ["a.json"]


def test_oversized_artifacts_are_left_out_with_a_note(tmp_path):
    scratch, out_dir = tmp_path / "scratch", tmp_path / "out"
    scratch.mkdir()
    (scratch / "big.npz").write_bytes(b"0" * (2 * 2**20))
    result = run_submission(
        scratch / "hw.ipynb",
        scratch,
        out_dir,
        execute=False,
        limits=Limits(max_artifacts_mb=1),
        artifacts={"big": "big.npz"},
    )
    assert not (out_dir / "artifacts/big.npz").exists()
    assert "big.npz" in result.notes[0]


def test_probe_cells_refuse_unsafe_names():
    with pytest.raises(ValueError):
        probing.probe_cell(Probe("../x", "f"), "/tmp", 10)
    with pytest.raises(ValueError):
        probing.probe_cell(Probe("x", "f(); import os"), "/tmp", 10)
    with pytest.raises(ValueError):
        probing.probe_cells([Probe("x", "f"), Probe("x", "g")], "/tmp", 10)


@needs_bwrap
def test_shipped_fake_probe_results_are_discarded(tmp_path):
    fake = {"p": {"ok": True, "error": None, "file": "p.json"}}
    files = {".probes/index.json": json.dumps(fake), ".probes/p.json": "42"}
    result, out_dir = run_cells(tmp_path, ["x = 1"], files=files, probes=[Probe("p", "nope")])
    assert result.probes["p"]["ok"] is False
    assert not (out_dir / "probes/p.json").exists()


@pytest.fixture
def rlimit_only(monkeypatch):
    monkeypatch.setenv(bubblewrap.ISOLATION_ENV, "rlimit")


def test_rlimit_fallback_runs_a_good_notebook(tmp_path, rlimit_only, caplog):
    result, out_dir = run_cells(
        tmp_path, GOOD, data_dir=DATA, artifacts={"counts": "models/counts.json"}
    )
    assert (result.status, result.isolation) == ("ok", "rlimit")
    assert (out_dir / "artifacts/models/counts.json").is_file()
    assert "WITHOUT a sandbox" in caplog.text


def test_rlimit_fallback_enforces_the_time_limit(tmp_path, rlimit_only):
    limits = Limits(notebook_timeout_s=6, cell_timeout_s=60)
    result, _ = run_cells(tmp_path, ["while True:\n    pass"], limits=limits)
    assert (result.status, result.isolation) == ("timeout", "rlimit")


def test_missing_bubblewrap_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    bubblewrap.bubblewrap_works.cache_clear()
    try:
        assert bubblewrap.isolation_mode() == "rlimit"
    finally:
        bubblewrap.bubblewrap_works.cache_clear()


# ------------------------------------------------------------------ attacks on the limits


FILL = """\
block = b"0" * 2**20
for i in range(12):  # 12 files of 40 MB, each under the RLIMIT_FSIZE cap
    with open(f"{folder}/fill{{i}}.bin", "wb") as f:
        for _ in range(40):
            f.write(block)
"""


def allocated(folder: Path) -> int:
    """Bytes the host's disk holds for the files under ``folder``."""
    return sum(p.lstat().st_blocks * 512 for p in folder.rglob("*") if not p.is_symlink())


@needs_bwrap
@pytest.mark.parametrize("folder", [".", "/tmp"])
def test_writing_past_the_disk_limit_stops_the_run_and_spares_the_host_disk(tmp_path, folder):
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=60, max_scratch_mb=100)
    result, _ = run_cells(
        tmp_path, [FILL.format(folder=folder), "print('survived')"], limits=limits
    )
    assert result.status == "disk", result.message
    assert result.message.startswith("Disk limit: the notebook wrote more than 100 MB")
    assert "not the memory limit (8192 MB)" in result.message
    if os.geteuid() == 0:  # a size-limited file system, gone with its files once unmounted
        assert allocated(tmp_path / "scratch") < 5 * 2**20
        assert not list(Path(tempfile.gettempdir()).glob("rnn-scratch-*.img"))
        assert not list(disk.SCRATCH_MOUNTS.glob(f"{os.getpid()}-*"))
    else:  # a watched folder: stopped within about a second of writing
        assert allocated(tmp_path / "scratch") < 480 * 2**20


@needs_bwrap
def test_a_watched_scratch_folder_stops_the_run_too(tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "_can_mount", lambda: False, raising=False)  # as without root
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=60, max_scratch_mb=100)
    cells = [FILL.format(folder="."), "import time\ntime.sleep(5)", "print('survived')"]
    result, _ = run_cells(tmp_path, cells, limits=limits)
    assert result.status == "disk", result.message


HIDE_ERRORS = """\
import io, sys
get_ipython().showtraceback = lambda *args, **kwargs: None
sys.stderr = io.StringIO()
"""


@needs_bwrap
def test_a_notebook_that_hides_its_tracebacks_still_has_its_errors_reported(tmp_path):
    cells = [HIDE_ERRORS, "x = 1", "raise ValueError('hidden')", "print('after')"]
    result, out_dir = run_cells(tmp_path, cells)
    assert result.status == "cell_errors", result.message
    assert result.cell_errors == [
        {"cell": 2, "execution_count": 3, "ename": "ValueError", "evalue": "hidden", "hidden": True}
    ]
    assert result.message == (
        "Cell #3 (In [3]) raised ValueError: hidden (its output does not show the error)."
    )
    assert executed(out_dir).cells[2].outputs == []  # the notebook itself shows nothing


FORGER = '''\
import json, subprocess, sys
fake = {"cells_run": 2, "timed_out_cells": [], "kernel_died_cell": None,
        "deadline_reached": False, "output_truncated": False, "probes_run": 0,
        "kernel_died_in_probe": None, "error": None}
code = """
import json, os, sys, time
fake = sys.argv[1]
through_pipe = {**json.loads(fake), "error": "forged through the pipe"}
line = json.dumps({"report": through_pipe}).encode() + b"\\\\n"
deadline = time.time() + 60
while time.time() < deadline:
    for pid in os.listdir("/proc"):  # the driver's report pipe, if it could be reached
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:"):
                    out = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK)
                    os.write(out, line)
                    os.close(out)
        except OSError:
            pass
    try:  # the report file and the notebook, as the old grader read them
        if open(".grader/report.json").read() != fake:
            open(".grader/report.json", "w").write(fake)
    except OSError:
        open(".grader/report.json", "w").write(fake)
    try:
        nb = json.load(open(".grader/executed.ipynb"))
        if any(o["output_type"] == "error" for c in nb["cells"] for o in c.get("outputs", [])):
            for c in nb["cells"]:
                c["outputs"] = [o for o in c.get("outputs", []) if o["output_type"] != "error"]
            json.dump(nb, open(".grader/executed.ipynb", "w"))
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(0.002)
"""
subprocess.Popen([sys.executable, "-c", code, json.dumps(fake)], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''


@needs_bwrap
def test_a_forged_report_cannot_turn_a_failing_run_into_ok(tmp_path):
    """A process left behind rewrites report.json and the executed notebook, and
    writes a fake report into every pipe it can open: the verdict stays the driver's."""
    cells = [FORGER, "import time\ntime.sleep(1)\nraise ValueError('real')"]
    result, _ = run_cells(tmp_path, cells)
    assert result.status == "cell_errors", result.message
    assert [(e["cell"], e["ename"], e["evalue"]) for e in result.cell_errors] == [
        (1, "ValueError", "real")
    ]


SHARED_CHILDREN = """\
import os, time
import numpy as np
shared = np.ones(300 * 2**20 // 8)  # 300 MB, touched, then shared by 200 children
children = []
for _ in range(200):
    pid = os.fork()
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(len(children), "children")
"""


@needs_bwrap
@pytest.mark.parametrize("counted_by", ["kernel", "pss"])
def test_children_that_share_memory_are_not_killed_for_memory(tmp_path, monkeypatch, counted_by):
    if counted_by == "pss":  # where the grader cannot create a cgroup
        monkeypatch.setattr(cgroups.Cgroup, "create", classmethod(lambda cls, *args: None))
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=60, memory_mb=4096, max_processes=400)
    result, out_dir = run_cells(tmp_path, [SHARED_CHILDREN], limits=limits)
    assert result.status == "ok", result.message
    assert executed(out_dir).cells[0].outputs[0]["text"] == "200 children\n"
    peak = int((out_dir / "run.log").read_text().split("peak_processes=")[1].split()[0])
    assert peak > 100  # the watcher saw many at once (RSS: 14 make 4 GB)


FORK_BOMB = """\
import os, time
import numpy as np
shared = np.ones(300 * 2**20 // 8)
for _ in range(1500):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
    except OSError:  # the kernel's task limit
        break
time.sleep(30)
"""


@needs_bwrap
def test_a_fork_bomb_is_reported_as_too_many_processes_not_memory(tmp_path):
    limits = Limits(notebook_timeout_s=120, cell_timeout_s=60, memory_mb=4096, max_processes=256)
    result, _ = run_cells(tmp_path, [FORK_BOMB], limits=limits)
    assert result.status == "crashed", result.message
    assert "more than 256 processes" in result.message


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="only a grader started as root drops to a user")
def test_a_grader_started_as_root_runs_the_notebook_as_an_unprivileged_user(tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "_can_mount", lambda: False, raising=False)  # files stay
    cell = "import os\nopen('mine.txt', 'w').write(str(os.getuid()))"
    result, _ = run_cells(tmp_path, [cell])
    assert result.status == "ok", result.message
    mine = tmp_path / "scratch/mine.txt"
    assert mine.read_text() == "65534"  # inside
    owner = mine.stat().st_uid  # outside, as the host sees it
    assert owner != 0
    assert (owner, mine.stat().st_gid) == bubblewrap.sandbox_user()


def test_a_kernel_killed_for_memory_is_stopped_in_its_cell():
    """The kernel can die (killed by the memory cgroup) and the driver report it before the
    grader's own kill: the run still names the cell."""
    from autograder.grading import run

    cells = [
        {"cell": 0, "status": "ok"},
        {"cell": 1, "status": "started"},
        {"cell": 1, "status": "error", "ename": "DeadKernelError", "evalue": "died"},
    ]
    assert run._stopped_in(cells) == 1
    assert run._stopped_in(cells[:1]) is None
