"""Assemble a recipe's components from the registry (the only place the engine touches it)."""
from __future__ import annotations

from typing import Any

from ..plugins import get_plugin_manager


def _params(section: Any) -> dict:
    return section.as_dict() if hasattr(section, "as_dict") else dict(section)


class Builder:
    """Builds each component of a resolved recipe with the task's context."""

    def __init__(self, recipe, manager=None):
        self.recipe = recipe
        self.manager = manager or get_plugin_manager()
        self.registry = self.manager.registry

    def task(self):
        return self.registry.build("task", _params(self.recipe.task))

    def dataset(self, task, overrides: dict | None = None):
        params = {k: v for k, v in self.recipe.data.model_extra.items()}
        params.update(overrides or {})
        name = self.recipe.data.name
        return self.registry.build("dataset", {"name": name, **params}, {"task": task})

    def transforms(self, which: str, task) -> list:
        ctx = task.metric_context()
        return [self.registry.build("transform", _params(s), ctx) for s in getattr(self.recipe.data, which)]

    def model(self, task, params_override: dict | None = None, inference: bool = False):
        """Build the model. ``inference=True`` tells the factory that trained weights follow, so it
        may skip loading pretrained ones (context key ``"inference"``)."""
        section = _params(self.recipe.model)
        section.update(params_override or {})
        ctx = task.model_context()
        if inference:
            ctx["inference"] = True
        return self.registry.build("model", section, ctx)

    def loss(self, task):
        return self.registry.build("loss", _params(self.recipe.loss), task.metric_context())

    def optimizer(self, model):
        return self.registry.build("optimizer", _params(self.recipe.optimizer), {"model": model})

    def scheduler(self, optimizer, total_steps: int, steps_per_epoch: int):
        if self.recipe.scheduler is None:
            return None
        ctx = {"optimizer": optimizer, "total_steps": total_steps, "steps_per_epoch": steps_per_epoch}
        return self.registry.build("scheduler", _params(self.recipe.scheduler), ctx)

    def metrics(self, task) -> list:
        ctx = task.metric_context()
        return [self.registry.build("metric", _params(m), ctx) for m in self.recipe.evaluate.metrics or []]
