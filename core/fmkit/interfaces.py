"""Small base classes for the other component kinds: transforms, metrics, schedules, exporters.

They import nothing heavy, so plugins can subclass them at import time without pulling in torch.
"""
from __future__ import annotations

from typing import Any

from .components import Params


class Transform:
    """A data transform.

    ``stage = "clean"``: called once per raw example before splitting; return the (possibly
    changed) example, or ``None`` to drop it; the drop is counted under :attr:`reason`.
    ``stage = "augment"``: called on preprocessed training features with a seeded
    ``numpy.random.Generator``; must return the features.
    """

    stage: str = "clean"

    def __init__(self, params: Params, context: dict | None = None):
        self.params = params
        self.context = context or {}

    @property
    def reason(self) -> str:
        return type(self).__name__

    def __call__(self, example: dict, rng: Any = None) -> dict | None:  # pragma: no cover - abstract
        raise NotImplementedError


class Metric:
    """A streaming metric: ``update`` per batch, ``compute`` at the end.

    State lives in :meth:`state_tensors` so the engine can sum it across distributed ranks
    before :meth:`compute`; every metric here is a sum of per-batch statistics.
    """

    #: name prefix in results; ``compute`` returns ``{name: value}`` (or several keys)
    name: str = "metric"
    #: whether a larger value is better; picks ``max`` or ``min`` when one of this metric's keys is
    #: the ``monitor`` and the recipe gives no mode. A dict maps result keys to it when a metric
    #: returns keys of both kinds (keys it does not name count as ``True``).
    higher_is_better: bool | dict[str, bool] = True

    def __init__(self, params: Params, context: dict | None = None):
        self.params = params
        self.context = context or {}
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, preds: Any, targets: Any) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        """The flat results of everything seen since :meth:`reset`; may be called more than once."""
        raise NotImplementedError

    def is_higher_better(self, key: str) -> bool:
        """Whether a larger value of result ``key`` (one :meth:`compute` returns) is better."""
        hib = self.higher_is_better
        return bool(hib.get(key, True)) if isinstance(hib, dict) else bool(hib)

    def state_tensors(self) -> list[Any]:
        """Tensors to all-reduce (sum) across ranks; they are updated in place."""
        return []

    def artifacts(self) -> dict[str, Any]:
        """Extra, non-scalar results for the report (a confusion matrix, per-class rows)."""
        return {}


class ScheduleHandle:
    """A learning-rate schedule and when to step it (``"step"`` or ``"epoch"``).

    ``needs_metric``: step it with the monitored validation value (reduce-on-plateau).
    """

    def __init__(self, scheduler: Any, interval: str = "step", needs_metric: bool = False):
        self.scheduler = scheduler
        self.interval = interval
        self.needs_metric = needs_metric

    def step(self, metric: float | None = None) -> None:
        if self.needs_metric:
            if metric is not None:
                self.scheduler.step(metric)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


class Exporter:
    """Writes a trained model in one format into an (empty, temporary) directory.

    ``export`` gets the loaded ``TrainedModel`` (``.recipe``, ``.task``, ``.model``) and returns a dict of
    files written plus anything to record; ``runner`` returns a callable that maps a batch (dict of
    tensors) to outputs using the exported files, which the core uses to verify the export.
    """

    format: str = ""

    def __init__(self, params: Params, context: dict | None = None):
        self.params = params
        self.context = context or {}

    def export(self, trained: Any, directory: str, example_batch: dict) -> dict[str, Any]:
        raise NotImplementedError

    def runner(self, directory: str, trained: Any) -> Any:
        raise NotImplementedError
