"""Built-in exporters. Each writes its files into a temporary folder that the core verifies
against the eager model before renaming it into place."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..components import Params
from ..interfaces import Exporter


class ExporterParams(Params):
    pass


class OnnxParams(Params):
    #: ONNX operator set version written into model.onnx (older runtimes may need a lower one)
    opset: int = 17


def export_wrapper(model, task, names: list[str]):
    """A module taking the task's export inputs positionally (what tracing and ONNX need)."""
    import torch

    class ExportWrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return task.forward(self.model, dict(zip(names, tensors)))

    return ExportWrapper().eval()


def tracing_mode(model):
    """The model's own context for graph capture, if it has one (``fmkit_export_mode()``).

    A model may switch to operations that trace into a better graph while exporting (say, plain
    attention instead of a fused attention kernel whose traced masking is slower under ONNX
    Runtime). Outputs must stay the same: every export is verified.
    """
    import contextlib

    hook = getattr(model, "fmkit_export_mode", None)
    return hook() if callable(hook) else contextlib.nullcontext()


def _inputs(task, batch: dict) -> tuple:
    return tuple(batch[n] for n in task.export_input_names())


class SafetensorsExporter(Exporter):
    """Weights as ``model.safetensors`` (always part of an export) plus the model configuration."""

    format = "safetensors"

    def export(self, trained, directory: str, example_batch: dict) -> dict[str, Any]:
        return {"files": ["model.safetensors"]}

    def runner(self, directory: str, trained):
        from .loading import load_torch_model

        # the model being exported was built already: its own setting is the one it was built with
        trust = bool(trained.recipe.model.as_dict().get("trust_remote_code", False))
        model = load_torch_model(Path(directory), trained.task, trust)
        return lambda batch: trained.task.forward(model, batch)


class TorchScriptExporter(Exporter):
    """A traced TorchScript module, ``model.torchscript.pt``."""

    format = "torchscript"

    def export(self, trained, directory: str, example_batch: dict) -> dict[str, Any]:
        import torch

        names = trained.task.export_input_names()
        wrapper = export_wrapper(trained.model, trained.task, names)
        with torch.no_grad(), tracing_mode(trained.model):
            traced = torch.jit.trace(wrapper, _inputs(trained.task, example_batch), check_trace=False, strict=False)
        traced.save(str(Path(directory) / "model.torchscript.pt"))
        return {"files": ["model.torchscript.pt"], "inputs": names}

    def runner(self, directory: str, trained):
        import torch

        mod = torch.jit.load(str(Path(directory) / "model.torchscript.pt"), map_location="cpu")
        return lambda batch: mod(*_inputs(trained.task, batch))


class OnnxExporter(Exporter):
    """ONNX with dynamic batch (and sequence) axes; run and checked with onnxruntime."""

    format = "onnx"

    def export(self, trained, directory: str, example_batch: dict) -> dict[str, Any]:
        import torch

        task = trained.task
        names = task.export_input_names()
        wrapper = export_wrapper(trained.model, task, names)
        path = Path(directory) / "model.onnx"
        with torch.no_grad(), tracing_mode(trained.model):
            torch.onnx.export(wrapper, _inputs(task, example_batch), str(path), input_names=names,
                              output_names=["outputs"], dynamic_axes={**task.dynamic_axes(), "outputs": {0: "batch"}},
                              opset_version=self.params.opset, dynamo=False)
        import onnx

        onnx.checker.check_model(str(path))
        return {"files": ["model.onnx"], "inputs": names, "opset": self.params.opset}

    def runner(self, directory: str, trained, filename: str = "model.onnx"):
        from .loading import onnx_runner

        return onnx_runner(Path(directory) / filename, trained.task)
