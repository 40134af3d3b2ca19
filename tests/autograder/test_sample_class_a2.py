"""The sample class of assignment 2, graded end to end by ``rnn-course grade``.

Eight golden submissions (``tests/files/a2_text_generation/make_sample_class.py``):
the reference trained briefly, a weak but honest one, the empty release, a Dense
n-gram model without recurrence, a sampler that ignores the temperature, one that
returns ids outside the vocabulary, a kernel that dies and a notebook that never
ends. One batch grades them all; each must get its expected score and a message
that says why. (The engine's own behaviour, resume, Dask, hostile code, is tested
on assignment 1's class.)
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from autograder import spec as specs
from autograder.course import Results

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "a2_text_generation"
FILES = ROOT / "tests" / "files" / ASSIGNMENT
CLASS = FILES / "submitted"
SETTINGS = tomllib.loads((FILES / "sample_class.toml").read_text())
TIMEOUT_S = SETTINGS["notebook_timeout_s"]
STUDENT_TIMEOUTS = SETTINGS["student_timeouts"]
EXPECTED_TOTALS = SETTINGS["expected"]
MAX_SCORE = 39

pytestmark = pytest.mark.skipif(
    not os.environ.get("RNN_COURSE_DATA"), reason="needs the data mirror (RNN_COURSE_DATA)"
)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("class_a2")
    command = [
        sys.executable,
        "-m",
        "autograder",
        "--course",
        str(ROOT),
        "grade",
        ASSIGNMENT,
        str(CLASS),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--timeout",
        str(TIMEOUT_S),
        *(f"--student-timeout={name}={s}" for name, s in STUDENT_TIMEOUTS.items()),
        "--no-progress",
    ]
    process = subprocess.run(command, capture_output=True, text=True)
    assert process.returncode == 0, process.stdout + process.stderr
    return out, process.stdout


def outcome(out: Path, student: str) -> dict:
    return json.loads((out / "autograded" / student / ASSIGNMENT / "grading.json").read_text())


def checks(out: Path, student: str) -> dict[str, dict]:
    return {c["name"]: c for c in outcome(out, student)["checks"]}


def lost(out: Path, student: str) -> set[str]:
    return {name for name, c in checks(out, student).items() if c["points"] < c["max_points"]}


def generator():
    """The sample class's generator (a module name of its own: each class has one)."""
    spec = importlib.util.spec_from_file_location(
        "make_sample_class_a2", FILES / "make_sample_class.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_class_is_in_sync_with_the_source():
    make_sample_class = generator()
    for student, submission in make_sample_class.students().items():
        path = CLASS / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert path.read_text() == make_sample_class.render(submission), (
            f"{path} is stale: run tests/files/{ASSIGNMENT}/make_sample_class.py"
        )


def test_every_submission_gets_its_expected_score(graded):
    out, output = graded
    grades = pd.read_csv(Results(out).grades_csv).set_index("student")
    assert grades["total"].to_dict() == EXPECTED_TOTALS
    assert set(grades["max"]) == {MAX_SCORE}
    assert "graded 8, rejected 0, failed 0" in output


def test_the_quick_reference_loses_only_the_targets(graded):
    out, _ = graded
    targets = {f"test_heldout_target[{c}]" for c in ("lstm", "gru")}
    assert lost(out, "ada") <= targets
    thresholds = specs.load(ASSIGNMENT).thresholds
    for name in lost(out, "ada"):
        message = checks(out, "ada")[name]["message"]
        assert "bits per character" in message and "target tier" in message
        assert (
            f"{thresholds['bpc_lstm']:.3f}" in message or f"{thresholds['bpc_gru']:.3f}" in message
        )
    passed = checks(out, "ada")["test_heldout_basic[lstm]"]["message"]
    assert "held-out" in passed and "basic tier" in passed  # measured, shown on a pass too
    assert outcome(out, "ada")["judge_seconds"] <= 20


def test_a_weak_model_is_told_what_to_do(graded):
    out, _ = graded
    message = checks(out, "ben")["test_heldout_basic[gru]"]["message"]
    assert "bits per character" in message and "basic tier" in message
    assert lost(out, "ben") >= {f"test_heldout_basic[{c}]" for c in ("lstm", "gru")}


def test_a_model_without_recurrence_is_not_graded_on_the_held_out_text(graded):
    out, _ = graded
    found = checks(out, "dan")
    assert "no recurrent layer" in found["test_architecture[lstm]"]["message"]
    assert "Conv1D" in found["test_architecture[lstm]"]["message"]
    assert found["test_heldout_basic[gru]"]["message"].startswith(
        "not graded: the model did not pass its architecture check"
    )
    assert outcome(out, "dan")["score"] <= MAX_SCORE / 4


def test_broken_samplers_lose_the_sampler_checks(graded):
    out, _ = graded
    ada = lost(out, "ada")
    assert lost(out, "eve") - ada == {"test_sampler_greedy", "test_sampler_temperature"}
    assert (
        "divide the logits by the temperature"
        in checks(out, "eve")["test_sampler_temperature"]["message"]
    )
    # ids 1..V: the probes see ids outside [0, V); the exported samples rarely do (id V is
    # drawn only where the model picks the last character of the vocabulary, 'z')
    assert lost(out, "fay") - ada == {
        "test_sampler_greedy",
        "test_sampler_temperature",
        "test_sampler_large_logits",
    }
    assert "ids outside [0, 8)" in checks(out, "fay")["test_sampler_temperature"]["message"]
    assert (
        "id i must stand for logits[i]"
        in checks(out, "fay")["test_sampler_large_logits"]["message"]
    )


@pytest.mark.parametrize(
    "student, status, message",
    [
        ("cai", "cell_errors", "raised NotImplementedError"),
        ("gus", "crashed", "The kernel died while running cell"),
        ("abe", "timeout", f"stopped after {STUDENT_TIMEOUTS['abe']} s"),
    ],
)
def test_failures_are_explained(graded, student, status, message):
    out, _ = graded
    result = outcome(out, student)
    assert result["run"]["status"] == status
    assert message in result["message"]
    assert result["score"] == 0
    assert all(c["message"] for c in result["checks"] if c["points"] < c["max_points"])


def test_feedback_shows_no_hidden_source_and_has_curves(graded):
    out, _ = graded
    checks_source = (specs.load(ASSIGNMENT).folder / "check_hidden.py").read_text()
    secret_lines = [
        line.strip()
        for line in checks_source.splitlines()
        if line.strip().startswith(("assert ", "def test_", "return "))
    ]
    for page in (out / "feedback").rglob("feedback.html"):
        text = page.read_text()
        assert not [line for line in secret_lines if line in text], page
    page = (out / "feedback" / "ada" / ASSIGNMENT / "feedback.html").read_text()
    assert "data:image/png;base64," in page


@pytest.mark.long
def test_the_reference_notebook_earns_full_marks(tmp_path):
    """The source notebook's solutions, graded as a student's notebook under the
    assignment's own limits (about 8-10 minutes: `make test-long`)."""
    make_sample_class = generator()
    path = tmp_path / "submitted" / "ref" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(make_sample_class.render(make_sample_class.reference()))
    command = [sys.executable, "-m", "autograder", "--course", str(ROOT), "grade", ASSIGNMENT]
    command += [str(path.parents[2]), "--out", str(tmp_path / "out"), "--no-progress"]
    process = subprocess.run(command, capture_output=True, text=True)
    assert process.returncode == 0, process.stdout + process.stderr
    assert not lost(tmp_path / "out", "ref")
    assert outcome(tmp_path / "out", "ref")["score"] == MAX_SCORE
