"""Audio data: class folders, CSV/JSONL manifests, labels from file-name patterns; splits by group
(speaker), by file-name index, or stratified. Unreadable or empty files are reported and skipped."""
from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path
from typing import Literal

from fmkit import carve_split
from fmkit.components import Params
from fmkit.errors import DataError

from .io import check_audio_file

log = logging.getLogger("fmkit.audio")
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"}


class AudioFilesParams(Params):
    #: a folder of audio files (class sub-folders, or flat with label_pattern) or a CSV/JSONL manifest
    train: str
    #: the same for the validation split (null: data.validation_split of train is held out, by group
    #: when task.group_validation)
    validation: str | None = None
    #: the same for the test split (null: carved out of train, see test_index)
    test: str | None = None
    #: where labels come from: sub-folder names, a manifest column, or a file-name pattern
    label_from: Literal["folder", "column", "pattern"] = "folder"
    #: regex on the file name with named groups: label, and optionally group (speaker) and index
    #: (FSDD: ``(?P<label>\\d+)_(?P<group>[a-z]+)_(?P<index>\\d+)\\.wav``)
    label_pattern: str | None = None
    #: manifests: the column holding each audio file's path (relative paths are read from the manifest's folder)
    path_column: str = "path"
    #: manifests with label_from: column: the column holding the label
    label_column: str = "label"
    #: manifests: a column naming each file's group (speaker), kept on one side of a split (null: no groups)
    group_column: str | None = None
    #: carve the test split out of train: files whose index lies in test_index (inclusive range),
    #: files of the test_groups, or a seeded stratified fraction
    test_index: tuple[int, int] | None = None
    #: the groups (speakers) whose files form the test split
    test_groups: list[str] | None = None
    #: share of each label's files carved out of train as the test split (when test_index and test_groups are unset)
    test_fraction: float = 0.0
    #: seed of that carve (the same seed carves the same files)
    seed: int = 0


class AudioFiles:
    """Yields raw examples ``{"audio": path, "label", "group", "index", "source"}``."""

    def __init__(self, params: AudioFilesParams, context: dict | None = None):
        self.p = params
        self.dropped: dict[str, int] = {}
        if params.label_from == "pattern" and not params.label_pattern:
            raise DataError("data.label_from: pattern needs data.label_pattern (a regex with a (?P<label>...) group)")
        self.pattern = re.compile(params.label_pattern) if params.label_pattern else None

    def _from_name(self, path: Path) -> dict:
        m = self.pattern.search(path.name) if self.pattern else None
        if m is None:
            return {}
        d = m.groupdict()
        return {k: (int(v) if k == "index" and v is not None else v) for k, v in d.items() if v is not None}

    def load_file(self, source: str) -> list[dict]:
        p, root = self.p, Path(source)
        rows: list[dict] = []
        if root.is_dir():
            for f in sorted(x for x in root.rglob("*") if x.suffix.lower() in AUDIO_SUFFIXES):
                ex = {"audio": str(f), "source": str(f), **self._from_name(f)}
                if p.label_from == "folder":
                    if f.parent == root:
                        raise DataError(f"{f} is not in a class sub-folder; use label_from: pattern for flat folders")
                    ex["label"] = f.parent.name
                rows.append(ex)
        elif root.is_file():
            with open(root, encoding="utf-8", newline="") as fh:
                table = [json.loads(x) for x in fh if x.strip()] if root.suffix in (".jsonl", ".json") else list(csv.DictReader(fh))
            for i, r in enumerate(table, start=2 if root.suffix == ".csv" else 1):
                if p.path_column not in r:
                    raise DataError(f"{root}:{i}: no column {p.path_column!r}; set data.path_column")
                f = Path(r[p.path_column])
                f = f if f.is_absolute() else root.parent / f
                ex = {"audio": str(f), "source": f"{root}:{i}", **self._from_name(f)}
                if p.label_from == "column":
                    ex["label"] = r.get(p.label_column)
                if p.group_column:
                    ex["group"] = r.get(p.group_column)
                rows.append(ex)
        else:
            raise DataError(f"audio data {root} does not exist (a folder or a CSV/JSONL manifest)")
        if p.label_from == "pattern":
            unlabeled = [r["source"] for r in rows if "label" not in r]
            if unlabeled:
                raise DataError(f"{len(unlabeled)} file names do not match data.label_pattern (first: {unlabeled[0]})")
        if not rows:
            raise DataError(f"{root}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
        return rows

    def _keep_readable(self, rows: list[dict], split: str) -> list[dict]:
        out = []
        for r in rows:
            problem = check_audio_file(r["audio"])
            if problem:
                log.warning("skipping %s: %s", r["audio"], problem)
                key = f"{split}/unreadable-or-empty-audio"
                self.dropped[key] = self.dropped.get(key, 0) + 1
            else:
                out.append(r)
        return out

    def load(self) -> dict[str, list[dict]]:
        p = self.p
        splits = {n: self._keep_readable(self.load_file(getattr(p, n)), n)
                  for n in ("train", "validation", "test") if getattr(p, n)}
        if "test" not in splits:
            rows = splits["train"]
            if p.test_index is not None:
                lo, hi = p.test_index
                if any("index" not in r for r in rows):
                    raise DataError("data.test_index needs an (?P<index>...) group in data.label_pattern")
                test = [r for r in rows if lo <= r["index"] <= hi]
            elif p.test_groups:
                if any("group" not in r for r in rows):
                    raise DataError("data.test_groups needs a (?P<group>...) pattern group or data.group_column")
                test = [r for r in rows if r["group"] in set(p.test_groups)]
            else:  # a seeded fraction of each label
                return carve_split(splits, "test", p.test_fraction, p.seed, stratify=lambda r: r.get("label"))
            if test:
                ids = {id(r) for r in test}
                splits["train"], splits["test"] = [r for r in rows if id(r) not in ids], test
        return splits

