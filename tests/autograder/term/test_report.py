"""The class report: its tables as CSV files, and its page as a browser shows it.

The class is the toy course's assignment, recorded as a grading run records it
(``Outcome.to_json()`` in ``grading.json``, the executed notebooks beside it),
without running anything: two students with near-identical code, one with code
of their own, one who handed in the release as it was and ran into the time
limit, one rejected and one whose grading failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder import cli
from autograder.cli import CommandError
from autograder.cli import report as report_command
from autograder.core.course import Results
from autograder.core.results import CheckResult, Outcome
from autograder.core.spec import SpecError
from autograder.grading import record

TOY_COURSE = Path(__file__).resolve().parents[2] / "files" / "toy_course"
ID = "toy_sum"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"

FUNCTIONAL = """\
inputs = keras.Input(shape=(5, 1))
hidden = keras.layers.SimpleRNN(16, activation="relu")(inputs)
outputs = keras.layers.Dense(1)(hidden)
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mae")
history = model.fit(x, y, epochs=20, batch_size=64, validation_split=0.2, verbose=0)"""
# the same code, names and numbers changed
RENAMED = """\
inp = keras.Input(shape=(5, 1))
h = keras.layers.SimpleRNN(32, activation="relu")(inp)
out = keras.layers.Dense(1)(h)
model = keras.Model(inp, out)
model.compile(optimizer=keras.optimizers.Adam(0.005), loss="mae")
history = model.fit(x, y, epochs=30, batch_size=32, validation_split=0.2, verbose=0)"""
SEQUENTIAL = """\
# a Sequential model, trained a few epochs at a time until the loss is small
model = keras.Sequential([keras.layers.SimpleRNN(8), keras.layers.Dense(1)])
model.compile("rmsprop", "mse")
for round_ in range(3):
    history = model.fit(x, y, epochs=5, verbose=0)
    if history.history["loss"][-1] < 0.01:
        break"""


def checks(add_one: bool, recurrent: bool, mae: bool) -> list[CheckResult]:
    """The toy assignment's three checks, passed or not."""
    return [
        CheckResult("test_add_one", "add_one(2) is 3", "test_toy", 1.0, float(add_one), ""),
        CheckResult(
            "test_recurrent",
            "The model has a SimpleRNN layer",
            "test_toy",
            1.0,
            float(recurrent),
            "",
        ),
        CheckResult(
            "test_mae",
            "The sums of hidden sequences are close",
            "test_toy",
            2.0,
            2.0 * mae,
            "" if mae else "mean absolute error too large",
        ),
    ]


def write_outcome(results: Results, outcome: Outcome, mae: float | None = None) -> None:
    """Record ``outcome``; ``mae`` is what its MAE check measured for the model ``rnn``."""
    if mae is not None:
        outcome.checks = [
            replace(check, value=mae, model="rnn") if check.name == "test_mae" else check
            for check in outcome.checks
        ]
    record.atomic_write(results.grading_file(outcome.student, ID), json.dumps(outcome.to_json()))


def write_notebook(results: Results, release: Path, student: str, add_one: str, train: str):
    """The student's executed notebook: the release with its two solution cells filled in."""
    notebook = nbformat.read(release, as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "add_one":
            cell.source = add_one
        elif grade_id == "train":
            cell.source = cell.source.replace(STUB, train)
    nbformat.write(notebook, results.autograded(student, ID) / f"{ID}.ipynb")


def graded(student: str, seconds: float, passed: tuple[bool, bool, bool], **run) -> Outcome:
    run = {
        "status": "ok",
        "message": "All 5 cells ran without errors.",
        "duration_s": seconds - 5,
        **run,
    }
    return Outcome(
        student, ID, "d", "graded", run["message"], run=run, checks=checks(*passed), seconds=seconds
    )


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The course, its results folder, and the folder the report was written into."""
    root = tmp_path_factory.mktemp("report")
    course = root / "course"
    shutil.copytree(TOY_COURSE, course)
    assert cli.main(["--course", str(course), "release", ID]) == 0
    release = course / "release" / ID / f"{ID}.ipynb"
    results = Results(root / "results")

    write_outcome(results, graded("alice", 30.0, (True, True, True)), mae=0.1)
    write_notebook(results, release, "alice", "def add_one(x):\n    return x + 1", FUNCTIONAL)
    write_outcome(results, graded("bob", 20.0, (True, True, False)), mae=0.3)
    write_notebook(results, release, "bob", "def add_one(n):\n    return n + 1", RENAMED)
    write_outcome(results, graded("carol", 45.0, (False, True, False)), mae=0.6)
    write_notebook(results, release, "carol", "def add_one(x):\n    return x - 1", SEQUENTIAL)
    timeout = "The notebook was stopped after 240 s (time limit)."
    erin = graded("erin", 250.0, (False, False, False), status="timeout", message=timeout)
    write_outcome(results, erin)
    shutil.copy(release, results.autograded("erin", ID) / f"{ID}.ipynb")
    unread = "The submission could not be graded: dave.zip is not a zip archive"
    rejected = {"status": "rejected", "message": unread}
    write_outcome(
        results,
        Outcome(
            "dave", ID, "d", "rejected", unread, run=rejected, checks=checks(False, False, False)
        ),
    )
    died = "Grading stopped (KilledWorker: ...); the submission is graded again on the next run"
    failed = {"status": "failed", "message": died}
    write_outcome(results, Outcome("frank", ID, "d", "failed", died, run=failed, seconds=1.0))

    run("--course", str(course), "report", ID, "--out", str(results.root))
    return course, results.root, results.root / "reports" / ID


def run(*argv: str) -> int:
    """The report command as ``rnn-course`` parses it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--course")
    report_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


def table(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", keep_default_na=False, na_values=[""])


def test_the_tables_count_what_was_recorded(reported):
    _, _, folder = reported
    counts = table(folder, "status_counts").set_index("status")["submissions"]
    assert counts.to_dict() == {"graded": 4, "rejected": 1, "failed": 1}

    scores = table(folder, "scores").set_index("student")
    assert scores.loc["alice", "autograded"] == 4.0 and scores.loc["erin", "autograded"] == 0.0
    assert scores.loc["dave", "status"] == "rejected" and pd.isna(scores.loc["dave", "autograded"])
    assert pd.isna(scores.loc["alice", "total"])  # no grades CSV in this results folder

    # over the four graded submissions: the rejected one's zeros do not count
    rates = table(folder, "check_pass_rates").set_index("name")
    assert rates["pass_rate"].to_dict() == {
        "test_add_one": 0.5,
        "test_mae": 0.25,
        "test_recurrent": 0.75,
    }
    assert rates.loc["test_mae", "graded"] == 4 and rates.loc["test_mae", "passed"] == 1

    # toy thresholds: mae_rnn 0.25 (target), mae_basic_rnn 0.4; lower is better
    measured = table(folder, "measurements").set_index("student")
    assert measured["mae"].to_dict() == {"alice": 0.1, "bob": 0.3, "carol": 0.6}
    assert measured["tier"].to_dict() == {"alice": "target", "bob": "basic", "carol": "below basic"}
    assert set(measured["target"]) == {0.25} and set(measured["basic"]) == {0.4}

    slowest = table(folder, "slowest_runs")
    assert slowest.loc[0, "run_seconds"] == 245.0 and pd.isna(slowest.loc[4, "run_seconds"])
    assert list(slowest["student"]) == [
        "erin",
        "carol",
        "alice",
        "bob",
        "frank",
    ]
    problems = table(folder, "problem_runs").set_index("student")
    assert list(problems.index) == ["dave", "erin", "frank"]
    assert problems.loc["erin", "run_status"] == "timeout"
    assert problems.loc["dave", "cause"].endswith("is not a zip archive")


def test_the_scores_show_the_total_of_the_grades_csv_beside_the_autograded_points(
    reported, tmp_path
):
    """Hand grades, adjustments and the late penalty count in the total, as everywhere else."""
    course, results, _ = reported
    csv = Results(results).grades_csv
    rows = [
        ["student", "assignment", "status", "autograded", "manual", "adjustments"],
        ["alice", ID, "graded", 4, 2.5, -1, 0.5, 5, 9],
        ["bob", "other", "graded", 1, 0, 0, 0, 1, 9],  # another assignment's row
        ["dave", ID, "rejected", 0, 0, 0, 0, 0, 9],
    ]
    rows[0] += ["late_penalty", "total", "max"]
    csv.write_text("\n".join(",".join(map(str, row)) for row in rows) + "\n")
    try:
        run("--course", str(course), "report", ID, "--out", str(results), "--to", str(tmp_path))
    finally:
        csv.unlink()
    scores = table(tmp_path, "scores").set_index("student")
    assert scores.loc[
        "alice", ["autograded", "manual", "adjustments", "late_penalty"]
    ].tolist() == [
        4.0,
        2.5,
        -1.0,
        0.5,
    ]
    assert scores.loc["alice", ["total", "max"]].tolist() == [5.0, 9.0]
    assert pd.isna(scores.loc["bob", "total"])  # bob's row is of another assignment
    assert pd.isna(scores.loc["dave", "total"])  # rejected: no total, as no autograded points
    page = (tmp_path / "report.html").read_text()
    assert 'alt="score distribution"' in page and "adds the hand grades" in page


def test_only_the_near_identical_pair_is_similar(reported):
    _, _, folder = reported
    pairs = table(folder, "similar_pairs")
    assert len(pairs) == 1, pairs
    pair = pairs.iloc[0]
    assert {pair["student_a"], pair["student_b"]} == {"alice", "bob"}
    assert pair["share_of_a"] > 0.8 and pair["share_of_b"] > 0.8
    # erin handed in the release: all of it is boilerplate, so it matches no one
    page = (folder / "report.html").read_text()
    assert (
        "the code cells of 4 students" in page
        and "Not compared (no readable notebook): dave, frank" in page
    )


def test_a_command_given_the_wrong_thing_says_so(reported, tmp_path):
    course, results, _ = reported
    with pytest.raises(SpecError, match="unknown assignment 'nope'"):
        run("--course", str(course), "report", "nope", "--out", str(results))
    with pytest.raises(CommandError, match="holds no grading of 'toy_sum'"):
        run("--course", str(course), "report", ID, "--out", str(tmp_path))
    with pytest.raises(CommandError, match="does not exist"):
        run("--course", str(course), "report", ID, "--out", str(tmp_path / "missing"))


def test_a_class_without_measured_values(reported, tmp_path):
    """A class whose checks measured nothing: no check carries a value."""
    course, _, _ = reported
    results = Results(tmp_path / "results")
    alice = graded("alice", 30.0, (True, True, True))
    record.atomic_write(results.grading_file("alice", ID), json.dumps(alice.to_json()))
    run("--course", str(course), "report", ID, "--out", str(results.root), "--to", str(tmp_path))
    assert table(tmp_path, "measurements").empty and table(tmp_path, "similar_pairs").empty
    page = (tmp_path / "report.html").read_text()
    assert "No measured value was recorded" in page and "of 0 students" in page


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(
    CHROMIUM is None and os.geteuid() != 0,
    reason="no chromium (tools/install-browser.sh installs it as root)",
)
def test_the_page_shows_in_a_browser(reported, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is missing: make setup installs it (tools/install-browser.sh)"
    _, _, folder = reported
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((folder / "report.html").as_uri(), wait_until="load")
        images = page.evaluate(
            "[...document.images].map(i => [i.alt, i.complete && i.naturalWidth])"
        )
        headings = page.locator("h2").all_inner_texts()
        dave = page.locator("#scores tr", has_text="dave").inner_text()
        pair = page.locator("#similar_pairs tbody tr").all_inner_texts()
        page.screenshot(path=tmp_path / "report.png", full_page=True)
        browser.close()
    assert errors == []
    assert [alt for alt, _ in images] == [
        "score distribution",
        "pass rate per check",
        "mae per model",
    ]
    assert all(width > 0 for _, width in images), images
    assert headings == [
        "1. Scores",
        "2. Checks",
        "3. Measured mae against the thresholds",
        "4. Runs",
        "5. Similar code",
    ]
    assert "rejected" in dave.split()
    assert len(pair) == 1 and "alice" in pair[0] and "bob" in pair[0]
