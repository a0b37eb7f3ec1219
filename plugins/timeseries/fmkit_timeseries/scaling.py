"""Scalers fit on the training part only, saved with the model, inverted for metrics in original units."""
from __future__ import annotations

from typing import Literal

import numpy as np


class Scaler:
    """Standard or min-max scaling, per series (each column) or global (one statistic for all)."""

    def __init__(self, kind: Literal["standard", "minmax", "none"] = "standard",
                 scope: Literal["per-series", "global"] = "per-series"):
        self.kind, self.scope = kind, scope
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, values: np.ndarray) -> "Scaler":
        """``values``: rows x columns of training data (NaNs ignored)."""
        v = values.astype(np.float64)
        axis = None if self.scope == "global" else 0
        if self.kind == "standard":
            shift, scale = np.nanmean(v, axis=axis), np.nanstd(v, axis=axis)
        elif self.kind == "minmax":
            shift, scale = np.nanmin(v, axis=axis), np.nanmax(v, axis=axis) - np.nanmin(v, axis=axis)
        else:
            shift, scale = np.zeros(v.shape[1]), np.ones(v.shape[1])
        shift = np.broadcast_to(shift, (v.shape[1],)).copy()
        scale = np.broadcast_to(scale, (v.shape[1],)).copy()
        scale[~np.isfinite(scale) | (scale < 1e-12)] = 1.0  # constant columns stay as they are
        self.shift, self.scale = shift, scale
        return self

    def transform(self, values: np.ndarray, columns: slice | None = None) -> np.ndarray:
        cols = columns or slice(None)
        return ((values - self.shift[cols]) / self.scale[cols]).astype(np.float32)

    def inverse(self, values, columns: slice | None = None):
        """Works on numpy arrays and torch tensors whose last axis is the selected columns."""
        cols = columns or slice(None)
        shift, scale = self.shift[cols], self.scale[cols]
        if hasattr(values, "new_tensor"):
            return values * values.new_tensor(scale) + values.new_tensor(shift)
        return values * scale + shift

    def state_dict(self) -> dict:
        return {"kind": self.kind, "scope": self.scope, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> "Scaler":
        s = cls(state["kind"], state["scope"])
        s.shift, s.scale = np.array(state["shift"]), np.array(state["scale"])
        return s
