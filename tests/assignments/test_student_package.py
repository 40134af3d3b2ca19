"""The student wheel (``pip wheel ./assignments``) holds nothing of the grader's.

What must not leak is read from the grader's side at test time: the threshold
keys and calibrated values of every spec/calibration file, the names (and seeds)
of the hidden data selection, and every solution or hidden-test line of the
source notebooks. Then the wheel's metadata: no grading tool among the
requirements, and TensorFlow chosen per platform by environment markers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import nbformat
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autograder.authoring.release import hidden_lines

REPO = Path(__file__).resolve().parents[2]
STUDENT = REPO / "assignments"
GRADER_SIDE = ("autograder", "solutions")
#: Where thresholds live: the grader's plugins now, assignments/<id>/ before the move.
THRESHOLD_PLACES = ("autograder", "assignments")
#: The grading tiers every feedback page states, which the contracts publish for the check.
PUBLIC_TIERS = re.compile(
    r"(accuracy|bpc|mae_ratio)(_basic)?_\w+|aapl_(max_mae_ratio|max_mse_ratio|min_spread)"
)
HIDDEN_SELECTION = {"HIDDEN_TEST_SEED", "HIDDEN_TEST_SIZE", "hidden_test_indices", "student_view"}
GRADING_TOOLS = {
    "nbgrader",
    "otter-grader",
    "dask",
    "distributed",
    "pytest",
    "nbclient",
    "jupytext",
    "rnn-course",
}
PLATFORMS = {
    "Linux x86_64": {"sys_platform": "linux", "platform_machine": "x86_64"},
    "macOS arm64": {"sys_platform": "darwin", "platform_machine": "arm64"},
    "Windows": {"sys_platform": "win32", "platform_machine": "AMD64"},
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The student wheel, built from a clean copy of ``assignments/`` (no stale build/)."""
    scratch = tmp_path_factory.mktemp("student-wheel")
    source = scratch / "assignments"
    shutil.copytree(
        STUDENT, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(scratch)],
        check=True,
        capture_output=True,
    )
    [path] = scratch.glob("rnn_course_student-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def texts(wheel: zipfile.ZipFile) -> dict[str, str]:
    return {name: wheel.read(name).decode("utf-8", errors="replace") for name in wheel.namelist()}


def metadata(wheel: zipfile.ZipFile):
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(wheel.read(name).decode())


def test_only_student_files(wheel):
    names = wheel.namelist()
    for name in names:
        top = name.split("/")[0]
        assert top == "assignments" or re.fullmatch(r"rnn_course_student-[^/]+\.dist-info", top), (
            name
        )
        assert top not in ("solutions", "autograder", "source"), name
        filename = name.rsplit("/", 1)[-1]
        assert filename != "spec.toml", name
        assert not filename.startswith("calibration."), name
    for contract in STUDENT.glob("*/contract.toml"):
        assignment = contract.parent.name
        for needed in ("__init__.py", "helpers.py", "contract.toml"):
            assert f"assignments/{assignment}/{needed}" in names, (assignment, needed)
    assert {"assignments/data.py", "assignments/cli.py", "assignments/check.py"} <= set(names)


def _threshold_tables() -> dict[Path, dict]:
    tables = {}
    for place in THRESHOLD_PLACES:
        for path in (REPO / place).rglob("*.toml"):
            if "build" in path.parts:
                continue
            with open(path, "rb") as handle:
                table = tomllib.load(handle).get("thresholds")
            if isinstance(table, dict):
                tables[path] = table
        for path in (REPO / place).rglob("calibration*.json"):
            table = json.loads(path.read_text()).get("thresholds")
            if isinstance(table, dict):
                tables[path] = table
    return tables


def _distinctive(value) -> str | None:
    """A threshold value worth searching for: three significant digits or more (0.748, not 0.8)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    text = repr(value)
    digits = text.replace(".", "").replace("-", "").strip("0")
    return text if len(digits) >= 3 else None


def test_no_threshold(wheel):
    tables = _threshold_tables()
    assert tables, "no [thresholds] table or calibration.json found on the grader side"
    contents = texts(wheel)
    for source, table in tables.items():
        where = source.relative_to(REPO)
        for key, value in table.items():
            if PUBLIC_TIERS.fullmatch(key):
                continue
            key_pattern = re.compile(rf"\b{re.escape(key)}\b")
            leaked = [name for name, text in contents.items() if key_pattern.search(text)]
            assert not leaked, f"threshold key '{key}' of {where} in {leaked}"
            number = _distinctive(value)
            if number:
                value_pattern = re.compile(rf"(?<![\w.]){re.escape(number)}(?![\d])")
                leaked = [name for name, text in contents.items() if value_pattern.search(text)]
                assert not leaked, f"threshold value {key} = {number} of {where} in {leaked}"


def _hidden_selection() -> tuple[set[str], set[str]]:
    """Names of the hidden data selection and its seeds, as the grader's code defines them."""
    names, seeds = set(HIDDEN_SELECTION), set()
    defined = re.compile(r"^(?:\s*def |class )?([A-Za-z_]\w*)\s*(?:[=(:]|$)", re.M)
    seed = re.compile(r"^\s*(\w*SEED\w*)\s*(?::[^=]+)?=\s*([\d_]{4,})\s*$", re.M)
    sources = [p for place in GRADER_SIDE for p in (REPO / place).rglob("*.py")]
    sources.append(STUDENT / "data.py")  # where the selection was before it moved
    for path in sources:
        text = path.read_text()
        for name in defined.findall(text):
            if "hidden" in name.lower() and "_" in name and not name.startswith("_"):
                names.add(name)
        for name, value in seed.findall(text):
            if "HIDDEN" in name.upper():
                names.add(name)
                seeds.add(value.replace("_", ""))
    return names, seeds


def test_no_hidden_data_selection(wheel):
    names, seeds = _hidden_selection()
    for name, text in texts(wheel).items():
        for hidden in names:
            assert not re.search(rf"\b{re.escape(hidden)}\b", text), f"'{hidden}' in {name}"
        flat = text.replace("_", "")
        for value in seeds:
            assert not re.search(rf"(?<!\d){value}(?!\d)", flat), f"hidden seed in {name}"


def _lines(text: str) -> set[str]:
    """Stripped lines long enough to be specific, as the release's leak check counts them."""
    return {line.strip() for line in text.splitlines() if len(line.strip()) >= 12}


def test_no_solution_line(wheel):
    notebooks = sorted((REPO / "source").glob("*/*.ipynb"))
    assert notebooks
    secret = set()
    for notebook in notebooks:
        secret |= hidden_lines(nbformat.read(notebook, as_version=4))
    assert secret
    for name, text in texts(wheel).items():
        leaked = sorted(secret & _lines(text))
        assert not leaked, f"{name} holds solution or hidden-test lines, e.g. {leaked[0]!r}"


def test_metadata_requires_no_grading_tool_and_picks_tensorflow_per_platform(wheel):
    meta = metadata(wheel)
    assert meta["Name"] == "rnn-course-student"
    requirements = [Requirement(line) for line in meta.get_all("Requires-Dist")]
    names = {canonicalize_name(req.name) for req in requirements}
    assert not names & GRADING_TOOLS, names & GRADING_TOOLS
    assert {"keras", "numpy", "pandas", "matplotlib"} <= names
    tensorflow = [r for r in requirements if canonicalize_name(r.name).startswith("tensorflow")]
    assert tensorflow and all(req.marker for req in tensorflow), [str(r) for r in tensorflow]
    for platform, env in PLATFORMS.items():
        chosen = [
            canonicalize_name(req.name)
            for req in tensorflow
            if req.marker.evaluate({**default_environment(), **env})
        ]
        expected = "tensorflow-cpu" if platform == "Linux x86_64" else "tensorflow"
        assert chosen == [expected], (platform, chosen)


def test_console_script(wheel):
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    entry_points = wheel.read(name).decode()
    assert re.search(r"^rnn-course-student = assignments\.cli:main$", entry_points, re.M)


def test_version_matches_the_grader():
    with open(REPO / "pyproject.toml", "rb") as handle:
        grader = tomllib.load(handle)["project"]
    with open(STUDENT / "pyproject.toml", "rb") as handle:
        student = tomllib.load(handle)["project"]
    assert f"rnn-course-student=={student['version']}" in grader["dependencies"]
    assert student["version"] == grader["version"]
