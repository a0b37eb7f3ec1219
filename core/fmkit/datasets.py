"""The dataset contract (:class:`Dataset`) and the split helper datasets share (:func:`carve_split`).

A dataset component's factory is called as ``factory(params, context)``, where ``params`` is the
recipe's ``data`` section (validated by the component's parameter model) and ``context`` is
``{"task": task}`` (the recipe's :class:`fmkit.Task`, not yet fitted), and returns an object with the methods of :class:`Dataset`. Subclassing it is optional
(the engine only calls the methods) but documents the intent and gives the default ``dropped``.
"""
from __future__ import annotations

import random
from typing import Any, Callable

from .errors import DataError

__all__ = ["Dataset", "carve_split", "missing_split_files"]


class Dataset:
    """What the engine asks of a dataset.

    ``__init__(params, context)`` keeps ``self.params`` (the validated ``data`` section's dataset
    parameters), ``self.context`` (``{"task": task}``) and ``self.dropped`` (``{}``). The class
    attribute ``split_params`` (default ``("train", "validation", "test")``) names the parameters
    that hold each split's file; the default :meth:`load` reads those, plus ``test_fraction`` and
    ``seed`` when the parameters have them.

    An *example* is a plain dict of raw values (``{"text": ..., "label": ...}``,
    ``{"image": "/path.png", "label": "cat"}``): whatever the task's :meth:`fmkit.Task.setup` and
    :meth:`fmkit.Task.preprocess` take. Keys the core itself reads: none; the task reads all of
    them (by convention ``"label"`` for a class, ``"target"`` for a value, ``"group"`` for a
    group key, ``"source"`` for where the example came from, used in error messages).
    """

    def __init__(self, params: Any, context: dict | None = None):
        self.params = params
        self.context = context or {}
        #: files or rows the dataset could not read, as ``{"split/reason": count}``; the engine adds
        #: them to the run's drop counts (``data_summary.json``, the report's "Dropped" table)
        self.dropped: dict[str, int] = {}

    #: the parameters naming each split's file, read by the default :meth:`load`
    split_params: tuple[str, ...] = ("train", "validation", "test")

    def stratify_key(self, example: dict) -> Any:
        """What the default :meth:`load` stratifies a carved test split on (the label, say); the same
        value for every example (the default, ``None``) carves a plain seeded sample."""
        return None

    def load(self) -> dict[str, list[dict]]:
        """Every split the data has: ``{"train": [example, ...], "validation": [...], "test": [...]}``.

        The default reads the file each of :attr:`split_params` names (a parameter left ``None`` is
        a split the data does not have) with :meth:`load_file`, then, when the parameters have a
        ``test_fraction`` and the data no test split, carves one out of train with
        :func:`carve_split` (seeded by a ``seed`` parameter, stratified on :meth:`stratify_key`).
        Override it for data that is not one file per split.

        ``train`` is required and must not be empty. ``validation`` and ``test`` are optional: when
        ``validation`` is absent the engine holds out ``data.validation_split`` of train (stratified
        on :meth:`fmkit.Task.stratify_key`, grouped on :meth:`fmkit.Task.group_key`); when ``test``
        is absent the final evaluation uses validation. Called once per ``fmkit train`` and
        ``fmkit evaluate`` (without ``--data``). Raise :class:`fmkit.errors.DataError` naming the file,
        line and field for bad data.
        """
        p = self.params
        splits = {name: self.load_file(getattr(p, name)) for name in self.split_params if getattr(p, name, None)}
        return carve_split(splits, "test", getattr(p, "test_fraction", 0.0), getattr(p, "seed", 0), self.stratify_key)

    def check(self) -> list[tuple[str, str]]:
        """Problems a quick look at the data finds without loading it, for ``fmkit validate``:
        ``[(field, message), ...]`` with ``field`` the recipe field under ``data`` (``"train"``,
        ``"text_column"``) and a message that says what is wrong and how to fix it.

        Optional: ``fmkit validate`` calls it when the dataset has it, and otherwise only checks that
        the files named by ``train``/``validation``/``test`` exist (:func:`missing_split_files`, which
        this default returns too). Override it to also read a file's header and check the columns the
        parameters name, listing the columns that are there; never read whole data sets here.
        """
        return missing_split_files(self.params, self.split_params)

    def metadata(self) -> dict[str, Any]:
        """What the dataset knows about its data that the task may use: declared column types, a
        label vocabulary, a sampling rate. Optional (since API 1.3); the default is ``{}``.

        ``fmkit train`` calls it once, after :meth:`load` (so it may report what loading learnt,
        the types inferred from train, say), and hands the dict to
        :meth:`fmkit.Task.receive_dataset_metadata` just before :meth:`fmkit.Task.setup`. Return a
        plain dict; JSON-able values if the task is to keep it in its state. A dataset object that
        does not subclass :class:`Dataset` may leave it out (the task then receives ``{}``).
        """
        return {}

    def load_file(self, path: str) -> list[dict]:
        """The examples of one file in the format of the training data (``fmkit evaluate RUN --data FILE``).

        Optional: a dataset without it makes ``--data`` fail with a usage error naming the dataset.
        The examples go through the recipe's cleaning transforms, then are scored.
        """
        raise NotImplementedError


def missing_split_files(params: Any, names: tuple[str, ...] = ("train", "validation", "test")) -> list[tuple[str, str]]:
    """``(field, message)`` for each of ``names`` whose parameter (an attribute or a dict key of
    ``params``) names a path that does not exist; relative paths are read from the current folder,
    and the message says which folder that is."""
    import os

    out = []
    for name in names:
        value = params.get(name) if isinstance(params, dict) else getattr(params, name, None)
        if isinstance(value, str) and value and not os.path.exists(value):
            where = "" if os.path.isabs(value) else f" (relative paths are read from the current folder, {os.getcwd()})"
            out.append((name, f"{value} does not exist{where}"))
    return out


def carve_split(splits: dict[str, list[dict]], name: str, fraction: float, seed: int,
                stratify: Callable[[dict], Any] | None = None, source: str = "train") -> dict[str, list[dict]]:
    """Move a seeded ``fraction`` of ``splits[source]`` into ``splits[name]`` when the data has no such split.

    Without ``stratify``, the rows are shuffled with ``random.Random(seed)`` and the first
    ``round(len * fraction)`` form the new split. With ``stratify`` (a function of an example, the
    label for instance), that fraction is taken from every stratum (strata in sorted order, each
    shuffled with the same generator), so each class keeps its share. Returns ``splits`` (changed
    in place); does nothing when ``fraction`` is 0, when ``splits`` has ``name`` already, or when
the fraction rounds to no row.
    """
    if not fraction or splits.get(name):
        return splits
    if not 0 < fraction < 1:
        raise DataError(f"the {name} fraction must lie between 0 and 1; got {fraction}")
    rows = list(splits.get(source) or [])
    rng = random.Random(seed)
    if stratify is None:
        rng.shuffle(rows)
        n = int(round(len(rows) * fraction))
        if n:
            splits[name], splits[source] = rows[:n], rows[n:]
        return splits
    strata: dict[str, list[dict]] = {}
    for r in rows:
        strata.setdefault(str(stratify(r)), []).append(r)
    taken: list[dict] = []
    for key in sorted(strata):
        group = list(strata[key])
        rng.shuffle(group)
        taken += group[: int(round(len(group) * fraction))]
    if not taken:
        return splits
    ids = {id(r) for r in taken}
    splits[name], splits[source] = taken, [r for r in rows if id(r) not in ids]
    return splits
