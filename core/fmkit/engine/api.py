"""``fmkit.train`` and ``fmkit.evaluate``: assemble a recipe and run it."""
from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataError, TrainingError, UsageError
from ..plugins import get_plugin_manager
from ..recipe import load_recipe
from ..utils.atomic import atomic_write_text
from . import distributed
from .artifacts import load_trained, run_recipe_dict, save_task_artifacts
from .builder import Builder
from .resume import check_resume, record_amendment
from .run import MetricsLog, Run, RunContext, environment, new_run_dir, write_json

log = logging.getLogger("fmkit")


def _resolve(recipe: Any, overrides, resume: str | None):
    """The recipe to run and, on ``--resume``, the allowed changes against the run's own recipe
    (differences that would change the model or the data are refused before anything is written)."""
    if not resume:
        return load_recipe(recipe, overrides), {}
    rd = Path(resume)
    if not (rd / "recipe.yaml").is_file():
        raise UsageError(f"--resume {resume}: not a run directory (no recipe.yaml)")
    effective = run_recipe_dict(rd)
    own = recipe is None or (isinstance(recipe, (str, os.PathLike))
                             and Path(recipe).resolve() == (rd / "recipe.yaml").resolve())
    new = load_recipe(effective if own else recipe, overrides)
    return new, check_resume(rd, load_recipe(effective).to_dict(), new.to_dict())


def train(recipe: Any, overrides: list[str] | None = None, run_dir: str | None = None, resume: str | None = None,
          overwrite: bool = False) -> Run:
    """Validate and run a recipe: data → train → evaluate → export. Returns the :class:`Run`.
    ``overwrite``: replace the run in an existing ``run_dir`` (otherwise a non-empty one is refused)."""
    import torch

    from . import checkpoint as ckpt
    from .data import EpochBatchPlan, PreparedDataset, dataset_metadata, load_splits, make_loader, preprocess_cached
    from .loop import Trainer, seed_everything
    from .precision import pick_device

    recipe, amended = _resolve(recipe, overrides, resume)
    latest = ckpt.latest_checkpoint(Path(resume) / "checkpoints") if resume else None
    if resume and latest is None:
        raise UsageError(f"--resume {resume}: no checkpoint to resume from in {Path(resume) / 'checkpoints'}")
    pm = get_plugin_manager()
    cfg = recipe.train
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    distributed.init(device)
    rank, local_rank, world = distributed.world()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    seed_everything(cfg.seed, cfg.deterministic)

    # the data is read and checked before the run directory exists: bad data leaves nothing behind
    b = Builder(recipe, pm)
    task = b.task()
    dropped: dict[str, int] = {}
    source = b.dataset(task)
    splits = load_splits(source, recipe, task, dropped, lambda: b.transforms("clean", task))
    task.receive_dataset_metadata(dataset_metadata(source, recipe.data.name))  # what setup may read
    task.setup(splits["train"], recipe.model.as_dict())
    if task.classification and task.labels is not None and len(task.labels) < 2:
        raise DataError(f"the training data ({recipe.data.dataset_params().get('train') or 'data.train'}) has "
                        f"{len(task.labels)} class(es) ({', '.join(map(repr, task.labels)) or 'none'}) in "
                        f"{len(splits['train'])} examples: a classifier needs at least two; check the label column")
    if resume:
        _check_same_labels(Path(resume), task)
        rd = Path(resume)
    elif rank == 0:
        rd = new_run_dir(recipe, run_dir, overwrite)
    else:
        rd = None
    if world > 1:  # every rank writes to rank 0's run directory
        obj = [str(rd) if rd else None]
        torch.distributed.broadcast_object_list(obj, src=0)
        rd = Path(obj[0])
    run = RunContext(recipe=recipe, run_dir=rd, device=device, rank=rank, world_size=world)
    run.task = task
    if rank == 0 and not resume:  # a resumed run keeps its records; changes go to recipe.amendments.yaml
        atomic_write_text(rd / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        write_json(rd / "environment.json", environment(cfg.seed, str(device)))
    if rank == 0 and not resume:
        save_task_artifacts(task, rd / "artifacts")
    cache_dir = (Path(recipe.data.cache_dir) if recipe.data.cache_dir else Path(recipe.tracking.runs_dir) / ".cache") \
        if recipe.data.cache else None
    feats = {name: preprocess_cached(ex, task, cache_dir, name) for name, ex in splits.items()}
    run.data_summary = {"examples": {k: len(v) for k, v in splits.items()}, "dropped": dropped,
                        "labels": task.labels}

    model = b.model(task).to(device)
    raw_model = model
    loss_fn = b.loss(task)
    # a model without trainable parameters (a seasonal-naive baseline) is evaluated, not trained
    trainable = any(p.requires_grad for p in model.parameters())
    if not trainable:
        log.info("the model has no trainable parameters: evaluating it without training")
    if cfg.strategy == "fsdp":  # sharding replaces the parameters: shard first, then build the optimizer
        model = distributed.wrap(model, device, cfg.strategy)
    optimizer = b.optimizer(model) if trainable else None
    lengths = [task.length(f) for f in feats["train"]] if recipe.data.group_by_length else None
    plan = EpochBatchPlan(len(feats["train"]), cfg.batch_size, True, cfg.seed, lengths, rank, world)
    dataset = PreparedDataset(feats["train"], b.transforms("augment", task), cfg.seed)
    pin = recipe.data.pin_memory if recipe.data.pin_memory is not None else device.type == "cuda"
    train_loader = make_loader(dataset, plan, task.collate, recipe.data.num_workers, pin)
    eval_bs = cfg.eval_batch_size or cfg.batch_size * 2
    val_name = "validation" if feats.get("validation") else "train"
    val_plan = EpochBatchPlan(len(feats[val_name]), eval_bs, False, 0, None, rank, world)
    val_loader = make_loader(PreparedDataset(feats[val_name]), val_plan, task.collate, recipe.data.num_workers, pin)
    steps_per_epoch = max(1, -(-len(plan) // cfg.grad_accum_steps))
    total = min(cfg.epochs * steps_per_epoch, cfg.max_steps or 10**12)
    scheduler = b.scheduler(optimizer, total, steps_per_epoch) if trainable else None
    if cfg.compile:
        model = torch.compile(model)
    if cfg.strategy != "fsdp":
        model = distributed.wrap(model, device, cfg.strategy)
    run.model, run.optimizer = raw_model, optimizer
    resume_step = int(latest.name.split("-")[1]) if resume else None
    mlog = MetricsLog(rd, recipe.tracking.tensorboard, enabled=rank == 0, resume_step=resume_step)
    trainer = Trainer(run, model, raw_model, loss_fn, optimizer, scheduler, b.metrics(task), train_loader, plan,
                      dataset, val_loader, pm, mlog)
    if resume:
        try:
            trainer.load(latest)
        except RuntimeError as e:  # a size mismatch: the checkpoint is not this recipe's model
            mlog.close()
            raise UsageError(f"--resume {resume}: {latest} does not fit the model the recipe builds: "
                             f"{str(e).strip().splitlines()[0][:500]}") from None
        if amended and rank == 0:
            record_amendment(rd, amended, run.global_step)
            log.info("resumed with amended settings (recorded in %s): %s", rd / "recipe.amendments.yaml",
                     ", ".join(f"{k}: {v['from']!r} -> {v['to']!r}" for k, v in amended.items()))
        log.info("resumed from %s (step %d)", latest, run.global_step)
    pm.dispatch("fmkit_on_run_start", run=run)
    fit_started = time.perf_counter()
    try:
        trainer.fit()
    except BaseException as e:
        mlog.close()
        pm.dispatch("fmkit_on_exception", run=run, error=e)
        raise
    train_seconds = time.perf_counter() - fit_started

    # final evaluation of the best checkpoint on test (or validation)
    best_weights = rd / "checkpoints" / "best" / "model.safetensors"
    if distributed.is_sharded(model):
        from safetensors.torch import load_file

        distributed.load_full_model_state(model, load_file(str(best_weights)))
    else:
        ckpt.load_weights(raw_model, best_weights)
    from .evaluation import evaluate_loader

    final_split = recipe.evaluate.split
    if final_split == "auto":
        final_split = "test" if feats.get("test") else val_name
    fplan = EpochBatchPlan(len(feats[final_split]), eval_bs, False, 0, None, rank, world)
    floader = make_loader(PreparedDataset(feats[final_split]), fplan, task.collate, 0, pin)
    results, artifacts = evaluate_loader(model, task, floader, loss_fn, b.metrics(task), device, cfg.precision)
    bad = {k: v for k, v in results.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:  # a diverged model is not a result: no eval.json, no export
        raise TrainingError(f"the run diverged: the best checkpoint ({rd / 'checkpoints' / 'best'}) gives "
                            f"{', '.join(f'{k} = {v}' for k, v in bad.items())} on the {final_split} split. Lower "
                            "optimizer.lr, use fp32, or check the data")
    pm.dispatch("fmkit_on_evaluate_end", run=run, split=final_split, metrics=results)
    out = Run(run_dir=rd, results=results, best_checkpoint=rd / "checkpoints" / "best",
              train_seconds=round(train_seconds, 2))
    if rank == 0:
        mlog.log({"split": final_split, "step": run.global_step, "final": True, **results})
        write_json(rd / "eval.json", results)
        write_json(rd / "eval_details.json", {"split": final_split, "artifacts": artifacts,
                                               "data": run.data_summary, "oom_events": trainer.oom_events,
                                               "skipped_steps": trainer.bad_steps, "monitor": trainer.monitor,
                                               "best": trainer.best, "hook_seconds": pm.hook_timings,
                                               "train_seconds": round(train_seconds, 2)})
        mlog.close()
        if recipe.export.formats:
            from ..exporting.api import export, verification_examples
            from .artifacts import TrainedModel

            # the best weights are loaded already: export them without rebuilding the model or re-reading data
            if distributed.is_sharded(model):  # rank 0 exports a plain copy with the best weights
                plain = b.model(task, inference=True)
                ckpt.load_weights(plain, best_weights)
            else:
                plain = raw_model
            trained = TrainedModel(recipe, task, plain.cpu().eval(), rd)
            examples = verification_examples(splits)
        for fmt in recipe.export.formats:
            out.exports[fmt] = str(export(rd, fmt, quantize=recipe.export.quantize, tolerance=recipe.export.tolerance,
                                          output=str(Path(recipe.export.output) / fmt) if recipe.export.output else None,
                                          trained=trained, examples=examples))
        if recipe.tracking.report:  # last: it shows the export checks too
            from .report import write_report

            out.report_path = write_report(rd, recipe, results, artifacts, run.data_summary, final_split, task,
                                           exports=out.exports)
    else:
        mlog.close()
    pm.dispatch("fmkit_on_run_end", run=run, results=results)
    distributed.meet_before_exit()  # ranks leave together, with no collective still in flight
    distributed.cleanup()
    return out


def _check_same_labels(run_dir: Path, task) -> None:
    """A resumed run's training data must give the labels the checkpoint was trained with."""
    path = run_dir / "artifacts" / "task.json"
    if not path.is_file() or task.labels is None:
        return
    stored = json.loads(path.read_text()).get("labels")
    if stored is not None and list(stored) != list(task.labels):
        raise DataError(f"--resume {run_dir}: the training data now gives the labels {list(task.labels)}, but the run "
                        f"was trained with {list(stored)} ({path}); resuming would silently re-map the classes. "
                        "Restore the run's data or start a new run")


def _check_known_labels(task, examples: list[dict], where: str) -> None:
    """Examples scored by a classifier must carry labels, and only labels it was trained on."""
    labels_of = getattr(task, "labels_of", None)
    if labels_of is None or not task.labels:
        return
    missing = sum(1 for ex in examples if not labels_of(ex))
    if missing:
        key = getattr(task, "label_key", "label")
        raise DataError(f"{where}: {missing} of {len(examples)} examples have no {key!r} value: the label column is "
                        f"missing or named differently (the run's data section says which column holds labels)")
    known = set(task.labels)
    unseen: dict[str, int] = {}
    for ex in examples:
        for lab in labels_of(ex):
            if lab not in known:
                unseen[lab] = unseen.get(lab, 0) + 1
    if unseen:
        shown = ", ".join(f"{k!r} ({n})" for k, n in sorted(unseen.items())[:5])
        raise DataError(f"{where}: labels the model was never trained on: {shown}"
                        f"{' ...' if len(unseen) > 5 else ''}; it knows {len(known)}: {', '.join(map(repr, task.labels[:8]))}"
                        f"{' ...' if len(known) > 8 else ''}")


def evaluate(run_dir: str, data: str | None = None, split: str = "auto", trust_remote_code: bool = False,
             info: dict | None = None) -> dict:
    """Score the best checkpoint of ``run_dir`` on its data (or on ``data``, a file of the same format);
    ``trust_remote_code``: the caller allows code shipped with the run's model to run. ``info``, when
    given, receives what was scored: ``{"split": ..., "examples": N}``."""
    from .data import EpochBatchPlan, PreparedDataset, load_splits, make_loader
    from .evaluation import evaluate_loader
    from .precision import pick_device

    trained = load_trained(run_dir, trust_remote_code=trust_remote_code)
    recipe, task = trained.recipe, trained.task
    b = Builder(recipe)
    dataset = b.dataset(task)
    if data:
        if not hasattr(dataset, "load_file"):
            raise UsageError(f"dataset {recipe.data.name!r} cannot read a single file (--data)")
        from .data import check_data_paths, clean_examples, drop_blank_labels

        check_data_paths(data, "--data")
        examples = drop_blank_labels(dataset.load_file(data), "data", {})
        examples = clean_examples(examples, b.transforms("clean", task), {}, "data")
        if not examples:
            raise DataError(f"--data {data}: no examples to evaluate")
        _check_known_labels(task, examples, f"--data {data}")
        name = str(data)
    else:
        splits = load_splits(dataset, recipe, task, {}, lambda: b.transforms("clean", task))
        name = split if split != "auto" else ("test" if splits.get("test") else "validation")
        if name not in splits:
            raise UsageError(f"the recipe's data has no {name!r} split; available: {sorted(splits)}")
        examples = splits[name]
    device = pick_device(recipe.train.device)
    model = trained.model.to(device)
    feats = [task.preprocess(ex) for ex in examples]
    loader = make_loader(PreparedDataset(feats), EpochBatchPlan(len(feats), recipe.train.eval_batch_size or 64, False),
                         task.collate, 0, False)
    results, _ = evaluate_loader(model, task, loader, b.loss(task), b.metrics(task), device, recipe.train.precision)
    if info is not None:
        info.update(split=name, examples=len(examples))
    return results
