# The two commands of the README:  make demo  (the main job)  and  make test.
# Both create or reuse the virtual environment .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Local data mirror: ../shared/data when present, else the download cache is used.
RNN_COURSE_DATA ?= $(abspath $(wildcard ../shared/data))
export RNN_COURSE_DATA

.PHONY: setup demo test lint calibrate bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml tools/install-bubblewrap.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	tools/install-bubblewrap.sh
	touch $@

demo: setup
	$(BIN)/rnn-course demo

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
