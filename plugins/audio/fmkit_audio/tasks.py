"""audio-classification: audio files or bytes in any supported format and rate, a label out."""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from fmkit import ClassificationTask
from fmkit.components import Params
from fmkit.errors import DataError

from .io import decode_audio, encode_wav_base64, prepare


class AudioClassificationParams(Params):
    #: the model's sample rate: every input is resampled to it
    sample_rate: int = 16000
    #: fixed length in seconds (pad or crop); None keeps each clip whole and pads batches
    duration: float | None = 1.0
    #: where to crop a longer clip
    crop: Literal["center", "start"] = "center"
    #: loudness normalisation: peak or RMS level in dBFS, or none
    loudness: Literal["peak", "rms", "none"] = "peak"
    #: the level loudness normalisation brings each clip to, in dBFS (0: full scale; ignored with none)
    target_db: float = -1.0
    #: keep groups (speakers) on one side of the validation split
    group_validation: bool = True


class AudioClassification(ClassificationTask):
    """Waveforms in (files, bytes, arrays), a label with scores out. Models take ``waveform [B, T]``
    and compute their features (log-mel, MFCC) on the training device."""

    name = "audio-classification"
    no_labels_hint = "check data.label_from"

    def group_key(self, example):
        return example.get("group") if self.params.group_validation else None

    @property
    def num_samples(self) -> int | None:
        return int(round(self.params.duration * self.params.sample_rate)) if self.params.duration else None

    def model_context(self):
        ctx = super().model_context()
        ctx.update(sample_rate=self.params.sample_rate, num_samples=self.num_samples)
        return ctx

    def preprocess(self, example):
        p = self.params
        try:
            samples, rate = decode_audio(example["audio"], p.sample_rate)
            wav = prepare(samples, rate, p.sample_rate, self.num_samples, p.loudness, p.target_db, p.crop)
        except DataError as e:
            raise DataError(f"{example.get('source') or 'audio'}: {e}") from None
        return self.with_target({"waveform": wav}, example)

    def length(self, features):
        return int(features["waveform"].numel())

    def collate(self, features):
        n = max(f["waveform"].numel() for f in features)
        wav = torch.zeros(len(features), n)
        for i, f in enumerate(features):
            wav[i, : f["waveform"].numel()] = f["waveform"]
        return self.add_targets({"waveform": wav}, features)

    def forward(self, model, batch):
        return model(batch["waveform"])

    def raw_to_example(self, raw):
        samples, rate = decode_audio(raw, self.params.sample_rate)
        if samples.size == 0:
            raise DataError("the audio is empty")
        return {"audio": {"array": samples, "sample_rate": rate}}

    def export_input_names(self):
        return ["waveform"]

    def dynamic_axes(self):
        return {"waveform": {0: "batch"} if self.num_samples else {0: "batch", 1: "time"}}

    def example_inputs(self):
        """Two WAV files (a tone at another rate than the model's, and noise) as base64 text."""
        t = np.arange(8000) / 8000
        rng = np.random.default_rng(0)
        return [encode_wav_base64(0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32), 8000),
                encode_wav_base64((0.3 * rng.standard_normal(8000)).astype(np.float32), 8000)]

    def sample_examples(self):
        sr = self.params.sample_rate
        t = np.arange(int(0.5 * sr)) / sr
        return [{"audio": {"array": (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32), "sample_rate": sr},
                 "label": "low" if f < 1000 else "high"} for f in (200, 2000, 300, 2500, 250, 3000)]
