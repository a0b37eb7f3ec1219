"""A trained model with its task: rebuilt from a run directory or an export folder.

``artifacts/`` in a run directory holds ``task.json`` (the task's fitted state) and ``assets/``
(tokenizer and other files), written once after the task's setup; the best weights are in
``checkpoints/best/model.safetensors``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, UsageError


@dataclass
class TrainedModel:
    """A model ready for inference, with the task that turns raw inputs into batches."""

    recipe: Any
    task: Any
    model: Any
    source: Path

    def predictor(self):
        """This model as a :class:`fmkit.predictor.Predictor` (the one inference path)."""
        from ..predictor import Predictor

        self.model.eval()
        task, model = self.task, self.model
        meta = {"task": self.recipe.task.as_dict() if self.recipe is not None else None, "labels": task.labels,
                "source": str(self.source)}
        return Predictor(task, lambda batch: task.forward(model, batch), meta, model=model)

    def predict(self, inputs: list[Any], batch_size: int = 32) -> list[dict]:
        """Raw inputs in, one answer each: :meth:`predictor`'s ``predict``."""
        return self.predictor().predict(inputs, batch_size)


def save_task_artifacts(task, directory: Path) -> None:
    from ..utils.atomic import atomic_directory

    with atomic_directory(directory) as tmp:
        (tmp / "task.json").write_text(json.dumps(task.state_dict(), indent=2, default=str))
        (tmp / "assets").mkdir()
        task.save_assets(str(tmp / "assets"))


def load_fitted_state(task, directory: Path, hint: str) -> None:
    """Give ``task`` the state and assets saved in ``directory`` (a run's ``artifacts/``, an export's
    ``task/``). A missing or damaged ``task.json`` or asset is a :class:`~fmkit.errors.DataError` naming
    the file, followed by ``hint`` (what may help)."""
    from ..utils.damaged import damaged, read_task_state, reading

    directory = Path(directory)
    state = read_task_state(directory / "task.json", hint)
    try:  # what the task writes: an entry it always writes (labels, even null) may not be missing
        writes = task.state_dict()
    except Exception:  # noqa: BLE001 - a task that cannot say so before it is fitted
        writes = {}
    if "labels" in writes and "labels" not in state:
        raise damaged(directory / "task.json", hint, "its labels entry is missing")
    with reading(directory / "task.json", hint):
        task.load_state_dict(state)
    with reading(directory / "assets", hint):
        task.load_assets(str(directory / "assets"))


def restore_fitted_task(task, directory: Path) -> None:
    """A resumed run continues with what its task learnt the first time (``directory``: the run's
    ``artifacts/``), not with what :meth:`~fmkit.Task.setup` fits again: a tokenizer trained on the
    data comes out different in each process, and the checkpoint's embeddings match the first one.
    Without ``task.json`` the run cannot be resumed: its labels could not be checked, nor its
    tokenizer kept (a :class:`~fmkit.errors.DataError`)."""
    from ..utils.damaged import run_hint

    load_fitted_state(task, directory, run_hint(Path(directory).parent))


def load_task(recipe, directory: Path, manager=None):
    from ..utils.damaged import run_hint
    from .builder import Builder

    task = Builder(recipe, manager).task()
    load_fitted_state(task, directory, run_hint(Path(directory).parent))
    return task


def run_recipe_dict(run_dir: Path) -> dict:
    """The run's effective recipe as a dict: ``recipe.yaml`` plus its resume amendments. A damaged
    ``recipe.yaml`` is a :class:`~fmkit.errors.DataError` naming it (read as a recipe file is: no
    aliases past the limits, UTF-8)."""
    from ..errors import RecipeError
    from ..recipe.loader import read_recipe_file
    from ..utils.damaged import damaged, reading, run_hint
    from .resume import apply_amendments, read_amendments

    path = Path(run_dir) / "recipe.yaml"
    if not path.is_file():
        raise UsageError(f"{run_dir} is not an fmkit run directory (no recipe.yaml); pass the folder `fmkit train` printed")
    try:
        with reading(path, run_hint(run_dir)):
            data, _, _ = read_recipe_file(path)
    except RecipeError as e:
        why = "; ".join(f"line {i.line}: {i.message}" if i.line else i.message for i in e.issues[:3])
        raise damaged(path, run_hint(run_dir), why) from None
    if not data:
        raise damaged(path, run_hint(run_dir), "it is empty")
    return apply_amendments(data, read_amendments(Path(run_dir)))


def read_run_recipe(run_dir: Path, import_plugins: bool = True):
    """The run's effective recipe, validated (``recipe.yaml`` plus ``recipe.amendments.yaml``).
    ``import_plugins=False`` leaves its ``plugins:`` modules unimported (loading a run to predict
    must not run code the run directory names)."""
    from ..errors import RecipeError
    from ..recipe import load_recipe

    data = run_recipe_dict(run_dir)
    try:
        return load_recipe(data, import_plugins=import_plugins)
    except RecipeError as e:
        listed = data.get("plugins")
        if listed and not import_plugins:
            raise UsageError(f"{e}\n{Path(run_dir) / 'recipe.yaml'} lists plugins: {listed}, which are not imported "
                             "when a run is loaded; install them as plugins, or pass --trust-remote-code "
                             "(trust_remote_code=True) if you trust this run directory") from None
        raise


def load_trained(run_dir: str | Path, checkpoint: str = "best", trust_remote_code: bool = False) -> TrainedModel:
    """Rebuild task and model from a run directory and load its best (or given) checkpoint.

    What the run directory says never turns on running code: its recipe's ``plugins:`` are not
    imported and its model's ``trust_remote_code`` is replaced by the caller's ``trust_remote_code``."""
    from ..exporting.loading import caller_decides_remote_code
    from ..utils.damaged import checkpoint_hint, damaged, mismatch, missing, run_hint
    from .checkpoint import load_weights
    from .builder import Builder

    run_dir = Path(run_dir)
    recipe = read_run_recipe(run_dir, import_plugins=trust_remote_code)
    weights = run_dir / "checkpoints" / checkpoint / "model.safetensors"
    if not weights.is_file():
        if weights.parent.is_dir():  # the checkpoint is there, its weights are not
            raise missing(weights, checkpoint_hint(weights.parent))
        if weights.parent.exists() or weights.parent.is_symlink():  # a file, a dangling link, a link loop
            raise damaged(weights.parent, checkpoint_hint(weights.parent),
                          "it is not a folder: a file, or a link that leads nowhere")
        if (run_dir / "export.json").is_file():
            raise UsageError(f"{run_dir} is an export folder, which holds no checkpoints: give the run directory it "
                             "was exported from (fmkit evaluate RUN_DIR), or predict with fmkit predict")
        if any((run_dir / name).exists() for name in ("model.onnx", "model.safetensors", "task")):
            raise missing(run_dir / "export.json", f"{run_dir} looks like an export without its export.json, which "
                          "says how to load it: restore it from a copy, or export the run again")
        raise UsageError(f"no checkpoint {checkpoint!r} in {run_dir}/checkpoints; did training finish an evaluation?")
    task = load_task(recipe, run_dir / "artifacts")
    override: dict = {k: v for k, v in recipe.model.as_dict().items() if k == "trust_remote_code"}
    caller_decides_remote_code(override, {}, trust_remote_code, run_dir)
    model = Builder(recipe).model(task, override, inference=True)
    from .prune import read_structure, restore_structure

    restore_structure(model, read_structure(run_dir), run_dir)  # a pruned run: its smaller shape first
    try:
        load_weights(model, weights)
    except RuntimeError as e:  # names or shapes: the files the model is built from no longer match
        raise DataError(f"{weights} does not fit the model that {run_dir / 'recipe.yaml'} and "
                        f"{run_dir / 'artifacts' / 'task.json'} describe ({mismatch(e)}): one of these files was "
                        f"edited or damaged; {run_hint(run_dir)}") from None
    model.eval()
    return TrainedModel(recipe, task, model, run_dir)

