"""What the training loop tells people: the header before the first step, and which checkpoints a
failed run leaves behind."""
from __future__ import annotations

from . import checkpoint as ckpt


def header_lines(trainer) -> list[str]:
    """What a person starting a run wants to know before the first step."""
    run, cfg = trainer.run, trainer.cfg
    examples = (getattr(run, "data_summary", None) or {}).get("examples") or {}
    params = sum(p.numel() for p in trainer.raw_model.parameters() if p.requires_grad)
    steps_per_epoch = max(1, -(-len(trainer.plan) // cfg.grad_accum_steps))
    shown = ", ".join(f"{k} {v:,}" for k, v in examples.items())
    lines = [f"examples: {shown}" if shown else "examples: see the data report",
             f"steps: {steps_per_epoch:,} per epoch x {cfg.epochs} epoch(s) = {trainer.total_steps:,} "
             f"(batch {cfg.batch_size}" + (f" x {run.world_size} ranks" if run.world_size > 1 else "")
             + (f", accumulation {cfg.grad_accum_steps}" if cfg.grad_accum_steps > 1 else "") + ")",
             f"device: {trainer.device}, precision {cfg.precision}; trainable parameters: {params:,}"]
    if run.global_step:
        lines.append(f"resuming at step {run.global_step:,}")
    return lines


def kept_checkpoint_note(trainer) -> str:
    """Which checkpoints a failed run leaves that hold finite weights (said only when one exists)."""
    trainer.writer.wait()
    latest, set_aside = None, []
    for d in sorted(trainer.ckpt_dir.glob("step-*"), reverse=True):
        if not (d / "meta.json").is_file():
            continue
        if ckpt.finite_weights(d / "model.safetensors"):
            latest = d
            break
        if trainer.run.is_main:  # --resume must not pick weights that are already NaN
            set_aside.append(d.rename(d.with_name(f"diverged-{d.name}")))
    kept = [f"the last good checkpoint is kept: {latest}"] if latest else []
    if set_aside:
        kept.append(f"{len(set_aside)} later checkpoint(s) with non-finite weights renamed diverged-step-*")
    if trainer.best is not None and (trainer.ckpt_dir / "best" / "model.safetensors").is_file():
        kept.append(f"the best ({trainer.monitor} = {trainer.best:.4g}) is in {trainer.ckpt_dir / 'best'}")
    return "; ".join(kept) if kept else "no checkpoint with finite weights was saved before it"
