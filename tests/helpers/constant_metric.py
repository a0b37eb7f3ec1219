"""A plugin module for tests: the metric ``constant`` always computes {"constant": 1.0} (every
evaluation ties), to check how ties of the monitored metric pick the best checkpoint."""
from __future__ import annotations

import fmkit
from fmkit import Component, Metric, NoParams


class Constant(Metric):
    name = "constant"

    def reset(self):
        pass

    def update(self, preds, targets):
        pass

    def compute(self):
        return {"constant": 1.0}


@fmkit.hookimpl
def fmkit_register_metrics():
    return [Component("metric", "constant", "helpers.constant_metric:Constant", NoParams, "always 1.0 (tests)",
                      tags={"keys": ["constant"]})]
