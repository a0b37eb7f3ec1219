"""``mase``: mean absolute scaled error against the seasonal-naive forecast.

The forecasting task's ``metric_inputs`` hands every metric ``targets`` as a dict: ``"target"``
(the truth, which the core's regression metrics read), ``"naive"`` (the seasonal-naive forecast
of the same windows, from :meth:`Forecasting.seasonal_naive`) and ``"context"`` (the past).
"""
from __future__ import annotations

from typing import Literal

from fmkit import Metric
from fmkit.components import Params


class MASEParams(Params):
    #: ``scaled``: on the values the model predicts; ``original``: in the data's units (``mase_original``)
    units: Literal["scaled", "original"] = "scaled"


class MASE(Metric):
    """MAE of the model divided by the MAE of the seasonal-naive forecast on the same windows."""

    higher_is_better = False

    def reset(self):
        import torch

        self.sums = torch.zeros(2, dtype=torch.float64)  # model abs error, naive abs error

    def update(self, preds, targets):
        if not isinstance(targets, dict) or "naive" not in targets:
            raise ValueError("metric 'mase' needs the time-series-forecasting task (its targets carry the "
                             "seasonal-naive forecast)")
        naive, truth = targets["naive"], targets["target"]
        if self.params.units == "original":
            inverse = self.context["inverse_transform"]
            preds, naive, truth = inverse(preds), inverse(naive), inverse(truth)
        t = truth.detach().cpu().double()
        self.sums[0] += (preds.detach().cpu().double() - t).abs().sum()
        self.sums[1] += (naive.detach().cpu().double() - t).abs().sum()

    def compute(self):
        key = "mase_original" if self.params.units == "original" else "mase"
        return {key: float(self.sums[0] / self.sums[1]) if float(self.sums[1]) > 0 else float("nan")}

    def state_tensors(self):
        return [self.sums]
