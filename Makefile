# The two commands of the README:  make demo  (the main job)  and  make test.
# Both create or reuse the virtual environment .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Local data mirror: ../shared/data when present, else the download cache is used.
RNN_COURSE_DATA ?= $(abspath $(wildcard ../shared/data))
export RNN_COURSE_DATA

.PHONY: setup demo test test-long lint clean check-platforms student-wheel

setup: $(VENV)/.installed

# Two distributions: the student package (assignments/pyproject.toml, rnn-course-student)
# and the grader (pyproject.toml, rnn-course), which requires the first. One pip call
# installs both, so the grader's requirement is met by the local student package.
$(VENV)/.installed: pyproject.toml assignments/pyproject.toml tools/install-bubblewrap.sh tools/install-browser.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./assignments -e ".[dev]"
	tools/install-bubblewrap.sh
	tools/install-browser.sh
	touch $@

demo: setup
	$(BIN)/rnn-course demo

test: setup
	$(BIN)/python -m pytest

# Runs of many minutes, left out of `make test`: the full reference notebooks graded.
test-long: setup
	$(BIN)/python -m pytest -m long

lint: setup
	$(BIN)/ruff check .

# Does the student package resolve on Linux x86_64, macOS arm64 and Windows, on every
# supported Python? Asks the package registry; not part of `make test`.
check-platforms: setup
	tools/check-student-platforms.sh

# The wheel handed out to students, built from a clean copy of assignments/: dist/.
student-wheel: setup
	$(BIN)/python tools/build_student_wheel.py dist

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
