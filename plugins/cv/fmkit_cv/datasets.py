"""Image data sets: ImageFolder trees, CSV/JSONL manifests, MNIST IDX files, numpy arrays, sklearn digits.

Every dataset yields raw examples ``{"image": path-or-array, "label": str, "source": where}``.
Unreadable image files are reported (a warning per file, counts in the run's data summary) and
skipped; they never stop a run.
"""
from __future__ import annotations

import csv
import gzip
import json
import logging
import struct
from pathlib import Path
from typing import Literal

import numpy as np
from fmkit import carve_split
from fmkit.components import Params
from fmkit.errors import DataError

from .images import check_image_file

log = logging.getLogger("fmkit.cv")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class _Splits(Params):
    #: carve a seeded test split out of train when the data has none
    test_fraction: float = 0.0
    #: seed of the shuffle that carves the test split (the same seed carves the same images)
    seed: int = 0


class _FileChecker:
    """Drops unreadable image files, counting them by reason for the run report."""

    def __init__(self, mode: str):
        self.mode, self.dropped = mode, {}

    def keep(self, rows: list[dict], split: str) -> list[dict]:
        if self.mode == "none":
            return rows
        out = []
        for r in rows:
            problem = check_image_file(r["image"], full=self.mode == "decode")
            if problem:
                log.warning("skipping unreadable image %s: %s", r["image"], problem)
                key = f"{split}/unreadable-image"
                self.dropped[key] = self.dropped.get(key, 0) + 1
            else:
                out.append(r)
        return out


class ImageFolderParams(_Splits):
    #: a folder of class sub-folders (``train/ants/*.jpg``)
    train: str
    #: a folder of class sub-folders for the validation split (null: data.validation_split of train is held out)
    validation: str | None = None
    #: a folder of class sub-folders for the test split (null: test_fraction of train is carved out, or none)
    test: str | None = None
    #: how hard to check files before training: header (verify), full decode, or not at all
    check: Literal["verify", "decode", "none"] = "verify"


class ImageFolder:
    """``root/<label>/<image>`` trees, one per split (the torchvision ImageFolder layout)."""

    def __init__(self, params: ImageFolderParams, context: dict | None = None):
        self.p, self.checker = params, _FileChecker(params.check)
        self.dropped = self.checker.dropped

    def load_file(self, path: str) -> list[dict]:
        root = Path(path)
        if not root.is_dir():
            raise DataError(f"image folder {root} does not exist (expected {root}/<label>/<image>)")
        rows = [{"image": str(f), "label": d.name, "source": str(f)}
                for d in sorted(p for p in root.iterdir() if p.is_dir())
                for f in sorted(d.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        if not rows:
            raise DataError(f"{root}: no images in class sub-folders (expected {root}/<label>/<image>.jpg)")
        return rows

    def load(self) -> dict[str, list[dict]]:
        splits = {name: self.checker.keep(self.load_file(getattr(self.p, name)), name)
                  for name in ("train", "validation", "test") if getattr(self.p, name)}
        return carve_split(splits, "test", self.p.test_fraction, self.p.seed)

    def check(self) -> list[tuple[str, str]]:
        """For ``fmkit validate``: each split's folder exists and holds at least one image in a class
        sub-folder (the first one found is enough; nothing is decoded)."""
        from fmkit import missing_split_files

        problems = missing_split_files(self.p)
        for name in ("train", "validation", "test"):
            value = getattr(self.p, name)
            if not value or any(field == name for field, _ in problems):
                continue
            root = Path(value)
            if not root.is_dir():
                problems.append((name, f"{root} is a file; data.{name} is a folder of class sub-folders "
                                       f"({root}/<label>/<image>.jpg)"))
            elif not any(f.suffix.lower() in IMAGE_SUFFIXES for d in root.iterdir() if d.is_dir() for f in d.rglob("*")):
                problems.append((name, f"{root}: no images in class sub-folders (expected {root}/<label>/<image>.jpg)"))
        return problems


class ManifestParams(_Splits):
    #: CSV or JSONL files of (path, label) rows; relative paths are relative to the manifest
    train: str
    #: a manifest for the validation split (null: data.validation_split of train is held out)
    validation: str | None = None
    #: a manifest for the test split (null: test_fraction of train is carved out, or none)
    test: str | None = None
    #: the column (CSV) or key (JSONL) holding each image's path
    path_column: str = "path"
    #: the column (CSV) or key (JSONL) holding each image's label
    label_column: str = "label"
    #: multi-label: labels separated by this string in the label column
    label_separator: str | None = None
    #: how hard to check files before training: header (verify), full decode, or not at all
    check: Literal["verify", "decode", "none"] = "verify"


class ImageManifest:
    """CSV or JSONL manifests with an image path and a label per row."""

    def __init__(self, params: ManifestParams, context: dict | None = None):
        self.p, self.checker = params, _FileChecker(params.check)
        self.dropped = self.checker.dropped

    def load_file(self, path: str) -> list[dict]:
        mf, p = Path(path), self.p
        if not mf.is_file():
            raise DataError(f"manifest {mf} does not exist")
        with open(mf, encoding="utf-8", newline="") as f:
            rows = [json.loads(line) for line in f if line.strip()] if mf.suffix in (".jsonl", ".json") \
                else list(csv.DictReader(f))
        out = []
        for i, row in enumerate(rows, start=2 if mf.suffix == ".csv" else 1):
            if p.path_column not in row:
                raise DataError(f"{mf}:{i}: no column {p.path_column!r} (columns: {sorted(row)}); set data.path_column")
            img = Path(row[p.path_column])
            img = img if img.is_absolute() else mf.parent / img
            label = row.get(p.label_column)
            if p.label_separator and isinstance(label, str):
                label = label.split(p.label_separator)
            out.append({"image": str(img), "label": label, "source": f"{mf}:{i}"})
        return out

    def load(self) -> dict[str, list[dict]]:
        splits = {name: self.checker.keep(self.load_file(getattr(self.p, name)), name)
                  for name in ("train", "validation", "test") if getattr(self.p, name)}
        return carve_split(splits, "test", self.p.test_fraction, self.p.seed)


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX array (MNIST's format), gzipped or not, parsed directly (no checksum expectations)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise DataError(f"{path}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} but holds {arr.size} values (truncated file?)")
    return arr.reshape(shape)


class IdxParams(_Splits):
    #: image and label IDX files (``t10k-images-idx3-ubyte.gz``...)
    images: str
    #: the IDX file of the labels, one per image of ``images``
    labels: str
    #: an IDX file of test images (with test_labels; null: test_fraction of train is carved out, or none)
    test_images: str | None = None
    #: the IDX file of the test images' labels
    test_labels: str | None = None


class IdxImages:
    """MNIST-style IDX files: uint8 images ``N x H x W`` and labels ``N``."""

    def __init__(self, params: IdxParams, context: dict | None = None):
        self.p = params

    def _rows(self, images: str, labels: str) -> list[dict]:
        x, y = read_idx(images), read_idx(labels)
        if len(x) != len(y):
            raise DataError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
        return [{"image": x[i], "label": str(int(y[i])), "source": f"{Path(images).name}[{i}]"} for i in range(len(x))]

    def load(self) -> dict[str, list[dict]]:
        splits = {"train": self._rows(self.p.images, self.p.labels)}
        if self.p.test_images and self.p.test_labels:
            splits["test"] = self._rows(self.p.test_images, self.p.test_labels)
        return carve_split(splits, "test", self.p.test_fraction, self.p.seed)


class NumpyParams(_Splits):
    #: a .npz with arrays ``x`` (N x H x W [x C]) and ``y`` (N), or two .npy files
    path: str | None = None
    #: instead of path: a .npy file of images (N x H x W [x C])
    images: str | None = None
    #: with images: a .npy file of labels (N), one per image
    labels: str | None = None
    #: the array in the .npz that holds the images
    x_key: str = "x"
    #: the array in the .npz that holds the labels
    y_key: str = "y"


class NumpyImages:
    """Images held in numpy arrays (``.npz``, or ``.npy`` pairs)."""

    def __init__(self, params: NumpyParams, context: dict | None = None):
        self.p = params

    def load(self) -> dict[str, list[dict]]:
        p = self.p
        try:
            if p.path:
                with np.load(p.path, allow_pickle=False) as z:
                    x, y = z[p.x_key], z[p.y_key]
            elif p.images and p.labels:
                x, y = np.load(p.images, allow_pickle=False), np.load(p.labels, allow_pickle=False)
            else:
                raise DataError("numpy-images: set data.path (an .npz) or data.images and data.labels (.npy files)")
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"numpy-images: cannot read the arrays: {e}") from None
        if len(x) != len(y):
            raise DataError(f"numpy-images: {len(x)} images but {len(y)} labels")
        rows = [{"image": x[i], "label": str(y[i].item() if hasattr(y[i], "item") else y[i]), "source": f"[{i}]"}
                for i in range(len(x))]
        return carve_split({"train": rows}, "test", p.test_fraction, p.seed)


class DigitsParams(_Splits):
    test_fraction: float = 0.2


class SklearnDigits:
    """scikit-learn's bundled 8x8 digits (1,797 images; no download), a built-in example data set."""

    def __init__(self, params: DigitsParams, context: dict | None = None):
        self.p = params

    def load(self) -> dict[str, list[dict]]:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError("sklearn-digits needs scikit-learn: pip install 'fmkit-cv[sklearn]'") from None
        d = load_digits()
        images = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
        rows = [{"image": images[i], "label": str(int(d.target[i])), "source": f"digits[{i}]"} for i in range(len(images))]
        return carve_split({"train": rows}, "test", self.p.test_fraction, self.p.seed)
