"""What a submitted model's graph is made of: its recurrent layers, and any path around them.

An assignment on recurrent networks grades the recurrent layer it teaches, so
the architecture checks read the model's graph, not only its list of layers: a
bag-of-words classifier with a one-unit LSTM on a side branch holds an LSTM,
but the LSTM does none of the work. :func:`inspect` walks back from each output
through the Keras functional graph (into nested models such as a ``Sequential``
behind a ``TextVectorization``) and looks for a path from an input that meets no
recurrent layer; :func:`check_recurrent` turns that into a check with a message
naming what was found.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

CELL_KINDS = (
    (keras.layers.LSTMCell, "LSTM"),
    (keras.layers.GRUCell, "GRU"),
    (keras.layers.SimpleRNNCell, "SimpleRNN"),
)


@dataclass(frozen=True)
class Architecture:
    """The recurrent layers of a model (kinds, in layer order) and a path around them, if any."""

    layers: tuple[str, ...]
    recurrent: tuple[str, ...]
    bypass: tuple[str, ...] | None  # the layer types of a path from an input that avoids them

    def describe(self) -> str:
        if not self.recurrent:
            return f"no recurrent layer (layers: {', '.join(self.layers) or 'none'})"
        kinds = ", ".join(self.recurrent)
        if self.bypass is not None:
            path = " -> ".join(["input", *self.bypass, "output"])
            return f"{kinds}, with a path from the input to the output around it ({path})"
        return f"{kinds} on every path from the input to the output"


def recurrent_kind(layer) -> str | None:
    """``"LSTM"``, ``"GRU"``, ``"SimpleRNN"`` (or another cell's name) for a recurrent layer."""
    if isinstance(layer, keras.layers.Bidirectional):
        kinds = {recurrent_kind(layer.forward_layer), recurrent_kind(layer.backward_layer)}
        return kinds.pop() if len(kinds) == 1 else " and ".join(sorted(map(str, kinds)))
    if not isinstance(layer, keras.layers.RNN):
        return None
    cells = getattr(layer.cell, "cells", [layer.cell])
    kinds = {next((name for cls, name in CELL_KINDS if isinstance(c, cls)), None) for c in cells}
    if len(kinds) == 1 and None not in kinds:
        return kinds.pop()
    return type(layer.cell).__name__


def _submodels(model) -> list:
    return [layer for layer in getattr(model, "layers", []) if isinstance(layer, keras.Model)]


def flat_layers(model) -> list:
    """Every layer of ``model``, nested models opened, in order."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            found += flat_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def _open_path(model) -> list[str] | None:
    """Layer types of a path from an input of ``model`` to an output that meets no recurrent layer.

    ``None`` when every path meets one. A ``Sequential`` is a chain; any other model
    is walked back from its outputs through the functional graph.
    """
    if isinstance(model, keras.Sequential):
        path = []
        for layer in model.layers:
            through = _through(layer)
            if through is None:
                return None
            path += through
        return path
    inputs = {id(tensor) for tensor in model.inputs}
    seen: dict[int, list[str] | None] = {}

    def walk(tensor) -> list[str] | None:
        if id(tensor) in inputs:
            return []
        if id(tensor) in seen:
            return seen[id(tensor)]
        seen[id(tensor)] = None  # a cycle cannot open a path
        history = getattr(tensor, "_keras_history", None)
        result = None
        if history is not None:
            operation = history.operation
            through = _through(operation)
            if through is not None:
                node = operation._inbound_nodes[history.node_index]
                for parent in node.input_tensors:
                    before = walk(parent)
                    if before is not None:
                        result = before + through
                        break
        seen[id(tensor)] = result
        return result

    for output in model.outputs:
        path = walk(output)
        if path is not None:
            return path
    return None


def _through(layer) -> list[str] | None:
    """The layer types a path crosses inside ``layer``, or ``None`` when it must meet recurrence."""
    if recurrent_kind(layer) is not None:
        return None
    if isinstance(layer, keras.Model):
        return _open_path(layer)
    return [] if isinstance(layer, keras.layers.InputLayer) else [type(layer).__name__]


def inspect(model) -> Architecture:
    """The recurrent layers of ``model`` and, if one exists, a path around them."""
    layers = flat_layers(model)
    recurrent = tuple(kind for layer in layers if (kind := recurrent_kind(layer)))
    path = _open_path(model) if recurrent else None
    return Architecture(
        layers=tuple(type(layer).__name__ for layer in layers),
        recurrent=recurrent,
        bypass=tuple(path) if path is not None else None,
    )


def check_recurrent(model, expected: str, what: str) -> Architecture:
    """Fail unless ``model`` has ``expected`` recurrent layers only, on every input-output path."""
    found = inspect(model)
    assert found.recurrent, (
        f"{what} has {found.describe()}: the assignment grades a model built around {expected}"
    )
    assert set(found.recurrent) == {expected}, (
        f"{what} must use {expected} layers only; found {', '.join(found.recurrent)}. "
        "Export each trained model under its own name"
    )
    assert found.bypass is None, (
        f"{what} has {found.describe()}: the {expected} must sit on the one path from the "
        "input to the output, with no shortcut around it"
    )
    return found
