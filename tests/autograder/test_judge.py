"""The judge: hidden checks run as pytest, results carry points and messages, never source."""

from __future__ import annotations

import json
import textwrap

import pytest

from autograder import judge
from autograder import spec as specs

TOY_SPEC = """
id = "toy"
title = "Toy"
notebook = "toy.ipynb"
[artifacts.answer]
path = "out/answer.json"
kind = "json"
[artifacts.weights]
path = "out/weights.npz"
kind = "npz"
[[probes]]
name = "double_two"
function = "double"
kwargs = { x = 2 }
output = "json"
[thresholds]
answer = 42
"""

TOY_CHECKS = '''
import numpy as np
import pytest


@pytest.mark.points(2)
@pytest.mark.grade_cell("test_answer")
def test_answer(json_artifact, thresholds):
    """The answer is right"""
    secret_expected_value = thresholds["answer"]
    assert json_artifact("answer")["value"] == secret_expected_value, "the answer is not 42"


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_answer")
def test_weights(npz_artifact):
    """The weights are finite"""
    assert np.isfinite(npz_artifact("weights")["w"]).all(), "weights contain NaN"


@pytest.mark.points(3)
@pytest.mark.grade_cell("test_double")
@pytest.mark.parametrize("name", ["double_two"])
def test_probe(probe, name):
    """double(2) is 4"""
    assert probe(name) == 4, "double(2) should return 4"


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_double")
def test_crashes():
    """A check that raises"""
    {}["missing_key"]
'''


@pytest.fixture
def toy(tmp_path):
    folder = tmp_path / "plugins" / "toy"
    folder.mkdir(parents=True)
    (folder / "spec.toml").write_text(TOY_SPEC)
    (folder / "check_hidden.py").write_text(textwrap.dedent(TOY_CHECKS))
    submission = tmp_path / "submission"
    (submission / "artifacts" / "out").mkdir(parents=True)
    (submission / "probes").mkdir()
    return folder, submission


def by_name(results):
    return {r.name: r for r in results}


def test_full_marks_when_everything_is_right(toy):
    checks, submission = toy
    import numpy as np

    (submission / "artifacts/out/answer.json").write_text('{"value": 42}')
    np.savez(submission / "artifacts/out/weights.npz", w=np.ones(3))
    (submission / "probes/double_two.json").write_text("4")
    (submission / "probes/index.json").write_text(
        json.dumps({"double_two": {"ok": True, "error": None, "file": "double_two.json"}})
    )
    results = by_name(judge.judge(specs.load_folder(checks), submission))
    assert results["test_answer"].passed and results["test_answer"].points == 2
    assert results["test_weights"].passed
    assert results["test_probe[double_two]"].points == 3
    assert results["test_probe[double_two]"].title == "double(2) is 4 [double_two]"
    assert results["test_crashes"].points == 0
    assert results["test_crashes"].message == "KeyError: 'missing_key'"


def test_failures_explain_without_showing_source(toy):
    checks, submission = toy
    (submission / "artifacts/out/answer.json").write_text('{"value": 41}')
    (submission / "artifacts/out/weights.npz").write_bytes(b"not a zip")
    (submission / "run.json").write_text(json.dumps({"status": "timeout", "message": "stopped"}))
    (submission / "probes/index.json").write_text(
        json.dumps({"double_two": {"ok": False, "error": "NotImplementedError: ", "file": None}})
    )
    results = by_name(judge.judge(specs.load_folder(checks), submission))
    assert results["test_answer"].message == "the answer is not 42"
    assert "secret_expected_value" not in json.dumps([r.to_json() for r in results.values()])
    assert results["test_weights"].message.startswith("weights.npz is not a valid .npz")
    assert results["test_probe[double_two]"].message == "double(x=2) raised NotImplementedError:"
    assert all(r.points == 0 for r in results.values())


def test_missing_artifacts_say_why(toy):
    checks, submission = toy
    (submission / "run.json").write_text(
        json.dumps({"status": "timeout", "message": "The notebook was stopped after 60 s."})
    )
    results = by_name(judge.judge(specs.load_folder(checks), submission))
    assert results["test_answer"].message == (
        "missing artifact out/answer.json: the notebook run did not finish: "
        "The notebook was stopped after 60 s."
    )
    assert results["test_probe[double_two]"].message.startswith("double(x=2) was not called")


def test_a_check_without_points_is_a_course_error(toy):
    checks, submission = toy
    (checks / "check_more.py").write_text("def test_no_points():\n    pass\n")
    with pytest.raises(judge.JudgeError, match="needs points and grade_cell"):
        judge.judge(specs.load_folder(checks), submission)
