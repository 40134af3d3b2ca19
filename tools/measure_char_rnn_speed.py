"""Seconds per 1M-character epoch of assignment 2's models, with and without XLA.

    .venv/bin/python tools/measure_char_rnn_speed.py

Trains each setting for 12 batches of random windows of 100 characters after a
warm-up (which includes the compilation) and prints the rate. Compare the rows of
one run: absolute times on a shared machine vary by 2x.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from solutions.a2_text_generation import build_model  # noqa: E402

VOCAB, WINDOW, STEPS = 65, 100, 12


def seconds_per_epoch(cell_type: str, batch: int, jit: bool) -> float:
    model = build_model(cell_type, VOCAB, 64, 256)
    model.compile(
        optimizer=keras.optimizers.Adam(5e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    ids = np.random.default_rng(0).integers(0, VOCAB, (2, batch * STEPS, WINDOW), dtype=np.int32)
    model.fit(ids[0][: batch * 2], ids[1][: batch * 2], batch_size=batch, verbose=0)
    started = time.perf_counter()
    model.fit(ids[0], ids[1], batch_size=batch, verbose=0)
    return 1e6 / (batch * STEPS * WINDOW / (time.perf_counter() - started))


def main() -> None:
    print("model  batch  XLA    s per 1M-character epoch")
    for cell_type in ("lstm", "gru"):
        for batch in (64, 128):
            for jit in (False, True):
                seconds = seconds_per_epoch(cell_type, batch, jit)
                print(f"{cell_type:5}  {batch:5}  {jit!s:5}  {seconds:6.1f}", flush=True)


if __name__ == "__main__":
    main()
