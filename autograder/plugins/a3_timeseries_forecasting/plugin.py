"""Assignment 3 (time-series forecasting), grader side: the unseen period, the student's view,
calibration and the forecast-against-truth figures.

The sandbox sees each series only up to its cut-off (``HIDDEN_FROM``): AAPL's
daily prices before 2021 and Beijing's hourly weather before July 2014. The judge
holds the later period (21 months of AAPL, 6 months of Beijing) and forecasts it
from the exported models and ``preprocessing.json`` with the course's own code
(:func:`assignments.a3_timeseries_forecasting.helpers.evaluate`): the windows are
built from the raw series, history before the cut-off included, and nothing the
student wrote runs. Every forecast origin t from the last day (hour) before the
cut-off on is scored, so each target value of the unseen period is forecast.

Metrics: MAE and MSE in original units, and their ratio to the best naive
forecast on the same windows (AAPL: the last close; weather: the better of the
last value and the value 24 hours earlier, which is the latter). The calibration
scores the reference with the same functions.

Whether a model earned its metric (:mod:`autograder.checks.validity`), measured by the
same functions for the judge and the calibration:

- :meth:`AssignmentPlugin.without_recurrence`: the unseen period forecast with the
  state of every recurrent layer reset at each step. Weather: the MAE ratio must rise
  by ``min_ablation_loss_<model>``. AAPL: no next-day forecast beats the last close,
  so no loss of quality can show what the recurrence does; instead the recurrence
  must move the forecast (:meth:`AssignmentPlugin.recurrent_share`, at least
  ``aapl_min_recurrent_share`` x the actual daily change), which a layer that carries
  nothing does not.
- :meth:`AssignmentPlugin.controls`: the student's own test period (:data:`CONTROL`),
  which an honest notebook does not train on, scored like the unseen period. No
  perturbed copy of the unseen period is used: a model fitted on it generalises
  smoothly to a slightly perturbed copy, which would then hide the gap measured to the
  best control.
"""

from __future__ import annotations

import base64
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import mean

import numpy as np

from autograder.core.plugin import Plugin, ReferenceResult

#: The first day (hour) of each series that the sandbox never sees.
HIDDEN_FROM = {"aapl": "2021-01-01", "weather": "2014-07-01"}
#: The course data set behind each series (``assignments.data.DATASETS``).
DATASET_OF = {"aapl": "aapl", "weather": "beijing"}
#: The control: the last share of what the sandbox sees, the notebook's own test period.
TEST_SHARE = 0.15
CONTROL = "your test period (the last 15% before the cut-off)"


@dataclass(frozen=True)
class HeldOut:
    """One series in full, where its unseen period starts, and the judge's forecast origins."""

    frame: object  # pandas.DataFrame
    cut: int
    origins: np.ndarray


def student_test_period(held: HeldOut, horizon: int) -> HeldOut:
    """The last :data:`TEST_SHARE` of the seen part of a series, forecast like the unseen
    period (the origins of the export cell's preview, the targets all before the cut-off)."""
    from assignments.a3_timeseries_forecasting.helpers import forecast_origins

    first = int(held.cut * (1 - TEST_SHARE)) - 1
    return HeldOut(
        held.frame.iloc[: held.cut], held.cut, forecast_origins(held.cut, first, horizon)
    )


def cut_index(frame, series: str) -> int:
    """Position of the first row of the unseen period of ``series`` in ``frame``."""
    import pandas as pd

    return int(frame.index.searchsorted(pd.Timestamp(HIDDEN_FROM[series])))


def public_frames(frames: dict) -> dict:
    """The part of each series that the sandbox sees (what the reference trains on)."""
    return {series: frame.iloc[: cut_index(frame, series)] for series, frame in frames.items()}


def _row_dates(lines: list[bytes], series: str):
    """The date of each data row of a raw CSV (header excluded), as the loaders read it."""
    import pandas as pd

    if series == "aapl":
        return pd.to_datetime([line.split(b",", 1)[0].decode() for line in lines])
    fields = [line.split(b",") for line in lines]
    return pd.to_datetime(
        {
            "year": [int(f[1]) for f in fields],
            "month": [int(f[2]) for f in fields],
            "day": [int(f[3]) for f in fields],
            "hour": [int(f[4]) for f in fields],
        }
    )


def truncated_csv(raw: bytes, series: str) -> bytes:
    """The raw CSV ``raw`` with its header and every row before the cut-off, bytes unchanged."""
    import pandas as pd

    header, *rows = raw.splitlines(keepends=True)
    rows = [row for row in rows if row.strip()]
    dates = _row_dates(rows, series)
    if not dates.is_monotonic_increasing:
        raise ValueError(f"{series}: the rows of the course file are not in time order")
    keep = int(np.searchsorted(dates.values, pd.Timestamp(HIDDEN_FROM[series]).to_datetime64()))
    body = b"".join(rows[:keep])
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return header + body


def figure_png(evaluation, title: str, days: int) -> str:
    """A data URL: the first ``days`` of the unseen period; truth, forecast, naive forecast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from assignments.a3_timeseries_forecasting.helpers import NAIVE_NAMES, SERIES

    spec = SERIES[evaluation.series]
    per_day = 24 if evaluation.series == "weather" else 1
    shown = slice(0, days * per_day)
    step = spec.horizon - 1  # the last forecast step: the hardest one
    figure, axis = plt.subplots(figsize=(9, 3.2))
    axis.plot(evaluation.truth[shown, step], color="black", linewidth=1.2, label="truth")
    axis.plot(evaluation.forecasts[shown, step], color="tab:blue", label="your forecast")
    baseline = evaluation.baseline
    axis.plot(
        evaluation.naive[baseline][shown, step],
        color="tab:orange",
        linestyle="--",
        linewidth=1,
        label=f"naive: {NAIVE_NAMES[baseline]}",
    )
    unit = "trading days" if per_day == 1 else "hours"
    ahead = "next day" if spec.horizon == 1 else f"{spec.horizon} hours ahead"
    axis.set(
        xlabel=f"{unit} into the unseen period",
        ylabel=f"{spec.target} ({spec.unit})",
        title=f"{title}: forecast {ahead}; MAE {evaluation.mae:.2f} {spec.unit}, "
        f"{evaluation.mae_ratio:.3f} x naive",
    )
    axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class AssignmentPlugin(Plugin):
    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._controls: dict[str, dict[str, HeldOut]] | None = None
        self._runs: list[dict] = []
        self._baseline_details: dict[str, dict] = {}

    # ------------------------------------------------------------------ data

    def load_hidden(self) -> dict[str, HeldOut]:
        """Each series in full, with its cut-off and the origins of the judge's forecasts."""
        from assignments.a3_timeseries_forecasting.helpers import (
            SERIES,
            forecast_origins,
            load_series,
        )

        held = {}
        for series, spec in SERIES.items():
            frame = load_series(series)
            cut = cut_index(frame, series)
            origins = forecast_origins(len(frame), cut - 1, spec.horizon)
            held[series] = HeldOut(frame, cut, origins)
        return held

    def controls(self) -> dict[str, dict[str, HeldOut]]:
        """:data:`CONTROL`: each series' test period (:func:`student_test_period`)."""
        from assignments.a3_timeseries_forecasting.helpers import SERIES

        if self._controls is None:
            held = self.hidden()
            self._controls = {
                CONTROL: {
                    s: student_test_period(held[s], spec.horizon) for s, spec in SERIES.items()
                }
            }
        return self._controls

    def hidden_passages(self) -> list[str]:
        """The data rows of the unseen period, as the published CSV files hold them."""
        from assignments import data

        passages = []
        for series, name in DATASET_OF.items():
            raw = data.locate(name).read_bytes()
            rows = [row for row in raw.splitlines()[1:] if row.strip()]
            seen = len(truncated_csv(raw, series).splitlines()) - 1
            passages += [row.decode().strip() for row in rows[seen:]]
        return passages

    def without_recurrence(self, model, entry: dict):
        """The model's Evaluation of the unseen period with its recurrence removed."""
        from assignments.a3_timeseries_forecasting.helpers import evaluate
        from autograder.checks.validity import recurrence_removed

        held = self.hidden()[entry["series"]]
        with recurrence_removed(model):
            return evaluate(model, entry, held.frame, held.origins)

    @staticmethod
    def recurrent_share(result, ablated) -> float:
        """How much the recurrence moves the forecast (AAPL): the std of the change it makes,
        relative to the last value, over the std of the actual change (0: none)."""
        last = result.naive["last"]
        known = last != 0
        actual = np.std(result.truth[known] / last[known] - 1) if known.any() else 0.0
        if not actual > 0:
            return 0.0
        moved = (result.forecasts[known] - ablated.forecasts[known]) / last[known]
        return float(np.std(moved) / actual)

    def on_controls(self, model, entry: dict) -> dict[str, object]:
        """The model's Evaluation of each control, by the control's name."""
        from assignments.a3_timeseries_forecasting.helpers import evaluate

        series = entry["series"]
        return {
            name: evaluate(model, entry, periods[series].frame, periods[series].origins)
            for name, periods in self.controls().items()
        }

    def student_view(self, target: Path) -> Path:
        """The two CSV files up to their cut-off, in the published layout the loaders read."""
        from assignments import data

        target.mkdir(parents=True, exist_ok=True)
        for series, name in DATASET_OF.items():
            raw = data.locate(name).read_bytes()
            self.write_view(name, truncated_csv(raw, series), target)
        return target

    def bare_inference(self, judged) -> None:
        """Load the four exported models and forecast the unseen period, nothing more."""
        import json

        import keras

        from assignments.a3_timeseries_forecasting.helpers import (
            FORECASTERS,
            feature_matrix,
            input_windows,
            validate_document,
            validate_entry,
        )

        paths = self.spec.artifact_paths
        document = json.loads(judged.artifact(paths["preprocessing"]).read_text("utf-8"))
        for name, (series, _) in FORECASTERS.items():
            entry = validate_entry(name, validate_document(document).get(name))
            model = keras.saving.load_model(judged.artifact(paths[name]), safe_mode=True)
            held = self.hidden()[series]
            windows = input_windows(
                feature_matrix(held.frame, entry), held.origins, entry["window"]
            )
            model.predict(windows.astype("float32"), batch_size=4096, verbose=0)

    # ------------------------------------------------------------------ feedback

    def feedback_figures(self, judged) -> dict[str, str]:
        """Forecast against truth on the unseen period, per model (title -> PNG data URL).

        ``judged`` is the run stage's output folder (:class:`autograder.core.course.Judged`).
        Models that are missing, do not load or do not forecast are left out.
        """
        import keras

        from assignments.a3_timeseries_forecasting.helpers import (
            FORECASTERS,
            evaluate,
            validate_document,
            validate_entry,
        )
        from autograder.core.safe_json import load_json

        paths = self.spec.artifact_paths
        known = self.remembered(judged)  # evaluated by the hidden checks in this process
        try:
            path = judged.artifact(paths["preprocessing"])
            raw = validate_document(load_json(path.read_bytes(), path.name))
        except (OSError, ValueError):
            return {}
        figures = {}
        for name, (series, _) in FORECASTERS.items():
            try:
                if name in known:
                    result = known[name]
                else:
                    entry = validate_entry(name, raw.get(name))
                    model = keras.saving.load_model(
                        judged.artifact(paths[name]), safe_mode=True, compile=False
                    )
                    held = self.hidden()[series]
                    result = evaluate(model, entry, held.frame, held.origins)
            except Exception:  # a figure is a bonus: a broken model just has none
                continue
            days = 120 if series == "aapl" else 14
            figures[f"{name}: your forecast on the unseen period"] = figure_png(result, name, days)
        return figures

    # ------------------------------------------------------------------ calibration

    def _score(self, models: dict, preprocessing: dict) -> dict[str, object]:
        from assignments.a3_timeseries_forecasting.helpers import evaluate

        held = self.hidden()
        results = {}
        for name, model in models.items():
            series = preprocessing[name]["series"]
            results[name] = evaluate(
                model, preprocessing[name], held[series].frame, held[series].origins
            )
        return results

    def reference_run(self, seed: int) -> dict[str, ReferenceResult]:
        from solutions import a3_timeseries_forecasting as solution

        frames = public_frames({s: h.frame for s, h in self.hidden().items()})
        models, histories, preprocessing = solution.train_all(seed, solution.FULL, frames)
        scored = self._score(models, preprocessing)
        out = {}
        for name, result in scored.items():
            model, entry, aapl = models[name], preprocessing[name], result.series == "aapl"
            ablated = self.without_recurrence(model, entry)
            controls = {c: round(e.mae_ratio, 4) for c, e in self.on_controls(model, entry).items()}
            self._runs.append(
                {
                    "seed": seed,
                    "model": name,
                    "mae": result.mae,
                    "mse": result.mse,
                    "mae_ratio": result.mae_ratio,
                    "mse_ratio": result.mse_ratio,
                    "spread": result.spread,
                    "baseline": result.baseline,
                    "naive_mae": result.naive_mae[result.baseline],
                    "naive_mse": result.naive_mse[result.baseline],
                    "ablated": ablated.mae_ratio,
                    "share": self.recurrent_share(result, ablated) if aapl else None,
                    "control": controls[CONTROL],
                }
            )
            out[name] = ReferenceResult(
                value=round(result.mae_ratio, 4),
                epochs=len(histories[name]["loss"]),
                seconds_per_epoch=round(histories[name]["seconds_per_epoch"], 2),
                ablated=None if aapl else round(ablated.mae_ratio, 4),
                controls=controls,
            )
        return out

    def baselines(self) -> dict[str, float]:
        """MAE ratio of trivial forecasters of the weather (the calibrated series).

        The naive forecasts themselves (the value 24 hours earlier: 1 by definition;
        the last value), an untrained reference LSTM and a reference LSTM trained on
        shuffled targets (each window paired with another window's future). The same
        baselines of AAPL go to the description: there they score like the reference.
        """
        from solutions import a3_timeseries_forecasting as solution

        held = self.hidden()
        frames = public_frames({s: h.frame for s, h in held.items()})
        baselines: dict[str, float] = {}
        for series, model_name in (("weather", "weather_lstm"), ("aapl", "aapl_lstm")):
            prepared = solution.prepare(series, frames[series], solution.FULL)
            entry = prepared["entry"]
            keras_seed(0)
            untrained = solution.build_forecaster(
                "LSTM",
                entry["window"],
                len(entry["features"]),
                entry["horizon"],
                solution.FULL.units,
            )
            shuffled = shuffled_target_model(prepared, model_name, solution.FULL, seed=0)
            scored = self._score(
                {"untrained": untrained, "shuffled": shuffled},
                {"untrained": entry, "shuffled": entry},
            )
            result = scored["untrained"]
            details = {
                f"naive_{NAIVE_KEYS[name]}": value / result.naive_mae[result.baseline]
                for name, value in result.naive_mae.items()
            }
            details["untrained_lstm"] = scored["untrained"].mae_ratio
            details["shuffled_target_lstm"] = scored["shuffled"].mae_ratio
            details = {key: round(value, 4) for key, value in details.items()}
            self._baseline_details[series] = {
                **details,
                "spread of the untrained LSTM": round(scored["untrained"].spread, 4),
                "spread of the shuffled-target LSTM": round(scored["shuffled"].spread, 4),
            }
            if series == "weather":
                baselines = details
        return baselines

    def reference_description(self) -> str:
        from solutions.a3_timeseries_forecasting import FULL

        lines = [
            f"Reference settings {asdict(FULL)}; unseen period: AAPL from "
            f"{HIDDEN_FROM['aapl']} (438 next-day forecasts), Beijing from "
            f"{HIDDEN_FROM['weather']} (4,393 forecasts of the next 24 hours). The metric is "
            "the MAE on the unseen period divided by the best naive forecast's on the same "
            "windows (AAPL: the last close; weather: the value 24 hours earlier). Only the "
            "weather models are calibrated by the rule below: on AAPL the last close is as good "
            "a next-day forecast as any (untrained and shuffled-target models score like the "
            "reference), so AAPL is graded by the stated factor of the spec (`aapl_max_mae_ratio`, "
            "`aapl_max_mse_ratio`) and a forecast that is the last value in disguise "
            "(`aapl_min_spread`) gets nothing.",
            "",
            "All four models, per seed (MAE and MSE in original units; ratios to the naive "
            "forecast; AAPL's spread = std of the forecast change / std of the actual change; "
            "ablated: the MAE ratio with the recurrence removed, and for AAPL how much the "
            "recurrence moves the forecast (recurrent share); control: the MAE ratio on "
            f"{CONTROL}):",
            "",
            "| model | seed | MAE | MSE | naive MAE | naive MSE | MAE ratio | MSE ratio | spread "
            "| ablated | recurrent share | control |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for run in sorted(self._runs, key=lambda r: (r["model"], r["seed"])):
            lines.append(
                f"| {run['model']} | {run['seed']} | {run['mae']:.3f} | {run['mse']:.3f} "
                f"| {run['naive_mae']:.3f} | {run['naive_mse']:.3f} | {run['mae_ratio']:.4f} "
                f"| {run['mse_ratio']:.4f} | {_aapl(run)} | {run['ablated']:.4f} "
                f"| {_aapl(run, 'share')} | {run['control']:.4f} |"
            )
        models = sorted({run["model"] for run in self._runs})
        lines += [
            "",
            "| model | mean MAE ratio | mean MSE ratio | min spread |",
            "|---|---|---|---|",
        ]
        for model in models:
            runs = [run for run in self._runs if run["model"] == model]
            lines.append(
                f"| {model} | {mean(r['mae_ratio'] for r in runs):.4f} "
                f"| {mean(r['mse_ratio'] for r in runs):.4f} "
                f"| {_aapl(min(runs, key=lambda r: r['spread']))} |"
            )
        for series, details in self._baseline_details.items():
            lines += ["", f"Trivial forecasts of {series} (MAE ratio; spread):", ""]
            lines += [f"- {key}: {value}" for key, value in details.items()]
        return "\n".join(lines) + "\n\n"


NAIVE_KEYS = {"last": "last_value", "seasonal": "24_hours_earlier"}


def _aapl(run: dict, key: str = "spread") -> str:
    """An AAPL-only figure of a run (spread, recurrent share), '-' for the weather."""
    return f"{run[key]:.3f}" if run["model"].startswith("aapl") else "-"


def keras_seed(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)


def shuffled_target_model(prepared: dict, name: str, config, seed: int = 0):
    """The reference model trained on windows paired with another window's future."""
    import keras

    from assignments.a3_timeseries_forecasting.helpers import FORECASTERS
    from solutions import a3_timeseries_forecasting as solution

    train, val = solution.datasets(prepared, config, seed)
    pairs = [(np.asarray(x), np.asarray(y)) for x, y in train]
    x = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    y = y[np.random.default_rng(seed).permutation(len(y))]
    entry = prepared["entry"]
    keras_seed(seed)
    model = solution.build_forecaster(
        FORECASTERS[name][1], entry["window"], x.shape[2], entry["horizon"], config.units
    )
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    stop = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
    model.fit(
        x,
        y,
        validation_data=val,
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=[stop],
        verbose=0,
    )
    return model
