"""Assignment plugins: loading, the default data view, hidden reviews of a1, calibration."""

from __future__ import annotations

import os

import numpy as np
import pytest

from assignments import data
from autograder.authoring import calibrate
from autograder.core import spec as specs
from autograder.core.plugin import Plugin, load_plugin
from autograder.core.spec import Calibration

needs_mirror = pytest.mark.skipif(
    not os.environ.get(data.MIRROR_ENV), reason="needs the data mirror (RNN_COURSE_DATA)"
)


def plain_spec(tmp_path, datasets: str = "") -> specs.Spec:
    folder = tmp_path / "plugins" / "plain"
    folder.mkdir(parents=True)
    (folder / "spec.toml").write_text(
        f'id = "plain"\ntitle = "Plain"\nnotebook = "plain.ipynb"\n[datasets]\n{datasets}'
    )
    return specs.load("plain", tmp_path)


def test_an_assignment_without_plugin_gets_the_base_class(tmp_path):
    plugin = load_plugin(plain_spec(tmp_path))
    assert type(plugin) is Plugin and plugin.hidden() is None
    with pytest.raises(NotImplementedError, match="no reference training"):
        plugin.reference_run(0)


@needs_mirror
def test_the_default_view_copies_the_declared_data_sets_whole(tmp_path):
    spec = plain_spec(tmp_path, datasets='aapl = "prices"\n')
    view = load_plugin(spec).student_view(tmp_path / "view")
    assert sorted(p.name for p in view.iterdir()) == ["AAPL.csv"]


def test_a_course_plugin_takes_priority_over_a_builtin_one(tmp_path):
    folder = tmp_path / "plugins" / "a1_imdb_sentiment"
    folder.mkdir(parents=True)
    (folder / "spec.toml").write_text('id = "a1_imdb_sentiment"\ntitle = "Course copy"\n')
    assert specs.load("a1_imdb_sentiment", tmp_path).title == "Course copy"
    assert specs.load("a1_imdb_sentiment").title != "Course copy"


@needs_mirror
def test_assignment_1_view_hides_the_graders_reviews(tmp_path, monkeypatch):
    plugin = load_plugin(specs.load("a1_imdb_sentiment"))
    module = __import__(type(plugin).__module__)
    texts, labels = data.load_imdb("test")
    hidden = module.hidden_test_indices(labels)
    assert len(hidden) == module.HIDDEN_TEST_SIZE and labels[hidden].mean() == 0.5
    view = plugin.student_view(tmp_path / "view")
    monkeypatch.setenv(data.MIRROR_ENV, str(view))
    visible, visible_labels = data.load_imdb("test")
    assert len(visible) == 25_000 - module.HIDDEN_TEST_SIZE and visible_labels.mean() == 0.5
    shown = np.setdiff1d(np.arange(len(texts)), hidden)
    assert sorted(visible) == sorted(texts[shown])
    assert len(data.load_imdb("train")[0]) == 25_000


def runs(model: str, *values: float) -> list[dict]:
    return [{"model": model, "value": value} for value in values]


def test_thresholds_when_higher_is_better():
    rule = Calibration("accuracy", ("lstm",), "higher", 0.03)
    got = calibrate.thresholds(rule, runs("lstm", 0.85, 0.84, 0.86), {"majority": 0.5})
    assert got == {"accuracy_lstm": 0.81, "accuracy_basic_lstm": 0.655}


def test_thresholds_when_lower_is_better():
    rule = Calibration("bpc", ("gru",), "lower", 0.1)
    got = calibrate.thresholds(rule, runs("gru", 2.2, 2.3), {"unigram": 4.8, "bigram": 3.6})
    assert got == {"bpc_gru": 2.4, "bpc_basic_gru": 3.0}


@pytest.mark.parametrize("better, baseline", [("higher", 0.84), ("lower", 2.0)])
def test_a_reference_that_does_not_beat_the_baselines_is_refused(better, baseline):
    rule = Calibration("metric", ("lstm",), better, 0.03)
    with pytest.raises(calibrate.CalibrationError, match="does not clear the best baseline"):
        calibrate.thresholds(rule, runs("lstm", 0.85, 2.1), {"trivial": baseline})


def test_a_course_view_loads_in_place_of_the_published_file(tmp_path, monkeypatch):
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    Plugin.write_view("shakespeare", text.encode(), tmp_path / "view")
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "view"))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    assert data.load_shakespeare() == text
    (tmp_path / "view" / "tinyshakespeare.txt").write_text(text + "edited after the view\n")
    with pytest.raises(data.DataError, match="does not match its view manifest"):
        data.load_shakespeare()


def test_held_out_data_round_trips_through_the_cache_without_pickles(tmp_path):
    from autograder.core.plugin import read_arrays, to_arrays

    texts = np.array(["a good film", "", "ünïcode \x85 review"], dtype=object)
    value = (texts, np.array([1, 0, 1]))
    np.savez(tmp_path / "a.npz", **to_arrays(value))
    back = read_arrays(tmp_path / "a.npz")
    assert list(back[0]) == list(texts) and back[1].tolist() == [1, 0, 1]
    np.savez(tmp_path / "b.npz", **to_arrays("the held-out stretch\n"))
    assert read_arrays(tmp_path / "b.npz") == "the held-out stretch\n"
    assert to_arrays({"not": "a tuple of arrays"}) is None


def test_workers_read_the_hidden_data_the_parent_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_COURSE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "plugins" / "counted"
    folder.mkdir(parents=True)
    (folder / "spec.toml").write_text('id = "counted"\ntitle = "C"\nnotebook = "c.ipynb"\n')
    (folder / "plugin.py").write_text(
        "import numpy as np\nfrom autograder.core.plugin import Plugin\n"
        "CALLS = []\n\n\nclass AssignmentPlugin(Plugin):\n"
        "    def load_hidden(self):\n        CALLS.append(1)\n"
        "        return np.arange(3), 'text'\n"
    )
    parent = load_plugin(specs.load("counted", tmp_path))
    parent.cache_hidden()
    parent.cache_hidden()
    worker = type(parent)(parent.spec)  # a fresh instance, as in a new worker process
    assert worker.hidden()[1] == "text" and worker.hidden()[0].tolist() == [0, 1, 2]
    assert len(__import__(type(parent).__module__).CALLS) == 1
