"""Teacher against student on the final evaluation split (a distilled run's ``eval.json``).

Adds ``teacher_<metric>`` for each of the run's metrics (the teacher scored on the same examples,
through its own preprocessing) and how closely the student follows the teacher:
``agreement`` (classes: the share of predictions, by arg-max, that are the teacher's; labels: the
share of examples whose whole predicted label set is the teacher's) or ``teacher_student_rmse``
(values: the root mean squared difference of their outputs, as the models give them).
"""
from __future__ import annotations

import math

import torch

from .distill import Distiller, model_rows


def _agreement(kind: str, student: list[torch.Tensor], teacher: list[torch.Tensor], threshold: float) -> dict:
    if kind == "values":
        sq = sum(float(((s - t) ** 2).sum()) for s, t in zip(student, teacher))
        n = sum(s.numel() for s in student)
        return {"teacher_student_rmse": math.sqrt(sq / max(n, 1))}
    same = total = 0
    for s, t in zip(student, teacher):
        if kind == "classes":
            eq = s.argmax(-1) == t.argmax(-1)
        else:
            cut = math.log(threshold / (1 - threshold)) if 0 < threshold < 1 else 0.0
            eq = ((s >= cut) == (t >= cut)).all(-1)
        same += int(eq.sum())
        total += eq.numel()
    return {"agreement": same / max(total, 1)}


def compare_with_teacher(distiller: Distiller, student_model, student_feats: list[dict], examples: list[dict],
                         builder, device, precision: str, batch_size: int) -> dict:
    """``teacher_*`` metrics and the agreement, for the examples of one split (see the module docstring)."""
    from .data import EpochBatchPlan, PreparedDataset, make_loader
    from .evaluation import evaluate_loader

    teacher, task = distiller.teacher, distiller.teacher.task
    feats = task.preprocess_many(examples)
    loader = make_loader(PreparedDataset(feats), EpochBatchPlan(len(feats), batch_size, False), task.collate, 0, False)
    scores, _ = evaluate_loader(teacher.model, task, loader, builder.loss(task), builder.metrics(task), device,
                                precision)
    out = {f"teacher_{k}": v for k, v in scores.items() if isinstance(v, (int, float))}
    t_out = model_rows(teacher.model, task, feats, batch_size, device)
    s_out = model_rows(student_model, distiller.task, student_feats, batch_size, device)
    if [tuple(s.shape) for s in s_out] == [tuple(t.shape) for t in t_out]:
        out.update(_agreement(distiller.kind, s_out, t_out, float(getattr(distiller.task.params, "threshold", 0.5))))
    return out
