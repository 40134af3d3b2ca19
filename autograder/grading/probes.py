"""Probe cells: code run in the student's kernel, after the notebook, to call graded functions.

Each probe becomes one cell that seeds Python, NumPy and (when Keras is in use)
Keras, calls ``function(**kwargs)`` from the notebook's globals and saves the
return value as data in the probe folder: ``<name>.keras`` (a model),
``<name>.npz`` (``value=`` a non-object array) or ``<name>.json``. The cell
catches every exception and records ``{"ok", "file", "ename", "evalue"}`` under
the probe's name in ``index.json`` of that folder, so one failing probe never stops
the others. Everything these cells write is untrusted data to the grader.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence

from autograder.core.spec import Probe

PROBE_DIR = ".probes"
INDEX_FILE = "index.json"
EXTENSIONS = {"keras": ".keras", "npz": ".npz", "json": ".json"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

_TEMPLATE = string.Template("""\
def _rnn_grader_probe(name=$name, function=$function, kwargs_json=$kwargs, output=$output,
                      folder=$folder, filename=$filename, timeout_s=$timeout):
    import json, os, random, sys
    import numpy
    path = os.path.join(folder, filename)
    partial = os.path.join(folder, ".partial-" + filename)
    entry = {"ok": False, "file": None, "ename": None, "evalue": None}
    os.makedirs(folder, exist_ok=True)
    for stale in (path, partial):
        if os.path.lexists(stale):
            os.remove(stale)
    try:
        random.seed(0)
        numpy.random.seed(0)
        if output == "keras" or "keras" in sys.modules:
            import keras
            keras.utils.set_random_seed(0)
        if function not in globals():
            raise NameError(f"name {function!r} is not defined")
        result = globals()[function](**json.loads(kwargs_json))
        if output == "keras":
            import keras
            if not isinstance(result, keras.Model):
                raise TypeError(f"expected a keras.Model, got {type(result).__name__}")
            result.save(partial)
        elif output == "npz":
            value = numpy.asarray(result)
            if value.dtype == object:
                raise TypeError("the result is not a numeric array (object dtype)")
            with open(partial, "wb") as handle:
                numpy.savez(handle, value=value)
        else:
            with open(partial, "w") as handle:
                json.dump(result, handle, allow_nan=False)
        os.replace(partial, path)
        entry.update(ok=True, file=filename)
    except KeyboardInterrupt:
        entry.update(ename="TimeoutError", evalue=f"stopped after {timeout_s} s (time limit)")
    except BaseException as err:
        entry.update(ename=type(err).__name__[:200], evalue=str(err)[:2000])
    index_path = os.path.join(folder, "index.json")
    try:
        with open(index_path) as handle:
            index = json.load(handle)
    except (OSError, ValueError):
        index = {}
    index[name] = entry
    with open(index_path, "w") as handle:
        json.dump(index, handle)


_rnn_grader_probe()
del _rnn_grader_probe
""")


def probe_file(probe: Probe) -> str:
    """The file name a probe's result is saved under."""
    return probe.name + EXTENSIONS[probe.output]


def validate(probe: Probe) -> None:
    """Raise ``ValueError`` unless the probe can be turned into a safe cell."""
    if not _NAME.match(probe.name):
        raise ValueError(f"probe name {probe.name!r} must be letters, digits, '_' or '-'")
    if not probe.function.isidentifier():
        raise ValueError(f"probe {probe.name!r}: {probe.function!r} is not a function name")
    if probe.output not in EXTENSIONS:
        raise ValueError(f"probe {probe.name!r}: unknown output kind {probe.output!r}")
    json.dumps(probe.kwargs, allow_nan=False)


def probe_cell(probe: Probe, folder: str, timeout_s: int) -> str:
    """Source of the cell that runs ``probe`` and saves its result into ``folder``."""
    validate(probe)
    return _TEMPLATE.substitute(
        name=repr(probe.name),
        function=repr(probe.function),
        kwargs=repr(json.dumps(probe.kwargs)),
        output=repr(probe.output),
        folder=repr(folder),
        filename=repr(probe_file(probe)),
        timeout=int(timeout_s),
    )


def probe_cells(probes: Sequence[Probe], folder: str, timeout_s: int) -> list[str]:
    """One cell source per probe, in order; names must be unique."""
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise ValueError(f"probe names must be unique: {names}")
    return [probe_cell(p, folder, timeout_s) for p in probes]
