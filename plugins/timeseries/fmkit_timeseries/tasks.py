"""time-series-forecasting and time-series-classification."""
from __future__ import annotations

import io
from typing import Any, Literal

import numpy as np
import torch
from fmkit import ClassificationTask, Task
from fmkit.components import Params
from fmkit.errors import DataError

from .scaling import Scaler

_SEASONS = {"h": 24, "H": 24, "D": 7, "B": 5, "W": 52, "M": 12, "MS": 12, "Q": 4, "QS": 4, "min": 60, "T": 60}


class ForecastingParams(Params):
    #: past time steps the model sees to make one forecast
    context_length: int = 96
    #: future time steps forecast at once
    horizon: int = 24
    #: step between training windows; evaluation windows use eval_stride (1: every window, as papers do)
    stride: int = 1
    #: step between validation and test windows (above 1: faster evaluation on fewer windows)
    eval_stride: int = 1
    #: how values are scaled before the model sees them, with statistics of the training part only: standard
    #: (minus the mean, over the standard deviation), minmax (to 0..1) or none; forecasts are scaled back
    scaler: Literal["standard", "minmax", "none"] = "standard"
    #: per-series: statistics of each column on its own; global: one set for all columns
    scale_scope: Literal["per-series", "global"] = "per-series"
    #: season length for seasonal naive and MASE (default: from the data's frequency: hourly 24, daily 7...)
    seasonality: int | None = None


class Forecasting(Task):
    """A window of the recent past in, the next ``horizon`` steps of every target out (direct multi-horizon)."""

    name = "time-series-forecasting"
    monitor, monitor_mode = "mse", "min"
    classification = False
    #: distillation compares the teacher's and the student's forecasts (hook API 1.4)
    distill_kind = "values"
    cacheable = False  # scaling windows is cheaper than reading them back

    def __init__(self, params: ForecastingParams, context: dict | None = None):
        super().__init__(params, context)
        self.scaler: Scaler | None = None
        self.columns: list[str] = []
        self.n_targets = 1
        self.seasonality = params.seasonality or 1

    # ---------------------------------------------------------------- fitting
    def setup(self, train_examples, model_params):
        if not train_examples or "window" not in train_examples[0]:
            raise DataError("time-series-forecasting needs window examples (the timeseries-table dataset)")
        first = train_examples[0]
        self.columns, self.n_targets = list(first["columns"]), int(first["n_targets"])
        self.scaler = Scaler(self.params.scaler, self.params.scale_scope).fit(_unique_rows(train_examples))
        if not self.params.seasonality:
            freq = first.get("frequency")
            self.seasonality = _SEASONS.get(str(freq).lstrip("0123456789"), 1) if freq else 1
        self.seasonality = min(self.seasonality, self.params.context_length)

    def model_context(self):
        p = self.params
        return {"task": self.name, "context_length": p.context_length, "horizon": p.horizon,
                "channels": len(self.columns), "targets": self.n_targets, "seasonality": self.seasonality}

    def metric_context(self):
        ctx = super().metric_context()  # with inverse_transform, for metrics in original units
        ctx["target_names"] = self.columns[: self.n_targets]
        return ctx

    def inverse_transform(self, values):
        """Scaled target values back to the data's units (the scaler fit on the training part)."""
        return self.scaler.inverse(values, slice(0, self.n_targets))

    # ---------------------------------------------------------------- data
    def preprocess(self, example):
        L, H = self.params.context_length, self.params.horizon
        if "window" in example:
            w = self.scaler.transform(np.asarray(example["window"], np.float32))
            return {"past": torch.from_numpy(w[:L].copy()), "targets": torch.from_numpy(w[L:L + H, : self.n_targets].copy())}
        past = self.scaler.transform(np.asarray(example["past"], np.float32))
        return {"past": torch.from_numpy(past.copy())}

    def collate(self, features):
        batch = {"past": torch.stack([f["past"] for f in features])}
        if "targets" in features[0]:
            batch["targets"] = torch.stack([f["targets"] for f in features])
        return batch

    def forward(self, model, batch):
        return model(batch["past"])

    def seasonal_naive(self, past: torch.Tensor) -> torch.Tensor:
        """The last season of each target repeated over the horizon."""
        m, H = self.seasonality, self.params.horizon
        last = past[:, -m:, : self.n_targets]
        reps = -(-H // m)
        return last.repeat(1, reps, 1)[:, :H]

    def metric_inputs(self, outputs, batch):
        targets = {"target": batch["targets"], "naive": self.seasonal_naive(batch["past"]),
                   "context": batch["past"][..., : self.n_targets]}
        return outputs.detach(), targets

    # ---------------------------------------------------------------- inference
    def raw_to_example(self, raw):
        """The most recent ``context_length`` rows: an array (rows x columns, or a 1-D array for one
        column), ``{"context": ...}``, or CSV text (or a CSV file's bytes) with the training columns
        as header."""
        L = self.params.context_length
        if isinstance(raw, dict):
            raw = raw.get("context")
        if isinstance(raw, (bytes, bytearray, memoryview)):  # an uploaded CSV file (or one of a folder)
            try:
                raw = bytes(raw).decode("utf-8-sig")
            except UnicodeDecodeError as e:
                raise DataError(f"the context file is not UTF-8 CSV text ({e.reason} at byte {e.start})") from None
        if isinstance(raw, str):
            import pandas as pd

            try:
                df = pd.read_csv(io.StringIO(raw))
            except Exception as e:
                raise DataError(f"context CSV cannot be parsed: {e}") from None
            missing = [c for c in self.columns if c not in df.columns]
            if missing:
                raise DataError(f"context CSV lacks columns {missing}")
            arr = df[self.columns].to_numpy(np.float32)
        else:
            try:
                arr = np.asarray(raw, dtype=np.float32)
            except (TypeError, ValueError):
                raise DataError("a forecasting input must be a numeric array (rows x columns) or CSV text") from None
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != len(self.columns):
            raise DataError(f"context must be rows x {len(self.columns)} columns ({', '.join(self.columns)}); "
                            f"got shape {arr.shape}")
        if len(arr) < L:
            raise DataError(f"context has {len(arr)} rows; the model needs the last {L}")
        if not np.isfinite(arr[-L:]).all():
            raise DataError("context contains missing or infinite values; fill them first")
        return {"past": arr[-L:]}

    def format_predictions(self, outputs):
        values = self.scaler.inverse(outputs.float().cpu(), slice(0, self.n_targets))
        names = self.columns[: self.n_targets]
        return [{"forecast": {n: [float(v) for v in row[:, j]] for j, n in enumerate(names)},
                 "horizon": self.params.horizon} for row in values]

    def export_input_names(self):
        return ["past"]

    def example_inputs(self):
        t = np.arange(self.params.context_length, dtype=np.float32)
        cols = max(1, len(self.columns))
        return [np.stack([np.sin(t / 6 + k) * 3 + 10 for k in range(cols)], 1).round(3).tolist()]

    def sample_examples(self):
        L, H = self.params.context_length, self.params.horizon
        series = _synthetic(L + H + 40, 2)
        return [{"window": series[s:s + L + H], "start": s, "series": None, "columns": ("a", "b"), "n_targets": 2}
                for s in range(0, 40, 8)]

    # ---------------------------------------------------------------- assets
    def state_dict(self):
        return {"labels": None, "columns": self.columns, "n_targets": self.n_targets, "seasonality": self.seasonality,
                "scaler": self.scaler.state_dict() if self.scaler else None}

    def load_state_dict(self, state):
        self.columns, self.n_targets, self.seasonality = state["columns"], state["n_targets"], state["seasonality"]
        self.scaler = Scaler.from_state(state["scaler"]) if state.get("scaler") else None


def _unique_rows(examples: list[dict]) -> np.ndarray:
    """Every training row once, rebuilt from overlapping windows (the scaler's fitting data)."""
    parts, by_series = [], {}
    for ex in examples:
        by_series.setdefault(ex["series"], []).append(ex)
    for exs in by_series.values():
        exs.sort(key=lambda e: e["start"])
        covered = -1
        for ex in exs:
            w, s = ex["window"], ex["start"]
            skip = max(0, covered + 1 - s)
            if skip < len(w):
                parts.append(np.asarray(w[skip:]))
                covered = s + len(w) - 1
    return np.concatenate(parts)


def _synthetic(n: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float32)
    return np.stack([np.sin(2 * np.pi * t / 12 + k) * (2 + k) + 0.02 * t + rng.normal(0, 0.1, n)
                     for k in range(channels)], 1).astype(np.float32)


class SeriesClassificationParams(Params):
    #: z-normalise each series on its own (UCR practice) or keep raw values
    normalize: Literal["per-example", "none"] = "per-example"


class SeriesClassification(ClassificationTask):
    """A fixed-length series (time x channels) in, a label with scores out."""

    name = "time-series-classification"
    no_labels_hint = "check the dataset's label column"

    def __init__(self, params: SeriesClassificationParams, context: dict | None = None):
        super().__init__(params, context)
        self.length_, self.channels = 0, 1

    def setup_inputs(self, train_examples, model_params):
        shape = np.asarray(train_examples[0]["series"]).shape
        self.length_, self.channels = shape[0], (shape[1] if len(shape) > 1 else 1)

    def model_context(self):
        ctx = super().model_context()
        ctx.update(context_length=self.length_, channels=self.channels)
        return ctx

    def preprocess(self, example):
        x = np.asarray(example["series"], np.float32)
        x = x[:, None] if x.ndim == 1 else x
        if x.shape != (self.length_, self.channels):
            raise DataError(f"a series must be {self.length_} x {self.channels}; got {x.shape}")
        if self.params.normalize == "per-example":
            x = (x - x.mean(0)) / (x.std(0) + 1e-6)
        return self.with_target({"past": torch.from_numpy(x.copy())}, example)

    def collate(self, features):
        return self.add_targets({"past": torch.stack([f["past"] for f in features])}, features)

    def forward(self, model, batch):
        return model(batch["past"])

    def raw_to_example(self, raw):
        try:
            return {"series": np.asarray(raw.get("series") if isinstance(raw, dict) else raw, np.float32)}
        except (TypeError, ValueError):
            raise DataError("a series must be a numeric array (time x channels)") from None

    def export_input_names(self):
        return ["past"]

    def example_inputs(self):
        return [_synthetic(self.length_ or 32, self.channels).tolist()]

    def sample_examples(self):
        rng = np.random.default_rng(0)
        t = np.arange(32, dtype=np.float32)
        return [{"series": (np.sin(t / (2 if i % 2 else 6)) + rng.normal(0, 0.05, 32)).astype(np.float32)[:, None],
                 "label": "fast" if i % 2 else "slow"} for i in range(6)]

    def state_dict(self):
        return {**super().state_dict(), "length": self.length_, "channels": self.channels}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.length_, self.channels = state["length"], state["channels"]
