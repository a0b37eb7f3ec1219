"""Hugging Face ``datasets`` as a data source: a folder written by ``save_to_disk`` or any
``load_dataset`` source (a hub name, a local script-free folder of data files).

Rows become fmkit examples ``{"text", "text_pair"?, "label"}``; a ``ClassLabel`` column gives its
label names (not its integer ids), so predictions and reports speak in names. Loading a hub data
set goes through the library's own cache and respects ``HF_DATASETS_OFFLINE``/``HF_HUB_OFFLINE``;
data sets that need a loading script are refused (``trust_remote_code`` stays off).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from fmkit.components import Params
from fmkit.errors import DataError, UsageError

from .cells import text_cell


class HFDatasetParams(Params):
    #: a folder written by Dataset(Dict).save_to_disk, or a load_dataset source (hub name or data folder)
    path: str
    #: the configuration (subset) of a load_dataset source, e.g. sst2 for path glue
    config: str | None = None
    #: which of the data set's splits is fmkit's train / validation / test (a missing one is held out or skipped)
    splits: dict[Literal["train", "validation", "test"], str] = {"train": "train", "validation": "validation",
                                                                 "test": "test"}
    #: column holding the text
    text_column: str = "text"
    #: second text column for sentence-pair tasks
    text_pair_column: str | None = None
    #: column holding the label (class names when it is a ClassLabel)
    label_column: str = "label"
    #: keep at most this many rows per split ({train: 8000}): quick experiments (the first rows, in order)
    limits: dict[Literal["train", "validation", "test"], int] = {}


def _open(p: HFDatasetParams):
    try:
        import datasets
    except ImportError:
        raise UsageError("the hf-dataset source needs the datasets library: pip install 'fmkit-nlp[datasets]'") from None
    folder = Path(p.path)
    if folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "dataset_info.json").is_file()
                            and (folder / "state.json").is_file()):
        loaded = datasets.load_from_disk(str(folder))
    else:
        try:
            loaded = datasets.load_dataset(p.path, p.config)
        except Exception as e:  # the library's errors name the data set; keep the first line
            raise DataError(f"data.path {p.path!r}: load_dataset failed ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:300] if str(e) else ''}); give a save_to_disk folder or a data "
                            "set name that is cached or reachable") from None
    if isinstance(loaded, datasets.Dataset):  # one split saved on its own: it is train
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


class HFDataset:
    """Loads the splits of a Hugging Face data set as fmkit examples."""

    def __init__(self, params: HFDatasetParams, context: dict | None = None):
        self.p = params
        self.dropped: dict[str, int] = {}

    def check(self) -> list[tuple[str, str]]:
        """For ``fmkit validate``: a local folder exists (a hub name is not looked up here)."""
        path = self.p.path
        if path.startswith((".", "/", "~")) and not Path(path).expanduser().exists():
            return [("path", f"{path} does not exist (relative paths are read from the current folder, {Path.cwd()})")]
        return []

    def load(self) -> dict[str, list[dict]]:
        p, data = self.p, _open(self.p)
        if p.splits.get("train") not in data:
            raise DataError(f"data.splits.train: the data set has no split {p.splits.get('train')!r}; "
                            f"its splits are {sorted(data)}")
        out = {}
        for ours, theirs in p.splits.items():
            if theirs in data:
                out[ours] = self._examples(data[theirs], ours)
        return out

    def _examples(self, split, name: str) -> list[dict]:
        p = self.p
        columns = list(split.column_names)
        for field in ("text_column", "text_pair_column"):
            column = getattr(p, field)
            if column and column not in columns:
                raise DataError(f"data.{field}: split {name!r} of {p.path} has no column {column!r}; "
                                f"its columns are {columns}")
        has_label = p.label_column in columns
        if name == "train" and not has_label:
            raise DataError(f"data.label_column: split 'train' of {p.path} has no column {p.label_column!r}; "
                            f"its columns are {columns}")
        feature = split.features.get(p.label_column) if has_label else None
        names = getattr(feature, "names", None)
        limit = p.limits.get(name)
        rows = split.select(range(min(limit, len(split)))) if limit else split
        out = []
        where = lambda i: f"{p.path} (split {name!r}, row {i + 1})"  # noqa: E731
        for i, row in enumerate(rows):  # texts are strings of valid Unicode, as from files (fmkit_nlp.cells)
            ex = {"text": text_cell(row[p.text_column], where, i, p.text_column, "text_column")}
            if ex["text"] is None:
                continue  # a blank text, dropped as the file readers drop it
            if p.text_pair_column:
                ex["text_pair"] = text_cell(row[p.text_pair_column], where, i, p.text_pair_column, "text_pair_column")
            if has_label and row[p.label_column] is not None and row[p.label_column] != -1:  # -1: GLUE's hidden test labels
                label = row[p.label_column]
                ex["label"] = names[label] if names and isinstance(label, int) else str(label)
            elif has_label and name == "test":
                continue  # an unlabelled test row cannot be scored
            out.append(ex)
        return out
