"""The student's feedback page: what it says, and how it says it."""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import release
from autograder.core.course import Course
from autograder.core.results import CheckResult, GradingTask, Outcome
from autograder.core.spec import Curves, Limits
from autograder.grading import batch
from autograder.grading.sandbox import measure
from autograder.term import feedback
from autograder.term.feedback import Adjustment, HandGrade


def check(name="test_value", points=2.0, max_points=2.0, message="", cell="test_x"):
    return CheckResult(name, f"{name} title", cell, max_points, points, message)


def outcome(checks=None, run=None, message="The notebook ran.") -> Outcome:
    return Outcome(
        student="alice",
        assignment="toy",
        digest="abc",
        status="graded",
        message=message,
        run=run or {"status": "ok"},
        checks=checks if checks is not None else [check(), check("test_type", 0.0, 1.0)],
    )


def test_hand_grades_add_to_the_total_and_show_in_a_table():
    page = feedback.feedback_html(
        outcome(),
        manual_points=7,
        hand_grades=[
            HandGrade("report", 4, 3.5, "Clear <b>comparison</b>"),
            HandGrade("discussion", 3, None),
        ],
    )
    assert "toy: 5.5 / 10</h1>" in page
    assert "<h2>Graded by hand</h2>" in page
    assert "<td>report</td><td>3.5 / 4</td><td>Clear &lt;b&gt;comparison&lt;/b&gt;</td>" in page
    assert "not graded yet" in page
    assert "are added later" not in page


def test_without_hand_grades_the_manual_points_come_later():
    page = feedback.feedback_html(outcome(), manual_points=7)
    assert "toy: 2 / 3</h1>" in page
    assert "graded by hand (7 points) are added later" in page
    assert "Graded by hand</h2>" not in page


def test_adjustments_are_listed_with_their_reason_and_counted():
    page = feedback.feedback_html(
        outcome(),
        manual_points=4,
        hand_grades=[HandGrade("report", 4, 4)],
        adjustments=[Adjustment("late by 2 days <10%>", -0.7)],
    )
    assert "toy: 5.3 / 7</h1>" in page
    assert "-0.7 points: late by 2 days &lt;10%&gt;" in page


# --------------------------------------------------------------------------- one root cause

TIMEOUT = 'The notebook was stopped after 30 s (time limit) in cell #3 (id "train").'


def test_a_run_problem_is_shown_once_above_the_checks_it_left_ungraded():
    checks = [
        check(f"test_{n}", 0.0, message=f"missing artifact models/{n}.keras: {TIMEOUT}")
        for n in ("lstm", "gru", "rnn")
    ]
    checks = [CheckResult(**{**c.to_json(), "cause": TIMEOUT}) for c in checks]
    checks.append(check("test_probe", 0.0, message="build_model(units=4) raised ValueError: bad"))
    page = feedback.feedback_html(outcome(checks, {"status": "timeout"}, TIMEOUT))
    escaped = TIMEOUT.replace('"', "&quot;")
    assert page.count(escaped) == 1
    assert page.index("What went wrong") < page.index(escaped) < page.index("<h2>Checks")
    assert page.count("not graded: see the problem above") == 3
    assert "3 check(s) below could not be graded" in page
    assert "build_model(units=4) raised ValueError: bad" in page


def test_a_judge_stop_is_shown_once_too():
    stop = "the judge stopped your models after 120 s (the time limit ...)"
    checks = [CheckResult(f"test_{n}", "t", "cell", 1.0, 0.0, stop, cause=stop) for n in range(4)]
    page = feedback.feedback_html(outcome(checks, {"status": "ok"}, "All 9 cells ran."))
    assert page.count(stop) == 1 and page.count("All 9 cells ran.") == 1
    assert page.count("not graded: see the problem above") == 4


def test_a_run_without_problems_has_no_problem_section():
    page = feedback.feedback_html(outcome(message="All 5 cells ran without errors."))
    assert "All 5 cells ran without errors." in page and "What went wrong" not in page


# --------------------------------------------------------------------------- limits


def test_the_page_shows_the_limits_this_run_had():
    limits = asdict(Limits(notebook_timeout_s=45, cell_timeout_s=900, memory_mb=2048))
    limits.update(cpu_cores=2, wall_clock_factor=3)
    page = feedback.feedback_html(outcome(run={"status": "ok", "limits": limits}))
    section = page.split("<h2>Limits of this run</h2>")[1]
    counted = (
        "45 s of CPU time on each of 2 cores (90 s in all); stopped anyway after 135 s of "
        "wall-clock time"
    )
    assert f"Time for the whole notebook</th><td>{counted}" in section
    assert f"Time for one cell</th><td>{counted}" in section  # never more than the notebook
    assert "Memory</th><td>2048 MB" in section and "2048 MB" in section
    judge = "120 s of CPU time on each of 2 cores (240 s in all); stopped anyway after 360 s"
    assert f"predicting on the hidden data</th><td>{judge}" in section and "; 4096 MB" in section
    not_run = feedback.feedback_html(outcome(run={"status": "not_executed", "limits": limits}))
    assert "Time for the whole notebook" not in not_run and judge in not_run


def test_limits_recorded_before_cpu_time_counted_show_as_they_were():
    limits = asdict(Limits(notebook_timeout_s=45, cell_timeout_s=900))
    page = feedback.feedback_html(outcome(run={"status": "ok", "limits": limits}))
    assert "Time for the whole notebook</th><td>45 s</td>" in page


# --------------------------------------------------------------------------- the judge's extras

PNG_URL = "data:image/png;base64,iVBORw0KGgo="


def test_the_judges_figures_and_texts_are_on_the_page_escaped():
    graded = outcome()
    graded.figures = {"lstm: <forecast>": PNG_URL, "forged": 'x" onerror="alert(1)'}
    graded.texts = {"LSTM at temperature 0.2": "<script>alert(1)</script>\nthe king"}
    page = feedback.feedback_html(graded)
    section = page.split("<h2>What the judge saw your models do on the hidden data</h2>")[1]
    assert f'<img alt="lstm: &lt;forecast&gt;" src="{PNG_URL}">' in section
    assert "onerror" not in page and "<script>" not in page
    assert "<h3>LSTM at temperature 0.2</h3>" in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\nthe king</pre>" in section


def test_a_page_without_extras_has_no_such_section():
    assert "What the judge saw" not in feedback.feedback_html(outcome())


# --------------------------------------------------------------------------- curves

HISTORY = {
    "lstm": {"loss": [0.7, 0.5, 0.4, 0.35], "val_loss": [0.6, 0.45, 0.5, 0.55]},
    "gru": {"loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.5, 0.45]},
}


def plotted(figure):
    """(label, colour, style) of each curve, and the best-epoch markers, of every panel."""
    curves, best = [], []
    for axis in figure.axes:
        for line in axis.get_lines():
            if line.get_gid() == feedback.BEST_EPOCH:
                best.append((line.get_color(), list(line.get_xdata())))
            else:
                curves.append((line.get_label(), line.get_color(), line.get_linestyle()))
    return curves, best


def test_curves_have_a_colour_per_model_training_solid_validation_dashed():
    figure = feedback.learning_curves_figure(HISTORY, Curves("history", ("loss",)))
    curves, _ = plotted(figure)
    styles = {label: (colour, style) for label, colour, style in curves}
    assert styles["lstm loss"][1] == "-" and styles["lstm val_loss"][1] == "--"
    assert styles["lstm loss"][0] == styles["lstm val_loss"][0]
    assert styles["gru loss"][0] == styles["gru val_loss"][0] != styles["lstm loss"][0]


def test_curves_have_whole_epochs_and_mark_the_restored_best_epoch():
    figure = feedback.learning_curves_figure(HISTORY, Curves("history", ("loss",)))
    figure.draw_without_rendering()  # lays the figure out as savefig does
    ticks = figure.axes[0].get_xticks()
    assert len(ticks) and all(float(tick).is_integer() for tick in ticks)
    _, best = plotted(figure)
    lstm_colour = next(c for label, c, _ in plotted(figure)[0] if label == "lstm loss")
    assert {colour for colour, _ in best} == {lstm_colour}  # gru's best is its last epoch
    assert all(x == [2, 2] or x == [2] for _, x in best)
    assert feedback.best_epoch({"val_loss": [0.5, None, 0.4, 0.6]}) == 3
    assert feedback.best_epoch({"val_loss": [0.5, 0.4]}) is None
    assert feedback.best_epoch({"loss": [0.5, 0.4]}) is None


def test_a_history_of_one_epoch_is_a_point_at_epoch_one():
    one_epoch = {"lstm": {"loss": [2.2], "val_loss": [2.0]}}
    figure = feedback.learning_curves_figure(one_epoch, Curves("history", ("loss",)))
    figure.draw_without_rendering()
    axis = figure.axes[0]
    assert list(axis.get_xticks()[(axis.get_xticks() >= 0.5) & (axis.get_xticks() <= 1.5)]) == [1]
    assert all(line.get_marker() not in (None, "None", "") for line in axis.get_lines())


def test_the_legend_is_outside_the_panels():
    figure = feedback.learning_curves_figure(HISTORY, Curves("history", ("loss", "bits")))
    figure.draw_without_rendering()  # lays the figure out as savefig does
    assert all(axis.get_legend() is None for axis in figure.axes)
    (legend,) = figure.legends
    box = legend.get_window_extent()
    assert not any(box.overlaps(axis.get_window_extent()) for axis in figure.axes)
    assert feedback.learning_curves_png(HISTORY, Curves("history", ("loss",))).startswith(
        "data:image/png;base64,"
    )


def test_the_page_is_self_contained_and_accessible():
    page = feedback.feedback_html(
        Outcome(**{**vars(outcome()), "learning_curves": "data:image/png;base64,AAAA"})
    )
    assert '<html lang="en">' in page and 'alt="Your learning curves: per epoch' in page
    assert "http://" not in page and "https://" not in page


# --------------------------------------------------------------------------- through the toy course

TOY_COURSE = Path(__file__).resolve().parents[2] / "files" / "toy_course"
ID = "toy_sum"
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)
COLOURED_PATHS = (
    "import os, numpy\n"
    "raise ValueError('\\x1b[1m' + os.path.abspath('data/x.csv') + '\\x1b[0m from '"
    " + numpy.__file__ + ' in ' + os.getcwd())\n"
)


@pytest.fixture(scope="module")
def toy_class(tmp_path_factory) -> dict[str, tuple[Outcome, str]]:
    """Crafted failures graded by the engine: the empty release, a notebook that never
    ends (under a per-student time limit of 10 s), a cell raising escape codes and paths."""
    root = tmp_path_factory.mktemp("toy") / "course"
    shutil.copytree(TOY_COURSE, root)
    course = Course(root)
    release.generate(ID, course)
    spec = course.spec(ID)
    released = course.release_notebook(spec)
    solved = nbformat.read(course.source_notebook(spec), as_version=4)
    for cell in solved.cells:
        cell.source = MARKER.sub("", cell.source)
    endless, coloured = copy.deepcopy(solved), copy.deepcopy(solved)
    endless.cells[2].source = "import time\nwhile True:\n    time.sleep(1)"
    coloured.cells[2].source = COLOURED_PATHS
    pages = {}
    for student, notebook, timeout in (
        ("carol", nbformat.read(released, as_version=4), None),
        ("gina", endless, 10),
        ("ivy", coloured, None),
    ):
        folder = root / "submitted" / student / ID
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / spec.notebook)
        work = root / ".work" / student
        task = GradingTask(spec, student, folder, "d", released, work, notebook_timeout_s=timeout)
        graded = batch.grade_submission(task)
        pages[student] = (graded, feedback.feedback_html(graded))
    return pages


def ungraded_rows(page: str) -> int:
    return page.count("not graded: see the problem above")


def test_an_unwritten_notebook_shows_its_first_failing_cell_once(toy_class):
    graded, page = toy_class["carol"]
    first = "Cell #3 (id &quot;train&quot;, In [2]) raised NotImplementedError (the code is not"
    assert page.count(first) == 1 and ungraded_rows(page) == 2
    assert "add_one(x=2) raised NotImplementedError (the code is not written yet)" in page
    assert "NotImplementedError:" not in page


def test_a_notebook_over_its_own_time_limit_says_where_and_which_limit(toy_class):
    """It waits without computing: the wall-clock backstop of its limit stops it."""
    graded, page = toy_class["gina"]
    factor = measure.WALL_CLOCK_FACTOR
    stopped = f"stopped after {10 * factor} s of wall-clock time (the backstop, {factor} x the"
    assert page.count(stopped) == 1 and ungraded_rows(page) == 3
    assert "so it was waiting, not computing) in cell #3 (id &quot;train&quot;)" in page
    assert "Time for the whole notebook</th><td>10 s of CPU time on each of" in page


def test_no_escape_code_or_grader_path_reaches_the_student(toy_class):
    graded, page = toy_class["ivy"]
    assert "raised ValueError: data/x.csv from __init__.py in ." in graded.message
    assert ungraded_rows(page) == 2
    for student, (graded, page) in toy_class.items():
        text = page + json.dumps([check.to_json() for check in graded.checks]) + graded.message
        assert "\x1b" not in text and "[1m" not in text, student
        for path in (sys.prefix, "site-packages", "rnn-scratch", "/tmp/"):
            assert path not in text, (student, path)
