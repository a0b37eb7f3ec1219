"""Test plugin: a validation metric whose values follow a script (``SCRIPT``), so a test knows
which evaluation is the best and when early stopping must trigger."""
from __future__ import annotations

from fmkit import Component, Metric, hookimpl

#: the values ``scripted`` returns, one per evaluation, in order; set by the test
SCRIPT: list[float] = []
#: how many evaluations have read a value
CALLS: list[int] = [0]


class Scripted(Metric):
    """Ignores the predictions; the n-th ``compute`` returns ``SCRIPT[n]`` (the last value after that)."""

    name = "scripted"

    def reset(self) -> None:
        pass

    def update(self, preds, targets) -> None:
        pass

    def compute(self) -> dict[str, float]:
        value = SCRIPT[min(CALLS[0], len(SCRIPT) - 1)]
        CALLS[0] += 1
        return {"scripted": value}


@hookimpl
def fmkit_register_metrics():
    return [Component("metric", "test-scripted", f"{__name__}:Scripted", "fmkit.components:NoParams",
                      "A metric that returns scripted values (tests)")]
