"""Stage 3, judge (trusted, no student code): the hidden checks, run on what the run stage exported.

- :mod:`.parent`: the grading worker's side, a child process per worker watched under the
  spec's limits (it loads the student's untrusted models);
- :mod:`.child`: the child's side, which runs the hidden checks as pytest tests;
- :mod:`.extras`: what the child makes for the feedback page beside the checks.
"""


class JudgeError(RuntimeError):
    """The hidden checks themselves could not run (a course bug, not the student's)."""
