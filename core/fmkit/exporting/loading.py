"""Load an export folder (or a run directory) as a predictor: ``fmkit.load(path).predict(inputs)``.

Nothing read from an export or a run directory may turn on running code shipped with it: a
model section's ``trust_remote_code`` is replaced by the caller's own decision
(``fmkit.load(..., trust_remote_code=True)``, ``--trust-remote-code``), and a caller who allows it
is warned that it is allowed.
"""
from __future__ import annotations

import os
import logging
from pathlib import Path

from ..errors import DataError, UsageError
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


def read_export_meta(directory: Path) -> dict:
    """``export.json`` of the export ``directory``; missing or damaged (not JSON, no task or model
    section): a :class:`~fmkit.errors.DataError` naming it."""
    from ..utils.damaged import damaged, export_hint, read_json

    path = Path(directory) / "export.json"
    meta = read_json(path, export_hint(directory))
    lacking = [k for k in ("task", "model") if not isinstance(meta.get(k), dict)]
    lacking += [k for k, kind in (("provenance", dict), ("labels", list), ("model_paths", list))
                if meta.get(k) is not None and not isinstance(meta[k], kind)]
    paths = meta.get("model_paths") or []
    if not lacking and not all(isinstance(k, str) and isinstance(meta["model"].get(k), str) for k in paths):
        lacking = ["model_paths"]
    if lacking:
        raise damaged(path, export_hint(directory, meta), f"its {' and '.join(lacking)} section is not what an "
                                                          "export writes")
    return meta


def _task_from_export(meta: dict, directory: Path):
    """The export's task with its fitted state and assets. Its labels must be those ``export.json``
    recorded (the model's outputs are those labels, in that order): an edited or damaged
    ``task/task.json`` is a :class:`~fmkit.errors.DataError` naming it."""
    from ..engine.artifacts import load_fitted_state
    from ..provenance import build_recorded
    from ..utils.damaged import export_hint

    directory = Path(directory)
    task = build_recorded("task", meta["task"], (meta.get("provenance") or {}).get("task"), f"export {directory}")
    hint = export_hint(directory, meta)
    load_fitted_state(task, directory / "task", hint)
    recorded = meta.get("labels")  # a list or None (read_export_meta)
    if "labels" in meta and recorded != (None if task.labels is None else list(task.labels)):
        raise DataError(f"{directory / 'task' / 'task.json'} is damaged or was edited: its labels "
                        f"{_shown(task.labels)} are not the {_shown(recorded)} the model was exported with "
                        f"({directory / 'export.json'}), so its outputs would be given the wrong names; {hint}")
    return task


def _shown(labels) -> str:
    if labels is None:
        return "(none)"
    labels = list(labels)
    return f"{len(labels)} ({', '.join(map(repr, labels[:6]))}{' ...' if len(labels) > 6 else ''})"


def _check_output_width(task, width, model_file: Path, directory: Path, meta: dict) -> None:
    """A classifier's outputs are one score per label (``num_labels`` in the task's model context):
    a model whose output width differs from the task's labels is refused, naming the files."""
    from ..utils.damaged import export_hint

    labels = task.model_context().get("num_labels")
    if isinstance(width, int) and isinstance(labels, int) and width != labels:
        raise DataError(f"{model_file} gives {width} scores per input but {directory / 'task' / 'task.json'} has "
                        f"{labels} labels: one of them was edited or damaged; {export_hint(directory, meta)}")


def load_torch_model(directory: Path, task, trust_remote_code: bool = False):
    """Rebuild the model from ``export.json``'s model section and load ``model.safetensors``; the
    export's own ``trust_remote_code`` is ignored: only the caller's counts. A missing or damaged
    file, or weights that do not fit the model the export's files describe, is a
    :class:`~fmkit.errors.DataError` naming the files."""
    from ..engine.checkpoint import load_weights
    from ..provenance import build_recorded
    from ..utils.damaged import export_hint, mismatch, reading

    directory = Path(directory)
    meta = read_export_meta(directory)
    hint = export_hint(directory, meta)
    section = dict(meta["model"])
    paths = list(meta.get("model_paths") or [])
    for key in paths:  # paths the model wrote into the export, made absolute
        section[key] = str(directory / section[key])
    context = {**task.model_context(), "inference": True}
    caller_decides_remote_code(section, context, trust_remote_code, directory)
    # what the model is built from: the files it wrote into the export (a configuration), else export.json
    described = [Path(section[k]) for k in paths] or [directory / "export.json"]
    with reading(described[0], hint):
        model = build_recorded("model", section, (meta.get("provenance") or {}).get("model"), f"export {directory}",
                               context)
    from ..engine.prune import restore_structure

    restore_structure(model, meta.get("structure"), directory)  # a pruned model: its recorded shape first
    weights = directory / "model.safetensors"
    try:
        load_weights(model, weights, hint)
    except RuntimeError as e:  # names or shapes: the files the model is built from no longer match
        files = ", ".join(str(p) for p in dict.fromkeys([directory / "export.json", *described,
                                                          directory / "task" / "task.json"]))
        raise DataError(f"{weights} does not fit the model that {files} describe ({mismatch(e)}): one of these "
                        f"files was edited or damaged; {hint}") from None
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
        meta = read_export_meta(path)
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
            from ..utils.damaged import export_hint, reading

            with reading(path / name, export_hint(path, meta)):
                runner = onnx_runner(path / name, task)
            outputs = runner.session.get_outputs()
            shape = outputs[0].shape if outputs else None
            _check_output_width(task, shape[-1] if shape else None, path / name, path, meta)
            return Predictor(task, runner, meta, "int8" if int8 else "float",
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
