"""``forecast-plot``: a metric that keeps a few forecasts and draws them in the run report."""
from __future__ import annotations

from fmkit import Metric
from fmkit.components import Params


class ForecastPlotParams(Params):
    #: how many evaluation windows to draw (spread over the split)
    examples: int = 6
    #: which target to draw (index into the target columns)
    target: int = -1
    #: draw in original units (inverse scaling) rather than scaled values
    original_units: bool = True
    #: keep every n-th window, so the panels spread over the evaluation period
    every: int = 97


class ForecastPlot(Metric):
    """Collects (context, truth, prediction) of some windows; ``artifacts()`` returns a figure spec."""

    name = "forecast-plot"

    def reset(self):
        self.kept, self.seen = [], 0

    def update(self, preds, targets):
        if not isinstance(targets, dict) or "context" not in targets:
            return
        p = self.params
        for i in range(preds.shape[0]):
            if len(self.kept) < p.examples and self.seen % p.every == 0:
                ctx, truth, pred = targets["context"][i], targets["target"][i], preds[i]
                if p.original_units and self.context.get("inverse_transform"):
                    inv = self.context["inverse_transform"]
                    ctx, truth, pred = inv(ctx), inv(truth), inv(pred)
                j = p.target
                self.kept.append((self.seen, ctx[:, j].float().cpu().tolist(), truth[:, j].float().cpu().tolist(),
                                  pred[:, j].float().cpu().tolist()))
            self.seen += 1

    def compute(self):
        return {}

    def artifacts(self):
        names = self.context.get("target_names") or ["target"]
        name = names[self.params.target] if -len(names) <= self.params.target < len(names) else "target"
        panels = []
        for idx, ctx, truth, pred in self.kept:
            L = len(ctx)
            x_ctx, x_fut = list(range(-L, 0)), list(range(len(truth)))
            panels.append({"title": f"window {idx}", "lines": [
                {"label": "context", "x": x_ctx, "y": ctx, "style": "-"},
                {"label": "truth", "x": x_fut, "y": truth, "style": "-"},
                {"label": "forecast", "x": x_fut, "y": pred, "style": "--"}]})
        return {"figures": {"forecasts": {"title": f"forecasts of {name}", "panels": panels}}} if panels else {}
