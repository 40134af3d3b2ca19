"""Build the sample class of assignment 1 from the source notebook.

    .venv/bin/python tests/files/make_sample_class.py

writes ``tests/files/a1_imdb_sentiment/submitted/<student>/a1_imdb_sentiment/``
for eight students. The tests grade this class and ``make demo`` grades it too;
``tests/autograder/test_sample_class.py`` fails when it is stale. Run this
again after editing the source notebook.

| student | what the submission is | expected |
|---|---|---|
| ada | the reference solution, trained for 2 epochs | full marks |
| ben | weak but honest: 1 epoch on 500 reviews, tiny vocabulary, no XLA | no accuracy |
| cai | the release notebook, unmodified | nothing |
| dan | the reference, but the training cell raises | only ``build_model`` |
| eve | waits forever in the first cell of work | time limit |
| fay | allocates memory until it is killed | memory limit |
| gus | a corrupted (truncated) notebook file | rejected at intake |
| hal | hostile: reads the hidden checks, writes outside its folder, uses the network | nothing |
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/files, for sample_class
from sample_class import cell_by_id, edit, reference, release, write

ASSIGNMENT = "a1_imdb_sentiment"

HOSTILE = """\
from pathlib import Path
import assignments
course = Path(assignments.__file__).resolve().parents[1]
for secret in (course / "autograder" / "plugins" / "a1_imdb_sentiment" / "check_hidden.py",
               course / "gradebook.db", Path("/etc/shadow")):
    try:
        print("read", secret, len(secret.read_bytes()), "bytes")
    except OSError as err:
        print("cannot read", secret, type(err).__name__)
for package in ("autograder", "solutions"):
    try:
        __import__(package)
        print("imported", package)
    except ImportError as err:
        print("cannot import", package, type(err).__name__)
import os
data = Path(os.environ["RNN_COURSE_DATA"])
for target in (course / "autograder" / "hacked.txt", data / "hacked.txt", Path("/hacked.txt")):
    try:
        target.write_text("pwned")
        print("wrote", target)
    except OSError as err:
        print("cannot write", target, type(err).__name__)
import urllib.request
urllib.request.urlopen("http://example.com", timeout=5)
"""


def quick(notebook):
    edit(
        notebook,
        "train",
        "BATCH_SIZE, EPOCHS, PATIENCE = 32, 32, 128, 8, 2",
        "BATCH_SIZE, EPOCHS, PATIENCE = 32, 32, 128, 2, 1",
    )
    return notebook


def students() -> dict[str, nbformat.NotebookNode | str]:
    ada = quick(reference(ASSIGNMENT))

    ben = quick(reference(ASSIGNMENT))
    edit(ben, "preprocess", "VOCAB_SIZE = 10_000\nSEQ_LEN = 200", "VOCAB_SIZE = 300\nSEQ_LEN = 20")
    edit(
        ben,
        "train",
        "BATCH_SIZE, EPOCHS, PATIENCE = 32, 32, 128, 2, 1",
        "BATCH_SIZE, EPOCHS, PATIENCE = 32, 32, 128, 1, 1",
    )
    # no XLA: for one epoch on 500 reviews, compiling costs more than it saves
    edit(ben, "train", "jit_compile=True", "jit_compile=False")
    edit(
        ben,
        "train",
        "train_part, val_part = order[n_val:], order[:n_val]",
        "train_part, val_part = order[n_val:][:500], order[:n_val]",
    )

    cai = release(ASSIGNMENT)

    dan = quick(reference(ASSIGNMENT))
    cell = cell_by_id(dan, "train")
    cell.source = 'raise RuntimeError("ran out of time before training")\n' + cell.source

    eve = reference(ASSIGNMENT)
    cell = cell_by_id(eve, "explore")
    wait_forever = (
        "import time\n\nwhile True:  # test_run.py covers busy loops\n    time.sleep(1)\n"
    )
    cell.source = wait_forever + cell.source

    fay = reference(ASSIGNMENT)
    cell = cell_by_id(fay, "explore")
    cell.source = "hog = []\nwhile True:\n    hog.append(np.ones(50_000_000))\n" + cell.source

    hal = release(ASSIGNMENT)
    index = hal.cells.index(cell_by_id(hal, "explore"))
    hostile = nbformat.v4.new_code_cell(HOSTILE)
    hostile["id"] = "hostile-code"  # fixed, so that the generated file is reproducible
    hal.cells.insert(index, hostile)

    notebook = nbformat.writes(quick(reference(ASSIGNMENT)))
    gus = notebook[: len(notebook) // 2]

    return dict(ada=ada, ben=ben, cai=cai, dan=dan, eve=eve, fay=fay, gus=gus, hal=hal)


if __name__ == "__main__":
    write(ASSIGNMENT, students())
