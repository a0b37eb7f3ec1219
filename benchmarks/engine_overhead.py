"""Framework overhead per training step: fmkit's loop next to a hand-written PyTorch loop and the
Hugging Face Trainer, same model, data, batches and fused AdamW, measured side by side in one run.

fmkit runs with its progress bar, metrics.jsonl logging, per-epoch evaluation (a small validation
split) and per-epoch checkpoints on; all of that counts as overhead. Step times are taken between
step-end events after a warm-up, for all three loops alike; each loop runs several times,
interleaved (the order alternating), and the overhead is computed per repetition, each fmkit run
against the hand-written run made next to it. The mean overhead is printed with its 95% confidence
interval (Student t); a target is "met" only when the whole interval is within it, "MISSED" when
the whole interval is past it, and "NOT RESOLVED" otherwise.

Usage: python benchmarks/engine_overhead.py [--quick] [--repeats N] [--minilm-only | --small-only] [--async-checkpoint]
(--async-checkpoint adds a fmkit row with checkpoints forced onto a background thread; on CPU the
default writes them in between steps, see docs/architecture.md)
Targets: overhead <= 3% on a 2-layer transformer (~20 ms/step), <= 1% on a MiniLM-sized model;
no slower than the HF Trainer.
"""
from __future__ import annotations

import csv
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

WORDS = ("good great fine bad awful poor the a movie film plot story actors was is and very quite really "
         "not never always every some many few best worst").split()
WARMUP = 5


def write_data(folder: Path, n: int) -> str:
    rng = random.Random(0)
    path = folder / "train.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            w.writerow([" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 60))), "pos" if i % 2 else "neg"])
    return str(path)


def recipe(data: str, model: dict, steps_per_epoch: int, epochs: int, batch: int, runs: str) -> dict:
    return {
        "task": {"name": "text-classification", "max_length": 64, "tokenizer": {"vocab_size": 2000}},
        "model": model,
        "data": {"train": data, "validation_split": 0.02, "cache": False},
        "optimizer": {"name": "adamw", "lr": 1e-4, "fused": True},
        "train": {"epochs": epochs, "batch_size": batch, "grad_clip": None, "log_every": 10, "progress": "on",
                  "threads": 2, "seed": 0},
        "tracking": {"runs_dir": runs, "tensorboard": False, "report": False},
    }


class StepClock:
    """A tiny fmkit plugin: the time of every step end."""

    def __init__(self):
        self.times: list[float] = []

    def fmkit_on_step_end(self, run, step, logs):
        self.times.append(time.perf_counter())

    from fmkit import hookimpl

    fmkit_on_step_end = hookimpl(fmkit_on_step_end)



def per_step(times: list[float]) -> float:
    """Mean time per step after the warm-up: everything between step ends counts (evaluation and
    checkpoints at epoch ends included)."""
    t = times[WARMUP:]
    return (t[-1] - t[0]) / (len(t) - 1)


def fmkit_step(rec: dict) -> list[float]:
    import fmkit

    clock = StepClock()
    fmkit.register_plugin(clock, name="bench-clock")
    try:
        fmkit.train(rec)
    finally:
        fmkit.unregister_plugin("bench-clock")
    return clock.times


def prepared(rec: dict):
    """The same task, features, batch order and model factory fmkit uses."""
    from fmkit.engine.builder import Builder
    from fmkit.engine.data import EpochBatchPlan, load_splits
    from fmkit.recipe import load_recipe

    r = load_recipe(rec)
    b = Builder(r)
    task = b.task()
    splits = load_splits(b.dataset(task), r, task, {}, lambda: [])
    task.setup(splits["train"], r.model.as_dict())
    feats = task.preprocess_many(splits["train"])
    plan = EpochBatchPlan(len(feats), r.train.batch_size, True, r.train.seed)
    return r, b, task, feats, plan


def hand_step(rec: dict, steps: int) -> list[float]:
    """The loop a careful engineer writes by hand: collate, forward, loss, backward, fused AdamW."""
    from fmkit.builtin.optimizers import AdamWParams, param_groups

    r, b, task, feats, plan = prepared(rec)
    torch.manual_seed(0)
    model = b.model(task)
    opt = torch.optim.AdamW(param_groups(model, AdamWParams(lr=1e-4)), lr=1e-4, fused=True)
    model.train()
    times, step, epoch = [], 0, 0
    while step < steps:
        plan.epoch = epoch
        for idx in plan:
            batch = task.collate([feats[i] for i in idx])
            logits = model(batch["input_ids"], batch["attention_mask"])
            loss = torch.nn.functional.cross_entropy(logits, batch["targets"])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter())
            step += 1
            if step >= steps:
                break
        epoch += 1
    return times


def hf_trainer_step(rec: dict, steps: int) -> list[float] | None:
    try:
        from transformers import Trainer, TrainerCallback, TrainingArguments
    except ImportError:
        return None
    r, b, task, feats, plan = prepared(rec)
    torch.manual_seed(0)
    model = b.model(task).hf
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter())

    def collate(items):
        batch = task.collate(items)
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": batch["targets"]}

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=r.train.batch_size, max_steps=steps,
                                 learning_rate=1e-4, optim="adamw_torch_fused", max_grad_norm=0.0, logging_steps=10,
                                 save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                                 disable_tqdm=False, seed=0, remove_unused_columns=False)
        try:
            Trainer(model=model, args=args, train_dataset=feats, data_collator=collate, callbacks=[Clock()]).train()
        except ImportError as e:  # the Trainer needs accelerate
            print(f"  (HF Trainer skipped: {e})")
            return None
    return times


T95 = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13, 2.12, 2.11,
       2.10, 2.09, 2.09]  # two-sided 95% Student t quantiles for 1..20 degrees of freedom


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% confidence interval (Student t) of paired per-repetition values."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, float("nan"), float("nan")
    half = T95[min(len(values) - 2, len(T95) - 1)] * statistics.stdev(values) / len(values) ** 0.5
    return m, m - half, m + half


def median_interval(values: list[float]) -> tuple[float, float, float, float]:
    """Median with a distribution-free confidence interval from order statistics (the sign test).

    One repetition disturbed by another job on a shared machine can widen the t interval a lot; with
    10 or more repetitions the median's interval leaves out the most extreme value on each side.
    Returns (median, low, high, coverage); coverage 0 when there are too few repetitions.
    """
    from math import comb

    xs = sorted(values)
    n = len(xs)
    med = statistics.median(xs)
    # widest k (from the outside in) whose interval [x(k), x(n-k+1)] still covers >= 95%
    best = (float("nan"), float("nan"), 0.0)
    for k in range(1, n // 2 + 1):
        coverage = 1 - 2 * sum(comb(n, i) for i in range(k)) / 2 ** n
        if coverage >= 0.95:
            best = (xs[k - 1], xs[n - k], coverage)
    return med, best[0], best[1], best[2]


def resolved(lo: float, hi: float, target: float) -> str:
    """'met' only when the whole interval is within the target, 'MISSED' when it is wholly past it."""
    if hi <= target:
        return "met"
    if lo > target:
        return "MISSED"
    return "NOT RESOLVED (the interval spans the target)"


def compare(label: str, model: dict, n: int, batch: int, epochs: int, repeats: int, target: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data(Path(tmp), n)
        rec = recipe(data, model, n // batch, epochs, batch, str(Path(tmp) / "runs"))
        steps = int(n * 0.98) // batch * epochs
        background = {**rec, "train": {**rec["train"], "async_checkpoint": True}}
        loops = {"hand-written": lambda: hand_step(rec, steps), "fmkit": lambda: fmkit_step(rec),
                 "HF Trainer": lambda: hf_trainer_step(rec, steps)}
        if "--async-checkpoint" in sys.argv:
            loops["fmkit, background checkpoints"] = lambda: fmkit_step(background)
        runs: dict[str, list[float]] = {name: [] for name in loops}
        for i in range(repeats):  # interleaved, so load on the shared machine hits all alike
            order = list(loops.items())
            if i % 2:  # alternate the order too: whatever runs first in a repetition is not always the same loop
                order.reverse()
            for name, loop in order:
                times = loop()
                runs[name].append(per_step(times) if times is not None else float("nan"))
            print(f"  run {i + 1}: " + ", ".join(f"{n} {1000 * v[-1]:.1f}" for n, v in runs.items() if v) + " ms/step",
                  flush=True)
    hand, fm = runs["hand-written"], runs["fmkit"]
    # paired: each repetition's fmkit run against the hand-written run made next to it
    over = [100 * (f / h - 1) for f, h in zip(fm, hand)]
    m, lo, hi = interval(over)
    print(f"{label}: {steps} steps ({steps // epochs} per epoch), {repeats} interleaved repetitions; "
          f"medians hand-written {1000 * statistics.median(hand):.1f} ms/step, fmkit "
          f"{1000 * statistics.median(fm):.1f} ms/step", flush=True)
    print(f"{label}: fmkit overhead per step {m:+.1f}% (95% CI {lo:+.1f}% .. {hi:+.1f}%; per repetition "
          + " ".join(f"{o:+.1f}" for o in over) + f"): target <= {target:.0f}% {resolved(lo, hi, target)}", flush=True)
    md, mlo, mhi, cov = median_interval(over)
    if cov:
        print(f"{label}: median overhead {md:+.1f}% ({100 * cov:.0f}% CI from order statistics {mlo:+.1f}% .. "
              f"{mhi:+.1f}%, not moved by outliers beyond its ends): target <= {target:.0f}% "
              f"{resolved(mlo, mhi, target)}", flush=True)
    else:
        print(f"{label}: median overhead {md:+.1f}% (too few repetitions for a 95% interval of the median: "
              "use --repeats 6 or more)", flush=True)
    if "fmkit, background checkpoints" in runs:
        bg = [100 * (b / h - 1) for b, h in zip(runs["fmkit, background checkpoints"], hand)]
        bm, blo, bhi = interval(bg)
        print(f"{label}: fmkit with background checkpoint writes {bm:+.1f}% (95% CI {blo:+.1f}% .. {bhi:+.1f}%)",
              flush=True)
    trainer = runs.get("HF Trainer", [])
    if trainer and not any(t != t for t in trainer):
        ratio = [f / t for f, t in zip(fm, trainer)]
        rm, rlo, rhi = interval(ratio)
        print(f"{label}: HF Trainer median {1000 * statistics.median(trainer):.1f} ms/step; fmkit/Trainer {rm:.3f}x "
              f"(95% CI {rlo:.3f}x .. {rhi:.3f}x): no slower than the Trainer {resolved(rlo, rhi, 1.0)}", flush=True)


def main() -> None:
    torch.set_num_threads(2)
    quick = "--quick" in sys.argv
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else None
    small = {"name": "hf-classifier", "config": {"model_type": "bert", "hidden_size": 128, "num_hidden_layers": 2,
                                                 "num_attention_heads": 2, "intermediate_size": 512,
                                                 "max_position_embeddings": 128}}
    if "--minilm-only" not in sys.argv:
        compare("2-layer transformer (hidden 128)", small, 1600 if quick else 3200, 32, 2, repeats or (2 if quick else 10), 3.0)
    if "--small-only" in sys.argv:
        return
    minilm = {"name": "hf-classifier", "config": {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6,
                                                  "num_attention_heads": 12, "intermediate_size": 1536,
                                                  "max_position_embeddings": 512}}
    # 40 steps per epoch: still a very short epoch for a model this size (a real one has hundreds),
    # so the per-epoch evaluation and checkpoint weigh more here than in practice
    compare("MiniLM-sized (6 layers, hidden 384)", minilm, 320 if quick else 1280, 32, 2, repeats or (2 if quick else 6), 1.0)


if __name__ == "__main__":
    main()
