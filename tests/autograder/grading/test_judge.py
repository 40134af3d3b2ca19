"""The judge: hidden checks run as pytest, results carry points and messages, never source."""

from __future__ import annotations

import json
import textwrap

import pytest

from autograder.core import spec as specs
from autograder.core.results import CheckResult
from autograder.grading.judge import JudgeError, child, extras, parent
from autograder.grading.sandbox import measure

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
    results = by_name(child.judge(specs.load_folder(checks), submission))
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
    entry = {"ok": False, "file": None, "ename": "NotImplementedError", "evalue": ""}
    (submission / "probes/index.json").write_text(json.dumps({"double_two": entry}))
    results = by_name(child.judge(specs.load_folder(checks), submission))
    assert results["test_answer"].message == "the answer is not 42"
    assert "secret_expected_value" not in json.dumps([r.to_json() for r in results.values()])
    assert results["test_weights"].message.startswith("weights.npz is not a valid .npz")
    assert results["test_probe[double_two]"].message == (
        "double(x=2) raised NotImplementedError (the code is not written yet)"
    )
    assert all(r.points == 0 and not r.cause for r in results.values())


def test_what_a_failed_run_did_not_produce_is_tied_to_the_run(toy):
    checks, submission = toy
    stopped = "The notebook was stopped after 60 s (time limit) in cell #4."
    (submission / "run.json").write_text(json.dumps({"status": "timeout", "message": stopped}))
    results = by_name(child.judge(specs.load_folder(checks), submission))
    assert results["test_answer"].message == f"missing artifact out/answer.json: {stopped}"
    assert results["test_probe[double_two]"].message == f"double(x=2) was not called: {stopped}"
    assert results["test_answer"].cause == results["test_probe[double_two]"].cause == stopped
    assert results["test_crashes"].cause == ""  # its own failure


def test_what_a_good_run_did_not_produce_is_the_checks_own_failure(toy):
    checks, submission = toy
    (submission / "run.json").write_text(json.dumps({"status": "ok", "message": "All ran."}))
    results = by_name(child.judge(specs.load_folder(checks), submission))
    assert results["test_answer"].message == (
        "missing artifact out/answer.json, although the notebook ran without errors"
    )
    assert not results["test_answer"].cause


def test_a_check_without_points_is_a_course_error(toy):
    checks, submission = toy
    (checks / "check_more.py").write_text("def test_no_points():\n    pass\n")
    with pytest.raises(JudgeError, match="needs points and grade_cell"):
        child.judge(specs.load_folder(checks), submission)


# --------------------------------------------------------------------------- under limits

LIMITED_SPEC = """
id = "limited"
title = "Models judged under limits"
notebook = "limited.ipynb"
[artifacts.model]
path = "model.keras"
kind = "keras"
[limits]
judge_timeout_s = 10
judge_memory_mb = 1500
"""

LIMITED_CHECKS = '''
import numpy as np
import pytest


@pytest.mark.points(1)
@pytest.mark.grade_cell("test_model")
def test_a_quick_check():
    """A check that needs no model"""


@pytest.mark.points(2)
@pytest.mark.grade_cell("test_model")
def test_predict(keras_artifact):
    """The model predicts"""
    out = keras_artifact("model").predict(np.ones((1, 1), dtype="float32"), verbose=0)
    assert out.shape == (1, 1), f"shape {out.shape}"
'''


def repeated(steps: int, *middle) -> keras.Model:  # noqa: F821 (imported in the function)
    """A tiny model whose work grows with ``steps`` (a very long sequence, as in the attack)."""
    import keras

    return keras.Sequential(
        [keras.Input((1,)), keras.layers.RepeatVector(steps), *middle, keras.layers.Dense(1)]
    )


@pytest.fixture
def limited(tmp_path):
    folder = tmp_path / "plugins" / "limited"
    folder.mkdir(parents=True)
    (folder / "spec.toml").write_text(LIMITED_SPEC)
    (folder / "check_hidden.py").write_text(textwrap.dedent(LIMITED_CHECKS))
    spec = specs.load_folder(folder)
    process = parent.JudgeProcess()
    yield spec, process
    process.close()


def judge_model(spec, process, model, folder):
    (folder / "artifacts").mkdir(parents=True)
    model.save(folder / "artifacts" / "model.keras")
    return by_name(process.judge(spec, folder, spec.limits).checks)


def test_a_slow_model_is_stopped_at_the_time_limit(limited, tmp_path, monkeypatch):
    """The limit counts the child's CPU time (the wall-clock backstop is far off here)."""
    import keras

    monkeypatch.setattr(measure, "WALL_CLOCK_FACTOR", 100)
    spec, process = limited
    slow = repeated(3_000_000, keras.layers.SimpleRNN(4))
    results = judge_model(spec, process, slow, tmp_path / "slow")
    assert results["test_a_quick_check"].passed
    assert results["test_predict"].points == 0
    cores = measure.cpu_cores()
    assert (
        f"stopped your models after {10 * cores} s of CPU time (the time limit for loading them "
        f"and predicting on the hidden data: 10 s on each of {cores} cores)"
    ) in results["test_predict"].message
    good = repeated(3, keras.layers.SimpleRNN(4))
    assert judge_model(spec, process, good, tmp_path / "good")["test_predict"].passed


def test_a_huge_model_is_stopped_at_the_memory_limit(limited, tmp_path):
    import keras

    spec, process = limited
    huge = repeated(20_000_000, keras.layers.Dense(64), keras.layers.GlobalAveragePooling1D())
    results = judge_model(spec, process, huge, tmp_path / "huge")
    assert "used more than 1500 MB" in results["test_predict"].message
    assert results["test_a_quick_check"].passed


def test_the_judge_child_has_no_network(limited, tmp_path):
    spec, process = limited
    (spec.folder / "check_network.py").write_text(
        textwrap.dedent('''
        import socket
        import pytest


        @pytest.mark.points(1)
        @pytest.mark.grade_cell("test_model")
        def test_network():
            """No network"""
            socket.create_connection(("1.1.1.1", 53), timeout=3)
        ''')
    )
    (tmp_path / "empty").mkdir()
    results = by_name(process.judge(spec, tmp_path / "empty", spec.limits).checks)
    assert results["test_network"].message.startswith("OSError")


@pytest.mark.slow
def test_a_check_that_waits_is_stopped_by_the_wall_clock_backstop(limited, tmp_path):
    """Waiting uses no CPU time: the CPU limit never comes, the wall-clock backstop does."""
    spec, process = limited
    (spec.folder / "check_wait.py").write_text(
        textwrap.dedent('''
        import time
        import pytest


        @pytest.mark.points(1)
        @pytest.mark.grade_cell("test_model")
        def test_wait():
            """Waits"""
            time.sleep(3600)
        ''')
    )
    (tmp_path / "empty").mkdir()
    results = by_name(process.judge(spec, tmp_path / "empty", spec.limits).checks)
    factor = measure.WALL_CLOCK_FACTOR
    assert results["test_wait"].message.startswith(
        f"the judge stopped your models after {10 * factor} s of wall-clock time (the "
        f"backstop, {factor} x the time limit of 10 s of CPU time"
    )


PLUGIN_WITH_EXTRAS = """
import base64

from autograder.core.plugin import Plugin

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class AssignmentPlugin(Plugin):
    def feedback_figures(self, judged):
        url = "data:image/png;base64," + base64.b64encode(PNG).decode()
        return {
            "small": url,
            "huge": url + "A" * 500_000,
            "a script": "javascript:alert(1)",
        }

    def feedback_texts(self, judged):
        return {"sample <b>": "<script>x</script>" + "y" * 5000}
"""


def test_the_plugins_figures_and_texts_come_back_from_the_child_capped(limited, tmp_path):
    spec, process = limited
    (spec.folder / "plugin.py").write_text(PLUGIN_WITH_EXTRAS)
    (tmp_path / "empty").mkdir()
    judged = process.judge(spec, tmp_path / "empty", spec.limits)
    assert set(judged.figures) == {"small"}
    assert judged.figures["small"].startswith("data:image/png;base64,iVBOR")
    assert judged.notes == [
        "figure 'huge' left out: its image takes 500 kB, over the page's cap of 400 kB per figure",
        "figure 'a script' left out: it is not a PNG image",
    ]
    text = judged.texts["sample <b>"]
    assert len(text) == extras.TEXT_CHARS and text.startswith("<script>") and text.endswith("…")
    assert by_name(judged.checks)["test_a_quick_check"].passed


def test_a_plugin_that_fails_to_draw_costs_the_student_nothing(tmp_path):
    class Broken:
        def feedback_figures(self, judged):
            raise ValueError("no figure")

        def feedback_texts(self, judged):
            return {}

    made = extras.feedback_extras(Broken(), tmp_path)
    assert made.figures == {} and made.notes == [
        "the judge's figures could not be drawn (ValueError)"
    ]


def test_a_truncated_model_is_damaged_and_no_grader_path_is_shown(limited, tmp_path):
    import keras

    spec, _ = limited
    folder = tmp_path / "truncated"
    (folder / "artifacts").mkdir(parents=True)
    repeated(3, keras.layers.SimpleRNN(2)).save(folder / "artifacts" / "model.keras")
    data = (folder / "artifacts" / "model.keras").read_bytes()
    (folder / "artifacts" / "model.keras").write_bytes(data[: len(data) // 2])
    message = by_name(child.judge(spec, folder))["test_predict"].message
    assert message.startswith("model.keras is damaged")
    assert str(tmp_path) not in message


KERAS_ERROR = (
    "Exception encountered when calling SimpleRNNCell.call().\n\n\x1b[1m{{function_node "
    "__wrapped__MatMul_device_/job:localhost/replica:0/task:0/device:CPU:0}} Matrix "
    "size-incompatible: In[0]: [2,3] [Op:MatMul] name: \x1b[0m\n\nArguments received by "
    "SimpleRNNCell.call():\n  • sequence=tf.Tensor(shape=(2, 3), dtype=float32)"
)


def test_a_check_message_is_cleaned_whatever_raised_it(toy):
    checks, submission = toy
    (checks / "check_keras_error.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.points(1)\n"
        '@pytest.mark.grade_cell("test_answer")\n'
        "def test_keras_error():\n"
        f"    raise ValueError('/srv/course/.work/a/bob/judged/m.keras: ' + {KERAS_ERROR!r})\n"
    )
    message = by_name(child.judge(specs.load_folder(checks), submission))["test_keras_error"]
    assert message.message.startswith("ValueError: m.keras: Exception encountered when calling")
    assert "\x1b" not in message.message and "[1m" not in message.message


def test_checks_not_finished_when_the_judge_stops_share_its_cause():
    done = CheckResult("test_a", "a", "cell", 1.0, 1.0, "")
    owed = CheckResult("test_b", "b", "cell", 1.0, 0.0, "")
    results = parent._stopped({"test_a": done, "test_b": owed}, "cpu", specs.Limits())
    assert results[0] == done
    assert results[1].cause == results[1].message
    assert f"after {120 * measure.cpu_cores()} s of CPU time" in results[1].cause
