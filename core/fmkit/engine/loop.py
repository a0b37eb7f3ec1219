"""The training loop: accumulation, clipping, mixed precision, evaluation, early stopping,
checkpoints with exact resume, and fault handling (OOM, non-finite loss, Ctrl-C and SIGTERM).

Out-of-memory retries live in :mod:`.microstep`, signal handling in :mod:`.interrupt`. Ranks
agree once per optimizer step (one small all-reduce) on whether the window's loss was finite
everywhere and whether any rank was asked to stop, so they skip, step and stop together."""
from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import TrainingError
from . import checkpoint as ckpt
from . import distributed
from .distributed import barrier
from .evaluation import batch_rows, evaluate_loader, to_device
from .interrupt import Interrupted, StopSignals
from .loop_notes import header_lines, kept_checkpoint_note
from .stop import honour_stop_request
from .microstep import MicroStepper
from .precision import accumulator, grad_scaler
from .progress import TrainingBar

log = logging.getLogger("fmkit")


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _default_mode(monitor: str, task, metrics=(), results: dict | None = None) -> str | None:
    """``min`` or ``max`` for the monitored key: the task's own mode for its monitor, ``min`` for the
    loss, else the ``higher_is_better`` of the metric that returns the key (known once it computed)."""
    if monitor == task.monitor:
        return task.monitor_mode
    if monitor == "loss":
        return "min"
    if results is None:
        return None
    for m in metrics:
        if monitor in m.compute():
            return "max" if m.is_higher_better(monitor) else "min"
    return "max"


class Trainer:
    """Runs optimisation for a built run; all modality knowledge comes from ``run.task``."""

    def __init__(self, run, model, raw_model, loss_fn, optimizer, scheduler, metrics, train_loader, plan, dataset,
                 val_loader, manager, mlog):
        self.run, self.model, self.raw_model = run, model, raw_model
        self.loss_fn, self.optimizer, self.scheduler, self.metrics = loss_fn, optimizer, scheduler, metrics
        self.train_loader, self.plan, self.dataset, self.val_loader = train_loader, plan, dataset, val_loader
        self.pm, self.mlog = manager, mlog
        t = run.recipe.train
        self.cfg = t
        self.device = run.device
        self.scaler = grad_scaler(self.device, t.precision)
        self.ckpt_dir = run.run_dir / "checkpoints"
        self.steps_per_epoch = max(1, math.ceil(len(plan) / t.grad_accum_steps))
        total = t.epochs * self.steps_per_epoch
        self.total_steps = min(total, t.max_steps) if t.max_steps else total
        es = t.early_stopping
        self.monitor = run.recipe.evaluate.monitor or (es.monitor if es else None) or run.task.monitor
        #: None until the first evaluation tells which metric returns the monitored key
        self.mode = run.recipe.evaluate.monitor_mode or (es.mode if es else None) or _default_mode(self.monitor, run.task)
        # loop position and counters (all saved in checkpoints)
        self.epoch, self.batch_in_epoch, self.bad_steps = 0, 0, 0
        self.best, self.evals_without_improvement, self.stop = None, 0, False
        #: ``{"reason", "step", "epoch"}`` once a hook's ``run.request_stop`` was honoured
        self.stopped: dict | None = None
        self.best_loss: float | None = None  # the validation loss of the best checkpoint (breaks ties)
        #: the current epoch's logged losses, summed and counted (its mean goes to the epoch hooks)
        self.epoch_loss_sum, self.epoch_loss_n = 0.0, 0
        self.stepper = MicroStepper(self)
        #: the :class:`~.distill.Distiller` of a ``distill:`` recipe (set by the session), else None
        self.distiller = None
        self.signals = StopSignals(announce=False)  # replaced by the active one during fit()
        if run.is_main:  # folders a killed write left half-written
            for name in ckpt.remove_stale(self.ckpt_dir):
                log.info("removed %s, left half-written by an interrupted checkpoint write", self.ckpt_dir / name)
        #: checkpoints and best weights go to a background thread on accelerators (train.async_checkpoint)
        background = t.async_checkpoint if isinstance(t.async_checkpoint, bool) else self.device.type != "cpu"
        self.writer = ckpt.CheckpointWriter(asynchronous=background)
        #: a background write needs a copy of the step's tensors; a write in place does not
        self._snapshot = ckpt.snapshot if background else (lambda tree: tree)

    # ------------------------------------------------------------------ state
    @property
    def chunks(self) -> int:
        """Parts each loader batch is split into (doubled by each out-of-memory error)."""
        return self.stepper.chunks

    @chunks.setter
    def chunks(self, value: int) -> None:
        self.stepper.chunks = value

    @property
    def oom_events(self) -> list[dict]:
        return self.stepper.oom_events

    def _optimizer_state(self):
        if self.optimizer is None:
            return None
        if distributed.is_sharded(self.model):  # gathered by parameter name (collective)
            return {"format": "fsdp-full", "state": distributed.full_optimizer_state(self.model, self.optimizer)}
        return self.optimizer.state_dict()

    def _weights(self) -> dict:
        """A snapshot of the whole model's weights (gathered across ranks when sharded: collective)."""
        if distributed.is_sharded(self.model):
            return distributed.full_model_state(self.model)
        return self._snapshot(ckpt.model_state(self.raw_model))

    def state(self) -> dict:
        plugin_states = self.pm.collect("fmkit_checkpoint_state", run=self.run)
        return {
            "optimizer": self._optimizer_state(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": ckpt.rng_state(),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "global_step": self.run.global_step,
            "bad_steps": self.bad_steps, "chunks": self.chunks, "best": self.best, "best_loss": self.best_loss,
            "evals_without_improvement": self.evals_without_improvement, "history": self.run.history,
            "stop": self.stop, "stopped": self.stopped, "epoch_loss": [self.epoch_loss_sum, self.epoch_loss_n],
            "plugins": plugin_states,
        }

    def load(self, directory: Path) -> None:
        sharded = distributed.is_sharded(self.model)
        if sharded:
            from safetensors.torch import load_file

            distributed.load_full_model_state(self.model, load_file(str(directory / "model.safetensors")))
        else:
            ckpt.load_weights(self.raw_model, directory / "model.safetensors")
        s = ckpt.load_state(directory)
        if self.optimizer and s["optimizer"]:
            fsdp_format = isinstance(s["optimizer"], dict) and s["optimizer"].get("format") == "fsdp-full"
            if fsdp_format != sharded:
                raise TrainingError(f"{directory} was saved {'with' if fsdp_format else 'without'} "
                                    f"train.strategy: fsdp; resume it with the same strategy")
            if sharded:
                distributed.load_full_optimizer_state(self.model, self.optimizer, s["optimizer"]["state"])
            else:
                self.optimizer.load_state_dict(s["optimizer"])
        if self.scheduler and s["scheduler"]:
            self.scheduler.load_state_dict(s["scheduler"])
        if self.scaler and s["scaler"]:
            self.scaler.load_state_dict(s["scaler"])
        self.epoch, self.batch_in_epoch, self.run.global_step = s["epoch"], s["batch_in_epoch"], s["global_step"]
        self.bad_steps, self.chunks, self.best = s["bad_steps"], s["chunks"], s["best"]
        self.best_loss = s.get("best_loss")
        self.evals_without_improvement, self.run.history = s["evals_without_improvement"], s["history"]
        self.stop = bool(s.get("stop", False))
        self.stopped = s.get("stopped")  # absent before API 1.4
        if self.stopped and self.run.stop_reason is None:
            self.run.stop_reason = self.stopped["reason"]
        self.epoch_loss_sum, self.epoch_loss_n = s.get("epoch_loss", (0.0, 0))  # absent before API 1.3
        for plugin, state in (s.get("plugins") or {}).items():
            if self.pm.pm.has_plugin(plugin):
                self.pm.call_one(plugin, "fmkit_restore_checkpoint_state", run=self.run, state=state)
        ckpt.set_rng_state(s["rng"])

    def save(self, reason: str) -> Path | None:
        if not self.run.is_main and not distributed.is_sharded(self.model):
            return None
        weights, state = self._weights(), self._snapshot(self.state())  # every rank gathers when sharded
        if not self.run.is_main:
            return None
        d = self.ckpt_dir / f"step-{self.run.global_step:08d}"
        meta = {"step": self.run.global_step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "reason": reason, "time": time.time()}
        keep, step = self.cfg.keep_last, self.run.global_step

        def write():
            ckpt.save_checkpoint(d, weights, state, meta)
            ckpt.prune(self.ckpt_dir, keep)
            return d, step

        self.writer.submit(write)
        if reason in ("interrupted", "final"):
            self.writer.wait()
        self._report_saved()
        return d

    def _report_saved(self) -> None:
        """Tell plugins about checkpoints the background writer has finished (training thread)."""
        for path, step in self.writer.completed():
            self.pm.dispatch("fmkit_on_checkpoint_saved", run=self.run, path=str(path), step=step)

    def finish_writes(self) -> None:
        """Wait for every checkpoint write, report them, stop the writer (end of training)."""
        try:
            self.writer.close()
        finally:
            self._report_saved()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict:
        results, artifacts = evaluate_loader(self.model, self.run.task, self.val_loader, self.loss_fn, self.metrics,
                                             self.device, self.cfg.precision)
        record = {"split": "validation", "step": self.run.global_step, "epoch": self.epoch, **results}
        self.run.history.append(record)
        self.mlog.log(record)
        self.pm.dispatch("fmkit_on_evaluate_end", run=self.run, split="validation", metrics=results)
        value = results.get(self.monitor)
        if value is None:
            raise TrainingError(f"monitored metric {self.monitor!r} is not computed; computed: {sorted(results)} "
                                "(set evaluate.monitor or add the metric to evaluate.metrics)")
        if self.mode is None:
            self.mode = _default_mode(self.monitor, self.run.task, self.metrics, results)
        bad = {k: results[k] for k in dict.fromkeys(("loss", self.monitor))
               if isinstance(results.get(k), float) and not math.isfinite(results[k])}
        if bad:  # diverged: never a "best" on NaN, never a success
            raise TrainingError(f"the run diverged: validation {', '.join(f'{k} = {v}' for k, v in bad.items())} at "
                                f"step {self.run.global_step}. Lower optimizer.lr, use fp32, or check the data; "
                                f"{kept_checkpoint_note(self)}")
        es = self.cfg.early_stopping
        delta = es.min_delta if es else 0.0
        better = self.best is None or (value < self.best - delta if self.mode == "min" else value > self.best + delta)
        loss = results.get("loss") if isinstance(results.get("loss"), float) else None
        # a tie of the monitored metric keeps the checkpoint with the lower validation loss (not an
        # improvement for early stopping: the metric itself did not move)
        tie = (not better and value == self.best and self.monitor != "loss" and loss is not None
               and self.best_loss is not None and loss < self.best_loss)
        if better or tie:
            self.best, self.best_loss = value, loss
            if better:
                self.evals_without_improvement = 0
            else:
                self.evals_without_improvement += 1
            weights = self._weights() if self.run.is_main or distributed.is_sharded(self.model) else None
            if self.run.is_main:
                step = self.run.global_step
                meta = json.dumps({"step": step, "epoch": self.epoch, "monitor": self.monitor,
                                   "value": value, "metrics": results})

                def write_best():
                    with ckpt.atomic_directory(self.ckpt_dir / "best") as tmp:
                        ckpt.save_weights(weights, tmp / "model.safetensors")
                        (tmp / "meta.json").write_text(meta)
                    return self.ckpt_dir / "best", step

                self.writer.submit(write_best)
        else:
            self.evals_without_improvement += 1
        bar = getattr(self, "bar", None)
        if bar is not None:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in results.items() if isinstance(v, (int, float)))
            kept = " -> new best, kept" if better or tie else ""
            bar.note(f"validation at step {self.run.global_step} (epoch {self.epoch + 1}): {shown}{kept}")
        if not better:
            if es and self.evals_without_improvement >= es.patience:
                log.info("early stopping: %s did not improve for %d evaluations", self.monitor, es.patience)
                self.stop = True
        if self.scheduler and self.scheduler.needs_metric:
            self.scheduler.step(value)
        return results

    def _epoch_validation(self) -> dict | None:
        """The latest validation made during this epoch (``train.eval_every`` steps), from ``run.history``
        (restored on resume), or ``None``."""
        record = next((r for r in reversed(self.run.history) if r.get("epoch") == self.epoch), None)
        return None if record is None else {k: v for k, v in record.items() if k not in ("split", "step", "epoch")}

    # ------------------------------------------------------------------ steps
    def _set_frozen(self, frozen: bool) -> None:
        from ..model_parts import is_head_parameter, require_head_prefixes

        heads = require_head_prefixes(self.raw_model, "train.freeze_backbone_epochs")
        for name, p in self.raw_model.named_parameters():
            if not is_head_parameter(name, heads):
                p.requires_grad_(not frozen)

    def _optimizer_step(self) -> None:
        if self.cfg.grad_clip:
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.cfg.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler and self.scheduler.interval == "step" and not self.scheduler.needs_metric:
            self.scheduler.step()

    # ------------------------------------------------------------------ loop
    def _hook_stop(self, agreed: bool = False) -> bool:
        """Whether a hook's ``run.request_stop`` ends the loop now (see :mod:`.stop`)."""
        return honour_stop_request(self, agreed)

    def fit(self) -> None:
        """Train to the end (or to early stopping); SIGINT/SIGTERM stop it at a step boundary with
        an "interrupted" checkpoint and :class:`~.interrupt.Interrupted` (see :mod:`.interrupt`)."""
        if self.optimizer is None:  # nothing to optimise (a baseline): one evaluation picks "best"
            self.evaluate()
            self.save("final")
            self.finish_writes()
            barrier()
            return
        run = self.run
        bar = TrainingBar(self.total_steps, run.global_step, self.cfg.progress, self.cfg.epochs) if run.is_main \
            else TrainingBar(0, 0, "off")
        self.bar = bar
        bar.header(header_lines(self))
        try:
            with StopSignals(announce=run.is_main) as self.signals:
                self._loop(bar)
                if distributed.any_rank(self.signals.requested)[0]:  # a signal during the last evaluation
                    self._stop_for_signal(bar)
        finally:
            bar.close()
            self.finish_writes()
        barrier()

    def _stop_for_signal(self, bar) -> None:
        """Save an "interrupted" checkpoint at this step boundary and raise :class:`Interrupted`."""
        run = self.run
        signum = self.signals.signum or 2  # only another rank had the signal
        path = self.save("interrupted")
        bar.close()
        if run.is_main and path:
            print(f"\ninterrupted at step {run.global_step}: checkpoint saved to {path}\nresume with: fmkit train "
                  f"{run.run_dir / 'recipe.yaml'} --resume {run.run_dir}", flush=True)
        raise Interrupted(signum)

    def _loop(self, bar) -> None:
        cfg, run = self.cfg, self.run
        accum, log_every = cfg.grad_accum_steps, cfg.log_every
        eval_steps = cfg.eval_every if isinstance(cfg.eval_every, int) else None
        self.model.train()
        t_log, samples = time.perf_counter(), 0
        # running sums stay on the training device: adding a step's loss never syncs or crosses devices
        loss_acc, loss_n = accumulator(self.device), 0
        while self.epoch < cfg.epochs and run.global_step < self.total_steps and not self.stop \
                and not self._hook_stop():
            run.epoch = self.epoch
            if cfg.freeze_backbone_epochs:  # otherwise leave a model's own freezing alone
                self._set_frozen(self.epoch < cfg.freeze_backbone_epochs)
            self.plan.epoch = self.dataset.epoch = self.epoch
            self.plan.start = self.batch_in_epoch
            self.pm.dispatch("fmkit_on_epoch_start", run=run, epoch=self.epoch)
            bar.set_epoch(self.epoch)
            if not self.batch_in_epoch:  # a run resumed mid-epoch keeps the epoch's sums so far
                self.epoch_loss_sum, self.epoch_loss_n = 0.0, 0
            pending, n_batches = 0, len(self.plan)
            window_loss = accumulator(self.device)
            for batch in self.train_loader:
                batch = to_device(batch, self.device, non_blocking=True)
                batch = run.task.augment_batch(
                    batch, (cfg.seed * 1_000_003 + self.epoch * 100_019 + self.batch_in_epoch) % 2**31)
                ends_window = pending + 1 >= accum or self.batch_in_epoch + 1 >= n_batches
                window_loss += self.stepper.step(batch, 1.0 / accum, ends_window).to(window_loss.dtype)
                self.batch_in_epoch += 1
                pending += 1
                samples += batch_rows(batch)
                if not ends_window:
                    continue
                # every rank takes the same decisions: skip the step, stop for a signal
                bad, stop_signal, hook_stop = distributed.any_rank(not bool(torch.isfinite(window_loss)),
                                                                   self.signals.requested,
                                                                   run.stop_reason is not None)
                self.stepper.end_window()
                distributed.sync_buffers(self.model)
                if hook_stop and run.world_size > 1 and not stop_signal:  # a rank's hook asked: all stop here
                    self.optimizer.zero_grad(set_to_none=True)
                    self._hook_stop(agreed=True)
                    break
                if bad:
                    self.bad_steps += 1
                    self.optimizer.zero_grad(set_to_none=True)
                    pending, window_loss = 0, accumulator(self.device)
                    log.warning("non-finite loss at step %d: step skipped (%d/%d)", run.global_step,
                                self.bad_steps, cfg.max_bad_steps)
                    if self.bad_steps >= cfg.max_bad_steps:
                        raise TrainingError(
                            f"{self.bad_steps} non-finite losses (train.max_bad_steps={cfg.max_bad_steps}); stopped. "
                            f"Lower optimizer.lr, use fp32, or check the data; {kept_checkpoint_note(self)}")
                    if stop_signal:
                        self._stop_for_signal(bar)
                    continue
                loss_acc += window_loss
                loss_n += pending
                pending, window_loss = 0, accumulator(self.device)
                self._optimizer_step()
                run.global_step += 1
                step = run.global_step
                logs = {}
                if step % log_every == 0 or step == self.total_steps:
                    mean_loss = float(loss_acc / max(loss_n, 1))
                    self.epoch_loss_sum += mean_loss * loss_n
                    self.epoch_loss_n += loss_n
                    loss_acc.zero_()
                    loss_n = 0
                    dt = time.perf_counter() - t_log
                    logs = {"loss": mean_loss, "lr": self.optimizer.param_groups[-1]["lr"],
                            "samples_per_s": samples / dt if dt > 0 else 0.0}
                    t_log, samples = time.perf_counter(), 0
                    self.mlog.log({"split": "train", "step": step, "epoch": self.epoch, **logs})
                    bar.update(step, logs)
                else:
                    bar.update(step)
                self.pm.dispatch("fmkit_on_step_end", run=run, step=step, logs=logs)
                if eval_steps and step % eval_steps == 0:
                    self.evaluate()
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    self.save("interval")
                if stop_signal:  # after the step's evaluation and checkpoint, as the uninterrupted run has them
                    self._stop_for_signal(bar)
                if step >= self.total_steps or self.stop or self._hook_stop():
                    break
            epoch_done = self.batch_in_epoch >= n_batches
            if epoch_done:
                if loss_n:  # steps since the last log line count in this epoch's mean (a log window ends here)
                    self.epoch_loss_sum += float(loss_acc)
                    self.epoch_loss_n += loss_n
                    loss_acc.zero_()
                    loss_n = 0
                train = {"loss": self.epoch_loss_sum / self.epoch_loss_n if self.epoch_loss_n else float("nan")}
                self.pm.dispatch("fmkit_on_epoch_end", run=run, epoch=self.epoch, metrics=dict(train))
                if self.scheduler and self.scheduler.interval == "epoch" and not self.scheduler.needs_metric:
                    self.scheduler.step()
                validation = self._epoch_validation() if eval_steps else self.evaluate()
                self.pm.dispatch("fmkit_on_epoch_metrics", run=run, epoch=self.epoch, train=train,
                                 validation=validation)
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self.save("epoch")
            else:
                break
        if not run.history or run.history[-1]["step"] != run.global_step:
            self.evaluate()
            self.save("final")
