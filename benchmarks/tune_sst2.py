"""Hyperparameter search on SST-2 (../shared/data/sst2) with the pretrained all-MiniLM-L6-v2: the default
recipe vs the best trial of an fmkit-tune study, the steps pruning saves, and the same search through
Hugging Face Trainer's ``hyperparameter_search(backend="optuna")``, all in one run.

Setting (full run): 8,000 training sentences (the seeded sample of examples/recipes/sst2-minilm-8k.yaml),
one epoch, validation on VALIDATION sentences of dev.tsv (part of GLUE's train split), test.tsv (the GLUE
dev set, 872 sentences) scored once per contender: the default recipe, the study's best trial, the best
of Trainer's search. Selection is on validation only.

1. default: examples/recipes/sst2-minilm-8k.yaml as it stands.
2. study: TRIALS trials (TPE, median pruning, an evaluation every EVAL_EVERY steps) over learning rate,
   batch size, warmup, label smoothing and pooling.
3. the same study (same sampler seed) without pruning: training steps compared.
4. Trainer.hyperparameter_search(backend="optuna"), TPE with the same seed and trial budget, over the
   same space except pooling (Trainer's classifier pools [CLS] only) with one learning rate for the
   whole model (the recipe's head_lr has no Trainer equivalent); its search keeps no model, so the best
   hyperparameters are trained once more and scored on test (that retraining's time is reported apart).

Targets: best-trial test accuracy >= default + 1 point; pruning saves >= 30% of the steps of the study
without pruning; fmkit's best >= Trainer's best in no more wall time.

Usage: python benchmarks/tune_sst2.py [--quick] [--trials N] [--validation N] [--skip-hf] [--shared DIR]
  --quick   a smoke run of this script (320 training sentences, 100 validation, 3 trials): it checks the
            script runs end to end; its figures are not the benchmark's.
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

import yaml
from _common import ROOT, SHARED, verdict

RECIPE = ROOT / "examples/recipes/sst2-minilm-8k.yaml"
SPACE = {
    "optimizer.lr": {"float": [3.0e-5, 3.0e-4], "log": True},
    "train.batch_size": {"choice": [16, 32]},
    "scheduler.warmup_ratio": {"float": [0.0, 0.2]},
    "loss.label_smoothing": {"float": [0.0, 0.2]},
    "model.pooling": {"choice": ["model", "mean"]},
}
SEED = 0


def base_recipe(train_n: int, val_n: int, eval_every: int, out: Path, shared: Path) -> dict:
    recipe = yaml.safe_load(RECIPE.read_text())
    for split in ("train", "validation", "test"):  # the data where --shared says (default ../shared/data)
        recipe["data"][split] = str(shared / "sst2" / Path(recipe["data"][split]).name)
    recipe["data"]["limits"] = {"train": train_n, "validation": val_n}
    recipe["train"].update(progress="off", eval_every=eval_every)
    recipe["evaluate"] = {"split": "validation"}  # the test split is scored once per contender, below
    recipe["export"] = {"formats": []}
    recipe["tracking"] = {"runs_dir": str(out / "runs"), "tensorboard": False}
    return recipe


def score_test(run_dir) -> float:
    import fmkit

    return fmkit.evaluate(str(run_dir), split="test")["accuracy"]


def run_default(recipe: dict, out: Path) -> dict:
    import fmkit

    t = time.perf_counter()
    run = fmkit.train(copy.deepcopy(recipe), run_dir=str(out / "default"), overwrite=True)
    return {"validation": run.results["accuracy"], "test": score_test(run.run_dir),
            "wall": time.perf_counter() - t, "steps": _steps(run.run_dir)}


def _steps(run_dir) -> int:
    lines = [json.loads(x) for x in open(Path(run_dir) / "metrics.jsonl")]
    return max(r["step"] for r in lines if r.get("split") == "train")


def run_study(recipe: dict, out: Path, trials: int, pruner: str) -> dict:
    import fmkit_tune

    tuned = copy.deepcopy(recipe)
    tuned["tune"] = {"metric": "accuracy", "sampler": "tpe", "pruner": pruner, "seed": SEED,
                     "startup_trials": max(2, trials // 3), "warmup_evaluations": 1, "space": SPACE}
    name = f"sst2-{pruner}"
    shutil.rmtree(out / name, ignore_errors=True)
    t = time.perf_counter()
    result = fmkit_tune.tune(tuned, trials=trials, study=name, directory=str(out / name), progress=False)
    wall = time.perf_counter() - t
    steps = sum(int(r["steps"] or 0) for r in result.trials)
    pruned = sum(r["state"] == "pruned" for r in result.trials)
    return {"validation": result.best_value, "test": (result.test or {}).get("accuracy"), "wall": wall,
            "steps": steps, "pruned": pruned, "params": result.best_params, "trials": len(result.trials)}


def run_hf(recipe: dict, out: Path, trials: int) -> dict:
    """Trainer.hyperparameter_search over the same data, space (less pooling) and budget."""
    import numpy as np
    import optuna
    import torch
    from fmkit_nlp.datasets import TextFiles, TextFilesParams
    from fmkit.utils.paths import resolve_package_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    d = recipe["data"]
    params = {k: d[k] for k in ("train", "validation", "test", "text_column", "quoting", "limits")}
    splits = TextFiles(TextFilesParams(**params)).load()  # the same sentences fmkit reads
    path = str(resolve_package_path(recipe["model"]["pretrained"]))
    tok = AutoTokenizer.from_pretrained(path)
    labels = sorted({r["label"] for r in splits["train"]})

    class Rows(torch.utils.data.Dataset):
        def __init__(self, rows):
            enc = tok([r["text"] for r in rows], truncation=True, max_length=recipe["task"]["max_length"])
            self.items = [{"input_ids": i, "attention_mask": m, "labels": labels.index(r["label"])}
                          for i, m, r in zip(enc["input_ids"], enc["attention_mask"], rows)]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    train, val, test = Rows(splits["train"]), Rows(splits["validation"]), Rows(splits["test"])

    def accuracy(p):
        return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())}

    def args(**kw):
        base = dict(output_dir=str(out / "hf"), num_train_epochs=1, per_device_eval_batch_size=128,
                    eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[], weight_decay=0.01,
                    lr_scheduler_type="linear", use_cpu=True, seed=42, disable_tqdm=True,
                    log_level="error")
        return TrainingArguments(**{**base, **kw})

    def hp_space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", 3e-5, 3e-4, log=True),
                "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32]),
                "warmup_steps": trial.suggest_float("warmup_steps", 0.0, 0.2),
                "label_smoothing_factor": trial.suggest_float("label_smoothing_factor", 0.0, 0.2)}

    def model_init(trial=None):
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))

    torch.set_num_threads(recipe["train"].get("threads") or torch.get_num_threads())
    trainer = Trainer(model_init=model_init, args=args(), train_dataset=train, eval_dataset=val,
                      compute_metrics=accuracy, processing_class=tok)
    t = time.perf_counter()
    best = trainer.hyperparameter_search(direction="maximize", backend="optuna", hp_space=hp_space, n_trials=trials,
                                         compute_objective=lambda m: m["eval_accuracy"],
                                         sampler=optuna.samplers.TPESampler(seed=SEED))
    search = time.perf_counter() - t
    t = time.perf_counter()
    final = Trainer(model_init=model_init, args=args(**best.hyperparameters), train_dataset=train,
                    compute_metrics=accuracy, processing_class=tok)
    final.train()
    test = final.evaluate(test)["eval_accuracy"]
    return {"validation": best.objective, "test": test, "wall": search, "retrain": time.perf_counter() - t,
            "params": best.hyperparameters}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int)
    ap.add_argument("--validation", type=int)
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder (default ../shared/data)")
    a = ap.parse_args()
    if not (a.shared / "sst2").is_dir():
        print(f"skipped: {a.shared / 'sst2'} is not present (the real data sets live in ../shared/data next to the "
              "repository; --shared names another folder)")
        return
    import os

    os.chdir(ROOT)  # the recipe's data paths are relative to the repository
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train_n, val_n, trials, eval_every = (320, 100, 3, 5) if a.quick else (8000, 1000, 8, 100)
    val_n, trials = a.validation or val_n, a.trials or trials
    out = ROOT / "runs" / ("bench-tune-quick" if a.quick else "bench-tune")
    out.mkdir(parents=True, exist_ok=True)
    recipe = base_recipe(train_n, val_n, eval_every, out, a.shared.resolve())
    what = "QUICK SMOKE RUN (not the benchmark's figures)" if a.quick else "benchmark"
    print(f"{what}: SST-2, {train_n} training sentences, 1 epoch, validation {val_n} sentences of dev.tsv, "
          f"test.tsv once per contender; {trials} trials", flush=True)
    default = run_default(recipe, out)
    print(f"  default recipe: validation {default['validation']:.4f}, test {default['test']:.4f}, "
          f"{default['wall']:.0f} s, {default['steps']} steps", flush=True)
    pruned = run_study(recipe, out, trials, "median")
    print(f"  fmkit-tune (median pruning): best validation {pruned['validation']:.4f}, test {pruned['test']:.4f}, "
          f"{pruned['wall']:.0f} s, {pruned['steps']} steps over {pruned['trials']} trials "
          f"({pruned['pruned']} pruned); best {pruned['params']}", flush=True)
    plain = run_study(recipe, out, trials, "none")
    print(f"  fmkit-tune (no pruning): best validation {plain['validation']:.4f}, test {plain['test']:.4f}, "
          f"{plain['wall']:.0f} s, {plain['steps']} steps", flush=True)
    gain = (pruned["test"] - default["test"]) * 100
    saved = 1 - pruned["steps"] / plain["steps"] if plain["steps"] else 0.0
    print(f"best trial vs default: {gain:+.2f} points of test accuracy ({verdict(gain, 1.0)} target +1.00)")
    print(f"pruning saved {saved:.1%} of the training steps ({verdict(saved, 0.30)} target 30%)")
    if a.skip_hf:
        print("Trainer.hyperparameter_search: skipped (--skip-hf)")
        return
    hf = run_hf(recipe, out, trials)
    print(f"  Trainer.hyperparameter_search (optuna): best validation {hf['validation']:.4f}, test {hf['test']:.4f}, "
          f"search {hf['wall']:.0f} s (+{hf['retrain']:.0f} s retraining the best); best {hf['params']}", flush=True)
    print(f"fmkit best test {pruned['test']:.4f} vs Trainer {hf['test']:.4f} "
          f"({verdict(pruned['test'] - hf['test'], 0.0)} target: at least as good); wall {pruned['wall']:.0f} s vs "
          f"{hf['wall']:.0f} s ({verdict(hf['wall'] - pruned['wall'], 0.0)} target: no more)")


if __name__ == "__main__":
    main()
