"""Text fit for a student: no escape codes, no grader paths, one line, capped."""

from __future__ import annotations

from autograder.core.text import error_text, student_text, without_paths

KERAS_ERROR = (
    "Exception encountered when calling SimpleRNNCell.call().\n\n\x1b[1m{{function_node "
    "__wrapped__MatMul_device_/job:localhost/replica:0/task:0/device:CPU:0}} Matrix "
    "size-incompatible: In[0]: [2,3] [Op:MatMul] name: \x1b[0m\n\nArguments received by "
    "SimpleRNNCell.call():\n  • sequence=tf.Tensor(shape=(2, 3), dtype=float32)"
)


def test_student_text_has_no_escape_codes_no_grader_paths_one_line():
    shown = student_text(KERAS_ERROR)
    assert "\x1b" not in shown and "[1m" not in shown and "\n" not in shown
    assert "Matrix size-incompatible: In[0]: [2,3]" in shown
    assert "/job:localhost/replica:0" in shown  # not a path: a TensorFlow device name
    where = "/run/rnn-scratch/123-0"
    assert student_text(f"No such file: '{where}/data/x.csv' in {where}", where) == (
        "No such file: 'data/x.csv' in ."
    )
    venv = "/srv/course/.venv/lib/python3.11/site-packages/keras/src/saving/saving_api.py"
    assert student_text(f"raised in {venv}") == "raised in saving_api.py"
    assert student_text("x" * 500).endswith("…") and len(student_text("x" * 500)) == 300


def test_an_error_without_a_message_is_still_a_sentence():
    assert error_text("NotImplementedError", "") == (
        "NotImplementedError (the code is not written yet)"
    )
    assert error_text("KeyError", "  ") == "KeyError"
    assert error_text("ValueError", "\x1b[31mbad\x1b[0m") == "ValueError: bad"


def test_messages_never_carry_absolute_paths():
    message = (
        "File not found: filepath=/srv/course/.work/a1/bob/judged/artifacts/models/lstm.keras."
    )
    assert without_paths(message) == "File not found: filepath=lstm.keras."
    assert without_paths("ratio 1/2 of a/b") == "ratio 1/2 of a/b"
