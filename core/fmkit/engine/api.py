"""``fmkit.train`` and ``fmkit.evaluate``: assemble a recipe and run it."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import DataError, UsageError
from ..plugins import get_plugin_manager
from ..recipe import load_recipe
from .artifacts import load_trained, run_recipe_dict
from .builder import Builder
from .resume import check_resume
from .run import Run

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
    old = load_recipe(effective)
    sections = tuple(old.plugin_sections) + tuple(new.plugin_sections)
    return new, check_resume(rd, old.to_dict(), new.to_dict(), sections)


def train(recipe: Any, overrides: list[str] | None = None, run_dir: str | None = None, resume: str | None = None,
          overwrite: bool = False) -> Run:
    """Validate and run a recipe: data → train → evaluate → export. Returns the :class:`Run`.
    ``overwrite``: replace the run in an existing ``run_dir`` (otherwise a non-empty one is refused).
    The stages are :class:`~fmkit.engine.session.TrainingSession`'s methods, in this order."""
    from . import checkpoint as ckpt
    from .session import TrainingSession

    recipe, amended = _resolve(recipe, overrides, resume)
    latest = ckpt.latest_checkpoint(Path(resume) / "checkpoints") if resume else None
    if resume and latest is None:
        raise UsageError(f"--resume {resume}: no checkpoint to resume from in {Path(resume) / 'checkpoints'}")
    session = TrainingSession(recipe, get_plugin_manager())
    session.start()
    session.read_data()  # before the run directory exists: bad data leaves nothing behind
    session.prune(resume)  # so does a refused prune
    session.open_run_dir(resume, run_dir, overwrite)
    try:
        session.prepare(latest)
        if latest is not None:
            session.restore(latest, amended)
        session.fit()
    except BaseException as e:  # a new run that holds no checkpoint yet is removed, not left half-made
        session.discard_if_empty(e)
        raise
    session.drop_replaced()
    return session.record(*session.final_evaluation())


def prune(run_dir: str, heads: float | None = None, ffn: float | None = None, channels: float | None = None,
          recover_epochs: int = 1, distill: bool = False, importance_batches: int | None = None,
          output: str | None = None, overrides: list[str] | None = None, overwrite: bool = False) -> Run:
    """Prune a finished run's model and recover it (:mod:`fmkit.engine.prune`); returns the new :class:`Run`."""
    from .prune import prune_recipe

    data = prune_recipe(run_dir, heads, ffn, channels, recover_epochs, distill, importance_batches)
    return train(data, overrides=overrides, run_dir=output, overwrite=overwrite)


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
