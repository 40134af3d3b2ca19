"""Assignment 2: character-level text generation with LSTM and GRU language models.

The constants of the public contract live here (importing them loads no TensorFlow);
``helpers`` has the callbacks, the fast sampling helper, the export and the public checks.
"""

CELL_TYPES = ("lstm", "gru")
#: the temperatures of the samples the notebook exports
TEMPERATURES = (0.2, 0.5, 1.0, 1.5)
#: characters generated per sample (after the seed text)
SAMPLE_LENGTH = 300
SEED_TEXT = "ROMEO:\n"
#: the grader scores your models on non-overlapping windows of this many characters
EVAL_WINDOW = 100
