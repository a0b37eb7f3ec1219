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

import yaml

from ..errors import UsageError


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


def restore_fitted_task(task, directory: Path) -> None:
    """A resumed run continues with what its task learnt the first time (``directory``: the run's
    ``artifacts/``), not with what :meth:`~fmkit.Task.setup` fits again: a tokenizer trained on the
    data comes out different in each process, and the checkpoint's embeddings match the first one."""
    if not (directory / "task.json").is_file():
        return
    task.load_state_dict(json.loads((directory / "task.json").read_text()))
    task.load_assets(str(directory / "assets"))


def load_task(recipe, directory: Path, manager=None):
    from .builder import Builder

    task = Builder(recipe, manager).task()
    task.load_state_dict(json.loads((directory / "task.json").read_text()))
    task.load_assets(str(directory / "assets"))
    return task


def run_recipe_dict(run_dir: Path) -> dict:
    """The run's effective recipe as a dict: ``recipe.yaml`` plus its resume amendments."""
    from .resume import apply_amendments, read_amendments

    path = Path(run_dir) / "recipe.yaml"
    if not path.is_file():
        raise UsageError(f"{run_dir} is not an fmkit run directory (no recipe.yaml); pass the folder `fmkit train` printed")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a recipe (a mapping of sections); was it edited by hand?")
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
    from .checkpoint import load_weights
    from .builder import Builder

    run_dir = Path(run_dir)
    recipe = read_run_recipe(run_dir, import_plugins=trust_remote_code)
    weights = run_dir / "checkpoints" / checkpoint / "model.safetensors"
    if not weights.is_file():
        if (run_dir / "export.json").is_file():
            raise UsageError(f"{run_dir} is an export folder, which holds no checkpoints: give the run directory it "
                             "was exported from (fmkit evaluate RUN_DIR), or predict with fmkit predict")
        raise UsageError(f"no checkpoint {checkpoint!r} in {run_dir}/checkpoints; did training finish an evaluation?")
    task = load_task(recipe, run_dir / "artifacts")
    override: dict = {k: v for k, v in recipe.model.as_dict().items() if k == "trust_remote_code"}
    caller_decides_remote_code(override, {}, trust_remote_code, run_dir)
    model = Builder(recipe).model(task, override, inference=True)
    from .prune import read_structure, restore_structure

    restore_structure(model, read_structure(run_dir), run_dir)  # a pruned run: its smaller shape first
    load_weights(model, weights)
    model.eval()
    return TrainedModel(recipe, task, model, run_dir)

