"""Build the student wheel from a clean copy of assignments/ (what an earlier build left
in assignments/build/ never ships).

Usage: .venv/bin/python tools/build_student_wheel.py [DIR]    (make student-wheel)
Writes rnn_course_student-<version>-py3-none-any.whl into DIR (default: dist) and prints its path.
"""

from __future__ import annotations

import sys
from pathlib import Path

from autograder.authoring.gradescope import PROJECT_ROOT, build_wheel


def main(argv: list[str]) -> int:
    if len(argv) > 1 or any(arg.startswith("-") for arg in argv):
        print("usage: build_student_wheel.py [DIR]", file=sys.stderr)
        return 2
    target = Path(argv[0] if argv else "dist")
    if target.exists() and not target.is_dir():
        print(f"{target} is not a folder: give the folder the wheel goes into", file=sys.stderr)
        return 2
    target.mkdir(parents=True, exist_ok=True)
    print(build_wheel(PROJECT_ROOT / "assignments", target.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
