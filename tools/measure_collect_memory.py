"""Measure the grader's peak memory when collecting a class that holds a 32 GiB sparse file.

Builds, in a temporary folder, a class of three small submissions plus one (mallory)
holding a 32 GiB sparse file (nothing on disk), runs ``find_submissions`` on it and
prints each submission's problem and the process's peak RSS (``ru_maxrss``).

    .venv/bin/python tools/measure_collect_memory.py
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.grading.collect import find_submissions  # noqa: E402

MB = 2**20
ASSIGNMENT = "a1_imdb_sentiment"
MAX_BYTES = 220 * MB
SPARSE_BYTES = 32 * 2**30


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        submitted = Path(tmp) / "submitted"
        for student in ("alice", "bob", "carol", "mallory"):
            folder = submitted / student / ASSIGNMENT
            (folder / "models").mkdir(parents=True)
            (folder / "imdb_sentiment.ipynb").write_text('{"cells": []}')
            (folder / "models" / "lstm.keras").write_bytes(os.urandom(256 * 1024))
        sparse = submitted / "mallory" / ASSIGNMENT / "models" / "huge.bin"
        sparse.touch()
        os.truncate(sparse, SPARSE_BYTES)
        print(
            f"mallory's sparse file: {SPARSE_BYTES / MB:.0f} MB apparent, "
            f"{os.stat(sparse).st_blocks * 512} bytes on disk"
        )
        before = peak_rss_mb()
        started = time.perf_counter()
        found = find_submissions(ASSIGNMENT, submitted, Path(tmp) / "unpacked", max_bytes=MAX_BYTES)
        seconds = time.perf_counter() - started
        for submission in found:
            print(
                f"  {submission.student:8} {submission.digest[:12]}  {submission.problem or 'ok'}"
            )
        print(f"find_submissions: {seconds:.3f} s")
        print(f"peak RSS before: {before:.1f} MB; after: {peak_rss_mb():.1f} MB")


if __name__ == "__main__":
    main()
