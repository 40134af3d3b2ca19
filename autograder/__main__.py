"""``python -m autograder`` is the ``rnn-course`` command."""

from autograder.cli import main

raise SystemExit(main())
