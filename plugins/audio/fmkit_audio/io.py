"""Decoding audio (soundfile) and bringing it to the model's rate, channels, length and loudness."""
from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
import torch
from fmkit import io
from fmkit.errors import DataError


def decode_audio(raw: Any, default_rate: int) -> tuple[np.ndarray, int]:
    """``(samples [time, channels] float32, sample_rate)`` from a ``{"array", "sample_rate"}`` dict, a
    numpy array (taken to be at ``default_rate``) or any file form :func:`fmkit.io.read_bytes`
    accepts (path, bytes, base64 text, data URL)."""
    import soundfile as sf

    if isinstance(raw, dict) and "array" in raw:
        return _as_2d(np.asarray(raw["array"], np.float32)), int(raw.get("sample_rate", default_rate))
    if isinstance(raw, (np.ndarray, list, torch.Tensor)):
        arr = raw.numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw, np.float32)
        return _as_2d(arr.astype(np.float32)), default_rate
    data = io.read_bytes(raw, "audio")  # a path, bytes, base64 text, a data URL or such a dict
    try:
        samples, rate = sf.read(BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError...
        raise DataError(f"not a readable audio file ({len(data)} bytes): {e}") from None
    return samples, int(rate)


def _as_2d(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim == 2 and arr.shape[0] < arr.shape[1] and arr.shape[0] <= 8:
        return arr.T  # channels x time
    if arr.ndim != 2:
        raise DataError(f"an audio array must be 1-D or 2-D; got shape {arr.shape}")
    return arr


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

    buf = BytesIO()
    sf.write(buf, wav, rate, format="WAV", subtype="PCM_16")
    return io.encode_base64(buf.getvalue())
