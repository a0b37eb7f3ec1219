"""Structured pruning (a recipe's ``prune:`` section, ``fmkit prune``): the core owns the loop.

1. the source run's trained model is read (safetensors; its recipe's plugins not imported, no code
   shipped with the model run) and checked against the recipe (same model section, same labels);
   the source's fitted task state and assets (tokenizer...) replace the ones set up on the data;
2. a few training batches and the task's loss are handed to the plugins'
   :func:`fmkit.hookspecs.fmkit_prune_model`; the plugin that knows the model measures importance
   and physically removes structures, and describes the model's new shape;
3. the smaller model is trained as any other (the recovery fine-tune; ``distill:`` with the source
   as teacher recovers on its outputs) and the run directory records ``prune.json``: the source, the
   fractions, the structure and the parameter counts before and after. Whatever rebuilds the model
   later (evaluate, export, serve, resume) first gives it that shape through
   :func:`fmkit.hookspecs.fmkit_restore_structure`, then loads the weights.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, PluginHookError, UsageError

log = logging.getLogger("fmkit")

#: the file in a pruned run directory that records how it was pruned and the model's shape
PRUNE_FILE = "prune.json"


def count_parameters(model) -> int:
    """Parameters of ``model`` (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters())


def _unwrap(error: PluginHookError) -> Exception:
    """A plugin's own :class:`~fmkit.errors.UsageError` (bad fractions, an unsupported kind) as it is:
    the message is for the user, not a plugin failure."""
    inner = error.error
    return inner if isinstance(inner, UsageError) else error


def read_structure(directory: str | Path) -> dict | None:
    """The structure recorded in a run directory's ``prune.json``, or ``None`` for an unpruned run."""
    path = Path(directory) / PRUNE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return record["structure"]
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path} is damaged ({type(e).__name__}: {e}); the pruned model's shape cannot be "
                         "rebuilt: prune the source run again") from None


def restore_structure(model, structure: dict | None, where: str | Path, manager=None) -> None:
    """Give a freshly built model a recorded pruned shape (no-op for ``None``), before its weights load."""
    if structure is None:
        return
    from ..plugins import get_plugin_manager

    pm = manager or get_plugin_manager()
    try:
        done = pm.dispatch("fmkit_restore_structure", model=model, structure=structure)
    except PluginHookError as e:
        raise _unwrap(e) from None
    if not done:
        raise UsageError(f"{where} holds a pruned model (structure {structure.get('kind', '?')!r}) and no installed "
                         "plugin rebuilds that shape (fmkit_restore_structure); install the plugin that pruned it")


@dataclass
class Pruned:
    """The pruned model, on the device, and what ``prune.json`` records."""

    model: Any
    record: dict = field(default_factory=dict)


def _check_source(recipe, task) -> Path:
    from .artifacts import read_run_recipe

    cfg = recipe.prune
    src = Path(cfg.source)
    if not (src / "recipe.yaml").is_file():
        hint = (" (an export folder: prune the run directory it came from, export.json's source_run)"
                if (src / "export.json").is_file() else "")
        raise UsageError(f"prune.source: {src} is not a run directory (no recipe.yaml){hint}; give the folder "
                         "`fmkit train` printed")
    source = read_run_recipe(src, import_plugins=False)
    mine = {k: v for k, v in recipe.model.as_dict().items() if k != "trust_remote_code"}
    theirs = {k: v for k, v in source.model.as_dict().items() if k != "trust_remote_code"}
    if mine != theirs:
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise UsageError(f"prune.source: the recipe's model section differs from {src}'s in {', '.join(differ)}; a "
                         "pruned run rebuilds the source's model, so copy its model section (fmkit prune does)")
    if source.task.name != recipe.task.name:
        raise UsageError(f"prune.source: {src} was trained for the task {source.task.name!r}, the recipe's task is "
                         f"{recipe.task.name!r}")
    return src


def importance_batches(task, examples: list[dict], batches: int, batch_size: int, device) -> list[dict]:
    """The first ``batches`` training batches (in data order, so the measure repeats), on ``device``."""
    from .evaluation import to_device

    take = examples[:batches * batch_size]
    feats = task.preprocess_many(take)
    return [to_device(task.collate(feats[s:s + batch_size]), device) for s in range(0, len(feats), batch_size)]


def prune_source(recipe, task, examples: list[dict], loss_fn, device, manager) -> Pruned:
    """Read the source run, check it, and have its plugin prune it (see the module docstring);
    nothing is written here, so a refused prune leaves nothing behind."""
    from . import checkpoint as ckpt
    from .artifacts import load_trained

    cfg = recipe.prune
    fractions = cfg.fractions()
    if not fractions:
        raise UsageError("prune: nothing to remove; set a share above 0 of heads, ffn or channels (e.g. "
                         "fmkit prune RUN --heads 0.4 --ffn 0.4)")
    src = _check_source(recipe, task)
    state = ckpt.rng_state()  # reading the source leaves the seeded generators as they were
    try:
        trained = load_trained(src)
    finally:
        ckpt.set_rng_state(state)
    t_labels, labels = trained.task.labels, task.labels
    if (t_labels is None) != (labels is None) or (labels is not None and list(t_labels) != list(labels)):
        raise DataError(f"prune.source: {src} was trained with the labels {t_labels}, but the recipe's training data "
                        f"gives {labels}; prune with the source's data")
    # the source's fitted task (its tokenizer, scaling...): the weights mean what they meant; a task
    # set up again on the same data may differ (a trained tokenizer's vocabulary order, say)
    art = src / "artifacts"
    task.load_state_dict(json.loads((art / "task.json").read_text()))
    task.load_assets(str(art / "assets"))
    model = trained.model.to(device)
    before = count_parameters(model)
    batches = importance_batches(task, examples, cfg.importance_batches, recipe.train.batch_size, device)

    def loss(m, batch):
        return task.loss(task.forward(m, batch), batch, loss_fn)

    model.train()
    try:
        structure = manager.dispatch("fmkit_prune_model", model=model, task=task, fractions=fractions,
                                     batches=batches, loss=loss)
    except PluginHookError as e:
        raise _unwrap(e) from None
    finally:
        model.zero_grad(set_to_none=True)
    if structure is None:
        raise UsageError(f"prune: no installed plugin can prune the model {recipe.model.name!r} "
                         f"({type(model).__name__}): none implements fmkit_prune_model for it. `fmkit plugins list` shows "
                         "what is installed; a plugin's README says which models it prunes (and any extra it needs)")
    if not isinstance(structure, dict):
        raise UsageError(f"prune: the plugin that pruned {recipe.model.name!r} described the new shape as a "
                         f"{type(structure).__name__}, not a dict (fmkit_prune_model must return JSON-able data)")
    try:
        json.dumps(structure)
    except (TypeError, ValueError) as e:
        raise UsageError(f"prune: the pruned shape is not JSON-able ({e}); fmkit_prune_model must return plain data")
    after = count_parameters(model)
    if after >= before:
        raise UsageError(f"prune: the model still has {after:,} parameters ({before:,} before): nothing was removed; "
                         "raise the fractions")
    summary = structure.pop("summary", None)
    record = {"source": str(src.resolve()), "fractions": fractions, "importance_batches": len(batches),
              "parameters_before": before, "parameters_after": after, "summary": summary, "structure": structure}
    log.info("pruned %s: %s parameters -> %s (%.1f%%), %s", src, f"{before:,}", f"{after:,}", 100 * after / before,
             summary or fractions)
    return Pruned(model, record)


__all__ = ["PRUNE_FILE", "Pruned", "count_parameters", "prune_source", "read_structure", "restore_structure"]


def prune_recipe(run: str | Path, heads: float | None = None, ffn: float | None = None,
                 channels: float | None = None, recover_epochs: int = 1, distill: bool = False,
                 importance_batches: int | None = None) -> dict:
    """The recipe ``fmkit prune RUN`` trains: the run's own effective recipe with a ``prune:`` section
    (the run as source), ``train.epochs`` set to the recovery epochs, and with ``distill`` the run as
    the teacher (its own ``distill:`` otherwise dropped); its run name and export folder are left to
    the defaults so nothing of the source is overwritten."""
    from .artifacts import run_recipe_dict

    src = Path(run)
    if not src.is_dir():
        raise UsageError(f"{run}: no such folder; give the run directory `fmkit train` printed")
    data = dict(run_recipe_dict(src))
    source = str(src.resolve())
    section: dict[str, Any] = {"source": source}
    for key, value in (("heads", heads), ("ffn", ffn), ("channels", channels)):
        if value is not None:
            section[key] = value
    if importance_batches is not None:
        section["importance_batches"] = importance_batches
    data["prune"] = section
    data["train"] = {**(data.get("train") or {}), "epochs": recover_epochs}
    data.pop("distill", None)
    if distill:
        data["distill"] = {"teacher": source}
    data["tracking"] = {k: v for k, v in (data.get("tracking") or {}).items() if k != "run_name"}
    data["export"] = {k: v for k, v in (data.get("export") or {}).items() if k != "output"}
    return data
