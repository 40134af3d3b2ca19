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

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from sample_classes import SampleClass, needs_data

from autograder.core import spec as specs
from autograder.core.course import Results

ASSIGNMENT = "a2_text_generation"
CLASS = SampleClass(ASSIGNMENT)
MAX_SCORE = 39

pytestmark = needs_data


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("class_a2")
    return out, CLASS.grade(out)


def test_sample_class_is_in_sync_with_the_source():
    for path, text in CLASS.generated().items():
        assert path.read_text() == text, f"{path} is stale: run {CLASS.script}"


def test_every_submission_gets_its_expected_score(graded):
    out, output = graded
    grades = pd.read_csv(Results(out).grades_csv).set_index("student")
    assert grades["total"].to_dict() == CLASS.expected
    assert set(grades["autograded_max"]) == {MAX_SCORE}
    assert set(grades["max"]) == {50}  # with the 11 points graded by hand
    assert "graded 8, rejected 0, failed 0" in output


def test_the_quick_reference_loses_only_the_targets(graded):
    out, _ = graded
    targets = {f"test_heldout_target[{c}]" for c in ("lstm", "gru")}
    assert CLASS.lost(out, "ada") <= targets
    thresholds = specs.load(ASSIGNMENT).thresholds
    for name in CLASS.lost(out, "ada"):
        message = CLASS.checks(out, "ada")[name]["message"]
        assert "bits per character" in message and "target tier" in message
        assert (
            f"{thresholds['bpc_lstm']:.3f}" in message or f"{thresholds['bpc_gru']:.3f}" in message
        )
    passed = CLASS.checks(out, "ada")["test_heldout_basic[lstm]"]["message"]
    assert "held-out" in passed and "basic tier" in passed  # measured, shown on a pass too
    assert CLASS.outcome(out, "ada")["judge_seconds"] <= 20


def test_a_weak_model_is_told_what_to_do(graded):
    out, _ = graded
    message = CLASS.checks(out, "ben")["test_heldout_basic[gru]"]["message"]
    assert "bits per character" in message and "basic tier" in message
    assert CLASS.lost(out, "ben") >= {f"test_heldout_basic[{c}]" for c in ("lstm", "gru")}


def test_a_model_without_recurrence_is_not_graded_on_the_held_out_text(graded):
    out, _ = graded
    found = CLASS.checks(out, "dan")
    assert "no recurrent layer" in found["test_architecture[lstm]"]["message"]
    assert "Conv1D" in found["test_architecture[lstm]"]["message"]
    assert found["test_heldout_basic[gru]"]["message"].startswith(
        "not graded: the model did not pass its architecture check"
    )
    assert CLASS.outcome(out, "dan")["score"] <= MAX_SCORE / 4


def test_broken_samplers_lose_the_sampler_checks(graded):
    """eve and fay train like ben: what they lose beyond his losses is their sampler's doing."""
    out, _ = graded
    ben = CLASS.lost(out, "ben")
    assert CLASS.lost(out, "eve") - ben == {"test_sampler_greedy", "test_sampler_temperature"}
    assert (
        "divide the logits by the temperature"
        in CLASS.checks(out, "eve")["test_sampler_temperature"]["message"]
    )
    # ids 1..V: the probes see ids outside [0, V), and so does the samples file, where the
    # barely trained model draws the last character of the vocabulary (id V) now and then
    assert CLASS.lost(out, "fay") - ben == {
        "test_sampler_greedy",
        "test_sampler_temperature",
        "test_sampler_large_logits",
        "test_samples_file",
    }
    assert "ids outside [0, 8)" in CLASS.checks(out, "fay")["test_sampler_temperature"]["message"]
    assert (
        "id i must stand for logits[i]"
        in CLASS.checks(out, "fay")["test_sampler_large_logits"]["message"]
    )
    assert "outside the vocabulary" in CLASS.checks(out, "fay")["test_samples_file"]["message"]


@pytest.mark.parametrize(
    "student, status, message",
    [
        ("cai", "cell_errors", "raised NotImplementedError"),
        ("gus", "crashed", "The kernel died while running cell"),
        (
            "abe",
            "timeout",
            f"stopped after {3 * CLASS.student_timeouts['abe']} s of wall-clock time",
        ),
    ],
)
def test_failures_are_explained(graded, student, status, message):
    out, _ = graded
    result = CLASS.outcome(out, student)
    assert result["run"]["status"] == status
    assert message in result["message"]
    assert result["score"] == 0
    assert all(c["message"] for c in result["checks"] if c["points"] < c["max_points"])


def test_feedback_shows_no_hidden_source_and_has_curves(graded):
    out, _ = graded
    for page, shown in CLASS.hidden_lines_shown(out).items():
        assert not shown, page
    page = (out / "feedback" / "ada" / ASSIGNMENT / "feedback.html").read_text()
    assert "data:image/png;base64," in page


@pytest.mark.long
def test_the_reference_notebook_earns_full_marks(tmp_path):
    """The source notebook's solutions, graded as a student's notebook under the
    assignment's own limits (about 8-10 minutes: `make test-long`)."""
    path = tmp_path / "submitted" / "ref" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(CLASS.reference())
    command = CLASS.command(path.parents[2], tmp_path / "out")
    process = subprocess.run(command, capture_output=True, text=True)
    assert process.returncode == 0, process.stdout + process.stderr
    assert not CLASS.lost(tmp_path / "out", "ref")
    assert CLASS.outcome(tmp_path / "out", "ref")["score"] == MAX_SCORE
