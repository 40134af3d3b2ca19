"""The Gradescope zip built with otter: one assignment only, scoring as ``rnn-course grade`` does.

Also the wheels it holds (and the one students get): built from a clean copy of their
project, never from what an earlier build left in its ``build/`` folder.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from assignments.data import locate
from autograder.authoring import gradescope
from autograder.core import spec as specs
from autograder.core.course import Results
from autograder.grading import record
from autograder.term import gradebook

ROOT = Path(__file__).resolve().parents[3]
ASSIGNMENT = "a1_imdb_sentiment"
SMALL = "a3_timeseries_forecasting"  # the assignment with the smallest data
DAN = ROOT / "tests/files" / ASSIGNMENT / "submitted/dan" / ASSIGNMENT
needs_data = pytest.mark.skipif(
    not os.environ.get("RNN_COURSE_DATA"), reason="needs the data mirror (RNN_COURSE_DATA)"
)


@needs_data
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


# --------------------------------------------------------------------------- what the zip holds


@pytest.fixture(scope="module")
def small_zip(tmp_path_factory):
    if not os.environ.get("RNN_COURSE_DATA"):
        pytest.skip("needs the data mirror (RNN_COURSE_DATA)")
    archive = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    with zipfile.ZipFile(gradescope.build(specs.load(SMALL), archive)) as bundle:
        yield bundle


def wheel_names(bundle: zipfile.ZipFile, distribution: str) -> list[str]:
    [name] = [n for n in bundle.namelist() if n.startswith(f"files/{distribution}-")]
    with zipfile.ZipFile(io.BytesIO(bundle.read(name))) as wheel:
        return wheel.namelist()


def test_zip_holds_one_assignment_and_nothing_of_the_solutions(small_zip):
    grader = wheel_names(small_zip, "rnn_course")
    everything = small_zip.namelist() + grader + wheel_names(small_zip, "rnn_course_student")
    parts = [PurePosixPath(name).parts for name in everything]
    assert not [p for p in parts if any(part.startswith("solutions") for part in p)]
    assert not [name for name in everything if name.endswith(".ipynb")]  # no source notebook
    plugins = {p[2] for p in parts if p[:2] == ("autograder", "plugins") and len(p) > 3}
    assert plugins == {SMALL}
    spec = specs.load(SMALL)
    for own in sorted(spec.folder.glob("*.*")):
        assert f"autograder/plugins/{SMALL}/{own.name}" in grader
    for other in set(specs.available()) - {SMALL}:
        assert not [name for name in everything if f"plugins/{other}" in name]


def test_zip_gives_the_notebook_the_student_view_and_the_checks_the_data_sets(small_zip):
    spec = specs.load(SMALL)
    published = {locate(name) for name in spec.datasets}
    checks_data = {n for n in small_zip.namelist() if n.startswith(f"{gradescope.GRADER_DATA}/")}
    assert checks_data == {f"{gradescope.GRADER_DATA}/{path.name}" for path in published}
    for path in published:
        whole = set(path.read_bytes().splitlines())
        seen = set(small_zip.read(f"files/{gradescope.VIEW}/{path.name}").splitlines())
        assert seen < whole  # the series up to the cut-off only
        assert small_zip.read(f"{gradescope.GRADER_DATA}/{path.name}") == path.read_bytes()
    config = json.loads(small_zip.read("otter_config.json"))
    assert config["plugins"] == ["autograder.authoring.gradescope.CourseData"]


def test_the_grader_tree_holds_every_engine_module_and_one_plugin(tmp_path):
    def modules(engine: Path) -> set[Path]:
        found = {path.relative_to(engine) for path in engine.rglob("*.py")}
        return {path for path in found if path.parts[0] != "plugins"}

    tree = gradescope.grader_tree(specs.load(SMALL), tmp_path / "grader") / "autograder"
    assert modules(tree) == modules(gradescope.ENGINE)
    assert Path("grading", "sandbox", "driver.py") in modules(tree)
    assert {path.name for path in (tree / "plugins").iterdir()} == {"pytest.ini", SMALL}


def test_hidden_checks_import_nothing_of_the_solutions():
    for folder in sorted(specs.BUILTIN_PLUGINS.iterdir()):
        for path in sorted(folder.glob("check_*.py")) + sorted(folder.glob("conftest.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [alias.name for alias in getattr(node, "names", [])]
                module = [node.module or ""] if isinstance(node, ast.ImportFrom) else names
                assert not [m for m in module if m.split(".")[0] == "solutions"], path


def test_a1_reference_layout_counts_the_weights_of_the_solution():
    from solutions.a1_imdb_sentiment import build_model

    path = specs.load(ASSIGNMENT).folder / "conftest.py"
    module_spec = importlib.util.spec_from_file_location("a1_checks_conftest", path)
    conftest = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(conftest)
    for cell_type in ("simple_rnn", "lstm", "gru"):
        for sizes in (
            {"vocab_size": 1000, "embedding_dim": 8, "units": 16},
            {
                "vocab_size": 20_000,
                "embedding_dim": 64,
                "units": 3,
            },
        ):
            ours = conftest.reference_model(cell_type, **sizes)
            theirs = build_model(cell_type, **sizes)
            assert ours.count_params() == theirs.count_params()
            assert ours.layers[1].count_params() == theirs.layers[1].count_params()


# --------------------------------------------------------------------------- clean wheels


def test_wheel_never_packs_a_stale_build_file(tmp_path):
    project = tmp_path / "assignments"
    shutil.copytree(ROOT / "assignments", project, ignore=gradescope.BUILD_LEFTOVERS)
    stale = project / "build" / "lib" / "assignments" / "stale_answers.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("ANSWER = 42\n")
    with zipfile.ZipFile(gradescope.build_wheel(project, tmp_path)) as wheel:
        names = wheel.namelist()
    assert "assignments/data.py" in names
    assert "assignments/stale_answers.py" not in names
    assert stale.is_file()  # the project's own folder is left as it was


def test_student_wheel_tool(tmp_path):
    tool = [sys.executable, str(ROOT / "tools" / "build_student_wheel.py")]
    done = subprocess.run([*tool, str(tmp_path / "dist")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "dist").glob("rnn_course_student-*.whl")
    assert done.stdout.strip() == str(wheel)
    (tmp_path / "file").write_text("")
    wrong = subprocess.run([*tool, str(tmp_path / "file")], capture_output=True, text=True)
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- scoring


@needs_data
@pytest.mark.long  # a fresh virtual environment and an otter run: make test-long
def test_otter_run_of_the_zip_matches_grade(tmp_path):
    archive = gradescope.build(specs.load(ASSIGNMENT), tmp_path / "autograder.zip")
    names = zipfile.ZipFile(archive).namelist()
    assert {"run_autograder", "setup.sh", "tests/test_export.py"} <= set(names)

    # an environment with the zip's two wheels and the third-party packages, nothing else
    installed = tmp_path / "installed"
    with zipfile.ZipFile(archive) as bundle:
        for name in names:
            if name.startswith("files/") and name.endswith(".whl"):
                zipfile.ZipFile(io.BytesIO(bundle.read(name))).extractall(installed)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = venv.glob("lib/python*/site-packages")
    (site / "zip.pth").write_text(f"{installed}\n{sysconfig.get_paths()['purelib']}\n")
    python = venv / "bin" / "python"
    isolated = subprocess.run([python, "-c", "import solutions"], cwd=tmp_path, capture_output=True)
    assert isolated.returncode != 0, "the test environment must not see the project's solutions"

    (tmp_path / "otter").mkdir()
    notebook = tmp_path / "otter" / f"{ASSIGNMENT}.ipynb"
    shutil.copyfile(DAN / notebook.name, notebook)
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    command = [python, "-m", "otter", "run", "-a", archive, "-o", tmp_path / "otter", "--no-logo"]
    subprocess.run(
        [*map(str, command), str(notebook)],
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
