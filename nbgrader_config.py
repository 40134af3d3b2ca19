"""nbgrader configuration of the course: the repository root is the course folder.

``rnn-course release`` and ``nbgrader generate_assignment`` share these settings
(they live in ``autograder/course.py``), so instructors can use either.
"""

from pathlib import Path

from autograder.course import configure

configure(get_config(), Path(__file__).resolve().parent)  # noqa: F821 (nbgrader provides get_config)
