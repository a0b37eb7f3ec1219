"""image-classification: multi-class and multi-label, with timm's data configuration."""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from fmkit import ClassificationTask
from fmkit.components import Params
from fmkit.errors import DataError

from .hub import HF_HUB_PREFIX, cache_only, is_hub_architecture
from .images import decode_image, encode_png_base64, to_storage


class MixupParams(Params):
    #: Beta(alpha, alpha) for mixup; 0 turns mixup off
    mixup_alpha: float = 0.0
    #: Beta(alpha, alpha) for cutmix; 0 turns cutmix off
    cutmix_alpha: float = 0.0
    #: probability of mixing a batch at all
    prob: float = 1.0
    #: when both are on: probability of cutmix rather than mixup for a mixed batch
    switch_prob: float = 0.5
    #: label smoothing folded into the mixed (soft) targets
    label_smoothing: float = 0.1


class ImageClassificationParams(Params):
    #: model input side in pixels; default: the architecture's pretrained configuration (or 224)
    input_size: int | None = None
    #: eval crop: resize the short side to input_size / crop_pct, then centre-crop input_size
    crop_pct: float | None = None
    #: per-channel mean subtracted from pixels scaled to [0, 1]; default: the architecture's pretrained
    #: configuration (or ImageNet's)
    mean: list[float] | None = None
    #: per-channel standard deviation pixels are divided by after the mean; default as for mean
    std: list[float] | None = None
    #: resampling used when resizing images; default: the architecture's pretrained configuration (or bilinear)
    interpolation: Literal["bilinear", "bicubic", "nearest"] | None = None
    #: each image may have several labels (a list per example, sigmoid scores) instead of exactly one
    multi_label: bool = False
    #: batch-level mixup / cutmix for training (soft targets; the cross-entropy loss accepts them)
    mixup: MixupParams | None = None


class ImageClassification(ClassificationTask):
    """Images in, one label (or several, multi-label) with scores out."""

    name = "image-classification"
    cacheable = True
    no_labels_hint = "check the dataset's label source"
    state_attributes = ("data_config",)

    def __init__(self, params: ImageClassificationParams, context: dict | None = None):
        super().__init__(params, context)
        self.data_config: dict[str, Any] = {}
        self._mixup = None

    # ---------------------------------------------------------------- fitting
    def setup_inputs(self, train_examples, model_params):
        self.data_config = resolve_data_config(self.params, model_params)

    def model_context(self):
        return {**super().model_context(), "data_config": self.data_config}

    # ---------------------------------------------------------------- data
    def fingerprint(self):
        return repr((self.params.model_dump(), self.labels, self.data_config))

    def preprocess(self, example):
        c = self.data_config
        try:
            img = decode_image(example["image"])
        except DataError as e:
            raise DataError(f"{example.get('source') or 'image'}: {e}") from None
        return self.with_target({"image": to_storage(img, c["channels"], c["resize"], c["interpolation"])}, example)

    def eval_pixels(self, image: torch.Tensor) -> torch.Tensor:
        """Deterministic view of a stored image: centre crop, scale to [0, 1], normalise."""
        from torchvision.transforms.v2 import functional as F

        c = self.data_config
        x = F.center_crop(image, [c["input_size"], c["input_size"]]).float().div_(255)
        mean = torch.tensor(c["mean"]).view(-1, 1, 1)
        std = torch.tensor(c["std"]).view(-1, 1, 1)
        return (x - mean) / std

    def collate(self, features):
        pixels = torch.stack([f["pixel_values"] if "pixel_values" in f else self.eval_pixels(f["image"])
                              for f in features])
        return self.add_targets({"pixel_values": pixels}, features)

    def augment_batch(self, batch, seed):
        m = self.params.mixup
        if m is None or self.params.multi_label or "targets" not in batch or len(batch["targets"]) % 2:
            return batch
        if self._mixup is None:
            from timm.data import Mixup

            self._mixup = Mixup(mixup_alpha=m.mixup_alpha, cutmix_alpha=m.cutmix_alpha, prob=m.prob,
                                switch_prob=m.switch_prob, label_smoothing=m.label_smoothing,
                                num_classes=len(self.labels))
        state = np.random.get_state()  # timm's Mixup draws from numpy's global generator
        np.random.seed(seed)
        try:
            x, y = self._mixup(batch["pixel_values"].clone(), batch["targets"])
        finally:
            np.random.set_state(state)
        return {**batch, "pixel_values": x, "targets": y}

    # ---------------------------------------------------------------- model
    def forward(self, model, batch):
        return model(batch["pixel_values"])

    # ---------------------------------------------------------------- inference
    def raw_to_example(self, raw):
        return {"image": decode_image(raw)}

    def export_input_names(self):
        return ["pixel_values"]

    def example_inputs(self):
        """Two small PNGs as base64 text: the form HTTP clients send."""
        return [encode_png_base64(img) for img in _synthetic_images(2, 40)]

    def sample_examples(self):
        return [{"image": img, "label": "bright" if i % 2 == 0 else "dark"}
                for i, img in enumerate(_synthetic_images(6, 40))]


def resolve_data_config(params: ImageClassificationParams, model_params: dict) -> dict[str, Any]:
    """Input size, mean, std, interpolation and crop from the architecture's pretrained
    configuration in timm, overridden by the task's parameters."""
    cfg: dict[str, Any] = {}
    arch = model_params.get("architecture")
    if arch and is_hub_architecture(arch):  # its pretrained configuration is in the repository's config.json
        from timm.models import load_model_config_from_hf

        with cache_only(arch, "model.architecture"):
            cfg = dict(load_model_config_from_hf(arch[len(HF_HUB_PREFIX):])[0])
    elif arch:
        try:
            from timm.models import get_pretrained_cfg

            pc = get_pretrained_cfg(arch)
            cfg = pc.to_dict() if pc is not None else {}
        except Exception:
            cfg = {}
    channels = int(model_params.get("in_chans", 3))
    size = params.input_size or (cfg.get("input_size") or (3, 224, 224))[-1]
    crop = params.crop_pct or cfg.get("crop_pct") or 0.875
    mean = list(params.mean or cfg.get("mean") or (0.485, 0.456, 0.406))
    std = list(params.std or cfg.get("std") or (0.229, 0.224, 0.225))
    if channels != len(mean):  # a grey model from RGB statistics: average them
        mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
    return {"input_size": int(size), "resize": int(size / crop), "crop_pct": float(crop), "mean": mean, "std": std,
            "interpolation": params.interpolation or cfg.get("interpolation") or "bilinear", "channels": channels}


def _synthetic_images(n: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        base = 200 if i % 2 == 0 else 40
        out.append(np.clip(base + rng.normal(0, 20, (size, size + 8, 3)), 0, 255).astype(np.uint8))
    return out
