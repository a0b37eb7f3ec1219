"""Knowledge distillation (a recipe's ``distill:`` section): the teacher, its outputs, the loss.

The student (the recipe's model) is trained on ``alpha * distillation + (1 - alpha) * task loss``.
What the distillation term compares is the task's (:attr:`fmkit.Task.distill_kind`,
:meth:`fmkit.Task.distill_outputs`), so every modality distils through the same code:

- ``classes``: KL divergence between the temperature-softened softmax of teacher and student,
  times ``temperature**2`` (Hinton et al. 2015), over the last axis;
- ``labels``: the binary KL divergence of each label's softened sigmoid (multi-label), times ``temperature**2``;
- ``values``: the mean squared difference from the teacher's outputs (regression, forecasting).

Teacher outputs are either computed once, before training, from the teacher's own preprocessing
of the training examples and cached on disk (``cache: on``; ``auto`` when the training data is not
augmented), or computed for every training batch on the student's batch (``cache: off``; ``auto``
with augmentation), which needs the teacher to preprocess exactly as the student does.

A task whose outputs are per position and padded per batch (token classification) marks the
positions that count (:meth:`fmkit.Task.distill_mask`): only those enter the loss and the
agreement, and each example's cached outputs keep just its own positions (padded again per batch,
with their counts, so a batch split for gradient accumulation or out-of-memory retries stays aligned).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DataError, TrainingError, UsageError
from ..utils.atomic import atomic_write_bytes
from .evaluation import to_device

log = logging.getLogger("fmkit")

#: the batch key that carries cached teacher outputs
TEACHER_KEY = "distill_teacher"
#: with per-position outputs: the batch key with how many of each example's cached rows are real
TEACHER_LENGTHS_KEY = "distill_teacher_lengths"
KINDS = ("classes", "labels", "values")


@dataclass
class Teacher:
    """A trained model with its task, read from a run directory or an export folder."""

    task: Any
    model: Any
    source: Path
    weights: Path


def load_teacher(path: str | Path) -> Teacher:
    """The teacher in ``path`` (a run directory or an export folder), weights read with safetensors;
    code shipped with it never runs (``trust_remote_code`` off, its recipe's plugins not imported).
    The random number generators are left as they were, so the student's initialisation and data
    order are the ones of the same recipe without ``distill:``."""
    from ..utils.paths import teacher_problem
    from . import checkpoint as ckpt

    path = Path(path)
    missing = teacher_problem(path)
    if missing:
        raise UsageError(f"distill.teacher: {missing}")
    state = ckpt.rng_state()
    try:
        if (path / "export.json").is_file():
            from ..exporting.loading import _task_from_export, load_torch_model

            from ..utils.damaged import export_hint, read_json

            meta = read_json(path / "export.json", export_hint(path))
            task = _task_from_export(meta, path)
            return Teacher(task, load_torch_model(path, task), path, path / "model.safetensors")
        if (path / "recipe.yaml").is_file():
            from .artifacts import load_trained

            try:
                trained = load_trained(path)
            except UsageError as e:
                raise UsageError(f"distill.teacher: {e}") from None
            return Teacher(trained.task, trained.model, path, path / "checkpoints" / "best" / "model.safetensors")
    finally:
        ckpt.set_rng_state(state)
    raise UsageError(f"distill.teacher: {teacher_problem(path)}")  # (gone since the check above)


def check_teacher(teacher: Teacher, task) -> str:
    """The distillation kind, once the teacher is known to do the student's task with its labels."""
    if teacher.task.name != task.name:
        raise UsageError(f"distill.teacher: {teacher.source} was trained for the task {teacher.task.name!r}, but the "
                         f"recipe's task is {task.name!r} (task.name); a teacher must do the student's task")
    kind = task.distill_kind
    if kind not in KINDS:
        raise UsageError(f"distill: the task {task.name!r} declares no distillation outputs (Task.distill_kind is "
                         f"{kind!r}; one of {', '.join(KINDS)} is needed), so it cannot be distilled")
    if teacher.task.distill_kind != kind:
        raise UsageError(f"distill.teacher: {teacher.source} gives {teacher.task.distill_kind!r} outputs, the student "
                         f"{kind!r} (task.multi_label differs?); teacher and student must give the same kind")
    t_labels, s_labels = teacher.task.labels, task.labels
    if (t_labels is None) != (s_labels is None) or (s_labels is not None and list(t_labels) != list(s_labels)):
        raise DataError(f"distill.teacher: {teacher.source} was trained with the labels {_show(t_labels)}, but the "
                        f"student's training data gives {_show(s_labels)} (task.labels, from data.train); the class "
                        "scores would not line up. Train the student on data with the teacher's labels")
    if kind == "values":  # values are compared in the model's units: the scaling must be the teacher's
        t_state, s_state = teacher.task.state_dict(), task.state_dict()
        differ = sorted(k for k in set(t_state) | set(s_state) if t_state.get(k) != s_state.get(k))
        if differ:
            log.warning("distill: the teacher's task state differs from the student's in %s; values are compared "
                        "as the models see them, so a different target scaling makes the teacher's outputs "
                        "misleading", ", ".join(differ))
    return kind


def _show(labels) -> str:
    if labels is None:
        return "none"
    shown = ", ".join(map(repr, list(labels)[:8]))
    return f"[{shown}{' ...' if len(labels) > 8 else ''}] ({len(labels)})"


# ---------------------------------------------------------------------------- the loss
def distill_loss(kind: str, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """The distillation term of a batch (see the module docstring); ``student`` and ``teacher`` have one shape."""
    s, t = student.float(), teacher.float().detach()
    if kind == "values":
        return F.mse_loss(s, t)
    T = float(temperature)
    if kind == "classes":
        s, t = s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1])
        return F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="batchmean",
                        log_target=True) * T * T
    # labels: binary KL per label = BCE(student, p) - BCE(teacher, p), averaged over labels and rows
    p = torch.sigmoid(t / T)
    kl = (F.binary_cross_entropy_with_logits(s / T, p, reduction="none")
          - F.binary_cross_entropy_with_logits(t / T, p, reduction="none"))
    return kl.mean() * T * T


class Distiller:
    """Adds the distillation term to the task's loss of each training batch (the micro-stepper calls
    :meth:`combine`); the teacher runs on the student's batch unless the batch carries cached outputs
    (``ragged``: per-position outputs cached per example, see :class:`TeacherCollate`)."""

    def __init__(self, cfg, teacher: Teacher, task, kind: str, cached: bool, ragged: bool = False):
        self.cfg, self.teacher, self.task, self.kind, self.cached = cfg, teacher, task, kind, cached
        self.ragged = ragged

    def _shape_error(self, student, teacher) -> TrainingError:
        return TrainingError(f"distill: the student's outputs have the shape {tuple(student.shape)} but the "
                             f"teacher's ({self.teacher.source}) {tuple(teacher.shape)}; the two models must "
                             "answer the same task with the same output size")

    def pair(self, outputs: Any, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(student, teacher)`` outputs of a batch, restricted to the positions that count."""
        student = self.task.distill_outputs(outputs, batch)
        mask = self.task.distill_mask(batch)
        if TEACHER_LENGTHS_KEY in batch:  # cached per-position rows: the student's marked positions, in order
            lengths = batch[TEACHER_LENGTHS_KEY].to(student.device)
            counts = mask.bool().sum(1) if mask is not None else None
            if counts is None or not torch.equal(counts, lengths):
                raise TrainingError(
                    f"distill: the teacher's ({self.teacher.source}) cached outputs have "
                    f"{lengths.tolist()[:8]} positions for this batch's examples but the student's inputs "
                    f"{counts.tolist()[:8] if counts is not None else 'no marked positions'}: the two preprocess "
                    "the examples differently (another tokenizer or max_length?); give the student the "
                    "teacher's preprocessing settings")
            teacher = batch[TEACHER_KEY]
            keep = torch.arange(teacher.shape[1], device=lengths.device)[None, :] < lengths[:, None]
            student, teacher = student[mask.bool()], teacher[keep]
            if tuple(student.shape) != tuple(teacher.shape):
                raise self._shape_error(student, teacher)
            return student, teacher
        if TEACHER_KEY in batch:
            teacher = batch[TEACHER_KEY]
        else:
            t = self.teacher
            with torch.no_grad():
                teacher = t.task.distill_outputs(t.task.forward(t.model, batch), batch)
        if tuple(student.shape) != tuple(teacher.shape):
            raise self._shape_error(student, teacher)
        if mask is not None:
            mask = mask.bool()
            student, teacher = student[mask], teacher[mask]
        return student, teacher

    def term(self, outputs: Any, batch: dict) -> torch.Tensor:
        """The distillation term of a batch the student gave ``outputs`` for."""
        student, teacher = self.pair(outputs, batch)
        return distill_loss(self.kind, student, teacher, self.cfg.temperature)

    def combine(self, task_loss: torch.Tensor, outputs: Any, batch: dict) -> torch.Tensor:
        """``alpha * distillation + (1 - alpha) * task_loss``."""
        a = float(self.cfg.alpha)
        return a * self.term(outputs, batch) + (1.0 - a) * task_loss


class TeacherCollate:
    """A task's collate that also stacks the cached teacher outputs of the examples (picklable for
    loader workers); the task's own collate never sees them. With ``ragged`` outputs (each example's
    marked positions only) they are padded to the batch's longest and their counts sent along under
    :data:`TEACHER_LENGTHS_KEY`: both have one row per example, so a split batch stays consistent."""

    def __init__(self, collate, ragged: bool = False):
        self.collate, self.ragged = collate, ragged

    def __call__(self, features: list[dict]) -> dict:
        if not features or TEACHER_KEY not in features[0]:
            return self.collate(features)
        rows = [f[TEACHER_KEY] for f in features]
        batch = self.collate([{k: v for k, v in f.items() if k != TEACHER_KEY} for f in features])
        if self.ragged:
            batch[TEACHER_KEY] = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
            batch[TEACHER_LENGTHS_KEY] = torch.tensor([len(r) for r in rows], dtype=torch.long)
        else:
            batch[TEACHER_KEY] = torch.stack(rows)
        return batch


# ---------------------------------------------------------------------------- teacher outputs
def model_rows(model, task, features: list[dict], batch_size: int, device) -> list[torch.Tensor]:
    """``task.distill_outputs`` of ``model`` for every one of ``features``, one tensor each (in
    order, on the CPU, float): its row, or only its marked positions when the task has a
    :meth:`~fmkit.Task.distill_mask`. Each batch comes to the CPU once, then is split."""
    rows: list[torch.Tensor] = []
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(features), batch_size):
            batch = to_device(task.collate(features[s:s + batch_size]), device)
            out = task.distill_outputs(task.forward(model, batch), batch).float().cpu()
            mask = task.distill_mask(batch)
            rows.extend(out.unbind(0) if mask is None else [o[m] for o, m in zip(out, mask.bool().cpu())])
    return rows


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_cache(path: Path, n: int, ragged: bool) -> list[torch.Tensor] | torch.Tensor | None:
    """A cache file's outputs when it holds one per example, in the form expected (``ragged``: per
    example rows of the marked positions); a damaged cache is rebuilt, never trusted."""
    try:
        cached = torch.load(path, weights_only=True)
    except Exception as e:
        log.warning("ignoring unreadable cache %s: %s", path, e)
        return None
    if not ragged and isinstance(cached, torch.Tensor) and len(cached) == n:
        return cached
    if ragged and isinstance(cached, dict) and isinstance(cached.get("rows"), torch.Tensor) \
            and isinstance(cached.get("lengths"), torch.Tensor) and len(cached["lengths"]) == n \
            and int(cached["lengths"].sum()) == len(cached["rows"]):
        return list(torch.split(cached["rows"], cached["lengths"].tolist()))
    log.warning("ignoring cache %s: it does not hold one output per example", path)
    return None


def cached_teacher_outputs(teacher: Teacher, examples: list[dict], device, cache_dir: Path | None,
                           batch_size: int) -> list[torch.Tensor] | torch.Tensor:
    """The teacher's outputs for every training example, from its own preprocessing: ``[N, ...]``,
    or one tensor per example of its marked positions when the task has a
    :meth:`~fmkit.Task.distill_mask`; read from and written (atomically) to ``cache_dir`` when
    given, keyed by the teacher's weights, its task and the examples."""
    from .data import _fingerprint

    task = teacher.task
    ragged = bool(examples) and task.distill_mask(task.collate(task.preprocess_many(examples[:1]))) is not None
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{_file_digest(teacher.weights)}|{task.fingerprint()}|{_fingerprint(examples)}"
                             .encode()).hexdigest()[:24]
        path = Path(cache_dir) / f"distill-{task.name}-{key}.pt"
        if path.is_file():
            cached = _read_cache(path, len(examples), ragged)
            if cached is not None:
                return cached
    features = []
    for s in range(0, len(examples), 4096):
        features.extend(task.preprocess_many(examples[s:s + 4096]))
    if len(features) != len(examples):
        raise UsageError(f"distill: the teacher's task {task.name!r} made {len(features)} features from "
                         f"{len(examples)} training examples, so its outputs cannot be matched to the student's "
                         "examples; set distill.cache: off")
    teacher.model.to(device)
    rows = model_rows(teacher.model, task, features, batch_size, device)
    if ragged:  # per-position rows of varying length
        saved: Any = {"rows": torch.cat(rows) if rows else torch.zeros(0),
                      "lengths": torch.tensor([len(r) for r in rows], dtype=torch.long)}
        outputs: Any = rows
    else:
        shapes = {tuple(r.shape) for r in rows}
        if len(shapes) > 1:
            raise UsageError(f"distill: the teacher's outputs differ in shape from example to example "
                             f"({sorted(shapes)[:4]}: padded to each batch's longest input?), so they cannot be "
                             "cached per example; set distill.cache: off (or, writing the task, mark the "
                             "positions that count with Task.distill_mask)")
        outputs = saved = torch.stack(rows)
    if path is not None:
        buf = io.BytesIO()
        torch.save(saved, buf)
        atomic_write_bytes(path, buf.getvalue())
    return outputs


def _same(a: Any, b: Any) -> bool:
    """Whether two preprocessed features are equal (tensors and arrays element-wise)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "shape") and hasattr(b, "shape"):
        ta, tb = torch.as_tensor(a), torch.as_tensor(b)
        return ta.shape == tb.shape and bool(torch.equal(ta, tb))
    return bool(a == b)


def augments_batches(task, features: list[dict]) -> bool:
    """Whether the task's :meth:`~fmkit.Task.augment_batch` changes training batches (mixup, say),
    found by trying it on a batch of the first training examples."""
    from ..task import Task

    if type(task).augment_batch is Task.augment_batch or len(features) < 2:
        return False
    batch = task.collate(features[:4] if len(features) >= 4 else features[:2])
    out = task.augment_batch(dict(batch), 0)
    return not _same({k: out.get(k) for k in batch}, batch) or set(out) != set(batch)


# ---------------------------------------------------------------------------- setup
def setup_distillation(recipe, task, teacher: Teacher, kind: str, examples: list[dict], features: list[dict], device,
                       cache_dir: Path | None, batch_size: int) -> tuple[Distiller, list[dict]]:
    """Decide caching for a checked teacher (:func:`load_teacher`, :func:`check_teacher`):
    ``(distiller, training features)``, the features (new dicts) carrying the teacher's outputs under
    :data:`TEACHER_KEY` when cached."""
    cfg = recipe.distill
    teacher.model.to(device).eval()
    for p in teacher.model.parameters():
        p.requires_grad_(False)
    augmented = bool(recipe.data.augment) or augments_batches(task, features)
    cached = cfg.cache == "on" or (cfg.cache == "auto" and not augmented)
    if cached and augmented:
        log.warning("distill.cache: on with augmented training data: the student sees augmented examples and the "
                    "teacher's outputs for the unaugmented ones")
    outputs: Any = None
    if cached:
        outputs = cached_teacher_outputs(teacher, examples, device, cache_dir, batch_size)
        features = [{**f, TEACHER_KEY: outputs[i]} for i, f in enumerate(features)]
    else:
        sample = examples[:4]
        if not _same(teacher.task.preprocess_many(sample), features[:len(sample)]):
            raise UsageError(f"distill.cache: off runs the teacher on the student's batches, but the teacher "
                             f"({teacher.source}) preprocesses the training examples differently (another "
                             "tokenizer, image size or window?); use the teacher's preprocessing settings in the "
                             "student's recipe, or distill.cache: on without augmentation")
    log.info("distilling from %s (%s, temperature %g, alpha %g, teacher outputs %s)", teacher.source, kind,
             cfg.temperature, cfg.alpha, "cached" if cached else "computed for every batch")
    ragged = cached and isinstance(outputs, list)
    return Distiller(cfg, teacher, task, kind, cached, ragged), features
