"""nbgrader configuration of the test-only toy course (its own course folder)."""

from pathlib import Path

from autograder.core.course import configure

configure(get_config(), Path(__file__).resolve().parent)  # noqa: F821 (nbgrader provides get_config)
