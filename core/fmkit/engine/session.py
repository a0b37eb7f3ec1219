"""The stages of ``fmkit.train``, in the order they run, each a method of :class:`TrainingSession`:

1. :meth:`~TrainingSession.start` — device, threads, the process group under ``torchrun``, seeds;
2. :meth:`~TrainingSession.read_data` — the task, the data read, cleaned and checked, the task set up,
   the teacher of ``distill:`` read and checked (before any folder exists: bad data leaves nothing behind);
   :meth:`~TrainingSession.prune` — the source of ``prune:`` read and pruned (nothing written yet either);
3. :meth:`~TrainingSession.open_run_dir` — the run directory (rank 0 makes it, the others are told),
   its recipe, environment and task artifacts;
4. :meth:`~TrainingSession.prepare` — features (cached), the teacher (``distill:``), model, loss,
   optimizer, scheduler, loaders, the :class:`~fmkit.engine.loop.Trainer`;
5. :meth:`~TrainingSession.restore` — on ``--resume``, the checkpoint and any amended settings;
6. :meth:`~TrainingSession.fit` — the training loop (``fmkit_on_run_start``, ``fmkit_on_exception``);
7. :meth:`~TrainingSession.final_evaluation` — the best checkpoint on the test (or validation) split
   (and the teacher beside it when distilling);
8. :meth:`~TrainingSession.record` — ``eval.json``, exports, the report (rank 0), ``fmkit_on_run_end``.

Plugins observe them through the lifecycle hooks named above; nothing here is a hook itself.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import yaml

from ..errors import TrainingError, UsageError
from ..utils.atomic import atomic_write_text
from . import distributed
from .artifacts import restore_fitted_task, save_task_artifacts
from .resume import record_amendment
from .run import MetricsLog, Run, RunContext, environment, new_run_dir, replaced_run, write_json
from .training_data import check_scored_splits

log = logging.getLogger("fmkit")


def feature_cache_dir(recipe) -> Path | None:
    """Where preprocessed features (and :attr:`fmkit.Task.cache_dir`) live; ``None`` with ``data.cache: false``."""
    data = recipe.data
    if not data.cache:
        return None
    return Path(data.cache_dir) if data.cache_dir else Path(recipe.tracking.runs_dir) / ".cache"


class TrainingSession:
    """One ``fmkit.train`` call: the recipe, and what each stage makes for the next."""

    def __init__(self, recipe, manager):
        self.recipe, self.pm, self.cfg = recipe, manager, recipe.train
        self.rd_existed = False  # --run-dir named a folder that was there before (kept if the run fails early)
        self.started_at = time.time()  # RunContext.started_at: before the data is read

    # 1 --------------------------------------------------------------------------------------------
    def start(self) -> None:
        import torch

        from .loop import seed_everything
        from .precision import pick_device

        cfg = self.cfg
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        distributed.init(self.device)
        self.rank, local_rank, self.world = distributed.world()
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", local_rank)
            torch.cuda.set_device(self.device)
        seed_everything(cfg.seed, cfg.deterministic)

    # 2 --------------------------------------------------------------------------------------------
    def read_data(self) -> None:
        from .training_data import read_training_data

        recipe = self.recipe
        cache_dir = feature_cache_dir(recipe)
        found = read_training_data(recipe, self.pm, str(cache_dir) if cache_dir else None)
        self.builder, self.task, self.splits, self.dropped = found.builder, found.task, found.splits, found.dropped
        self.teacher = None
        if recipe.distill is not None:  # a wrong teacher is refused before the run directory exists
            from .distill import check_teacher, load_teacher

            self.teacher = load_teacher(recipe.distill.teacher)
            self.distill_kind = check_teacher(self.teacher, self.task)

    def discard_if_empty(self, error: BaseException) -> None:
        """After ``error`` ended a new run before its first checkpoint (a model the recipe cannot
        build, Ctrl-C during the first step), remove its run directory: it holds nothing to resume,
        evaluate or export, and would be in the way of running again. A run stopped by
        :class:`~fmkit.errors.TrainingError` (it diverged) keeps its metrics to be looked at."""
        import shutil

        rd = getattr(self, "rd", None)
        if rd is None or self.resume or self.rank != 0:
            return
        checkpoints = rd / "checkpoints"
        if isinstance(error, TrainingError) or (
                checkpoints.is_dir() and any(not p.name.startswith(".") for p in checkpoints.iterdir())):
            self.drop_replaced()  # the new run holds something: the one --overwrite replaced goes
            return
        if self.rd_existed:  # a folder that was there before (empty, or a replaced run): emptied, kept
            for p in list(rd.iterdir()):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
        else:
            shutil.rmtree(rd, ignore_errors=True)
        latest = Path(self.recipe.tracking.runs_dir) / "latest"
        if latest.is_symlink() and not latest.exists():
            latest.unlink(missing_ok=True)
        old = replaced_run(rd)
        if old.is_dir():  # what --overwrite set aside comes back
            rd.rmdir()
            old.rename(rd)
            log.warning("%s: the new run ended before its first checkpoint; the run it was to replace is back", rd)
        else:
            log.warning("%s %s: the run ended before its first checkpoint, so it held nothing to resume or load",
                        "emptied" if self.rd_existed else "removed", rd)

    def drop_replaced(self) -> None:
        """Delete the run ``--overwrite`` set aside, once the new run holds a checkpoint or has ended."""
        import shutil

        rd = getattr(self, "rd", None)
        if rd is not None and self.rank == 0 and replaced_run(rd).exists():
            shutil.rmtree(replaced_run(rd), ignore_errors=True)

    def prune(self, resume: str | None) -> None:
        """``prune:``: the source run's model with its least important structures removed (a resumed
        pruned run rebuilds its recorded shape in :meth:`prepare` instead)."""
        self.pruned = None
        if self.recipe.prune is None or resume:
            return
        from .prune import prune_source

        self.pruned = prune_source(self.recipe, self.task, self.splits["train"], self.builder.loss(self.task),
                                   self.device, self.pm)

    # 3 --------------------------------------------------------------------------------------------
    def open_run_dir(self, resume: str | None, run_dir: str | None, overwrite: bool) -> None:
        import torch

        from .api import _check_same_labels

        recipe, task, rank = self.recipe, self.task, self.rank
        self.resume = resume
        if resume:  # first: a resumed run whose labels changed is told so, not that its test set is odd
            _check_same_labels(Path(resume), task)
        check_scored_splits(recipe, task, self.splits)  # a split given as its own file: labels training learnt
        if recipe.export.output and rank == 0:  # found now, not after the whole training has run
            from ..exporting.target import export_target

            for fmt in recipe.export.formats:
                export_target(Path(recipe.export.output) / fmt, run_dir or recipe.tracking.runs_dir,
                              f"export.output ({recipe.export.output}):")
        if resume:
            rd = Path(resume)
            restore_fitted_task(task, rd / "artifacts")
        elif rank == 0:
            self.rd_existed = bool(run_dir) and Path(run_dir).exists()
            rd = new_run_dir(recipe, run_dir, overwrite)
        else:
            rd = None
        if self.world > 1:  # every rank writes to rank 0's run directory
            obj = [str(rd) if rd else None]
            torch.distributed.broadcast_object_list(obj, src=0)
            rd = Path(obj[0])
        self.rd = rd
        self.run = RunContext(recipe=recipe, run_dir=rd, device=self.device, rank=rank, world_size=self.world,
                              started_at=self.started_at)
        self.run.task = task
        if rank == 0 and not resume:  # a resumed run keeps its records; changes go to recipe.amendments.yaml
            atomic_write_text(rd / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))
            write_json(rd / "environment.json", environment(self.cfg.seed, str(self.device)))
            save_task_artifacts(task, rd / "artifacts")
            if getattr(self, "pruned", None) is not None:
                from .prune import PRUNE_FILE

                write_json(rd / PRUNE_FILE, self.pruned.record)

    # 4 --------------------------------------------------------------------------------------------
    def prepare(self, latest: Path | None) -> None:
        import torch

        from .data import EpochBatchPlan, PreparedDataset, make_loader, preprocess_cached
        from .loop import Trainer

        recipe, cfg, task, b, device = self.recipe, self.cfg, self.task, self.builder, self.device
        rank, world = self.rank, self.world
        data = recipe.data
        cache_dir = feature_cache_dir(recipe)
        self.feats = feats = {name: preprocess_cached(ex, task, cache_dir, name) for name, ex in self.splits.items()}
        self.run.data_summary = {"examples": {k: len(v) for k, v in self.splits.items()}, "dropped": self.dropped,
                                 "labels": task.labels}
        self.eval_bs = cfg.eval_batch_size or cfg.batch_size * 2
        self.distiller, train_feats = None, feats["train"]
        if self.teacher is not None:
            from .distill import setup_distillation

            self.distiller, train_feats = setup_distillation(recipe, task, self.teacher, self.distill_kind,
                                                             self.splits["train"], feats["train"], device, cache_dir,
                                                             self.eval_bs)
        model = self._model().to(device)
        self.raw_model = model
        self.loss_fn = b.loss(task)
        # a model without trainable parameters (a seasonal-naive baseline) is evaluated, not trained
        trainable = any(p.requires_grad for p in model.parameters())
        if not trainable:
            log.info("the model has no trainable parameters: evaluating it without training")
        if cfg.strategy == "fsdp":  # sharding replaces the parameters: shard first, then build the optimizer
            model = distributed.wrap(model, device, cfg.strategy)
        optimizer = b.optimizer(model) if trainable else None
        lengths = [task.length(f) for f in feats["train"]] if data.group_by_length else None
        plan = EpochBatchPlan(len(feats["train"]), cfg.batch_size, True, cfg.seed, lengths, rank, world)
        dataset = PreparedDataset(train_feats, b.transforms("augment", task), cfg.seed)
        self.pin = data.pin_memory if data.pin_memory is not None else device.type == "cuda"
        collate = task.collate
        if self.distiller is not None and self.distiller.cached:
            from .distill import TeacherCollate

            collate = TeacherCollate(task.collate, self.distiller.ragged)
        train_loader = make_loader(dataset, plan, collate, data.num_workers, self.pin)
        self.val_name = "validation" if feats.get("validation") else "train"
        val_plan = EpochBatchPlan(len(feats[self.val_name]), self.eval_bs, False, 0, None, rank, world)
        val_loader = make_loader(PreparedDataset(feats[self.val_name]), val_plan, task.collate, data.num_workers,
                                 self.pin)
        steps_per_epoch = max(1, -(-len(plan) // cfg.grad_accum_steps))
        total = min(cfg.epochs * steps_per_epoch, cfg.max_steps or 10**12)
        scheduler = b.scheduler(optimizer, total, steps_per_epoch) if trainable else None
        if cfg.compile:
            model = torch.compile(model)
        if cfg.strategy != "fsdp":
            model = distributed.wrap(model, device, cfg.strategy)
        self.model = model
        self.run.model, self.run.optimizer = self.raw_model, optimizer
        resume_step = int(latest.name.split("-")[1]) if latest is not None else None
        self.mlog = MetricsLog(self.rd, recipe.tracking.tensorboard, enabled=rank == 0, resume_step=resume_step)
        self.trainer = Trainer(self.run, model, self.raw_model, self.loss_fn, optimizer, scheduler, b.metrics(task),
                               train_loader, plan, dataset, val_loader, self.pm, self.mlog)
        self.trainer.distiller = self.distiller

    def _model(self):
        """The model to train: built from the recipe, or (``prune:``) the pruned source, or on resume
        the recipe's model given the run's recorded pruned shape (the checkpoint's weights follow)."""
        if getattr(self, "pruned", None) is not None:
            return self.pruned.model
        if self.recipe.prune is not None:
            from .prune import read_structure, restore_structure

            model = self.builder.model(self.task, inference=True)
            restore_structure(model, read_structure(self.rd), self.rd, self.pm)
            return model
        return self.builder.model(self.task)

    # 5 --------------------------------------------------------------------------------------------
    def restore(self, latest: Path, amended: dict) -> None:
        try:
            self.trainer.load(latest)
        except RuntimeError as e:  # a size mismatch: the checkpoint is not this recipe's model
            self.mlog.close()
            raise UsageError(f"--resume {self.resume}: {latest} does not fit the model the recipe builds: "
                             f"{str(e).strip().splitlines()[0][:500]}") from None
        if amended and self.rank == 0:
            record_amendment(self.rd, amended, self.run.global_step)
            log.info("resumed with amended settings (recorded in %s): %s", self.rd / "recipe.amendments.yaml",
                     ", ".join(f"{k}: {v['from']!r} -> {v['to']!r}" for k, v in amended.items()))
        log.info("resumed from %s (step %d)", latest, self.run.global_step)

    # 6 --------------------------------------------------------------------------------------------
    def fit(self) -> None:
        self.pm.dispatch("fmkit_on_run_start", run=self.run)
        started = time.perf_counter()
        try:
            self.trainer.fit()
        except BaseException as e:
            self.mlog.close()
            self.pm.dispatch("fmkit_on_exception", run=self.run, error=e)
            raise
        self.train_seconds = time.perf_counter() - started

    # 7 --------------------------------------------------------------------------------------------
    def final_evaluation(self) -> tuple[str, dict, dict]:
        """The best checkpoint scored on the test split (else validation): ``(split, results, artifacts)``."""
        from . import checkpoint as ckpt
        from .data import EpochBatchPlan, PreparedDataset, make_loader
        from .evaluation import evaluate_loader

        self.best_weights = self.rd / "checkpoints" / "best" / "model.safetensors"
        if distributed.is_sharded(self.model):
            from safetensors.torch import load_file

            distributed.load_full_model_state(self.model, load_file(str(self.best_weights)))
        else:
            ckpt.load_weights(self.raw_model, self.best_weights)
        split = self.recipe.evaluate.split
        if split == "auto":
            split = "test" if self.feats.get("test") else self.val_name
        plan = EpochBatchPlan(len(self.feats[split]), self.eval_bs, False, 0, None, self.rank, self.world)
        loader = make_loader(PreparedDataset(self.feats[split]), plan, self.task.collate, 0, self.pin)
        results, artifacts = evaluate_loader(self.model, self.task, loader, self.loss_fn,
                                             self.builder.metrics(self.task), self.device, self.cfg.precision)
        bad = {k: v for k, v in results.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad:  # a diverged model is not a result: no eval.json, no export
            self.mlog.close()
            raise TrainingError(f"the run diverged: the best checkpoint ({self.rd / 'checkpoints' / 'best'}) gives "
                                f"{', '.join(f'{k} = {v}' for k, v in bad.items())} on the {split} split. Lower "
                                "optimizer.lr, use fp32, or check the data")
        if self.distiller is not None:  # the teacher on the same examples, and how closely the student follows
            from .distill_report import compare_with_teacher

            results.update(compare_with_teacher(self.distiller, self.raw_model, self.feats[split], self.splits[split],
                                                self.builder, self.device, self.cfg.precision, self.eval_bs))
        if self.recipe.prune is not None:  # parameter counts before and after, from the run's record
            from .prune import PRUNE_FILE

            path = self.rd / PRUNE_FILE
            if path.is_file():
                import json

                record = json.loads(path.read_text())
                results.update(parameters_before=record["parameters_before"],
                               parameters_after=record["parameters_after"])
        self.pm.dispatch("fmkit_on_evaluate_end", run=self.run, split=split, metrics=results)
        return split, results, artifacts

    # 8 --------------------------------------------------------------------------------------------
    def record(self, split: str, results: dict, artifacts: dict) -> Run:
        """``eval.json`` and ``eval_details.json``, the exports and the report (rank 0); then the
        ranks leave together."""
        recipe, rd, trainer = self.recipe, self.rd, self.trainer
        out = Run(run_dir=rd, results=results, best_checkpoint=rd / "checkpoints" / "best",
                  train_seconds=round(self.train_seconds, 2), stopped=trainer.stopped)
        if self.rank == 0:
            self.mlog.log({"split": split, "step": self.run.global_step, "final": True, **results})
            write_json(rd / "eval.json", results)
            write_json(rd / "eval_details.json", {"split": split, "artifacts": artifacts,
                                                   "data": self.run.data_summary, "oom_events": trainer.oom_events,
                                                   "skipped_steps": trainer.bad_steps, "monitor": trainer.monitor,
                                                   "best": trainer.best, "stopped": trainer.stopped,
                                                   "hook_seconds": self.pm.hook_timings,
                                                   "train_seconds": round(self.train_seconds, 2)})
            self.mlog.close()
            self._export(out)
            if recipe.tracking.report:  # last: it shows the export checks too
                from .report import write_report

                out.report_path = write_report(rd, recipe, results, artifacts, self.run.data_summary, split,
                                               self.task, exports=out.exports)
        else:
            self.mlog.close()
        self.pm.dispatch("fmkit_on_run_end", run=self.run, results=results)
        distributed.meet_before_exit()  # ranks leave together, with no collective still in flight
        distributed.cleanup()
        return out

    def _export(self, out: Run) -> None:
        recipe = self.recipe
        if not recipe.export.formats:
            return
        from ..exporting.api import export, verification_examples
        from . import checkpoint as ckpt
        from .artifacts import TrainedModel

        # the best weights are loaded already: export them without rebuilding the model or re-reading data
        if distributed.is_sharded(self.model):  # rank 0 exports a plain copy with the best weights
            from .prune import read_structure, restore_structure

            plain = self.builder.model(self.task, inference=True)
            restore_structure(plain, read_structure(self.rd), self.rd, self.pm)
            ckpt.load_weights(plain, self.best_weights)
        else:
            plain = self.raw_model
        trained = TrainedModel(recipe, self.task, plain.cpu().eval(), self.rd)
        examples = verification_examples(self.splits)
        for fmt in recipe.export.formats:
            output = str(Path(recipe.export.output) / fmt) if recipe.export.output else None
            out.exports[fmt] = str(export(self.rd, fmt, quantize=recipe.export.quantize,
                                          tolerance=recipe.export.tolerance, output=output, trained=trained,
                                          examples=examples))


__all__ = ["TrainingSession"]
