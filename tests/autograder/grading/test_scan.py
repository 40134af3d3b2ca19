"""The scan of submitted files for long runs of the hidden data (a second signal)."""

from __future__ import annotations

import nbformat

from autograder.grading.scan import RUN_WORDS, PassageIndex, scan

HIDDEN = [
    "First Citizen: before we proceed any further, hear me speak. All: speak, speak. "
    "First Citizen: you are all resolved rather to die than to famish? All: resolved. "
    "First Citizen: first, you know Caius Marcius is chief enemy to the people.",
    "2021-01-04,133.52 2021-01-05,128.89 2021-01-06,129.60 2021-01-07,130.72 "
    "2021-01-08,130.24 2021-01-11,128.45 2021-01-12,128.98",
]


def test_a_notebook_carrying_the_hidden_text_is_listed(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(f"extra = '''{HIDDEN[0]}'''\ntrain(extra)")]
    nbformat.write(notebook, tmp_path / "a2.ipynb")
    found = scan(tmp_path, PassageIndex.of(HIDDEN))
    assert found.startswith(f"the submitted files hold runs of {RUN_WORDS} or more words")
    assert "a2.ipynb (" in found


def test_numbers_count_as_words_and_every_file_is_read(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text(HIDDEN[1].replace(" ", "\n").upper())
    assert "data/notes.txt" in scan(tmp_path, PassageIndex.of(HIDDEN))


def test_short_quotes_and_other_text_are_not_listed(tmp_path):
    (tmp_path / "a2.ipynb").write_text(
        "before we proceed any further, hear me speak: the famous opening, quoted. "
        + "an honest notebook trains on the seen text only " * 20
    )
    assert scan(tmp_path, PassageIndex.of(HIDDEN)) == ""
    assert scan(tmp_path, PassageIndex.of([])) == ""
