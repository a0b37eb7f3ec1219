"""``fmkit export``: write a run's best model in a format, verify it, record it in ``export.json``.

Every export is self-contained (weights, model configuration, the task's fitted state and assets,
labels, signature, metrics, recipe) and verified: its outputs are compared with the eager model's on
real validation inputs; past the tolerance the export fails and nothing is left behind.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ExportError, UsageError
from ..utils.atomic import atomic_directory
from .target import export_target
from .collected_warnings import collected_warnings
from . import verify

log = logging.getLogger("fmkit")


def verification_examples(splits: dict[str, list[dict]]) -> list[dict]:
    """The examples an export is verified on: validation, else test, else train."""
    return splits.get("validation") or splits.get("test") or splits["train"]


def _validation_examples(trained, limit: int = 256) -> list[dict]:
    from ..engine.builder import Builder
    from ..engine.data import load_splits

    b = Builder(trained.recipe)
    try:
        splits = load_splits(b.dataset(trained.task), trained.recipe, trained.task, {}, lambda: b.transforms("clean", trained.task))
    except Exception:  # data gone since training: fall back to the task's own example inputs
        return []
    return verification_examples(splits)[:limit]


def _batches(task, examples: list[dict], size: int = 32) -> list[dict]:
    if not examples:
        return [task.encode_raw(task.example_inputs())]
    return [task.collate([task.preprocess(e) for e in examples[s:s + size]]) for s in range(0, len(examples), size)]


def _metric(trained, run_batch, batches: list[dict]) -> dict[str, float]:
    import torch

    from ..engine.builder import Builder

    metrics = Builder(trained.recipe).metrics(trained.task)
    for b in batches:
        if "targets" not in b:
            return {}
        with torch.inference_mode():
            preds, targets = trained.task.metric_inputs(run_batch(b), b)
        for m in metrics:
            m.update(preds, targets)
    out: dict[str, float] = {}
    for m in metrics:
        out.update(m.compute())
    return out


def _timed(fn, batches: list[dict], repeats: int = 3) -> float:
    import torch

    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.inference_mode():
            for b in batches:
                fn(b)
        best = min(best, time.perf_counter() - t)
    return best / max(1, len(batches))


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def export(run_dir: str | Path, format: str, output: str | None = None, quantize: str | None = None,
           tolerance: float | None = None, trained=None, examples: list[dict] | None = None,
           min_agreement: float | None = None, trust_remote_code: bool = False,
           keep_float: bool | None = None) -> Path:
    """Export ``run_dir``'s best model as ``format``; returns the (verified) export folder.

    With ``quantize="int8"`` an ONNX export folder holds the int8 model only (what serving it
    needs); ``keep_float`` (default: the recipe's ``export.keep_float``) keeps the float
    ``model.onnx`` beside it, for serving both from one folder or comparing them.

    ``tolerance`` (largest absolute difference from the eager model) and ``min_agreement`` (least
    share of unchanged predictions, classification) default to the run recipe's ``export``
    section; the int8 model is held to ``export.int8_min_agreement`` (or, for tasks without
    predictions to agree on, ``export.int8_max_relative_diff``). Any non-finite weight or output
    fails the export (see :mod:`fmkit.exporting.verify`); a failed export leaves nothing behind.

    ``trust_remote_code``: the caller allows code shipped with the run's model to run (the run
    directory's own setting is not enough, see :func:`fmkit.engine.artifacts.load_trained`).

    ``trained`` and ``examples`` let a caller that already holds the best model and the
    validation examples (the end of ``fmkit.train``) skip rebuilding and reloading them.
    """
    import torch

    from ..engine.artifacts import load_trained
    from ..engine.checkpoint import save_weights
    from ..engine.prune import read_structure
    from ..plugins import get_plugin_manager
    from ..provenance import component_provenance

    run_dir = Path(run_dir)
    trained = trained or load_trained(run_dir, trust_remote_code=trust_remote_code)
    task, model = trained.task, trained.model
    limits = trained.recipe.export
    tolerance = limits.tolerance if tolerance is None else tolerance
    min_agreement = limits.min_agreement if min_agreement is None else min_agreement
    for name, value, top in (("tolerance", tolerance, math.inf), ("min_agreement", min_agreement, 1.0)):
        if not 0 <= value <= top:  # NaN fails too
            raise UsageError(f"export {name} {value} is out of range: give a number in [0, {top:g}]")
    registry = get_plugin_manager().registry
    supported = registry.get("model", trained.recipe.model.name).tags.get("exports")
    if supported is not None and format not in supported:
        raise ExportError(f"model {trained.recipe.model.name!r} cannot be exported as {format!r}; "
                          f"it supports {', '.join(supported)}")
    exporter = registry.build("exporter", {"name": format}, task.model_context())
    out = export_target(output, run_dir) if output is not None else run_dir / "exports" / (format + (f"-{quantize}" if quantize else ""))
    verify.check_finite_weights(model, f"{run_dir}/checkpoints/best")
    batches = _batches(task, examples[:256] if examples is not None else _validation_examples(trained))
    eager = lambda b: task.forward(model, b)  # noqa: E731
    metrics = _run_metrics(run_dir)  # read here: inside the export's block warnings go to its summary
    with atomic_directory(out) as tmp:
        with collected_warnings(f"{format} export") as noted:
            save_weights(model, tmp / "model.safetensors")
            model_section, model_paths = trained.recipe.model.as_dict(), []
            if hasattr(model, "fmkit_export_params"):  # e.g. write config.json so the export needs no original folder
                overrides = model.fmkit_export_params(str(tmp)) or {}
                root = tmp.resolve()
                for k, v in overrides.items():  # paths inside the export are stored relative to it
                    if isinstance(v, str) and Path(v).resolve().is_relative_to(root):
                        model_paths.append(k)
                        v = str(Path(v).resolve().relative_to(root))
                    model_section[k] = v
            (tmp / "task").mkdir()
            (tmp / "task" / "task.json").write_text(json.dumps(task.state_dict(), indent=2, default=str))
            (tmp / "task" / "assets").mkdir()
            task.save_assets(str(tmp / "task" / "assets"))
            meta: dict[str, Any] = {"format": format, "task": trained.recipe.task.as_dict(), "model": model_section,
                                    "model_paths": model_paths, "labels": task.labels,
                                    "signature": {"inputs": task.export_input_names(), "dynamic_axes": {
                                        k: {str(a): n for a, n in v.items()} for k, v in task.dynamic_axes().items()},
                                        "example_inputs": _jsonable(task.example_inputs())},
                                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "source_run": str(run_dir.resolve()),
                                    # a pruned model's shape (prune.json), given to the model before its weights load
                                    "structure": read_structure(run_dir),
                                    # which plugin and distribution provide them: a loader lacking one says what to install
                                    "provenance": {"task": component_provenance("task", trained.recipe.task.as_dict()),
                                                   "model": component_provenance("model", trained.recipe.model.as_dict()),
                                                   "exporter": component_provenance("exporter", format)}}
            (tmp / "export.json").write_text(json.dumps(meta))
            meta.update(exporter.export(trained, str(tmp), batches[0]))
            runner = exporter.runner(str(tmp), trained)
            verification = verify.compare(task, eager, runner, batches)
            verify.check(verification, f"{format} export of {run_dir}", tolerance=tolerance, min_agreement=min_agreement)
            verification.update(tolerance=tolerance, min_agreement=min_agreement)
            meta["verification"] = verification
            if quantize == "int8":
                meta["quantize"] = "int8"
                meta["int8"] = _quantize(trained, exporter, format, tmp, runner, batches)
                keep = trained.recipe.export.keep_float if keep_float is None else keep_float
                if format == "onnx" and not keep:  # verified against it; not needed to serve the int8 model
                    for name in ("model.onnx", "model.onnx.data"):
                        (tmp / name).unlink(missing_ok=True)
                    meta["files"] = [f for f in meta.get("files", []) if f not in ("model.onnx", "model.onnx.data")]
                meta["int8"]["float_model_kept"] = bool(keep) or format != "onnx"
                if format == "onnx":
                    meta["files"] = [*meta.get("files", []), "model.int8.onnx"]
            meta["metrics"] = metrics
            import yaml

            meta["recipe"] = trained.recipe.to_dict()
            meta["versions"] = {"fmkit": __version__, "torch": torch.__version__}
            meta["size_bytes"] = _size(tmp)
            (tmp / "recipe.yaml").write_text(yaml.safe_dump(meta["recipe"], sort_keys=False))
        meta["warnings"] = noted  # what other libraries warned about, summed up in one log line
        # what this export wrote: exporting again to this folder replaces these, and refuses it if it
        # holds anything else (files of the user's, put there since)
        meta["written"] = sorted({p.name for p in tmp.iterdir()} | {"export.json"})
        (tmp / "export.json").write_text(json.dumps(meta, indent=2, default=str))
    return out


def _run_metrics(run_dir: Path) -> dict:
    """The run's final metrics (``eval.json``) that the export records; none when the run has none. A
    damaged ``eval.json`` does not stop the export: it is recorded without metrics, with a warning."""
    from ..errors import DataError
    from ..utils.damaged import read_json

    path = run_dir / "eval.json"
    if not path.exists():
        return {}
    try:
        return read_json(path, "the export records no metrics; `fmkit evaluate` scores the run again")
    except DataError as e:
        log.warning("%s", e)
        return {}


def _quantize(trained, exporter, format: str, tmp: Path, float_runner, batches) -> dict[str, Any]:
    """int8 dynamic quantization: record size, speed and metric change next to the float model."""
    import torch

    task = trained.task
    if format == "onnx":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # per-channel weight scales: the same size, and on this machine's VNNI CPU as fast or faster
        quantize_dynamic(str(tmp / "model.onnx"), str(tmp / "model.int8.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True)
        q_runner = exporter.runner(str(tmp), trained, filename="model.int8.onnx")
        float_size, q_size = (tmp / "model.onnx").stat().st_size, (tmp / "model.int8.onnx").stat().st_size
    else:
        qmodel = torch.ao.quantization.quantize_dynamic(trained.model, {torch.nn.Linear}, dtype=torch.qint8)
        q_runner = lambda b: task.forward(qmodel, b)  # noqa: E731
        float_runner = lambda b: task.forward(trained.model, b)  # noqa: E731
        import io

        buf = io.BytesIO()
        torch.save(qmodel.state_dict(), buf)
        float_size, q_size = (tmp / "model.safetensors").stat().st_size, len(buf.getvalue())
    cmp = verify.compare(task, float_runner, q_runner, batches)
    limits = trained.recipe.export
    verify.check(cmp, f"int8 quantization of the {format} export of {trained.source}",
                 min_agreement=limits.int8_min_agreement, max_relative_diff=limits.int8_max_relative_diff,
                 agreement_setting="export.int8_min_agreement; or export without --quantize, or train longer "
                                   "for a more robust model")
    f_metric, q_metric = _metric(trained, float_runner, batches), _metric(trained, q_runner, batches)
    f_time, q_time = _timed(float_runner, batches[:4]), _timed(q_runner, batches[:4])
    return {"float_bytes": float_size, "int8_bytes": q_size, "float_ms_per_batch": 1000 * f_time,
            "int8_ms_per_batch": 1000 * q_time, "speedup": f_time / q_time if q_time else None,
            "float_metrics": f_metric, "int8_metrics": q_metric,
            "metric_change": {k: q_metric[k] - f_metric[k] for k in f_metric if k in q_metric}, **cmp}


def _jsonable(x: Any) -> Any:
    try:
        json.dumps(x)
        return x
    except TypeError:
        return None


__all__ = ["export"]
