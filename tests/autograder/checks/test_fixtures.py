"""The checks' fixtures read what a run wrote as data: bounded JSON, no raw parser errors."""

from __future__ import annotations

import json
import textwrap

import pytest

from autograder.core import spec as specs
from autograder.grading.judge import child

SPEC = """
id = "deep"
title = "Deep"
notebook = "deep.ipynb"
[artifacts.preprocessing]
path = "models/preprocessing.json"
kind = "json"
[[probes]]
name = "scaled"
function = "scale"
kwargs = { x = 2 }
output = "json"
"""

CHECKS = '''
import pytest


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_export")
def test_preprocessing(json_artifact):
    """The preprocessing is declared"""
    assert json_artifact("preprocessing")["window"] == 30


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_scale")
def test_scale(probe):
    """scale(2) is right"""
    assert probe("scaled") in ([1.0], "one")
'''


@pytest.fixture
def judged(tmp_path):
    checks = tmp_path / "plugins" / "deep"
    checks.mkdir(parents=True)
    (checks / "spec.toml").write_text(SPEC)
    (checks / "check_deep.py").write_text(textwrap.dedent(CHECKS))
    submission = tmp_path / "judged"
    (submission / "artifacts" / "models").mkdir(parents=True)
    (submission / "probes").mkdir()
    (submission / "probes" / "index.json").write_text(
        json.dumps({"scaled": {"ok": True, "file": "scaled.json"}})
    )
    return specs.load_folder(checks), submission


def results(spec, submission) -> dict[str, str]:
    return {check.name: check.message for check in child.judge(spec, submission)}


def test_json_nested_thousands_deep_fails_its_checks_with_a_message(judged):
    spec, submission = judged
    deep = "[" * 5000 + "]" * 5000
    (submission / "artifacts" / "models" / "preprocessing.json").write_text(deep)
    (submission / "probes" / "scaled.json").write_text(deep)
    assert results(spec, submission) == {
        "test_preprocessing": "preprocessing.json is nested more than 100 levels deep",
        "test_scale": "scale(x=2): scaled.json is nested more than 100 levels deep",
    }


def test_json_within_the_limit_is_graded_and_a_text_result_is_a_result(judged):
    spec, submission = judged
    (submission / "artifacts" / "models" / "preprocessing.json").write_text('{"window": 30}')
    (submission / "probes" / "scaled.json").write_text('"one"')
    assert results(spec, submission) == {"test_preprocessing": "", "test_scale": ""}
