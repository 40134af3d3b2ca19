"""nbgrader's own tools in a course graded by rnn-course: its autograde refuses and deletes
nothing, a lost record comes back, and `grade --out DIR` is a folder formgrader and
`nbgrader export` work in."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder import cli
from autograder.term.grades import EXPORT_COLUMNS

ROOT = Path(__file__).resolve().parents[3]
TOY = "toy_sum"
#: Appended to the toy course's nbgrader_config.py: alice is 2 d 12 h late, 3 started days.
LATE_POLICY = """
c.LatePolicy.duedates = {"toy_sum": "2025-03-01 00:00:00 UTC"}
c.LatePolicy.penalty_method = "per_day"
c.LatePolicy.points = 0.25
"""
TIMES = {"alice": "2025-03-03 12:00:00 UTC", "bob": "2025-02-28 12:00:00 UTC"}


def grade_argv(course: Path, *argv: str) -> list[str]:
    return ["--course", str(course), "grade", TOY, "--no-execute", "--no-progress", *argv]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The toy course with a late policy and a hand-graded report, released and submitted:
    alice ships a model with a SimpleRNN (1 point) and is late, bob ships nothing (0)."""
    import keras

    root = tmp_path_factory.mktemp("nbgrader") / "course"
    shutil.copytree(ROOT / "tests" / "files" / "toy_course", root)
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(LATE_POLICY)
    source = root / "source" / TOY / f"{TOY}.ipynb"
    notebook = nbformat.read(source, as_version=4)
    report = nbformat.v4.new_markdown_cell("*Marking: names the recurrent layer.*")
    report.metadata["nbgrader"] = {
        "schema_version": 3,
        "grade_id": "report",
        "grade": True,
        "solution": True,
        "locked": False,
        "points": 2,
    }
    notebook.cells.append(report)
    nbformat.write(notebook, source)
    assert cli.main(["--course", str(root), "release", TOY]) == 0
    released = nbformat.read(root / "release" / TOY / f"{TOY}.ipynb", as_version=4)
    released.cells[-1].source = "A SimpleRNN adds the numbers one at a time."
    for student, submitted in TIMES.items():
        folder = root / "submitted" / student / TOY
        folder.mkdir(parents=True)
        nbformat.write(released, folder / f"{TOY}.ipynb")
        (folder / "timestamp.txt").write_text(submitted)
    model = keras.Sequential(
        [keras.Input((5, 1)), keras.layers.SimpleRNN(2), keras.layers.Dense(1)]
    )
    (root / "submitted" / "alice" / TOY / "models").mkdir()
    model.save(root / "submitted" / "alice" / TOY / "models" / "rnn.keras")
    return root


@pytest.fixture(scope="module")
def graded_once(course, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("graded") / "course"
    shutil.copytree(course, root)
    assert cli.main(grade_argv(root)) == 0
    return root


@pytest.fixture
def graded(graded_once, tmp_path) -> Path:
    """A graded copy of the course for one test to change."""
    root = tmp_path / "course"
    shutil.copytree(graded_once, root)
    return root


@pytest.fixture(scope="module")
def output(course, tmp_path_factory) -> Path:
    """The output folder of `grade --out DIR`."""
    folder = tmp_path_factory.mktemp("out") / "term"
    assert cli.main(grade_argv(course, "--out", str(folder))) == 0
    return folder


def records(root: Path) -> dict[str, bytes]:
    """Every file grading wrote, by path."""
    folders = [root / name for name in ("autograded", "feedback", ".records")]
    files = [path for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()]
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def nbgrader(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """nbgrader's command line in ``cwd``, as a grader types it there."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *argv], cwd=cwd, env=env, capture_output=True, text=True
    )


def set_hand_grade(root: Path, student: str, points: float, comment: str) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as book:
        grade = book.find_grade("report", TOY, TOY, student)
        grade.manual_score, grade.needs_manual_grade = points, False
        book.find_comment("report", TOY, TOY, student).manual_comment = comment
        book.db.commit()


# ------------------------------------------------------------------- nbgrader autograde refused


def test_nbgrader_autograde_refuses_and_deletes_nothing(graded):
    before = records(graded)
    result = nbgrader("autograde", TOY, "--student", "alice", "--force", cwd=graded)
    assert result.returncode == 1
    said = [line for line in result.stderr.splitlines() if "autograde is turned off" in line]
    assert len(said) == 1 and f"`rnn-course grade {TOY} --student alice`" in said[0]
    assert "Removing existing" not in result.stderr
    assert records(graded) == before


def test_formgraders_autograde_button_refuses_and_deletes_nothing(graded):
    """Formgrader's button calls NbGraderAPI.autograde, with the course's nbgrader_config.py."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from autograder.core.course import Course

    config = Course.find(graded).config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    before = records(graded)
    result = api.autograde(TOY, "bob")
    assert result["success"] is False
    assert f"`rnn-course grade {TOY} --student bob`" in result["log"]
    assert records(graded) == before
    assert api.generate_feedback(TOY)["success"]  # nbgrader's other converters still run
    assert (graded / "feedback" / "bob" / TOY / f"{TOY}.html").is_file()


def test_nbgraders_other_commands_still_work(graded):
    assert nbgrader("generate_assignment", TOY, "--force", cwd=graded).returncode == 0
    listed = nbgrader("db", "student", "list", cwd=graded)
    assert listed.returncode == 0 and "alice" in listed.stdout and "bob" in listed.stdout
    assert nbgrader("export", cwd=graded).returncode == 0
    exported = pd.read_csv(graded / "grades.csv")
    assert list(exported.columns) == EXPORT_COLUMNS and set(exported["status"]) == {"graded"}


# ------------------------------------------------------------------- a lost record


def test_feedback_and_grade_restore_a_deleted_record(graded, capsys):
    set_hand_grade(graded, "alice", 2.0, "Right: one step per number.")
    folder = graded / "autograded" / "alice" / TOY
    kept = {name: (folder / name).read_bytes() for name in ("grading.json", f"{TOY}.ipynb")}
    capsys.readouterr()

    shutil.rmtree(folder)
    assert cli.main(["--course", str(graded), "feedback", TOY]) == 0
    assert "restored the record of alice" in capsys.readouterr().out
    assert {name: (folder / name).read_bytes() for name in kept} == kept
    assert (folder / "results.json").is_file()
    assert "one step per number" in (folder / "feedback.html").read_text()

    shutil.rmtree(folder)
    assert cli.main(grade_argv(graded)) == 0
    out = capsys.readouterr().out
    assert "restored the record of alice" in out and "skipped (already graded) 2" in out
    tests = json.loads((folder / "results.json").read_text())["tests"]
    by_hand = [test for test in tests if test["name"] == "Graded by hand: report"]
    assert [(test["score"], test["output"]) for test in by_hand] == [
        (2.0, "Right: one step per number.")
    ]


def test_a_record_gone_with_its_copy_is_named(graded, capsys):
    for folder in (graded / "autograded" / "alice", graded / ".records" / "alice"):
        shutil.rmtree(folder)
    capsys.readouterr()
    assert cli.main(["--course", str(graded), "feedback", TOY]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "record of alice's toy_sum is gone" in errors[0]
    assert f"`rnn-course grade {TOY} --student alice`" in errors[0]

    assert cli.main(grade_argv(graded, "--student", "bob")) == 1  # alice is not regraded
    assert "record of alice's toy_sum is gone" in capsys.readouterr().err
    assert cli.main(grade_argv(graded)) == 0
    assert "graded again, their record gone with its copy: alice" in capsys.readouterr().out
    assert (graded / "autograded" / "alice" / TOY / "grading.json").is_file()


# ------------------------------------------------------------------- grade --out DIR


@pytest.mark.parametrize("command", ["grade", "feedback"])
def test_out_pointing_at_a_file(course, tmp_path, capsys, command):
    (tmp_path / "results").write_text("not a folder")
    argv = ["--course", str(course), command, TOY, "--out", str(tmp_path / "results")]
    assert cli.main(argv) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        f"rnn-course: --out {tmp_path / 'results'} is a file: give a folder for the results"
    ]


def test_nbgrader_export_in_the_output_folder(output):
    """The course's columns and late policy; the same totals as grades_by_check.csv."""
    result = nbgrader("export", cwd=output)
    assert result.returncode == 0, result.stderr
    exported = pd.read_csv(output / "grades.csv")
    assert list(exported.columns) == EXPORT_COLUMNS
    exported = exported.set_index("student_id")
    ours = pd.read_csv(output / "grades_by_check.csv").set_index("student")
    assert exported.loc[["alice", "bob"], "status"].tolist() == ["graded", "graded"]
    assert (
        exported.loc[["alice", "bob"], "score"].tolist()
        == ours.loc[["alice", "bob"], "total"].tolist()
    )
    assert exported.loc["alice", "late_submission_penalty"] == 0.75  # the course's late policy
    assert exported.loc["alice", "score"] == 0.25


def test_nbgrader_export_in_the_course_with_the_output_folders_gradebook(course, output, tmp_path):
    database = f"sqlite:///{output / 'gradebook.db'}"
    to = tmp_path / "grades.csv"
    result = nbgrader("export", "--db", database, "--to", str(to), cwd=course)
    assert result.returncode == 0, result.stderr
    exported = pd.read_csv(to).set_index("student_id")
    assert exported.loc[["alice", "bob"], "status"].tolist() == ["graded", "graded"]
    assert exported.loc["alice", "score"] == 0.25


def test_rnn_course_says_an_output_folder_is_not_the_course(output, capsys):
    assert cli.main(["--course", str(output), "feedback", TOY]) == 1
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert "is the output folder of `rnn-course grade --out`, not a course folder" in error


def test_the_time_formgrader_compares_is_the_gradebooks(tmp_path):
    from nbgrader.utils import parse_utc

    from autograder.core.course import CONFIG_FILE, OUTPUT_CONFIG, Results
    from autograder.term.nbgrader_tools import mirror_timestamp

    results = Results(tmp_path)
    when = datetime(2025, 3, 3, 12, 0, 1, 250)
    mirror_timestamp(results, "ann", TOY, when)  # not an output folder: nothing
    assert not (tmp_path / "submitted").exists()
    (tmp_path / CONFIG_FILE).write_text(f"{OUTPUT_CONFIG}\n")
    mirror_timestamp(results, "ann", TOY, when)
    assert parse_utc((tmp_path / "submitted" / "ann" / TOY / "timestamp.txt").read_text()) == when
    submission = tmp_path / "submitted" / "bob" / TOY  # a submission graded in place
    submission.mkdir(parents=True)
    (submission / f"{TOY}.ipynb").write_text("{}")
    (submission / "timestamp.txt").write_text("2025-03-01 10:00:00 UTC")
    mirror_timestamp(results, "bob", TOY, when)
    assert (submission / "timestamp.txt").read_text() == "2025-03-01 10:00:00 UTC"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def formgrader(output, tmp_path):
    """A Jupyter server with nbgrader's formgrader, started in the output folder:
    a function that GETs a path of its REST API."""
    port, token = free_port(), "rnn-course-test"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
        ],
        cwd=output,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def get(path: str):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    try:
        for _ in range(240):  # until the server answers (or has died)
            try:
                get("/api/status")
                break
            except OSError:
                assert server.poll() is None, "the Jupyter server stopped"
                time.sleep(0.5)
        yield get
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_formgrader_lists_the_output_folders_submissions(formgrader, output):
    ours = pd.read_csv(output / "grades_by_check.csv").set_index("student")
    submissions = {
        entry["student"]: entry for entry in formgrader(f"/formgrader/api/submissions/{TOY}")
    }
    assert sorted(submissions) == ["alice", "bob"]
    for student, entry in submissions.items():
        assert entry["autograded"] and entry["submitted"]
        assert entry["score"] == ours.loc[student, "autograded"]
        assert entry["display_timestamp"] == TIMES[student]
    (assignment,) = formgrader("/formgrader/api/assignments")
    assert (assignment["name"], assignment["num_submissions"]) == (TOY, 2)
    alice = formgrader(f"/formgrader/api/submission/{TOY}/alice")
    assert alice["autograded"] and alice["score"] == ours.loc["alice", "autograded"]
