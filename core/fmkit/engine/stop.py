"""A hook's ``run.request_stop(reason)`` (hook API 1.4), honoured by the training loop at a step boundary."""
from __future__ import annotations

import logging

log = logging.getLogger("fmkit")


def honour_stop_request(trainer, agreed: bool = False) -> bool:
    """Whether a hook's request ends the loop now: at once in one process; under torchrun when the
    ranks agreed on it (``agreed``, from the step's all-reduce), so they stop together. The first
    time, the stop is recorded: ``trainer.stopped`` (``eval_details.json``, checkpoints) and a
    ``{"split": "event", "event": "stop"}`` line in ``metrics.jsonl``."""
    run = trainer.run
    if trainer.stopped is None and (agreed or (run.stop_reason is not None and run.world_size == 1)):
        reason = run.stop_reason
        if agreed and run.world_size > 1:  # every rank is here together: learn the asking rank's reason
            import torch.distributed as dist

            reasons: list = [None] * run.world_size
            dist.all_gather_object(reasons, run.stop_reason)
            asked = [(r, why) for r, why in enumerate(reasons) if why is not None]
            reason = f"{asked[0][1]} (rank {asked[0][0]})" if asked else reason
            run.stop_reason = run.stop_reason or reason
        reason = reason or "stop requested by a plugin"
        trainer.stopped = {"reason": reason, "step": run.global_step, "epoch": trainer.epoch}
        trainer.stop = True
        trainer.mlog.log({"split": "event", "event": "stop", "step": run.global_step, "epoch": trainer.epoch,
                          "reason": reason})
        log.info("stopping at step %d: %s", run.global_step, reason)
        bar = getattr(trainer, "bar", None)
        if bar is not None:
            bar.note(f"stopping at step {run.global_step}: {reason}")
    return trainer.stopped is not None
