"""Load an export folder (or a run directory) as a predictor: ``fmkit.load(path).predict(inputs)``.

Nothing read from an export or a run directory may turn on running code shipped with it: a
model section's ``trust_remote_code`` is replaced by the caller's own decision
(``fmkit.load(..., trust_remote_code=True)``, ``--trust-remote-code``), and a caller who allows it
is warned that it is allowed.
"""
from __future__ import annotations

import json
import os
import logging
from pathlib import Path

from ..errors import UsageError
from ..predictor import Predictor

log = logging.getLogger("fmkit")


def caller_decides_remote_code(section: dict, context: dict, trust_remote_code: bool, source: Path) -> None:
    """Put the caller's ``trust_remote_code`` into a model section and its build context, whatever
    the files said; warn when the caller allows it."""
    if "trust_remote_code" in section:
        section["trust_remote_code"] = bool(trust_remote_code)
    context["trust_remote_code"] = bool(trust_remote_code)
    if trust_remote_code:
        log.warning("trust_remote_code is on: Python code shipped with %s may be imported and run", source)


def _task_from_export(meta: dict, directory: Path):
    from ..provenance import build_recorded

    task = build_recorded("task", meta["task"], meta.get("provenance", {}).get("task"), f"export {directory}")
    task.load_state_dict(json.loads((directory / "task" / "task.json").read_text()))
    task.load_assets(str(directory / "task" / "assets"))
    return task


def load_torch_model(directory: Path, task, trust_remote_code: bool = False):
    """Rebuild the model from ``export.json``'s model section and load ``model.safetensors``; the
    export's own ``trust_remote_code`` is ignored: only the caller's counts."""
    from ..engine.checkpoint import load_weights
    from ..provenance import build_recorded

    meta = json.loads((directory / "export.json").read_text())
    section = dict(meta["model"])
    for key in meta.get("model_paths", []):  # paths the model wrote into the export, made absolute
        section[key] = str(directory / section[key])
    context = {**task.model_context(), "inference": True}
    caller_decides_remote_code(section, context, trust_remote_code, directory)
    model = build_recorded("model", section, meta.get("provenance", {}).get("model"), f"export {directory}", context)
    from ..engine.prune import restore_structure

    restore_structure(model, meta.get("structure"), directory)  # a pruned model: its recorded shape first
    load_weights(model, directory / "model.safetensors")
    return model.eval()


def onnx_session_options(threads: int | None = None):
    """ONNX Runtime options with bounded memory: no CPU memory arena and no memory patterns.

    With them, ONNX Runtime keeps every buffer its largest request needed (the arena grows by
    powers of two and never gives memory back, and a pattern is kept per input shape), so a server
    fed maximum-size requests of varying shapes grew from 1.7 to 3.5 GB; without them buffers are
    returned after each run, at no measurable cost for models of this size. ``threads``: ONNX
    Runtime's intra-op threads (default: its own choice, one per core)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    # ONNX Runtime's intra-op threads spin between operators by default, burning the cores that the
    # server's other lane, its event loop and its neighbours need; FMKIT_ORT_SPINNING=1 turns it back on
    # (benchmarks/serve_spinning.py measures both)
    spinning = os.environ.get("FMKIT_ORT_SPINNING", "0").strip().lower() in ("1", "true", "yes")
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


def onnx_runner(path: Path, task, threads: int | None = None):
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), onnx_session_options(threads), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(batch: dict):
        feeds = {n: batch[n].detach().cpu().numpy() for n in names}
        return torch.from_numpy(np.asarray(session.run(None, feeds)[0]))

    run.session = session  # for inspection (its options, inputs)
    return run


def load_predictor(path: str | Path, backend: str = "torch", precision: str = "auto",
                   trust_remote_code: bool = False) -> Predictor:
    """``precision``: ``auto`` uses the int8 model when the export has one, ``float`` never does.
    ``trust_remote_code``: the caller's permission to run code shipped with the model (an
    ``auto_map`` in the model's config); what the export or run directory says is never enough."""
    path = Path(path)
    if (path / "export.json").is_file():
        meta = json.loads((path / "export.json").read_text())
        task = _task_from_export(meta, path)
        int8 = precision != "float" and meta.get("quantize") == "int8"
        if precision == "int8" and meta.get("quantize") != "int8":
            raise UsageError(f"{path} has no int8 model; export with --quantize int8")
        if backend == "onnx":
            int8 = int8 and (path / "model.int8.onnx").is_file()
            name = "model.int8.onnx" if int8 else "model.onnx"
            if not (path / name).is_file():
                if name == "model.onnx" and (path / "model.int8.onnx").is_file():
                    raise UsageError(f"{path} holds the int8 model only: serve it with --precision auto or int8, or "
                                     "export again with --keep-float (or serve the float export) for the float model")
                raise UsageError(f"{path} has no ONNX model; export with --format onnx to serve with --backend onnx")
            return Predictor(task, onnx_runner(path / name, task), meta, "int8" if int8 else "float",
                             single_thread_runner=lambda: onnx_runner(path / name, task, threads=1))
        model = load_torch_model(path, task, trust_remote_code)
        if int8:
            import torch

            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return Predictor(task, lambda b: task.forward(model, b), meta, "int8" if int8 else "float", model)
    if (path / "recipe.yaml").is_file():
        from ..engine.artifacts import load_trained

        trained = load_trained(path, trust_remote_code=trust_remote_code)
        if backend == "onnx":
            raise UsageError("a run directory has no ONNX model; export it first: fmkit export RUN --format onnx")
        return trained.predictor()
    raise UsageError(f"{path} is neither an export folder (export.json) nor a run directory (recipe.yaml)")
