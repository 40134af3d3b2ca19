"""The toy assignment's plugin: hidden sequences, the reference training, a trivial baseline."""

from __future__ import annotations

import numpy as np

from autograder.core.plugin import Plugin, ReferenceResult


def sequences(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` sequences of five numbers in [0, 1], shape (count, 5, 1), and their sums."""
    x = np.random.default_rng(seed).random((count, 5, 1)).astype("float32")
    return x, x.sum(axis=(1, 2))


def mae(model, x: np.ndarray, y: np.ndarray) -> float:
    predicted = np.asarray(model.predict(x, verbose=0)).reshape(-1)
    return float(np.mean(np.abs(predicted - y)))


class AssignmentPlugin(Plugin):
    mae = staticmethod(mae)

    def load_hidden(self):
        return sequences(500, seed=99)

    def reference_run(self, seed: int) -> dict[str, ReferenceResult]:
        import keras

        keras.utils.set_random_seed(seed)
        x, y = sequences(2000, seed)
        model = keras.Sequential(
            [keras.Input((5, 1)), keras.layers.SimpleRNN(8), keras.layers.Dense(1)]
        )
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        history = model.fit(x, y, epochs=15, batch_size=64, verbose=0)
        return {
            "rnn": ReferenceResult(mae(model, *self.hidden()), len(history.history["loss"]), 0.1)
        }

    def baselines(self) -> dict[str, float]:
        _, y = self.hidden()
        return {"predict_the_mean": float(np.mean(np.abs(y - 2.5)))}
