"""``audio-augment``: waveform augmentation for training examples (noise at an SNR, time shift,
gain, speed perturbation), seeded per example. SpecAugment lives in the models' feature front end."""
from __future__ import annotations

from typing import Any

import torch
from fmkit.components import Params


class AudioAugmentParams(Params):
    #: additive Gaussian noise at an SNR drawn from this range (dB), with probability noise_prob
    snr_db: tuple[float, float] = (10.0, 30.0)
    #: probability of adding noise to a training clip
    noise_prob: float = 0.5
    #: circular-free time shift of up to this many seconds (zeros fill in)
    max_shift: float = 0.1
    #: gain change range in dB
    gain_db: tuple[float, float] = (-6.0, 6.0)
    #: speed factors drawn from this range (changes pitch too), with probability speed_prob
    speed: tuple[float, float] = (0.9, 1.1)
    #: probability of changing a training clip's speed
    speed_prob: float = 0.5


class AudioAugment:
    """Callable ``(features, rng) -> features`` on ``features["waveform"]`` (length kept)."""

    def __init__(self, params: AudioAugmentParams, context: dict):
        self.p = params
        self.rate = context.get("sample_rate")
        if not self.rate:
            raise ValueError("audio-augment needs the audio-classification task (no sample_rate in context)")

    def __call__(self, features: dict[str, Any], rng) -> dict[str, Any]:
        import torchaudio.functional as AF

        p, wav = self.p, features["waveform"]
        n = wav.numel()
        if rng.random() < p.speed_prob and p.speed != (1.0, 1.0):
            factor = float(rng.uniform(*p.speed))
            # resampling to rate/factor and playing at rate is speed x factor
            # target rate on a grid of rate/50 so the resampling kernel stays small (fast)
            step = max(1, self.rate // 50)
            target = max(step, int(round(self.rate / factor / step)) * step)
            new = AF.resample(wav, self.rate, target)
            wav = new[:n] if new.numel() >= n else torch.nn.functional.pad(new, (0, n - new.numel()))
        shift = int(rng.integers(-int(p.max_shift * self.rate), int(p.max_shift * self.rate) + 1)) if p.max_shift else 0
        if shift > 0:
            wav = torch.cat([torch.zeros(shift), wav[:-shift]])
        elif shift < 0:
            wav = torch.cat([wav[-shift:], torch.zeros(-shift)])
        wav = wav * (10 ** (float(rng.uniform(*p.gain_db)) / 20))
        if rng.random() < p.noise_prob:
            power = wav.pow(2).mean().clamp(min=1e-10)
            snr = float(rng.uniform(*p.snr_db))
            noise = torch.from_numpy(rng.standard_normal(n).astype("float32"))
            wav = wav + noise * (power / 10 ** (snr / 10)).sqrt()
        return {**features, "waveform": wav.contiguous()}
