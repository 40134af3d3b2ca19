"""JSON that student code controls, read as data: nesting capped, errors in one sentence.

Every JSON document a student controls is read through :func:`load_json` (a submitted
notebook, what a run writes, probe results, exported artifacts).
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 100


class JSONError(ValueError):
    """Student-controlled JSON that cannot be read; the message names the file and says why."""


def load_json(data: str | bytes, name: str) -> Any:
    """The document in ``data`` (the file ``name``), nested at most :data:`MAX_JSON_DEPTH` deep.

    Every JSON document a student controls is read here: a submitted notebook, what a
    run writes (probe results, exported artifacts), so that a document nested thousands
    of levels deep is refused with this message instead of exhausting the parser's stack.
    """
    too_deep = JSONError(f"{name} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = json.loads(text)
    except UnicodeDecodeError as err:
        raise JSONError(f"{name} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise JSONError(
            f"{name} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    except RecursionError:
        raise too_deep from None
    if _depth(document) > MAX_JSON_DEPTH:
        raise too_deep
    if ("\\ud" in text or "\\uD" in text) and not _encodable(document):
        raise JSONError(f"{name} holds text that is not valid Unicode (an unpaired surrogate)")
    return document


def _encodable(document: Any) -> bool:
    """Whether every text in ``document`` (nested at most :data:`MAX_JSON_DEPTH`) is valid UTF-8."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth(document: Any) -> int:
    """How deep lists and objects nest in ``document`` (a scalar: 0), counted without recursion.

    Stops counting past :data:`MAX_JSON_DEPTH`.
    """
    deepest, stack = 0, [(document, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            stack += [
                (child, level + 1)
                for child in (value.values() if isinstance(value, dict) else value)
            ]
    return deepest
