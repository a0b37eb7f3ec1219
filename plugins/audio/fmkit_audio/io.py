"""Decoding audio (soundfile) and bringing it to the model's rate, channels, length and loudness."""
from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fmkit.errors import DataError


def decode_audio(raw: Any, default_rate: int) -> tuple[np.ndarray, int]:
    """``(samples [time, channels] float32, sample_rate)`` from a path, bytes, base64 text, a
    ``{"array", "sample_rate"}`` dict or a numpy array (taken to be at ``default_rate``)."""
    import soundfile as sf

    if isinstance(raw, dict):
        if "array" in raw:
            return _as_2d(np.asarray(raw["array"], np.float32)), int(raw.get("sample_rate", default_rate))
        if "path" in raw:
            raw = Path(raw["path"])
        elif "base64" in raw:
            raw = _b64(raw["base64"])
    if isinstance(raw, (np.ndarray, list, torch.Tensor)):
        arr = raw.numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw, np.float32)
        return _as_2d(arr.astype(np.float32)), default_rate
    if isinstance(raw, str):
        p = Path(raw) if len(raw) < 1024 else None
        raw = p if p is not None and p.suffix and p.is_file() else _b64(raw.split(",", 1)[-1] if raw.startswith("data:") else raw)
    if isinstance(raw, Path):
        if not raw.is_file():
            raise DataError(f"audio file {raw} does not exist")
        raw = raw.read_bytes()
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            data, rate = sf.read(io.BytesIO(bytes(raw)), dtype="float32", always_2d=True)
        except Exception as e:  # soundfile raises LibsndfileError, RuntimeError...
            raise DataError(f"not a readable audio file ({len(raw)} bytes): {e}") from None
        return data, int(rate)
    raise DataError(f"cannot read audio from a {type(raw).__name__}; pass a path, bytes, base64 text or an array")


def _as_2d(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim == 2 and arr.shape[0] < arr.shape[1] and arr.shape[0] <= 8:
        return arr.T  # channels x time
    if arr.ndim != 2:
        raise DataError(f"an audio array must be 1-D or 2-D; got shape {arr.shape}")
    return arr


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DataError("audio text is neither an existing file path nor valid base64") from None


def check_audio_file(path: str) -> str | None:
    """``None`` when ``path`` decodes to at least one sample, else the reason."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception as e:
        return f"unreadable: {e}"
    if info.frames == 0:
        return "empty (0 samples)"
    return None


def prepare(samples: np.ndarray, rate: int, target_rate: int, num_samples: int | None, loudness: str,
            target_db: float, crop: str = "center") -> torch.Tensor:
    """Mono, resampled, loudness-normalised, padded or cropped to ``num_samples``: a float32 ``[T]`` tensor."""
    import torchaudio.functional as AF

    wav = torch.from_numpy(np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32))
    if rate != target_rate:
        wav = AF.resample(wav, rate, target_rate)
    if not torch.isfinite(wav).all():
        raise DataError("audio contains NaN or infinite samples")
    if loudness == "peak":
        peak = wav.abs().max()
        if peak > 0:
            wav = wav / peak * (10 ** (target_db / 20))
    elif loudness == "rms":
        rms = wav.pow(2).mean().sqrt()
        if rms > 0:
            wav = wav / rms * (10 ** (target_db / 20))
    if num_samples:
        n = wav.numel()
        if n > num_samples:
            start = (n - num_samples) // 2 if crop == "center" else 0
            wav = wav[start:start + num_samples]
        elif n < num_samples:
            left = (num_samples - n) // 2 if crop == "center" else 0
            wav = torch.nn.functional.pad(wav, (left, num_samples - n - left))
    return wav.contiguous()


def encode_wav_base64(wav: np.ndarray, rate: int) -> str:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, wav, rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()
