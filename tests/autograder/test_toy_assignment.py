"""A test-only assignment, declared in tests/files/toy_course, graded by the unchanged engine.

The toy course is a course folder of its own (``nbgrader_config.py``, ``source/``,
``plugins/toy_sum/`` with the spec, the plugin and the hidden checks): released,
graded and calibrated through the same commands as the course's assignments.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import autograder
from autograder import cli
from autograder.core.course import Results
from autograder.core.results import RUN_STATUSES

TOY_COURSE = Path(__file__).resolve().parents[1] / "files" / "toy_course"
ID = "toy_sum"
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A copy of the toy course with its release generated."""
    root = tmp_path_factory.mktemp("toy") / "course"
    shutil.copytree(TOY_COURSE, root)
    assert cli.main(["--course", str(root), "release", ID]) == 0
    return root


def solved(course: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(course / "source" / ID / f"{ID}.ipynb", as_version=4)
    for cell in notebook.cells:
        cell.source = MARKER.sub("", cell.source)
    return notebook


@pytest.fixture(scope="module")
def graded(course) -> tuple[Results, str]:
    """A class of five: a solution, the empty release (once with a model trained elsewhere),
    a broken zip, an oversized submission."""
    submitted = course / "submitted"
    for student, notebook in (
        ("alice", solved(course)),
        ("carol", nbformat.read(course / "release" / ID / f"{ID}.ipynb", as_version=4)),
    ):
        (submitted / student / ID).mkdir(parents=True)
        nbformat.write(notebook, submitted / student / ID / f"{ID}.ipynb")
    (submitted / "bob.zip").write_bytes(b"this is not a zip archive")
    shutil.copytree(submitted / "carol", submitted / "erin")
    trained_elsewhere(submitted / "erin" / ID / "models")
    (submitted / "dave" / ID).mkdir(parents=True)
    nbformat.write(solved(course), submitted / "dave" / ID / f"{ID}.ipynb")
    with open(submitted / "dave" / ID / "padding.bin", "wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB apparent, nothing on disk
    process = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", ID, "--jobs", "2", "--no-progress"],
        cwd=course,
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return Results(course), process.stdout


def trained_elsewhere(folder: Path) -> None:
    """A good model and its history, shipped beside a notebook that trains nothing."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((2000, 5, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((5, 1)), keras.layers.SimpleRNN(8), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, x.sum(axis=(1, 2)), epochs=15, batch_size=64, verbose=0)
    folder.mkdir(parents=True)
    model.save(folder / "rnn.keras")
    (folder / "history.json").write_text(json.dumps({"rnn": history.history}))


def outcome(results: Results, student: str) -> dict:
    return json.loads(results.grading_file(student, ID).read_text())


def test_the_engine_grades_a_new_assignment(graded):
    results, output = graded
    assert "graded 3, rejected 2, failed 0" in output
    assert outcome(results, "alice")["score"] == 4
    mae = next(c for c in outcome(results, "alice")["checks"] if c["name"] == "test_mae")
    assert mae["model"] == "rnn" and 0 <= mae["value"] <= 0.25  # measured, for the report
    assert outcome(results, "carol")["score"] == 0
    assert "NotImplementedError" in outcome(results, "carol")["message"]
    page = (results.feedback("alice", ID) / "feedback.html").read_text()
    assert "data:image/png;base64," in page and "by hand" not in page


def test_models_shipped_with_an_executed_notebook_are_ignored(graded):
    results, _ = graded
    erin = outcome(results, "erin")
    assert erin["score"] == 0
    assert any("ignored 2 model file(s)" in note for note in erin["notes"])
    assert "models/rnn.keras" in (results.feedback("erin", ID) / "feedback.html").read_text()


def test_a_bad_submission_fails_only_its_own_student(graded):
    results, _ = graded
    bob, dave = outcome(results, "bob"), outcome(results, "dave")
    assert bob["status"] == dave["status"] == "rejected"
    assert {bob["run"]["status"], dave["run"]["status"]} <= set(RUN_STATUSES)
    assert "bob.zip is not a readable zip file" in bob["message"]
    assert "over the limit of 2 MB" in dave["message"]
    assert dave["max_score"] == 4 and dave["score"] == 0


def test_the_instructor_releases_withheld_points(graded, tmp_path, capsys):
    """`rnn-course review` lists the points a check withheld, and releases them."""
    results, _ = graded
    root = tmp_path / "course"
    shutil.copytree(results.root, root)
    copy = Results(root)
    grading = copy.grading_file("alice", ID)
    recorded = json.loads(grading.read_text())
    check = recorded["checks"][0]
    check.update(points=0.0, withheld=check["points"], review="better on hidden data")
    grading.write_text(json.dumps(recorded))
    assert cli.main(["--course", str(root), "review", ID]) == 0
    assert f"alice: {check['withheld']:g} point(s), waiting" in capsys.readouterr().out
    assert cli.main(["--course", str(root), "review", ID, "--release", "carol"]) == 2
    assert "carol: no points of toy_sum withheld for review" in capsys.readouterr().err
    assert cli.main(["--course", str(root), "review", ID, "--release", "alice"]) == 0
    released = json.loads((copy.autograded("alice", ID) / "results.json").read_text())
    assert released["score"] == recorded["score"]  # as before the points were withheld
    assert cli.main(["--course", str(root), "review", ID]) == 0
    assert "released" in capsys.readouterr().out


def test_calibrate_writes_the_table_beside_the_course_plugin(course, capsys):
    assert cli.main(["--course", str(course), "calibrate", ID, "--seeds", "2"]) == 0
    calibration = json.loads((course / "plugins" / ID / "calibration.json").read_text())
    target, basic = calibration["thresholds"]["mae_rnn"], calibration["thresholds"]["mae_basic_rnn"]
    worst = max(run["value"] for run in calibration["runs"])
    assert target == pytest.approx(worst + 0.05, abs=1e-3)
    assert target < basic < calibration["baselines"]["predict_the_mean"]
    assert "| rnn |" in (course / "plugins" / ID / "calibration.md").read_text()


def test_the_engine_names_no_assignment():
    engine = Path(autograder.__file__).parent
    modules = [p for p in engine.rglob("*.py") if p.relative_to(engine).parts[0] != "plugins"]
    assert len(modules) > 40  # every group of the engine, not one folder
    named = [str(p.relative_to(engine)) for p in modules if "imdb" in p.read_text().lower()]
    assert named == []


def test_commands_outside_a_course_folder_say_so(tmp_path):
    process = subprocess.run(
        [sys.executable, "-m", "autograder", "release", ID],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert process.returncode == 1
    assert "is not a course folder (it has no nbgrader_config.py)" in process.stderr
    assert len(process.stderr.strip().splitlines()) == 1


def test_the_demo_grades_each_sample_class_and_reports_it(tmp_path):
    """`rnn-course demo` on a course of two assignments, each with a sample class, one
    with a student who has a limit of their own: the release, the grading of both classes
    in one run (the limit applied, a log each) and each class report."""
    root = tmp_path / "course"
    shutil.copytree(TOY_COURSE, root)
    second = "toy_sum_again"  # the toy assignment under a second id
    shutil.copytree(root / "source" / ID, root / "source" / second)
    shutil.copytree(root / "plugins" / ID, root / "plugins" / second)
    spec_file = root / "plugins" / second / "spec.toml"
    spec_file.write_text(spec_file.read_text().replace(f'id = "{ID}"', f'id = "{second}"'))
    classes = {ID: ("alice", "carol"), second: ("bob",)}
    for assignment, students in classes.items():
        sample = root / "tests" / "files" / assignment
        for student in students:
            (sample / "submitted" / student / assignment).mkdir(parents=True)
            nbformat.write(
                solved(root), sample / "submitted" / student / assignment / f"{ID}.ipynb"
            )
    sample = root / "tests" / "files" / ID
    never_ends = nbformat.read(sample / "submitted" / "carol" / ID / f"{ID}.ipynb", as_version=4)
    never_ends.cells.insert(
        1, nbformat.v4.new_code_cell("import time\nwhile True:\n    time.sleep(1)")
    )
    nbformat.write(never_ends, sample / "submitted" / "carol" / ID / f"{ID}.ipynb")
    (sample / "sample_class.toml").write_text(
        'description = "two students"\nnotebook_timeout_s = 300\n\n'
        "[student_timeouts]\ncarol = 5\n\n[expected]\nalice = 4\ncarol = 0\n"
    )
    (root / "tests" / "files" / second / "sample_class.toml").write_text(
        'description = "one student"\nnotebook_timeout_s = 300\n\n[expected]\nbob = 4\n'
    )
    process = subprocess.run(
        [sys.executable, "-m", "autograder", "--course", str(root), "demo"],
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    results = Results(root / "demo")
    assert outcome(results, "alice")["score"] == 4
    carol = outcome(results, "carol")
    assert (
        carol["run"]["status"] == "timeout"
        and "stopped after 15 s of wall-clock time" in carol["message"]
    )
    bob = json.loads(results.grading_file("bob", second).read_text())
    assert bob["score"] == 4
    for assignment, students in classes.items():
        assert f"== report: the class report of {assignment}" in process.stdout
        (log,) = results.logs.glob(f"{assignment}-*.log")
        assert f"graded {len(students)}, rejected 0, failed 0" in log.read_text()
        page = (root / "demo" / "reports" / assignment / "report.html").read_text()
        assert all(student in page for student in students)
