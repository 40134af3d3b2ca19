"""A scan of the submitted files for long pieces of the hidden data: a second signal only.

The hidden data sets are public, so a notebook can carry them inside itself (in
a cell, an output, a file under an innocent name). The behavioural check
(:class:`autograder.checks.validity.Contamination`) decides; this scan only tells the
instructor where a copy is plainly visible: runs of :data:`RUN_WORDS` words (or
numbers) of the plugin's :meth:`~autograder.core.plugin.Plugin.hidden_passages`
found in the submission's text, notebook and other files alike. Encoded data
escapes it, and that is why it decides nothing by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.core.units import MB
from autograder.grading.collect import submitted_files

#: How many consecutive words make a run that does not occur by chance.
RUN_WORDS = 12
#: How many distinct runs must be found before the submission is listed.
MIN_RUNS = 3
#: Bytes of one submitted file that are scanned.
MAX_SCANNED_BYTES = 50 * MB
_WORD = re.compile(r"[0-9a-z]+(?:[.'][0-9a-z]+)*")
_MULTIPLIER = np.uint64(1_000_003)


def _runs(text: str) -> np.ndarray:
    """A hash for every run of :data:`RUN_WORDS` consecutive words of ``text``."""
    words = _WORD.findall(text.lower())
    if len(words) < RUN_WORDS:
        return np.zeros(0, dtype=np.uint64)
    ids = np.array([hash(word) for word in words], dtype=np.int64).view(np.uint64)
    count = len(ids) - RUN_WORDS + 1
    hashes = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(RUN_WORDS):
            hashes = hashes * _MULTIPLIER + ids[offset : offset + count]
    return hashes


@dataclass(frozen=True)
class PassageIndex:
    """The runs of the hidden passages (hashes valid in this process only)."""

    runs: np.ndarray

    @classmethod
    def of(cls, passages: list[str]) -> PassageIndex:
        found = [_runs(text) for text in passages]
        return cls(np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64))

    def matches(self, text: str) -> int:
        """How many distinct runs of ``text`` are runs of the hidden passages."""
        if not len(self.runs):
            return 0
        runs = np.unique(_runs(text))
        return int(np.count_nonzero(np.isin(runs, self.runs, assume_unique=True)))


_INDEXES: dict[int, PassageIndex] = {}


def index_of(plugin) -> PassageIndex:
    """The plugin's passage index, built once per process."""
    if id(plugin) not in _INDEXES:
        _INDEXES[id(plugin)] = PassageIndex.of(plugin.hidden_passages())
    return _INDEXES[id(plugin)]


def scan(submission: Path, index: PassageIndex) -> str:
    """What the instructor should know: '' unless the submitted files hold the hidden data."""
    found = {}
    for path in submitted_files(submission):
        with open(path, "rb") as handle:
            text = handle.read(MAX_SCANNED_BYTES).decode("utf-8", errors="replace")
        if count := index.matches(text.replace("\\n", "\n")):
            found[path.relative_to(submission).as_posix()] = count
    if sum(found.values()) < MIN_RUNS:
        return ""
    where = ", ".join(f"{name} ({count})" for name, count in sorted(found.items()))
    return (
        f"the submitted files hold runs of {RUN_WORDS} or more words of the hidden data: {where} "
        "(a second signal, listed for the instructor's review)"
    )
