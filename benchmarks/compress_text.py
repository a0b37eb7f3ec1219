"""Compression of a fine-tuned text classifier, distillation and pruning: SST-2 (../shared/data/sst2)
or, with ``--dataset clinc150``, CLINC150 (../shared/data/clinc150, 150 intents).

Side by side in one run:
- teacher: the pretrained all-MiniLM-L6-v2 (6 layers) fine-tuned on SST-2 (examples/recipes/sst2-minilm-8k.yaml);
- student, distilled: 3 layers (the teacher's 0, 2, 4, with its embeddings and head: model.init_from)
  trained on ``alpha * KL(teacher, student) + (1 - alpha) * cross-entropy`` (distill: section);
- student, ablation: the same 3-layer student from the same layers, fine-tuned without the teacher term;
- teacher pruned: 40% of its attention heads and 40% of its FFN neurons removed by |gradient x weight|
  importance on 16 training batches (``fmkit prune --heads 0.4 --ffn 0.4 --distill``), then recovered
  with the same number of epochs on the same training data, distilling from the unpruned teacher.
Each is scored once on test.tsv (the GLUE dev set, 872 sentences) and exported to ONNX with int8;
with ``--dataset clinc150`` the recipe is examples/recipes/clinc150-minilm.yaml (15,000 training
queries, its 4 epochs unless --epochs, the 3,000 validation queries) and the test set its 4,500
in-scope test queries;
latency is the median of ``predict([sentence])`` (tokenising included) over test sentences at batch 1,
ONNX Runtime on the CPU, float and int8, measured in --latency-rounds rounds that take the eight
models in turn (a rotating order), so each ratio to the teacher comes from one round and the rounds
give its spread. The distilled student's gain over the ablation is checked with an exact McNemar
test on the test examples only one of the two gets right.

Settings are not tuned: the students take the teacher's recipe (learning rates, batch size, one
epoch unless --epochs) and the distill section's defaults (temperature 2, alpha 0.5); validation is
1,000 dev.tsv sentences, as in the teacher's recipe, and no model sees test.tsv before its one score.

Usage: python benchmarks/compress_text.py [--dataset sst2|clinc150] [--train N] [--epochs E] [--data DIR]
                                         [--latency-n N] [--latency-rounds R]
  --latency-n N   sentences per latency round (default 300); --latency-rounds R (default 5)
  --train N   SST-2 training sentences (default 8000, the reduced run; 0: the full training set, 67k);
              CLINC150 always trains on all 15,000
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

from _common import ROOT, SHARED, finished_run, mcnemar_exact, reuse_arg, spread_verdict, verdict

RECIPES = {"sst2": "examples/recipes/sst2-minilm-8k.yaml", "clinc150": "examples/recipes/clinc150-minilm.yaml"}
# training never scores test: SST-2's test file is not given to the runs at all; CLINC150's sits in the
# same JSON file as its training data, so the runs score validation and test is scored once at the end
VALIDATION_ONLY = ["evaluate.split=validation", "export.formats=[]", "train.progress=off"]


def _train(recipe: str, overrides: list[str], name: str):
    import fmkit

    return fmkit.train(str(ROOT / recipe), overrides=overrides + VALIDATION_ONLY + [f"tracking.run_name={name}"])


def _test_accuracy(run_dir, dataset: str, data: Path) -> float:
    import fmkit

    if dataset == "clinc150":
        return fmkit.evaluate(str(run_dir), split="test")["accuracy"]  # the recipe's data.test (key "test")
    return fmkit.evaluate(str(run_dir), data=str(data / "test.tsv"))["accuracy"]


def _settings(dataset: str, data: Path, train: int, epochs: int | None) \
        -> tuple[list[str], list[str], list[str]] | None:
    """(the runs' overrides, the test sentences, their labels), or None when the data set is absent."""
    import csv

    if dataset == "clinc150":
        path = data / "data_full.json"
        if not path.is_file():
            return None
        common = [f"data.{s}={path}" for s in ("train", "validation", "test")]
        test = json.loads(path.read_text())["test"]
        return common + ([f"train.epochs={epochs}"] if epochs else []), [t for t, _ in test], [str(y) for _, y in test]
    if not (data / "train.tsv").is_file():
        return None
    common = [f"data.train={data / 'train.tsv'}", f"data.validation={data / 'dev.tsv'}", "data.test=null",
              f"train.epochs={epochs or 1}",
              "data.limits={" + (f"train: {train}, " if train else "") + "validation: 1000}"]
    with open(data / "test.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return common, [r["sentence"] for r in rows], [str(r["label"]) for r in rows]


def _latency_rounds(exports: dict[str, str], sentences: list[str], rounds: int) -> dict[tuple[str, str], list[float]]:
    """Median ``predict([sentence])`` milliseconds of every model (float and int8), per round; each
    round takes the models in turn, starting one further along each time."""
    import fmkit

    predictors = {(name, precision): fmkit.load(export, backend="onnx", precision=precision)
                  for name, export in exports.items() for precision in ("float", "int8")}
    for p in predictors.values():
        for s in sentences[:10]:  # warm-up
            p.predict([s])
    keys = list(predictors)
    out: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            times = []
            for s in sentences:
                t = time.perf_counter()
                predictors[k].predict([s])
                times.append((time.perf_counter() - t) * 1000)
            out[k].append(statistics.median(times))
    return out


def _correct(run_dir, texts: list[str], labels: list[str]) -> list[bool]:
    """Whether the run's model predicts each test example's label (for the paired test)."""
    import fmkit

    return [str(p["label"]) == y for p, y in zip(fmkit.predict(str(run_dir), texts), labels)]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}..{max(values):.2f})"


def teacher_epochs(run) -> int:
    """The epochs the teacher trained for (the pruned model recovers for as many)."""
    import yaml

    return int(yaml.safe_load((Path(run.run_dir) / "recipe.yaml").read_text())["train"]["epochs"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=sorted(RECIPES), default="sst2")
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=None, help="default: SST-2 1, CLINC150 the recipe's 4")
    ap.add_argument("--data", default=None, help="the data set's folder (default ../shared/data/DATASET)")
    ap.add_argument("--latency-n", type=int, default=300)
    ap.add_argument("--latency-rounds", type=int, default=5)
    ap.add_argument("--skip-students", action="store_true")
    ap.add_argument("--reuse", action="append", default=[], metavar="KEY=RUN",
                    help="a finished run of this script with the same settings instead of training it again; "
                         "KEY: teacher, distilled, ablation, pruned (repeatable)")
    args = ap.parse_args()
    data = Path(args.data or SHARED / args.dataset).resolve()
    settings = _settings(args.dataset, data, args.train, args.epochs)
    if settings is None:
        print(f"skipped: {data} holds no {args.dataset} (SST-2: train.tsv, dev.tsv, test.tsv; CLINC150: data_full.json)")
        return
    common, sentences, labels = settings
    recipe = RECIPES[args.dataset]
    os.chdir(ROOT)
    import fmkit

    tag = "" if args.dataset == "sst2" else f"-{args.dataset}"
    rows = {}
    t0 = time.perf_counter()
    reuse = reuse_arg(args.reuse, ("teacher", "distilled", "ablation", "pruned"))
    teacher = finished_run(reuse["teacher"]) if "teacher" in reuse else _train(recipe, common, f"compress{tag}-teacher")
    rows["teacher (6 layers)"] = teacher
    epochs = teacher_epochs(teacher)
    if not args.skip_students:
        student = ["model.pretrained=null", f"model.init_from={{run: {teacher.run_dir}, layers: [0, 2, 4]}}"]
        rows["student 3 layers, distilled"] = finished_run(reuse["distilled"]) if "distilled" in reuse else _train(
            recipe, common + student + [f"distill.teacher={teacher.run_dir}"], f"compress{tag}-distilled")
        rows["student 3 layers, no distillation"] = finished_run(reuse["ablation"]) if "ablation" in reuse else \
            _train(recipe, common + student, f"compress{tag}-ablation")
    rows["teacher pruned 40% heads + FFN, recovered"] = finished_run(reuse["pruned"]) if "pruned" in reuse else \
        fmkit.prune(str(teacher.run_dir), heads=0.4, ffn=0.4, recover_epochs=epochs, distill=True,
                    overrides=[f"tracking.run_name=compress{tag}-pruned"])
    test_texts, latency_sentences = sentences, sentences[:args.latency_n]
    scores, int8_change, exports, correct = {}, {}, {}, {}
    for name, run in rows.items():
        acc = _test_accuracy(run.run_dir, args.dataset, data)
        correct[name] = _correct(run.run_dir, test_texts, labels)
        # the float model kept beside the int8 one: both latencies from one export
        exports[name] = export = fmkit.export(str(run.run_dir), "onnx", quantize="int8", keep_float=True)
        int8 = json.loads((Path(export) / "export.json").read_text())["int8"]  # checked on validation inputs
        int8_change[name] = (int8["metric_change"].get("accuracy"), int8.get("prediction_agreement"))
        scores[name] = (acc, run.train_seconds, run.results.get("agreement"),
                        (run.results.get("parameters_before"), run.results.get("parameters_after")))
    latency = _latency_rounds(exports, latency_sentences, args.latency_rounds)
    what = (f"SST-2, {args.train or 'all'} training sentences, {epochs} epoch(s); test.tsv (872 sentences)"
            if args.dataset == "sst2" else f"CLINC150, 15,000 training queries, {epochs} epoch(s); "
            "the 4,500 in-scope test queries")
    print(f"{what}; ONNX Runtime batch 1 on {os.cpu_count()} CPU cores, median of {len(latency_sentences)} "
          f"sentences in each of {args.latency_rounds} rounds (the models in turn); "
          f"{time.perf_counter() - t0:.0f} s in all")
    teacher_name = "teacher (6 layers)"
    t_acc = scores[teacher_name][0]
    t_float = latency[(teacher_name, "float")]

    def ratio(name: str, precision: str) -> list[float]:  # round by round, against the teacher's float
        return [x / t for x, t in zip(latency[(name, precision)], t_float)]

    for name, (acc, secs, agree, params) in scores.items():
        agreement = f", agreement with the teacher {agree:.4f} (validation)" if agree is not None else ""
        size = f", parameters {params[0] / 1e6:.1f}M -> {params[1] / 1e6:.1f}M" if params[1] else ""
        fl, i8 = latency[(name, "float")], latency[(name, "int8")]
        print(f"  {name}: test accuracy {acc:.4f} (from predictions {statistics.mean(correct[name]):.4f}), latency "
              f"float {statistics.median(fl):.2f} ms ({_spread(ratio(name, 'float'))} teacher), int8 "
              f"{statistics.median(i8):.2f} ms ({_spread(ratio(name, 'int8'))} teacher float), training "
              f"{secs:.0f} s{agreement}{size}")
        change, same = int8_change[name]
        print(f"    int8 vs its float model on the export's validation inputs: accuracy {100 * change:+.2f} points, "
              f"same prediction {same:.4f}")
    pruned = "teacher pruned 40% heads + FFN, recovered"
    p_acc = scores[pruned][0]
    speed = [1 / r for r in ratio(pruned, "float")]
    print(f"pruned vs teacher: {100 * (p_acc - t_acc):+.2f} points ({verdict(p_acc - t_acc, -0.015)} target >= -1.5); "
          f"speed-up float {_spread(speed)} over {len(speed)} rounds ({spread_verdict(speed, 1.4)} target >= 1.4x), "
          f"int8 {_spread([1 / r for r in ratio(pruned, 'int8')])} the teacher's float")
    if args.skip_students:
        return
    distilled, ablation = "student 3 layers, distilled", "student 3 layers, no distillation"
    d_acc, a_acc = scores[distilled][0], scores[ablation][0]
    only_d = sum(d and not a for d, a in zip(correct[distilled], correct[ablation]))
    only_a = sum(a and not d for d, a in zip(correct[distilled], correct[ablation]))
    p = mcnemar_exact(only_d, only_a)
    gain = d_acc - a_acc
    resolved = verdict(gain, 0.005) if p < 0.05 else f"NOT RESOLVED by McNemar's test (p = {p:.2f}) for"
    print(f"distilled vs teacher: {100 * (d_acc - t_acc):+.2f} points ({verdict(d_acc - t_acc, -0.015)} target "
          f">= -1.5); vs ablation: {100 * gain:+.2f} points ({resolved} target >= +0.5; test examples only the "
          f"distilled student gets right {only_d}, only the ablation {only_a}, exact McNemar p = {p:.3f})")
    d_float, d_int8 = ratio(distilled, "float"), ratio(distilled, "int8")
    print(f"distilled latency: float {_spread(d_float)} ({spread_verdict(d_float, 0.55, False)} target <= 0.55x), "
          f"int8 {_spread(d_int8)} ({spread_verdict(d_int8, 0.3, False)} target <= 0.3x), over {len(d_float)} rounds")


if __name__ == "__main__":
    main()
