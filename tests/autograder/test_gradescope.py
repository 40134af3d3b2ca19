"""The Gradescope zip built with otter scores a submission as ``rnn-course grade`` does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import gradebook, gradescope, record
from autograder import spec as specs
from autograder.course import Results

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "a1_imdb_sentiment"
DAN = ROOT / "tests/files" / ASSIGNMENT / "submitted/dan" / ASSIGNMENT

pytestmark = pytest.mark.skipif(
    not os.environ.get("RNN_COURSE_DATA"), reason="needs the data mirror (RNN_COURSE_DATA)"
)


def test_test_file_has_one_case_per_check():
    checks = [
        c
        for c in gradescope.check_list(specs.load(ASSIGNMENT))
        if c.grade_cell == "test_build_model"
    ]
    source = gradescope.test_file("test_build_model", ASSIGNMENT, checks)
    namespace: dict = {}
    exec(compile(source, "test_build_model.py", "exec"), namespace)
    cases = [v for k, v in namespace.items() if k.startswith("case_")]
    assert len(cases) == len(checks) == 3
    assert namespace["points"] == 3.0 and namespace["OK_FORMAT"] is False


def test_otter_run_of_the_zip_matches_grade(tmp_path):
    archive = gradescope.build(specs.load(ASSIGNMENT), tmp_path / "autograder.zip")
    names = zipfile.ZipFile(archive).namelist()
    assert {"run_autograder", "setup.sh", "tests/test_export.py"} <= set(names)
    assert any(name.startswith("files/rnn_course-") for name in names)
    assert any(name.startswith("files/rnn_course_student-") for name in names)

    (tmp_path / "otter").mkdir()
    notebook = tmp_path / "otter" / f"{ASSIGNMENT}.ipynb"
    shutil.copyfile(DAN / notebook.name, notebook)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [
            str(bin_dir / "otter"),
            "run",
            "-a",
            str(archive),
            "-o",
            str(tmp_path / "otter"),
            "--no-logo",
            str(notebook),
        ],
        check=True,
        env=env,
        capture_output=True,
        cwd=tmp_path / "otter",
    )
    otter = json.loads((tmp_path / "otter" / "results.json").read_text())
    otter_cells = {t["name"]: t["score"] for t in otter["tests"] if "score" in t}

    subs = tmp_path / "subs" / "dan" / ASSIGNMENT
    shutil.copytree(DAN, subs)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "--course",
            str(ROOT),
            "grade",
            ASSIGNMENT,
            str(tmp_path / "subs"),
            "--out",
            str(tmp_path / "ours"),
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    ours = record.recorded(Results(tmp_path / "ours"), "dan", ASSIGNMENT)
    assert otter_cells == gradebook.cell_scores(ours)
    assert otter_cells["test_build_model"] == 3.0
