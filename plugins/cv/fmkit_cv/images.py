"""Decoding images from every form a user hands us, and the uint8 storage tensors the task caches."""
from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
from fmkit import io
from fmkit.errors import DataError
from PIL import Image, UnidentifiedImageError


def decode_image(raw: Any) -> Image.Image:
    """A PIL image from a numpy array (HxW, HxWxC; uint8 or floats in [0, 1]), a PIL image, or any
    file form :func:`fmkit.io.read_bytes` accepts (path, bytes, base64 text, data URL).
    Raises :class:`DataError` when it cannot."""
    if isinstance(raw, Image.Image):
        return raw
    if isinstance(raw, np.ndarray) or hasattr(raw, "numpy"):
        arr = np.asarray(raw.numpy() if hasattr(raw, "numpy") else raw)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8) if arr.max() <= 1.0 \
                else np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)  # CHW -> HWC
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3):
            raise DataError(f"an image array must be HxW or HxWxC; got shape {arr.shape}")
        return Image.fromarray(arr)
    data = io.read_bytes(raw, "image")  # a path, bytes, base64 text, a data URL or such a dict
    try:
        img = Image.open(BytesIO(data))
        img.load()
        return img
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"not a readable image ({len(data)} bytes): {e}") from None


def check_image_file(path: str, full: bool) -> str | None:
    """``None`` when ``path`` is a readable image, else the reason it is not."""
    try:
        with Image.open(path) as img:
            img.load() if full else img.verify()
        return None
    except Exception as e:  # PIL raises many kinds for damaged files
        return f"{type(e).__name__}: {e}"


def to_storage(img: Image.Image, channels: int, short_side: int, interpolation: str):
    """The cached form: mode converted (grey → RGB when the model wants 3 channels), resized so the
    short side is ``short_side`` (aspect kept), as a uint8 ``[C, H, W]`` tensor."""
    import torch
    from timm.data.transforms import str_to_pil_interp

    img = img.convert("RGB" if channels == 3 else "L")
    w, h = img.size
    scale = short_side / min(w, h)
    size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
    if size != (w, h):
        img = img.resize(size, str_to_pil_interp(interpolation))
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(arr.copy())


def storage_to_pil(t) -> Image.Image:
    arr = t.numpy()
    return Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))


def encode_png_base64(arr: np.ndarray) -> str:
    buf = BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return io.encode_base64(buf.getvalue())
