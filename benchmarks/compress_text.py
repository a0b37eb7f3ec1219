"""Compression of a fine-tuned text classifier, distillation and pruning: SST-2 (../shared/data/sst2).

Side by side in one run:
- teacher: the pretrained all-MiniLM-L6-v2 (6 layers) fine-tuned on SST-2 (examples/recipes/sst2-minilm-8k.yaml);
- student, distilled: 3 layers (the teacher's 0, 2, 4, with its embeddings and head: model.init_from)
  trained on ``alpha * KL(teacher, student) + (1 - alpha) * cross-entropy`` (distill: section);
- student, ablation: the same 3-layer student from the same layers, fine-tuned without the teacher term;
- teacher pruned: 40% of its attention heads and 40% of its FFN neurons removed by |gradient x weight|
  importance on 16 training batches (``fmkit prune --heads 0.4 --ffn 0.4 --distill``), then recovered
  with the same number of epochs on the same training data, distilling from the unpruned teacher.
Each is scored once on test.tsv (the GLUE dev set, 872 sentences) and exported to ONNX with int8;
latency is the median of ``predict([sentence])`` (tokenising included) over test sentences at batch 1,
ONNX Runtime on the CPU, float and int8.

Settings are not tuned: the students take the teacher's recipe (learning rates, batch size, one
epoch unless --epochs) and the distill section's defaults (temperature 2, alpha 0.5); validation is
1,000 dev.tsv sentences, as in the teacher's recipe, and no model sees test.tsv before its one score.

Usage: python benchmarks/compress_text.py [--train N] [--epochs E] [--data DIR] [--latency-n N]
  --train N   training sentences (default 8000, the reduced run; 0: the full training set, 67k)
  --skip-students   teacher and pruned teacher only (no 3-layer students)
  --reuse KEY=RUN   reuse a finished run of this script with the same settings (teacher, distilled,
                    ablation, pruned), instead of training it again
Targets (issue 20): distilled student within 1.5 points of the teacher and at least 0.5 above the
ablation; ONNX batch-1 latency at most 0.55x the teacher's float latency, with int8 at most 0.3x.
Pruned 40% (heads and FFN): at least 1.4x faster than the teacher at batch 1, within 1.5 points.
Anchors: DistilBERT keeps 97% of BERT's GLUE score at 60% more speed; TinyBERT-4 ~96.8% at 9.4x.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from _common import ROOT, SHARED, finished_run, reuse_arg, verdict

RECIPE = "examples/recipes/sst2-minilm-8k.yaml"
VALIDATION_ONLY = ["data.test=null", "evaluate.split=validation", "export.formats=[]", "train.progress=off"]


def _train(overrides: list[str], name: str):
    import fmkit

    run = fmkit.train(str(ROOT / RECIPE), overrides=overrides + VALIDATION_ONLY + [f"tracking.run_name={name}"])
    return run


def _test_accuracy(run_dir, data: Path) -> float:
    import fmkit

    return fmkit.evaluate(str(run_dir), data=str(data / "test.tsv"))["accuracy"]


def _latency_ms(export_dir: str, precision: str, sentences: list[str]) -> float:
    import fmkit

    predictor = fmkit.load(export_dir, backend="onnx", precision=precision)
    for s in sentences[:10]:  # warm-up
        predictor.predict([s])
    times = []
    for s in sentences:
        t = time.perf_counter()
        predictor.predict([s])
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--data", default=str(SHARED / "sst2"))
    ap.add_argument("--latency-n", type=int, default=300)
    ap.add_argument("--skip-students", action="store_true")
    ap.add_argument("--reuse", action="append", default=[], metavar="KEY=RUN",
                    help="a finished run of this script with the same settings instead of training it again; "
                         "KEY: teacher, distilled, ablation, pruned (repeatable)")
    args = ap.parse_args()
    data = Path(args.data).resolve()
    if not (data / "train.tsv").is_file():
        print(f"skipped: {data} holds no SST-2 (train.tsv, dev.tsv, test.tsv)")
        return
    os.chdir(ROOT)
    import csv

    import fmkit

    common = [f"data.train={data / 'train.tsv'}", f"data.validation={data / 'dev.tsv'}",
              f"train.epochs={args.epochs}",
              "data.limits={" + (f"train: {args.train}, " if args.train else "") + "validation: 1000}"]
    rows = {}
    t0 = time.perf_counter()
    reuse = reuse_arg(args.reuse, ("teacher", "distilled", "ablation", "pruned"))
    teacher = finished_run(reuse["teacher"]) if "teacher" in reuse else _train(common, "compress-teacher")
    rows["teacher (6 layers)"] = teacher
    if not args.skip_students:
        student = ["model.pretrained=null", f"model.init_from={{run: {teacher.run_dir}, layers: [0, 2, 4]}}"]
        rows["student 3 layers, distilled"] = finished_run(reuse["distilled"]) if "distilled" in reuse else _train(
            common + student + [f"distill.teacher={teacher.run_dir}"], "compress-distilled")
        rows["student 3 layers, no distillation"] = finished_run(reuse["ablation"]) if "ablation" in reuse else \
            _train(common + student, "compress-ablation")
    rows["teacher pruned 40% heads + FFN, recovered"] = finished_run(reuse["pruned"]) if "pruned" in reuse else \
        fmkit.prune(str(teacher.run_dir), heads=0.4, ffn=0.4, recover_epochs=args.epochs, distill=True,
                    overrides=["tracking.run_name=compress-pruned"])
    with open(data / "test.tsv", newline="") as f:
        sentences = [r["sentence"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    sentences = sentences[:args.latency_n]
    scores, int8_change = {}, {}
    for name, run in rows.items():
        acc = _test_accuracy(run.run_dir, data)
        # the float model kept beside the int8 one: both latencies from one export
        export = fmkit.export(str(run.run_dir), "onnx", quantize="int8", keep_float=True)
        int8 = json.loads((Path(export) / "export.json").read_text())["int8"]  # checked on validation inputs
        int8_change[name] = (int8["metric_change"].get("accuracy"), int8.get("prediction_agreement"))
        scores[name] = (acc, _latency_ms(export, "float", sentences), _latency_ms(export, "int8", sentences),
                        run.train_seconds, run.results.get("agreement"),
                        (run.results.get("parameters_before"), run.results.get("parameters_after")))
    print(f"SST-2, {args.train or 'all'} training sentences, {args.epochs} epoch(s); test.tsv (872 sentences); "
          f"ONNX Runtime batch 1 on {os.cpu_count()} CPU cores, median of {len(sentences)} sentences; "
          f"{time.perf_counter() - t0:.0f} s in all")
    t_acc, t_float = scores["teacher (6 layers)"][0], scores["teacher (6 layers)"][1]
    for name, (acc, fl, i8, secs, agree, params) in scores.items():
        agreement = f", agreement with the teacher {agree:.4f} (validation)" if agree is not None else ""
        size = f", parameters {params[0] / 1e6:.1f}M -> {params[1] / 1e6:.1f}M" if params[1] else ""
        print(f"  {name}: test accuracy {acc:.4f}, latency float {fl:.2f} ms ({fl / t_float:.2f}x teacher), int8 "
              f"{i8:.2f} ms ({i8 / t_float:.2f}x teacher float), training {secs:.0f} s{agreement}{size}")
        change, same = int8_change[name]
        print(f"    int8 vs its float model on the export's validation inputs: accuracy {100 * change:+.2f} points, "
              f"same prediction {same:.4f}")
    p_acc, p_float, p_int8 = scores["teacher pruned 40% heads + FFN, recovered"][:3]
    print(f"pruned vs teacher: {100 * (p_acc - t_acc):+.2f} points ({verdict(p_acc - t_acc, -0.015)} target >= -1.5); "
          f"speed-up float {t_float / p_float:.2f}x ({verdict(t_float / p_float, 1.4)} target >= 1.4x), int8 "
          f"{t_float / p_int8:.2f}x the teacher's float")
    if args.skip_students:
        return
    d_acc, d_float, d_int8 = scores["student 3 layers, distilled"][:3]
    a_acc = scores["student 3 layers, no distillation"][0]
    print(f"distilled vs teacher: {100 * (d_acc - t_acc):+.2f} points ({verdict(d_acc - t_acc, -0.015)} target "
          f">= -1.5); vs ablation: {100 * (d_acc - a_acc):+.2f} points ({verdict(d_acc - a_acc, 0.005)} target >= +0.5)")
    print(f"distilled latency: float {d_float / t_float:.2f}x ({verdict(d_float / t_float, 0.55, False)} target "
          f"<= 0.55x), int8 {d_int8 / t_float:.2f}x ({verdict(d_int8 / t_float, 0.3, False)} target <= 0.3x)")


if __name__ == "__main__":
    main()
