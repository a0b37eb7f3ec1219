"""The first step of training, shared by ``fmkit train`` and ``fmkit validate --read-data``: the
whole data set read, cleaned and checked, and the task fitted to it (its labels, a tokenizer), with
nothing written. Both commands run this one function, so validate refuses exactly what train would."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError


@dataclass
class TrainingData:
    """What :func:`read_training_data` found: the task fitted to the training split, the splits as
    cleaned, the examples dropped (``split/reason`` -> count) and the dataset component itself."""

    builder: Any
    task: Any
    source: Any
    splits: dict[str, list[dict]]
    dropped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Examples per split, examples dropped per reason and, for a classifier, its classes."""
        out: dict[str, Any] = {"examples": {name: len(ex) for name, ex in self.splits.items()},
                               "dropped": dict(sorted(self.dropped.items()))}
        if getattr(self.task, "classification", False) and self.task.labels is not None:
            out["classes"] = len(self.task.labels)
        return out


def read_training_data(recipe, manager=None, cache_dir: str | None = None) -> TrainingData:
    """Read, clean and check every split of ``recipe``'s data and fit its task to the training split.

    Raises :class:`~fmkit.errors.DataError` naming the file (and rows) for data that would train into
    nonsense: no examples, every example dropped, a classifier with fewer than two classes.
    ``cache_dir`` becomes :attr:`fmkit.Task.cache_dir` (``None``: the task caches nothing)."""
    from .builder import Builder
    from .data import dataset_metadata, load_splits

    builder = Builder(recipe, manager)
    task = builder.task()
    dropped: dict[str, int] = {}
    source = builder.dataset(task)
    splits = load_splits(source, recipe, task, dropped, lambda: builder.transforms("clean", task))
    task.receive_dataset_metadata(dataset_metadata(source, recipe.data.name))  # what setup may read
    task.cache_dir = cache_dir
    task.setup(splits["train"], recipe.model.as_dict())
    if task.classification and task.labels is not None and len(task.labels) < 2:
        raise DataError(f"the training data ({recipe.data.dataset_params().get('train') or 'data.train'}) has "
                        f"{len(task.labels)} class(es) ({', '.join(map(repr, task.labels)) or 'none'}) in "
                        f"{len(splits['train'])} examples: a classifier needs at least two; check the label column")
    return TrainingData(builder, task, source, splits, dropped)


def check_scored_splits(recipe, task, splits: dict[str, list[dict]]) -> None:
    """A validation or test split given as its own file is scored on the labels training learnt: it must
    carry labels, and only those (refused naming the file otherwise)."""
    if not task.classification:
        return
    from .api import _check_known_labels

    for name in ("validation", "test"):
        path = recipe.data.dataset_params().get(name)
        if splits.get(name) and isinstance(path, str) and path:
            _check_known_labels(task, splits[name], f"data.{name} ({path})")
