"""Build the sample class of assignment 3 from the source notebook.

    .venv/bin/python tests/files/a3_timeseries_forecasting/make_sample_class.py

writes ``tests/files/a3_timeseries_forecasting/submitted/<student>/a3_timeseries_forecasting/``
for eight students. ``tests/autograder/test_sample_class_a3.py`` grades this class (and
fails when it is stale) and ``make demo`` grades it too. Run this again after editing
the source notebook. Expected scores (``sample_class.toml``) come from grading it.

| student | what the submission is | expected |
|---|---|---|
| ada | the reference solution, trained less (larger batches, 6 epochs) | full marks |
| ben | weak but honest: barely trained | functions, export, models, AAPL; weather partly |
| cai | ben, but the scaler is fitted on the whole series | ben less the scaler probe |
| dan | rows shuffled before the split (so the windows mix days at random) | no weather |
| eve | models whose forecast is the last value (output layer zeroed) | no forecast point |
| fay | weather models with one output instead of 24 | no weather, shapes fail |
| gus | the training cell raises | the functions only |
| hal | waits forever in the first cell of work | time limit |
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/files, for sample_class
from sample_class import cell_by_id, edit, reference, write

ASSIGNMENT = "a3_timeseries_forecasting"
NAMES = "UNITS, BATCH_SIZE, LEARNING_RATE, EPOCHS, PATIENCE, WEATHER_STRIDE = "
SETTINGS = NAMES + "32, 64, 0.002, 8, 2, 2"
#: Shorter training for the sample class: 6 epochs of weather in batches of 256 (a higher
#: learning rate for the larger batch), at most 2 of AAPL (whose forecast is near the last
#: close however long it trains).
QUICK = NAMES + "32, 256, 0.008, 6, 2, 2"
AAPL_EPOCHS = ("epochs=EPOCHS,", 'epochs=EPOCHS if series == "weather" else min(EPOCHS, 2),')
#: Barely trained: one epoch on a window every 12 hours.
WEAK = NAMES + "32, 64, 0.002, 1, 1, 12"

LAST_VALUE = """
# "Tomorrow will be like today": my forecasts are the last value.
for name, model in models.items():
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([0 * kernel, 0 * bias])
    target = {**preprocessing[name]["target"], "mean": 0.0}
    preprocessing[name] = {**preprocessing[name], "target": target}
"""


def trained(settings: str = QUICK) -> nbformat.NotebookNode:
    notebook = reference(ASSIGNMENT)
    edit(notebook, "train", SETTINGS, settings)
    edit(notebook, "train", *AAPL_EPOCHS)
    return notebook


def students() -> dict[str, nbformat.NotebookNode | str]:
    ada = trained()

    ben = trained(WEAK)

    cai = trained(WEAK)
    edit(
        cai,
        "split_and_scale",
        "mean, std = train.mean(axis=0), train.std(axis=0)",
        "mean, std = values.mean(axis=0), values.std(axis=0)",
    )

    dan = trained(WEAK)
    edit(
        dan,
        "split_and_scale",
        "values = np.asarray(values, dtype=float)\n",
        "values = np.asarray(values, dtype=float)\n"
        "    values = values[np.random.default_rng(0).permutation(len(values))]\n",
    )

    eve = trained(WEAK)
    cell_by_id(eve, "train").source += LAST_VALUE

    fay = trained(WEAK)
    edit(fay, "train", 'keras.layers.Dense(entry["horizon"])', "keras.layers.Dense(1)")

    gus = trained()
    cell = cell_by_id(gus, "train")
    cell.source = 'raise RuntimeError("ran out of time before training")\n' + cell.source

    hal = reference(ASSIGNMENT)
    cell = cell_by_id(hal, "explore")
    wait_forever = "import time\n\nwhile True:\n    time.sleep(1)\n"
    cell.source = wait_forever + cell.source

    return dict(ada=ada, ben=ben, cai=cai, dan=dan, eve=eve, fay=fay, gus=gus, hal=hal)


if __name__ == "__main__":
    write(ASSIGNMENT, students())
