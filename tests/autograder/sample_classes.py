"""What the tests of the sample classes share: each class's settings and generator, the
``rnn-course grade`` command line and readers of the ``grading.json`` files it writes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from autograder.core import spec as specs

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "tests" / "files"

needs_data = pytest.mark.skipif(
    not os.environ.get("RNN_COURSE_DATA"), reason="needs the data mirror (RNN_COURSE_DATA)"
)


def load(name: str, path: Path) -> ModuleType:
    """Import the file ``path`` as the module ``name``: every generator is a
    ``make_sample_class.py``, so each needs a name of its own in ``sys.modules``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: the generators' shared module, loaded first so that the generators import this one
sample_class = load("sample_class", FILES / "sample_class.py")


class SampleClass:
    """The sample class of ``assignment`` in ``tests/files/<assignment>/``, its settings
    (``sample_class.toml``) and its generator (``script``, relative to the course)."""

    def __init__(self, assignment: str, script: str | None = None):
        self.assignment = assignment
        self.submitted = FILES / assignment / "submitted"
        self.script = script or f"tests/files/{assignment}/make_sample_class.py"
        settings = tomllib.loads((FILES / assignment / "sample_class.toml").read_text())
        self.timeout_s = settings["notebook_timeout_s"]
        self.student_timeouts = settings["student_timeouts"]
        self.expected = settings["expected"]

    def generated(self) -> dict[Path, str]:
        """Each notebook of the class, and the text its generator writes there now."""
        generator = load(f"make_sample_class_{self.assignment}", ROOT / self.script)
        return {
            sample_class.notebook_path(self.assignment, student): sample_class.render(submission)
            for student, submission in generator.students().items()
        }

    def reference(self) -> str:
        """The source notebook's solutions as a student's notebook file."""
        return sample_class.render(sample_class.reference(self.assignment))

    def command(self, submissions: Path, out: Path, *options: str) -> list[str]:
        """``rnn-course grade`` of ``submissions`` into ``out``, without a progress bar."""
        grade = ["grade", self.assignment, str(submissions), "--out", str(out), "--no-progress"]
        return [sys.executable, "-m", "autograder", "--course", str(ROOT), *grade, *options]

    def grade(self, out: Path) -> str:
        """Grade the class into ``out`` as ``rnn-course demo`` does; what the command printed."""
        limits = [f"--student-timeout={name}={s}" for name, s in self.student_timeouts.items()]
        options = ["--jobs", "2", "--timeout", str(self.timeout_s), *limits]
        process = subprocess.run(
            self.command(self.submitted, out, *options), capture_output=True, text=True
        )
        assert process.returncode == 0, process.stdout + process.stderr
        return process.stdout

    def hidden_lines_shown(self, out: Path) -> dict[Path, list[str]]:
        """The lines of the hidden checks that each feedback page in ``out`` shows."""
        source = (specs.load(self.assignment).folder / "check_hidden.py").read_text()
        secret_lines = [
            line.strip()
            for line in source.splitlines()
            if line.strip().startswith(("assert ", "def test_", "return "))
        ]
        shown = {}
        for page in (out / "feedback").rglob("feedback.html"):
            text = page.read_text()
            shown[page] = [line for line in secret_lines if line in text]
        return shown

    def outcome(self, out: Path, student: str) -> dict:
        """What grading into ``out`` recorded for ``student`` (its ``grading.json``)."""
        path = out / "autograded" / student / self.assignment / "grading.json"
        return json.loads(path.read_text())

    def checks(self, out: Path, student: str) -> dict[str, dict]:
        """The checks of ``student``, by name."""
        return {check["name"]: check for check in self.outcome(out, student)["checks"]}

    def lost(self, out: Path, student: str) -> set[str]:
        """The checks of ``student`` that did not earn all their points."""
        return {
            name for name, c in self.checks(out, student).items() if c["points"] < c["max_points"]
        }
