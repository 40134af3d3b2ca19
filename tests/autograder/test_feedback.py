"""The student's feedback page: what it says, and how it says it."""

from __future__ import annotations

from autograder import feedback
from autograder.feedback import Adjustment, HandGrade
from autograder.judge import CheckResult
from autograder.task import Outcome


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
