"""The command line: fast help, data commands."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import cli
from autograder.cli import common

ROOT = Path(__file__).resolve().parents[3]
A1 = "a1_imdb_sentiment"


def test_help_imports_nothing_heavy():
    """--help stays fast because it imports no TensorFlow, Keras, nbgrader or pandas."""
    probe = (
        "import sys; from autograder import cli; cli.build_parser().format_help();"
        "heavy = ('tensorflow', 'keras', 'nbgrader', 'pandas');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_module_entry_point_prints_help():
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("data", "release", "demo"):
        assert command in result.stdout


def test_data_verify_reports_missing_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNN_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RNN_COURSE_DATA", "")  # restored afterwards: --data-dir overwrites it
    assert cli.main(["--data-dir", str(tmp_path / "empty"), "data", "verify"]) == 1
    out = capsys.readouterr().out
    assert "FAILED   imdb" in out and "0 of 6 data sets verified" in out


def test_data_fetch_copies_from_a_mirror(tmp_path, monkeypatch, capsys):
    import os

    mirror = os.environ.get("RNN_COURSE_DATA")
    if not mirror:
        pytest.skip("RNN_COURSE_DATA does not point at the course mirror")
    monkeypatch.setenv("RNN_COURSE_CACHE", str(tmp_path / "cache"))
    assert cli.main(["data", "fetch", "--to", str(tmp_path / "copy")]) == 0
    assert (tmp_path / "copy" / "AAPL.csv").exists()
    monkeypatch.setenv("RNN_COURSE_DATA", str(tmp_path / "copy"))
    assert cli.main(["data", "verify"]) == 0
    assert "6 of 6 data sets verified" in capsys.readouterr().out


def test_grading_without_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNN_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RNN_COURSE_OFFLINE", "1")
    monkeypatch.delenv("RNN_COURSE_DATA", raising=False)
    (tmp_path / "subs" / "alice" / A1).mkdir(parents=True)
    (tmp_path / "subs" / "alice" / A1 / f"{A1}.ipynb").write_text("{}")
    argv = ["--course", str(ROOT), "grade", A1, str(tmp_path / "subs"), "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert "data set 'imdb' (aclImdb_v1_labeled.tar.gz) not found" in error


def test_unknown_assignment(capsys):
    assert cli.main(["--course", str(ROOT), "grade", "a9_nothing"]) == 1
    assert "unknown assignment 'a9_nothing'; known: a1_imdb_sentiment" in capsys.readouterr().err


def test_release_of_an_unknown_assignment_lists_the_known_ones(capsys):
    assert cli.main(["--course", str(ROOT), "release", "a9_nothing"]) == 1
    assert "unknown assignment 'a9_nothing'; known: a1_imdb_sentiment" in capsys.readouterr().err


def one_line_error(argv: list[str], capsys, status: int = 1) -> str:
    assert cli.main(argv) == status
    captured = capsys.readouterr()
    assert "graded" not in captured.out  # nothing claims to have been graded
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def grade_argv(submissions) -> list[str]:
    return ["--course", str(ROOT), "grade", A1, str(submissions), "--no-progress"]


def test_a_missing_submissions_folder(tmp_path, capsys):
    error = one_line_error(grade_argv(tmp_path / "absent"), capsys)
    assert "does not exist" in error and "<student>" in error


def test_an_empty_submissions_folder(tmp_path, capsys):
    assert "is empty" in one_line_error(grade_argv(tmp_path), capsys)


def test_a_class_zip_instead_of_a_folder(tmp_path, capsys):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(f"alice/{A1}/{A1}.ipynb", "{}")
    assert "is a zip file, not a folder" in one_line_error(grade_argv(archive), capsys)


@pytest.mark.parametrize("depth", ["student", "submission"])
def test_one_students_folder_instead_of_the_class(tmp_path, capsys, depth):
    folder = tmp_path / "submitted" / "alice" / A1
    folder.mkdir(parents=True)
    (folder / f"{A1}.ipynb").write_text("{}")
    given = folder.parent if depth == "student" else folder
    assert "one student's" in one_line_error(grade_argv(given), capsys)


def test_outside_a_course_folder(tmp_path, capsys):
    error = one_line_error(["--course", str(tmp_path), "grade", A1], capsys)
    assert "is not a course folder" in error and "--course DIR" in error


@pytest.mark.parametrize("jobs", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_number(capsys, jobs):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["grade", A1, "--jobs", jobs])
    assert stopped.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def test_gradescope_into_a_missing_folder(tmp_path, capsys):
    argv = ["--course", str(ROOT), "gradescope", A1, "--out", str(tmp_path / "no" / "a.zip")]
    assert "does not exist" in one_line_error(argv, capsys, status=2)


@pytest.mark.parametrize("value", ["eve", "eve=", "=30", "eve=0", "eve=soon"])
def test_a_student_timeout_is_name_equals_seconds(capsys, value):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["grade", A1, "--student-timeout", value])
    assert stopped.value.code == 2
    assert "--student-timeout" in capsys.readouterr().err


def test_a_student_timeout_for_a_student_without_a_submission(tmp_path, capsys):
    folder = tmp_path / "alice" / A1
    folder.mkdir(parents=True)
    (folder / f"{A1}.ipynb").write_text("{}")
    error = one_line_error([*grade_argv(tmp_path), "--student-timeout", "alcie=30"], capsys)
    assert "alcie" in error and "no submission" in error


# ----------------------------------------------------------------- a class of the toy course

TOY = "toy_sum"


@pytest.fixture(scope="module")
def toy_class(tmp_path_factory) -> Path:
    """The toy course with a hand-graded report, graded without execution: alice ships a model
    with a SimpleRNN (1 point), bob nothing (0)."""
    import shutil

    import keras
    import nbformat

    root = tmp_path_factory.mktemp("toy") / "course"
    shutil.copytree(ROOT / "tests" / "files" / "toy_course", root)
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
    for student in ("alice", "bob"):
        folder = root / "submitted" / student / TOY
        folder.mkdir(parents=True)
        nbformat.write(released, folder / f"{TOY}.ipynb")
    model = keras.Sequential(
        [keras.Input((5, 1)), keras.layers.SimpleRNN(2), keras.layers.Dense(1)]
    )
    (root / "submitted" / "alice" / TOY / "models").mkdir()
    model.save(root / "submitted" / "alice" / TOY / "models" / "rnn.keras")
    (root / "submitted" / "bob" / TOY / "timestamp.txt").write_text("2025-03-01 12:00:00 UTC")
    assert cli.main(["--course", str(root), "grade", TOY, "--no-execute", "--no-progress"]) == 0
    return root


def toy_grade(root: Path, *argv: str) -> list[str]:
    return ["--course", str(root), "grade", TOY, "--no-execute", "--no-progress", *argv]


def set_hand_grade(root: Path, student: str, points: float, comment: str) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as book:
        grade = book.find_grade("report", TOY, TOY, student)
        grade.manual_score, grade.needs_manual_grade = points, False
        book.find_comment("report", TOY, TOY, student).manual_comment = comment
        book.db.commit()


def test_feedback_merges_the_hand_grades(toy_class, capsys):
    import json

    import pandas as pd

    capsys.readouterr()
    set_hand_grade(toy_class, "alice", 2.0, "Right: one step per number.")
    assert cli.main(["--course", str(toy_class), "feedback", TOY]) == 0
    out = capsys.readouterr().out
    assert "still to grade by hand in formgrader: bob (report)" in out
    assert "merged the hand grades of 2 submission(s)" in out
    page = (toy_class / "feedback" / "alice" / TOY / "feedback.html").read_text()
    assert "<h1>toy_sum: 3 / 6</h1>" in page and "Right: one step per number." in page
    results = json.loads((toy_class / "autograded" / "alice" / TOY / "results.json").read_text())
    assert results["score"] == 3
    grades = pd.read_csv(toy_class / "grades_by_check.csv").set_index("student")
    assert grades.loc["alice", ["autograded", "manual", "total", "max"]].tolist() == [1, 2, 3, 6]
    assert grades.loc["bob", "timestamp"] == "2025-03-01 12:00:00"


def set_override(root: Path, student: str, points: float | None) -> None:
    """Rescore the autograded cell of ``student`` by hand (None: undo it)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as book:
        book.find_grade("test_toy", TOY, TOY, student).manual_score = points
        book.db.commit()


def test_one_total_everywhere_with_hand_grades_and_adjustments(toy_class, capsys):
    """The console's table, grades_by_check.csv, the class report and the student's page give
    the same parts and the same total."""
    import pandas as pd

    set_hand_grade(toy_class, "alice", 2.0, "Right.")
    set_override(toy_class, "alice", 0.5)  # autograded 1 -> 0.5 by hand
    try:
        capsys.readouterr()
        assert cli.main(["--course", str(toy_class), "feedback", TOY]) == 0
        console = capsys.readouterr().out.splitlines()
        assert cli.main(["--course", str(toy_class), "report", TOY]) == 0
        csv = pd.read_csv(toy_class / "grades_by_check.csv").set_index("student")
        report = pd.read_csv(toy_class / "reports" / TOY / "scores.csv").set_index("student")
        page = (toy_class / "feedback" / "alice" / TOY / "feedback.html").read_text()
    finally:
        set_override(toy_class, "alice", None)
        assert cli.main(["--course", str(toy_class), "feedback", TOY]) == 0
    header = next(line.split() for line in console if line.split()[:2] == ["student", "status"])
    assert header == [
        "student",
        "status",
        "autograded",
        "manual",
        "adjustments",
        "late_penalty",
        "total",
        "max",
    ]
    alice = next(line.split() for line in console if line.split()[:1] == ["alice"])
    parts = [1.0, 2.0, -0.5, 0.0, 2.5, 6.0]
    assert alice[1] == "graded" and [float(x) for x in alice[2:]] == parts
    columns = ["autograded", "manual", "adjustments", "late_penalty", "total", "max"]
    assert csv.loc["alice", columns].tolist() == parts
    assert report.loc["alice", columns].tolist() == parts
    assert "<h1>toy_sum: 2.5 / 6</h1>" in page
    assert "-0.5 points: &#x27;test_toy&#x27; rescored by hand: 1 -&gt; 0.5" in page


def test_the_grade_table_says_what_a_graded_run_went_through(tmp_path, capsys):
    import json

    from autograder.core.course import Results
    from autograder.core.results import Outcome

    results = Results(tmp_path)
    runs = {"ann": "ok", "eve": "timeout", "fay": "crashed", "gus": "rejected"}
    rows = ["student,assignment,status,autograded,manual,adjustments,late_penalty,total,max"]
    for student, run in runs.items():
        status = "rejected" if run == "rejected" else "graded"
        outcome = Outcome(student, TOY, "d", status, run={"status": run})
        path = results.grading_file(student, TOY)
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(outcome.to_json()))
        rows.append(f"{student},{TOY},{status},1,0,0,0,1,4")
    results.grades_csv.write_text("\n".join(rows) + "\n")
    common.print_grades(results, TOY)
    lines = capsys.readouterr().out.splitlines()[1:]
    status = {line.split()[0]: " ".join(line.split()[1:-6]) for line in lines}
    assert status == {
        "ann": "graded",
        "eve": "graded (notebook timed out)",
        "fay": "graded (notebook crashed)",
        "gus": "rejected",
    }


def test_a_forced_regrade_keeps_the_hand_grade_of_an_unchanged_answer(toy_class, capsys):
    from nbgrader.api import Gradebook

    set_hand_grade(toy_class, "bob", 1.0, "Which layer?")
    assert cli.main(toy_grade(toy_class, "--force")) == 0

    with Gradebook(f"sqlite:///{toy_class / 'gradebook.db'}") as book:
        grade = book.find_grade("report", TOY, TOY, "bob")
        assert (grade.manual_score, grade.needs_manual_grade) == (1.0, False)
    assert "Which layer?" in (toy_class / "feedback" / "bob" / TOY / "feedback.html").read_text()


def test_regrading_one_student_says_what_changed_and_logs_the_run(toy_class, capsys):
    import json

    bob = toy_class / "autograded" / "bob" / TOY / "grading.json"
    bob_before = bob.read_text()
    history = toy_class / ".records" / "alice" / TOY / "history"
    kept_before = len(list(history.glob("*.json")))
    (toy_class / "submitted" / "alice" / TOY / "models" / "rnn.keras").unlink()
    capsys.readouterr()
    assert cli.main(toy_grade(toy_class, "--student", "alice")) == 0
    out = capsys.readouterr().out
    changes = out.split("scores this run changed:\n")[1].splitlines()
    assert changes[0].split() == ["student", "old", "new", "why"]
    student, old, new, *why = changes[1].split()
    assert (student, float(old) - float(new), " ".join(why)) == (
        "alice",
        1,
        "test_recurrent 1 -> 0",
    )
    assert "graded 1, rejected 0, failed 0, skipped (already graded) 0" in out
    assert bob.read_text() == bob_before  # only alice
    kept = sorted(history.glob("*.json"))
    assert len(kept) == kept_before + 1 and json.loads(kept[-1].read_text())["score"] == 1
    log = Path(out.split("log:")[1].split()[0])
    assert log.parent == toy_class / "logs" and log.name.startswith(f"{TOY}-")
    text = log.read_text()
    assert "students alice" in text and "graded   alice 0 / 4" in text
    assert "test_recurrent 1 -> 0" in text and "graded 1, rejected 0" in text


def test_regrading_a_student_without_a_submission(toy_class, capsys):
    error = one_line_error(toy_grade(toy_class, "--student", "alcie"), capsys)
    assert "a regrade names alcie, who has no submission" in error


def test_feedback_before_grading_or_for_an_unknown_student(toy_class, tmp_path, capsys):
    argv = ["--course", str(toy_class), "feedback", TOY]
    assert "nothing of toy_sum is graded" in one_line_error(
        [*argv, "--out", str(tmp_path)], capsys, 2
    )
    assert "alcie has no graded toy_sum" in one_line_error([*argv, "--student", "alcie"], capsys, 2)
