"""The data pipeline: load → clean (drops counted) → split → preprocess (cached) → batches.

Batches come from :class:`EpochBatchPlan`, a seeded, resumable plan of index batches per epoch
(optionally grouped by length and sharded across distributed ranks), so a resumed run sees exactly
the batches the uninterrupted run would have seen.
"""
from __future__ import annotations

import hashlib
import logging
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError, FmkitError
from ..utils.atomic import atomic_write_bytes

log = logging.getLogger("fmkit")


def clean_examples(examples: list[dict], transforms: list, dropped: dict[str, int], split: str) -> list[dict]:
    """Apply cleaning transforms; count each dropped example under ``split/reason``."""
    if not transforms:
        return examples
    out = []
    for ex in examples:
        for t in transforms:
            ex = t(ex)
            if ex is None:
                key = f"{split}/{t.reason}"
                dropped[key] = dropped.get(key, 0) + 1
                break
        else:
            out.append(ex)
    return out


def split_validation(examples: list[dict], fraction: float, seed: int, task, stratify: bool) -> tuple[list, list]:
    """Hold out ``fraction`` of examples; stratified by the task's key, groups kept together."""
    rng = random.Random(seed)
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        g = task.group_key(ex)
        groups[("i", i) if g is None else ("g", g)].append(i)
    strata: dict[Any, list[Any]] = defaultdict(list)
    for gkey, idx in groups.items():
        strata[task.stratify_key(examples[idx[0]]) if stratify else None].append(gkey)
    val_idx: set[int] = set()
    for key in sorted(strata, key=repr):
        gkeys = sorted(strata[key], key=repr)
        rng.shuffle(gkeys)
        n_val = int(round(len(gkeys) * fraction))
        for g in gkeys[:n_val]:
            val_idx.update(groups[g])
    train = [ex for i, ex in enumerate(examples) if i not in val_idx]
    val = [ex for i, ex in enumerate(examples) if i in val_idx]
    return train, val


def _fingerprint(examples: list[dict]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        for k, v in sorted(ex.items()):
            h.update(k.encode())
            if hasattr(v, "tobytes") and hasattr(v, "shape"):  # arrays: hash content (repr abbreviates)
                h.update(f"{getattr(v, 'dtype', '')}{tuple(v.shape)}".encode())
                h.update(v.tobytes())
            else:
                h.update(repr(v).encode("utf-8", "replace"))
    return h.hexdigest()


def preprocess_cached(examples: list[dict], task, cache_dir: Path | None, split: str) -> list[dict]:
    """Preprocess every example, reusing an on-disk cache keyed by content and task parameters."""
    path = None
    if cache_dir is not None and task.cacheable:
        key = hashlib.sha256(f"{_fingerprint(examples)}|{task.fingerprint()}|{type(task).__qualname__}".encode()).hexdigest()[:24]
        path = Path(cache_dir) / f"{task.name}-{split}-{key}.pt"
        if path.is_file():
            try:
                return torch.load(path, weights_only=True)
            except Exception as e:  # a damaged cache is rebuilt, never trusted
                log.warning("ignoring unreadable cache %s: %s", path, e)
    feats = []
    for s in range(0, len(examples), 4096):
        feats.extend(task.preprocess_many(examples[s:s + 4096]))
    if path is not None:
        import io

        buf = io.BytesIO()
        torch.save(feats, buf)
        atomic_write_bytes(path, buf.getvalue())
    return feats


class PreparedDataset(torch.utils.data.Dataset):
    """Preprocessed features plus training-time augmentation with per-example seeded generators."""

    def __init__(self, features: list[dict], augment: list | None = None, seed: int = 0):
        self.features, self.augment, self.seed, self.epoch = features, augment or [], seed, 0

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        f = self.features[i]
        if self.augment:
            import numpy as np

            rng = np.random.default_rng([self.seed, self.epoch, i])
            f = dict(f)
            for t in self.augment:
                f = t(f, rng)
        return f


class EpochBatchPlan:
    """Seeded index batches for one epoch, resumable from any batch, shardable across ranks."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0, lengths: list[int] | None = None,
                 rank: int = 0, world: int = 1, drop_last: bool = False, even: bool | None = None):
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.lengths, self.rank, self.world, self.drop_last = lengths, rank, world, drop_last
        #: give every rank the same number of batches by repeating a few (training needs it: each
        #: step all-reduces gradients); evaluation leaves ranks uneven so no example counts twice
        self.even = shuffle if even is None else even
        self.epoch, self.start = 0, 0

    def batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
        bs = self.batch_size
        if self.lengths is not None:
            chunk = bs * 50
            order = [i for s in range(0, len(order), chunk)
                     for i in sorted(order[s:s + chunk], key=lambda j: -self.lengths[j])]
        out = [order[s:s + bs] for s in range(0, len(order), bs)]
        if self.drop_last and out and len(out[-1]) < bs:
            out.pop()
        if self.lengths is not None and self.shuffle:
            perm = torch.randperm(len(out), generator=g).tolist()
            out = [out[p] for p in perm]
        if self.world > 1:
            if len(out) % self.world and self.even:
                out += out[: self.world - len(out) % self.world]
            out = out[self.rank::self.world]
        return out

    def __len__(self) -> int:
        return len(self.batches())

    def __iter__(self):
        return iter(self.batches()[self.start:])


def make_loader(dataset: PreparedDataset, plan: EpochBatchPlan, collate, num_workers: int, pin_memory: bool):
    return torch.utils.data.DataLoader(dataset, batch_sampler=plan, collate_fn=collate, num_workers=num_workers,
                                       pin_memory=pin_memory, persistent_workers=False,
                                       # own generator: creating an iterator must not consume the global RNG,
                                       # or a resumed run would diverge from the uninterrupted one
                                       generator=torch.Generator().manual_seed(plan.seed))


def _paths(value: Any, where: str):
    """``(field path, string)`` for every string in a dataset's parameters (paths among them)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _paths(v, f"{where}[{i}]")


def check_data_paths(params: Any, root: str = "data") -> None:
    """Refuse data paths that are neither regular files nor folders (a FIFO would block the read
    forever, a device would stream without end) before any dataset opens them."""
    problems = special_data_paths(params, root)
    if problems:
        where, message = problems[0]
        raise DataError(f"{where}: {message}")


def special_data_paths(params: Any, root: str = "data") -> list[tuple[str, str]]:
    """``(field path, message)`` for each data path that exists but is neither a regular file nor a
    folder (``fmkit validate`` lists them all; :func:`check_data_paths` refuses the first)."""
    import os
    import stat

    out = []
    for where, value in _paths(params, root):
        if "\0" in value or len(value) > 4096:
            continue
        try:
            mode = os.stat(value).st_mode
        except (OSError, ValueError):
            continue  # not a path, or not there: the dataset says so in its own words
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) \
                else "a device" if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else "not a regular file"
            out.append((where, f"{value} is {kind}; fmkit reads data from regular files and folders only"))
    return out


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value  # NaN
    if isinstance(value, str):
        return not value.strip() or value.strip().lower() == "nan"
    if isinstance(value, (list, tuple)):
        return any(_is_blank(v) for v in value)
    return False


def drop_blank_labels(examples: list[dict], split: str, dropped: dict[str, int]) -> list[dict]:
    """Drop examples whose ``label`` is blank, None or NaN (it would otherwise become a class of its
    own); count them under ``split/blank-label`` and name them in the log. Examples without a
    ``label`` key (unlabelled data, forecasting) and multi-label examples with no labels are kept."""
    keep, bad = [], []
    for i, ex in enumerate(examples):
        if "label" in ex and not (isinstance(ex["label"], list) and not ex["label"]) and _is_blank(ex["label"]):
            bad.append(str(ex.get("source") or f"#{i + 1}"))
        else:
            keep.append(ex)
    if bad:
        key = f"{split}/blank-label"
        dropped[key] = dropped.get(key, 0) + len(bad)
        log.warning("%s: dropped %d example(s) with a blank or NaN label: %s%s", split, len(bad), ", ".join(bad[:10]),
                    f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    return keep


def _where(recipe, split: str) -> str:
    path = recipe.data.dataset_params().get(split)
    return f"data.{split} ({path})" if isinstance(path, str) else f"the {split} split"


def _warn_same_files(params: dict) -> None:
    """Say so when the test or validation split is the training file itself (a YAML alias, a copy
    and paste): its scores would measure memorisation, not generalisation."""
    import os

    train = params.get("train")
    if not isinstance(train, str) or not os.path.isfile(train):
        return
    for name in ("validation", "test"):
        other = params.get(name)
        if isinstance(other, str) and os.path.isfile(other) and os.path.samefile(train, other):
            log.warning("data.%s (%s) is the training file itself: its scores measure how well the model "
                        "remembers its training examples, not how it does on new ones", name, other)


def load_splits(dataset, recipe, task, dropped: dict[str, int], make_clean) -> dict[str, list[dict]]:
    """Load raw splits, clean them (fresh transforms per split), hold out validation when missing."""
    from ..datasets import missing_split_files

    check_data_paths(recipe.data.dataset_params())
    check = getattr(dataset, "check", None)  # the dataset's own quick look (files, columns), else files only
    missing = check() if callable(check) else missing_split_files(recipe.data.dataset_params(),
                                                                  ("train", "validation", "test", "path"))
    if missing:  # one message for every modality, saying what relative paths are relative to
        raise DataError("; ".join(f"data.{field}: {msg}" for field, msg in missing)
                        + ". Fix the path in the recipe or with --set data.FIELD=PATH")
    _warn_same_files(recipe.data.dataset_params())
    splits = dataset.load()
    # a dataset may report files it could not read (corrupt images, empty audio) as {reason: count}
    for reason, count in (getattr(dataset, "dropped", None) or {}).items():
        dropped[reason] = dropped.get(reason, 0) + count
    if not splits.get("train"):
        raise DataError(f"{_where(recipe, 'train')} gave no training examples (an empty file, or only a header?)")
    for name in list(splits):
        if not splits[name] and isinstance(recipe.data.dataset_params().get(name), str):
            raise DataError(f"{_where(recipe, name)} holds no examples (an empty file, or only a header?)")
        splits[name] = drop_blank_labels(splits[name], name, dropped)
        splits[name] = clean_examples(splits[name], make_clean(), dropped, name)
        if name == "train" and not splits[name]:
            raise DataError(f"every training example of {_where(recipe, 'train')} was dropped while cleaning "
                            f"({', '.join(f'{k}: {v}' for k, v in sorted(dropped.items()))}); see data.clean")
    if not splits.get("validation") and recipe.data.validation_split > 0:
        share, total = recipe.data.validation_split, len(splits["train"])
        splits["train"], splits["validation"] = split_validation(
            splits["train"], share, recipe.data.split_seed, task, recipe.data.stratify)
        if not splits["validation"]:
            per_class = " (a stratified hold-out takes that share of each class, and every class is too small to " \
                        "give one)" if recipe.data.stratify and getattr(task, "classification", False) else ""
            raise DataError(f"data.validation_split {share:g} of {total} training example(s) holds out none{per_class}, "
                            "so there would be nothing to validate on: give a data.validation file, more examples, "
                            "or a larger share")
        if not splits["train"]:
            raise DataError(f"data.validation_split {share:g} holds out all {total} training example(s), leaving "
                            "none to train on: give a smaller share")
    return splits


def dataset_metadata(dataset, name: str) -> dict[str, Any]:
    """The dataset's :meth:`~fmkit.Dataset.metadata` (a method or a dict attribute), ``{}`` when it has
    none; an answer that is not a dict is refused naming the dataset component."""
    found = getattr(dataset, "metadata", None)
    metadata = found() if callable(found) else found
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise FmkitError(f"dataset {name!r}: metadata() must return a dict (fmkit.Dataset.metadata); "
                         f"got {type(metadata).__name__}")
    return metadata
