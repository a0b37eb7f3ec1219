"""``RegressionTask``: the shared half of every task whose answer is one or several numbers."""
from __future__ import annotations

import math
from typing import Any

from ..errors import DataError
from ..task import Task

__all__ = ["RegressionTask"]


class RegressionTask(Task):
    """Base of a task that predicts one or several real values per example.

    ``target_key`` (default ``"target"``) and ``standardize_targets`` (default true) are class
    attributes: override them in a subclass, they are not recipe parameters. Because
    :meth:`metric_inputs` hands metrics values in the data's units already, a regression metric's
    ``units: scaled`` reads those values as they are (``units: original`` is for tasks that pass
    scaled values and supply :meth:`fmkit.Task.inverse_transform`).

    An example's target, under :attr:`target_key`, is a number, a list of numbers or a dict
    ``{name: number}``. :meth:`setup` learns the target names and, when
    :attr:`standardize_targets` is on, each target's mean and standard deviation on the training
    split: the model then learns standardised targets (``batch["targets"]``, ``[B, num_targets]``
    float), while metrics (:meth:`metric_inputs`) and answers (:meth:`format_predictions`) are in
    the data's own units. A subclass writes :meth:`setup_inputs` (optional), :meth:`preprocess`
    (calling :meth:`target`), :meth:`collate` (calling :meth:`add_targets`), :meth:`forward` (a
    ``[B, num_targets]`` tensor), :meth:`raw_to_example` and the inference helpers, and lists what
    :meth:`setup_inputs` learns in :attr:`state_attributes`.
    """

    monitor, monitor_mode = "mse", "min"
    classification = False
    #: distillation compares the teacher's and the student's values (see :attr:`fmkit.Task.distill_kind`)
    distill_kind = "values"
    #: the example key that holds the target(s)
    target_key: str = "target"
    #: train on targets standardised with the training split's mean and standard deviation
    standardize_targets: bool = True
    state_attributes = ("target_names", "target_mean", "target_std")

    def __init__(self, params, context: dict | None = None):
        super().__init__(params, context)
        self.target_names: list[str] = []
        self.target_mean: list[float] = []
        self.target_std: list[float] = []

    # ---------------------------------------------------------------- fitting
    def setup(self, train_examples: list[dict], model_params: dict[str, Any]) -> None:
        """Learn the target names and statistics, then :meth:`setup_inputs`."""
        first = next((ex[self.target_key] for ex in train_examples if ex.get(self.target_key) is not None), None)
        if first is None:
            raise DataError(f"the training data has no targets (no example has a {self.target_key!r} value)")
        if isinstance(first, dict):
            self.target_names = [str(k) for k in first]
        elif isinstance(first, (list, tuple)):
            self.target_names = [f"{self.target_key}_{i}" for i in range(len(first))]
        else:
            self.target_names = [self.target_key]
        rows = [r for r in (self.values_of(ex) for ex in train_examples) if r is not None]
        n = len(self.target_names)
        if self.standardize_targets:
            self.target_mean = [sum(r[j] for r in rows) / len(rows) for j in range(n)]
            self.target_std = [math.sqrt(sum((r[j] - self.target_mean[j]) ** 2 for r in rows) / len(rows)) or 1.0
                               for j in range(n)]
        else:
            self.target_mean, self.target_std = [0.0] * n, [1.0] * n
        self.setup_inputs(train_examples, model_params)

    def setup_inputs(self, train_examples: list[dict], model_params: dict[str, Any]) -> None:
        """Fit what the inputs need on the training split; nothing by default."""

    def model_context(self) -> dict[str, Any]:
        """``task``, ``num_targets`` (the model's output width) and ``target_names``."""
        return {"task": self.name, "num_targets": len(self.target_names), "target_names": list(self.target_names)}

    # ---------------------------------------------------------------- targets
    def values_of(self, example: dict) -> list[float] | None:
        """The example's targets in the data's units (``None`` when it has none); :class:`DataError`
        naming the example when they are not numbers or not the training split's targets."""
        value = example.get(self.target_key)
        if value is None:
            return None
        try:
            if isinstance(value, dict):
                row = [float(value[name]) for name in self.target_names]
            elif isinstance(value, (list, tuple)):
                row = [float(v) for v in value]
            else:
                row = [float(value)]
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{example.get('source') or 'example'}: target {value!r} is not "
                            f"{len(self.target_names)} number(s) for {self.target_names} ({e})") from None
        if len(row) != len(self.target_names) or not all(math.isfinite(v) for v in row):
            raise DataError(f"{example.get('source') or 'example'}: target {value!r} must be "
                            f"{len(self.target_names)} finite number(s) ({', '.join(self.target_names)})")
        return row

    def target(self, example: dict) -> list[float] | None:
        """The example's standardised targets (the model's training targets), or ``None``."""
        row = self.values_of(example)
        if row is None:
            return None
        return [(v - m) / s for v, m, s in zip(row, self.target_mean, self.target_std)]

    def with_target(self, features: dict, example: dict) -> dict:
        """``features`` with ``"targets"`` set from the example's target, when it has one."""
        t = self.target(example)
        if t is not None:
            features["targets"] = t
        return features

    def add_targets(self, batch: dict[str, Any], features: list[dict]) -> dict[str, Any]:
        """``batch`` with ``"targets"`` (``[B, num_targets]`` float) when the features have them."""
        if "targets" in features[0]:
            import torch

            batch["targets"] = torch.tensor([f["targets"] for f in features], dtype=torch.float32)
        return batch

    def unscale(self, values: Any) -> Any:
        """Standardised ``[..., num_targets]`` values (a tensor or a numpy array) back in the data's units."""
        if hasattr(values, "new_tensor"):
            return values * values.new_tensor(self.target_std) + values.new_tensor(self.target_mean)
        import numpy as np

        return np.asarray(values) * np.asarray(self.target_std) + np.asarray(self.target_mean)

    def metric_inputs(self, outputs: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
        """``(predictions, targets)``, both ``[B, num_targets]`` in the data's units."""
        return self.unscale(outputs.detach().float()), self.unscale(batch["targets"])

    # ---------------------------------------------------------------- inference
    def format_predictions(self, outputs: Any) -> list[dict]:
        """``{"value": v}`` per row for one target, ``{"values": {name: v}}`` for several (data units)."""
        import numpy as np

        arr = np.asarray(outputs.detach().float().cpu().numpy() if hasattr(outputs, "detach") else outputs,
                         dtype=np.float64).reshape(len(outputs), -1)
        rows = self.unscale(arr).tolist()
        if len(self.target_names) == 1:
            return [{"value": row[0]} for row in rows]
        return [{"values": dict(zip(self.target_names, row))} for row in rows]
