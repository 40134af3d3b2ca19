"""Build the sample class of assignment 2 from the source notebook.

    .venv/bin/python tests/files/a2_text_generation/make_sample_class.py

writes ``tests/files/a2_text_generation/submitted/<student>/a2_text_generation/`` for
eight students. The tests grade this class (``tests/autograder/test_sample_class_a2.py``)
and ``make demo`` grades it too; the test fails when the class is stale. Run this again
after editing the source notebook.

The students train on two thirds of the corpus for one epoch, on windows of 50
characters with 128 units (about 15 s per model here), not the reference's minutes:
enough to clear the basic tier of the held-out loss, not the calibrated target, so
"full marks" here means every check but the two held-out targets. The expected
totals (``sample_class.toml``) come from grading the class, never from tuning
thresholds.

| student | what the submission is | expected |
|---|---|---|
| abe | loops forever in the first cell of work (first, so the batch waits least) | time limit |
| ada | the reference solution, quick training | all but the held-out targets |
| ben | weak but honest: one epoch on 100,000 characters, 64 units | no held-out tier |
| cai | the release notebook, unmodified | nothing |
| dan | a Dense n-gram model (causal convolution, no recurrent layer) | functions and export only |
| eve | ben, but sample_next ignores the temperature | ben less the greedy and temperature checks |
| fay | ben, but sample_next returns ids 1..V (id V is outside the vocabulary) | ben less 4 |
| gus | the kernel dies while training (a crash) | nothing |
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/files, for sample_class
from sample_class import cell_by_id, edit, reference, release, write

ASSIGNMENT = "a2_text_generation"

#: the reference's training settings, and the sample class's quick ones
FULL_SETTINGS = (
    "EMBEDDING_DIM, UNITS, BATCH_SIZE, LEARNING_RATE = 64, 256, 64, 5e-3\n"
    "EPOCHS, PATIENCE, TIME_BUDGET_S = 10, 2, 240"
)
QUICK_SETTINGS = (
    "EMBEDDING_DIM, UNITS, BATCH_SIZE, LEARNING_RATE = 32, 128, 32, 1e-2\n"
    "EPOCHS, PATIENCE, TIME_BUDGET_S = 1, 1, 120"
)
QUICK_CHARS = 600_000
QUICK_SEQ_LEN = 50
QUICK_EXPERIMENT = (
    'print("experiment skipped: the sample class keeps its notebooks short")\nshort_model = None\n'
)

DENSE_NGRAM = '''\
def build_model(cell_type, vocab_size, embedding_dim, units):
    """A 5-gram model without recurrence: causal convolution over the last 5 characters."""
    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, embedding_dim),
            keras.layers.Conv1D(units, 5, padding="causal", activation="relu"),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(vocab_size),
        ],
        name=cell_type,
    )
'''

IGNORES_TEMPERATURE = """\
def sample_next(logits, temperature, rng):
    \"\"\"One id per row of `logits` (batch, V), drawn from softmax(logits).\"\"\"
    logits = np.asarray(logits, dtype=np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in probabilities])
"""

OUTSIDE_VOCABULARY = """\
def sample_next(logits, temperature, rng):
    \"\"\"One id per row of `logits`: ids 1..V, as if id 0 were reserved for padding.\"\"\"
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return np.argmax(logits, axis=-1) + 1
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    probabilities = np.exp(scaled)
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) + 1 for row in probabilities])
"""

#: decode that shows an unknown id instead of failing (so the bad samples get exported)
FORGIVING_DECODE = (
    '    return "".join(vocab[int(i)] if int(i) < len(vocab) else "<?>" '
    "for i in np.asarray(ids).reshape(-1))"
)


def replace_function(notebook, grade_id: str, name: str, source: str) -> None:
    """Replace the definition of ``name`` in the cell ``grade_id`` with ``source``."""
    cell = cell_by_id(notebook, grade_id)
    pattern = re.compile(rf"^def {name}\(.*?(?=^\S|\Z)", re.M | re.S)
    if not pattern.search(cell.source):
        raise SystemExit(f"cell '{grade_id}' no longer defines {name}: update this script")
    cell.source = pattern.sub(lambda _: source + "\n\n", cell.source, count=1)


def quick(notebook, chars: int = QUICK_CHARS, settings: str = QUICK_SETTINGS):
    """One epoch on the first ``chars`` characters, windows of 50; skip the experiment."""
    edit(notebook, "windows", "SEQ_LEN = 100\n", f"SEQ_LEN = {QUICK_SEQ_LEN}\n")
    edit(notebook, "train", FULL_SETTINGS, settings)
    edit(notebook, "train", "train_part = train_ids\n", f"train_part = train_ids[:{chars}]\n")
    cell_by_id(notebook, "experiment").source = QUICK_EXPERIMENT
    return notebook


def weak(notebook):
    """Barely trained: one epoch on 100,000 characters with 64 units (a few seconds)."""
    settings = QUICK_SETTINGS.replace("32, 128, 32, 1e-2", "16, 64, 32, 5e-3")
    return quick(notebook, chars=100_000, settings=settings)


def students() -> dict[str, nbformat.NotebookNode | str]:
    ada = quick(reference(ASSIGNMENT))

    ben = weak(reference(ASSIGNMENT))

    cai = release(ASSIGNMENT)

    dan = quick(reference(ASSIGNMENT))
    replace_function(dan, "build_model", "build_model", DENSE_NGRAM)

    eve = weak(reference(ASSIGNMENT))
    replace_function(eve, "sampler", "sample_next", IGNORES_TEMPERATURE)

    fay = weak(reference(ASSIGNMENT))
    replace_function(fay, "sampler", "sample_next", OUTSIDE_VOCABULARY)
    edit(
        fay,
        "vocab",
        '    return "".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1))',
        FORGIVING_DECODE,
    )

    gus = quick(reference(ASSIGNMENT))
    cell = cell_by_id(gus, "train")
    cell.source = "import os\n\nos._exit(1)  # the kernel dies, as in a segfault\n" + cell.source

    abe = quick(reference(ASSIGNMENT))
    cell = cell_by_id(abe, "vocab")
    cell.source = "import time\n\nwhile True:\n    time.sleep(1)\n" + cell.source

    return dict(abe=abe, ada=ada, ben=ben, cai=cai, dan=dan, eve=eve, fay=fay, gus=gus)


if __name__ == "__main__":
    write(ASSIGNMENT, students())
