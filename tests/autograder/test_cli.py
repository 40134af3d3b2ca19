"""The command line: fast help, data commands."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import cli

ROOT = Path(__file__).resolve().parents[2]
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
