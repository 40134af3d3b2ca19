"""nbgrader configuration of the course: the repository root is the course folder.

``rnn-course release`` and ``nbgrader generate_assignment`` share these settings
(they live in ``autograder/core/course.py``), so instructors can use either; ``nbgrader
autograde`` (formgrader's *Autograde* button too) refuses to run: ``rnn-course grade``
grades. Due dates
and the late policy go here too (``autograder/term/late.py``), for example::

    c.LatePolicy.duedates = {"a1_imdb_sentiment": "2025-03-28 23:59:00 Australia/Sydney"}
    c.LatePolicy.penalty_method = "per_day"  # none (default), zero, per_hour or per_day
    c.LatePolicy.points = 2  # points off per started day late
"""

from pathlib import Path

from autograder.core.course import configure

c = get_config()  # noqa: F821 (nbgrader provides get_config)
configure(c, Path(__file__).resolve().parent)
