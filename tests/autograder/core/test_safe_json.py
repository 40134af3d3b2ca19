"""JSON a student controls: nesting capped, every error one sentence naming the file."""

from __future__ import annotations

import pytest

from autograder.core.safe_json import MAX_JSON_DEPTH, JSONError, load_json


@pytest.mark.parametrize("depth", [101, 100_000])
def test_json_nested_too_deep_is_refused_with_a_message(depth):
    with pytest.raises(JSONError, match="^probe.json is nested more than 100 levels deep$"):
        load_json("[" * depth + "]" * depth, "probe.json")
    with pytest.raises(JSONError, match="nested more than 100 levels"):
        load_json(b'{"a": ' * depth + b"1" + b"}" * depth, "probe.json")


def test_json_within_the_depth_limit_is_read():
    depth = MAX_JSON_DEPTH
    assert load_json("[" * depth + "]" * depth, "ok.json") == eval("[" * depth + "]" * depth)
    assert load_json(b'{"loss": [0.5, 0.25]}', "history.json") == {"loss": [0.5, 0.25]}
    with pytest.raises(JSONError, match=r"^bad.json is not valid JSON \(line 1"):
        load_json("{", "bad.json")
    with pytest.raises(JSONError, match="^bad.json is not UTF-8 text"):
        load_json(b'"\xff"', "bad.json")
