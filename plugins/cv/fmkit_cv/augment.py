"""``image-augment``: timm's training transform (random resized crop, flips, RandAugment or
TrivialAugment, colour jitter, random erasing), applied to training images only, seeded per example."""
from __future__ import annotations

import random
from typing import Any

import torch
from fmkit.components import Params

from .images import storage_to_pil


class ImageAugmentParams(Params):
    #: crop area range of random resized crop (1.0, 1.0 keeps the whole image)
    scale: tuple[float, float] = (0.08, 1.0)
    #: aspect-ratio range (width / height) of random resized crop
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    #: probability of a horizontal flip
    hflip: float = 0.5
    #: probability of a vertical flip
    vflip: float = 0.0
    #: strength of random brightness, contrast and saturation changes (null: none; timm leaves it out
    #: when a timm auto_augment string is set)
    color_jitter: float | None = 0.4
    #: a timm auto-augment string ("rand-m9-mstd0.5-inc1" is RandAugment), or "trivialaugment"
    auto_augment: str | None = None
    #: random erasing probability
    re_prob: float = 0.0


class ImageAugment:
    """Callable ``(features, rng) -> features``: turns the stored image into augmented ``pixel_values``."""

    def __init__(self, params: ImageAugmentParams, context: dict):
        from timm.data import create_transform

        c = context.get("data_config") or {}
        if not c:
            raise ValueError("image-augment needs the image-classification task (no data_config in context)")
        trivial = params.auto_augment == "trivialaugment"
        primary, secondary, final = create_transform(
            c["input_size"], is_training=True, scale=params.scale, ratio=params.ratio, hflip=params.hflip,
            vflip=params.vflip, color_jitter=params.color_jitter,
            auto_augment=None if trivial else params.auto_augment, interpolation=c["interpolation"],
            mean=tuple(c["mean"]), std=tuple(c["std"]), re_prob=params.re_prob, separate=True)
        steps = list(primary.transforms) + list(secondary.transforms) + list(final.transforms)
        if trivial:
            from torchvision.transforms import TrivialAugmentWide

            steps.insert(len(primary.transforms), TrivialAugmentWide())
        from torchvision.transforms import Compose

        self.transform = Compose(steps)

    def __call__(self, features: dict[str, Any], rng) -> dict[str, Any]:
        import numpy as np

        seed = int(rng.integers(2**31 - 1))
        state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):  # seeded per example, without touching the run's RNG
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed)  # timm's RandAugment draws magnitudes from numpy's global generator
            try:
                pixels = self.transform(storage_to_pil(features["image"]))
            finally:
                random.setstate(state)
                np.random.set_state(np_state)
        out = {k: v for k, v in features.items() if k != "image"}
        out["pixel_values"] = pixels
        return out
