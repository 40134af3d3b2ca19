"""The command line: fast help, data commands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autograder import cli


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
    assert cli.main(["grade", "a1_imdb_sentiment", str(tmp_path), "--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "data set 'imdb' (aclImdb_v1_labeled.tar.gz) not found" in error


def test_unknown_assignment(capsys):
    assert cli.main(["grade", "a9_nothing"]) == 1
    assert "unknown assignment 'a9_nothing'" in capsys.readouterr().err
