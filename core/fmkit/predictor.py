"""One inference path: raw inputs in, JSON-able answers out, whatever runs the model.

:func:`fmkit.load` (an export with the torch or ONNX backend, or a run directory), the server, and
a run's own :class:`~fmkit.engine.artifacts.TrainedModel` all predict through :class:`Predictor`.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

__all__ = ["Predictor"]


class Predictor:
    """Raw inputs in, JSON-able predictions out, with either backend; ``precision`` is the one of
    the model it loaded (``float`` or ``int8``); ``model`` the torch module behind it (``None`` with
    the ONNX backend), for code that builds on a trained model (a student initialised from it)."""

    def __init__(self, task, run_batch, metadata: dict[str, Any], precision: str = "float", model: Any = None,
                 single_thread_runner: Callable[[], Callable] | None = None):
        self.task, self.run_batch, self.metadata, self.precision = task, run_batch, metadata, precision
        self.model = model
        self._single_thread_runner = single_thread_runner
        self._background: Predictor | None = None
        self._lock = threading.Lock()

    def background(self) -> Predictor:
        """A predictor for work that should give way to this one's (the server's lane of large
        inputs): the same model, run on the calling thread alone, so lowering that thread's priority
        lowers all of the work's (ONNX Runtime: a second, single-threaded session, built on first
        use). Itself when the backend has no such runner (torch)."""
        if self._single_thread_runner is None:
            return self
        with self._lock:
            if self._background is None:
                self._background = Predictor(self.task, self._single_thread_runner(), self.metadata, self.precision)
        return self._background

    def predict(self, inputs: list[Any], batch_size: int = 32) -> list[dict]:
        """Raw inputs (strings, image bytes, arrays...) in, one JSON-able answer each, in order."""
        return self._predict(inputs, self.task.encode_raw, batch_size)

    def predict_examples(self, examples: list[dict], batch_size: int = 32) -> list[dict]:
        """The same for inputs already decoded by ``task.raw_to_example`` (the server's path)."""
        return self._predict(examples, self.task.encode_examples, batch_size)

    def _predict(self, items: list[Any], encode, batch_size: int) -> list[dict]:
        import torch

        out: list[dict] = []
        with torch.inference_mode():
            for s in range(0, len(items), batch_size):
                batch = encode(list(items[s:s + batch_size]))
                out.extend(self.task.format_batch_predictions(self.run_batch(batch), batch))
        return out
