"""Text fit for a student: no terminal escapes, no grader path, one line, capped."""

from __future__ import annotations

import re
from pathlib import Path

_ABSOLUTE_PATH = re.compile(r"(?<![\w./:])/(?:[^\s'\"/:,;()]+/)+([^\s'\"/:,;()]*)")
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MESSAGE_CHARS = 2000
ERROR_CHARS = 300
NOT_WRITTEN = "NotImplementedError (the code is not written yet)"


def without_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part: no grader path reaches a student."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1) or "<folder>", text)


def student_text(text: str, folder: str | Path | None = None, limit: int = ERROR_CHARS) -> str:
    """``text`` fit for a student: no terminal escapes, no grader path, one line, capped.

    Paths inside ``folder`` (where the notebook ran) become relative to it; any other
    absolute path is cut to its last part.
    """
    text = _CONTROLS.sub(" ", _ESCAPES.sub("", str(text)))
    if folder is not None:
        text = text.replace(f"{folder}/", "").replace(str(folder), ".")
    text = " ".join(without_paths(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def error_text(ename: str, evalue: str) -> str:
    """``Name: message`` of an exception raised by student code, whole without a message too."""
    ename, evalue = student_text(ename, limit=100), student_text(evalue)
    if evalue:
        return f"{ename}: {evalue}"
    return NOT_WRITTEN if ename == "NotImplementedError" else ename
