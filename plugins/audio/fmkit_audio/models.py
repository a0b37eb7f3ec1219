"""Audio models taking ``waveform [batch, time]`` at the task's sample rate and returning class scores.

Features (log-mel, MFCC) are computed by a torchaudio front end inside the model, so they run on
the training device and travel with exports; SpecAugment masks them in training mode only.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from fmkit.components import Params
from fmkit.errors import UsageError
from torch import nn


class SpecAugmentParams(Params):
    #: frequency masks per training clip (bands of feature bins set to zero)
    freq_masks: int = 2
    #: largest width of a frequency mask, in feature bins (each mask's width is drawn at random up to it)
    freq_width: int = 8
    #: time masks per training clip
    time_masks: int = 2
    #: largest width of a time mask, in frames (hop_length samples each)
    time_width: int = 10


class FrontendParams(Params):
    #: the features: log-mel (log of the mel spectrogram), mel (its power, no log) or mfcc (cepstral
    #: coefficients); each clip's features are then standardised
    kind: Literal["log-mel", "mel", "mfcc"] = "log-mel"
    #: mel frequency bands
    n_mels: int = 64
    #: FFT window length in samples (512 at 16 kHz: 32 ms)
    n_fft: int = 512
    #: samples between two frames (160 at 16 kHz: 10 ms)
    hop_length: int = 160
    #: coefficients kept when kind is mfcc
    n_mfcc: int = 40
    #: lowest frequency of the mel bands, in Hz
    f_min: float = 0.0
    #: highest frequency of the mel bands, in Hz (null: half the sample rate)
    f_max: float | None = None
    #: time and frequency masking on the features, in training only
    spec_augment: SpecAugmentParams | None = None


class PowerSpectrogram(nn.Module):
    """``|STFT|^2`` as a strided convolution with windowed DFT kernels: the same numbers as
    torchaudio's ``Spectrogram`` (Hann window, centred, reflect padding) in real-valued operations,
    so models export to ONNX (whose STFT lacks complex support) and run on any device."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop_length
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        angle = 2 * torch.pi * k[:, None] * n[None, :] / n_fft
        window = torch.hann_window(n_fft, dtype=torch.float64)
        kernels = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])[:, None, :]
        self.register_buffer("kernels", kernels.float(), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        pad = self.n_fft // 2
        x = nn.functional.pad(waveform[:, None, :], (pad, pad), mode="reflect")
        y = nn.functional.conv1d(x, self.kernels, stride=self.hop)
        re, im = y.chunk(2, dim=1)
        return re * re + im * im  # [B, n_fft // 2 + 1, frames]


class FeatureFrontend(nn.Module):
    """Mel spectrogram, log-mel or MFCC (torchaudio's mel filter bank and DCT), normalised per
    example: ``[B, 1, F, frames]``."""

    def __init__(self, p: FrontendParams, sample_rate: int):
        super().__init__()
        import torchaudio.functional as AF
        import torchaudio.transforms as T

        self.kind = p.kind
        self.spectrogram = PowerSpectrogram(p.n_fft, p.hop_length)
        fb = AF.melscale_fbanks(p.n_fft // 2 + 1, p.f_min, p.f_max or sample_rate / 2, p.n_mels, sample_rate)
        self.register_buffer("mel_fb", fb, persistent=False)
        dct = AF.create_dct(p.n_mfcc, p.n_mels, "ortho") if p.kind == "mfcc" else torch.zeros(0)
        self.register_buffer("dct", dct, persistent=False)
        sa = p.spec_augment
        self.masks = nn.Sequential(
            *[T.FrequencyMasking(sa.freq_width) for _ in range(sa.freq_masks)],
            *[T.TimeMasking(sa.time_width) for _ in range(sa.time_masks)]) if sa else None

    def mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram ``[B, n_mels, frames]``."""
        return torch.matmul(self.spectrogram(waveform.float()).transpose(1, 2), self.mel_fb).transpose(1, 2)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.mel(waveform)
        if self.kind == "log-mel":
            x = torch.log(x + 1e-6)
        elif self.kind == "mfcc":
            x = torch.matmul((10 * torch.log10(x + 1e-10)).transpose(1, 2), self.dct).transpose(1, 2)
        mean = x.mean(dim=(-2, -1), keepdim=True)
        std = x.std(dim=(-2, -1), keepdim=True)
        x = (x - mean) / (std + 1e-5)
        if self.masks is not None and self.training:
            x = self.masks(x)
        return x.unsqueeze(1)


class AudioCNNParams(Params):
    #: how waveforms become features (computed inside the model, so exports take waveforms)
    frontend: FrontendParams = FrontendParams()
    #: output channels of each convolution block; each block halves time and frequency resolution
    channels: list[int] = [16, 32, 64, 128]
    #: convolutions per block (each block ends with 2x2 max pooling)
    convs_per_block: int = 1
    #: dropout probability before the classifier head
    dropout: float = 0.2


class AudioCNN(nn.Module):
    """A compact CNN on log-mel features: conv-BN-ReLU-pool blocks, global pooling, a linear head."""

    def __init__(self, params: AudioCNNParams, context: dict):
        super().__init__()
        self.frontend = FeatureFrontend(params.frontend, context.get("sample_rate", 16000))
        layers, cin = [], 1
        for c in params.channels:
            for _ in range(params.convs_per_block):
                layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                cin = c
            layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(params.dropout)
        fp = params.frontend
        bands = (fp.n_mfcc if fp.kind == "mfcc" else fp.n_mels) // 2 ** len(params.channels)
        if bands < 1:
            raise UsageError(f"model.channels: {len(params.channels)} pooling blocks leave no frequency band of "
                             f"{fp.n_mels} mel bins; use fewer blocks or more bins")
        # pool over time only: where energy sits in frequency is the information (a global pool
        # would make the model blind to pitch, e.g. unable to tell a 300 Hz tone from a 1.5 kHz one)
        self.head = nn.Linear(cin * bands, len(context.get("labels") or [0, 1]))
        self.fmkit_head_prefixes = ("head",)

    def forward(self, waveform):
        x = self.body(self.frontend(waveform)).mean(dim=-1)  # [B, C, bands]
        return self.head(self.dropout(x.flatten(1)))


class SSLParams(Params):
    #: a torchaudio builder (wav2vec2_base, hubert_base, wav2vec2_large...) ...
    architecture: str = "wav2vec2_base"
    #: ... or the keyword arguments of torchaudio.models.wav2vec2_model (small configs for tests)
    config: dict[str, Any] | None = None
    #: a local state dict of the encoder (safetensors, or loaded with weights_only=True)
    pretrained: str | None = None
    #: keep the convolutional feature encoder frozen (common for small data)
    freeze_feature_encoder: bool = True


class TorchaudioSSLClassifier(nn.Module):
    """torchaudio's wav2vec2 / HuBERT encoder, mean-pooled over time, with a linear head."""

    def __init__(self, params: SSLParams, context: dict):
        super().__init__()
        import torchaudio.models as M

        if params.config:
            self.encoder = M.wav2vec2_model(**{"aux_num_out": None, **params.config})
        else:
            builder = getattr(M, params.architecture, None)
            if builder is None or not params.architecture.startswith(("wav2vec2", "hubert", "wavlm")):
                raise UsageError(f"model.architecture {params.architecture!r} is not a torchaudio wav2vec2/HuBERT "
                                 "builder (wav2vec2_base, hubert_base, wavlm_base...)")
            self.encoder = builder()
        if params.pretrained and not context.get("inference"):
            _load_local_state(self.encoder, params.pretrained)
        if params.freeze_feature_encoder:
            for p in self.encoder.feature_extractor.parameters():
                p.requires_grad_(False)
        dim = self.encoder.encoder.transformer.layers[0].attention.k_proj.out_features
        self.head = nn.Linear(dim, len(context.get("labels") or [0, 1]))
        self.fmkit_head_prefixes = ("head",)

    def forward(self, waveform):
        x = waveform - waveform.mean(-1, keepdim=True)
        x = x / (x.std(-1, keepdim=True) + 1e-5)
        hidden, _ = self.encoder(x)
        return self.head(hidden.mean(1))


class HFAudioParams(Params):
    #: a local folder in the Hugging Face layout
    pretrained: str | None = None
    #: or an architecture config: model_type (wav2vec2, hubert, audio-spectrogram-transformer) plus sizes
    config: dict[str, Any] | None = None
    #: allow running Python code shipped with the model (its config's auto_map); only for models you trust
    trust_remote_code: bool = False


class HFAudioClassifier(nn.Module):
    """transformers' audio classification models (Wav2Vec2ForSequenceClassification, AST...).

    Waveform models get zero-mean unit-variance input; AST gets Kaldi filter banks computed with
    torchaudio (its feature extractor's recipe: 128 bins, 10 ms shift, normalised with AST's statistics)."""

    def __init__(self, params: HFAudioParams, context: dict):
        super().__init__()
        from transformers import AutoConfig, AutoModelForAudioClassification
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        labels = context.get("labels") or ["0", "1"]
        kw = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
              "label2id": {lab: i for i, lab in enumerate(labels)}}
        if params.pretrained and not context.get("inference"):
            from fmkit.utils.paths import resolve_package_path

            self.hf = AutoModelForAudioClassification.from_pretrained(
                str(resolve_package_path(params.pretrained, "model.pretrained")), local_files_only=True,
                ignore_mismatched_sizes=True, trust_remote_code=params.trust_remote_code, **kw)
        elif params.pretrained:
            from fmkit.utils.paths import resolve_package_path

            cfg = AutoConfig.from_pretrained(str(resolve_package_path(params.pretrained, "model.pretrained")),
                                             local_files_only=True, **kw)
            self.hf = AutoModelForAudioClassification.from_config(cfg)
        elif params.config:
            cfg = dict(params.config)
            self.hf = AutoModelForAudioClassification.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg, **kw))
        else:
            raise UsageError("model: set pretrained (a local folder) or config (model_type plus sizes)")
        self.is_ast = self.hf.config.model_type == "audio-spectrogram-transformer"
        self.sample_rate = context.get("sample_rate", 16000)
        self.fmkit_head_prefixes = tuple("hf." + n for n, _ in self.hf.named_children() if n in ("classifier", "projector"))

    def forward(self, waveform):
        if self.is_ast:
            return self.hf(input_values=self._fbank(waveform)).logits
        x = waveform - waveform.mean(-1, keepdim=True)
        return self.hf(input_values=x / (x.std(-1, keepdim=True) + 1e-5)).logits

    def _fbank(self, waveform):
        import torchaudio.compliance.kaldi as K

        cfg = self.hf.config
        out = []
        for w in waveform:
            f = K.fbank(w[None] * 32768, sample_frequency=self.sample_rate, num_mel_bins=cfg.num_mel_bins,
                        frame_shift=10, htk_compat=True, window_type="hanning", dither=0.0, use_energy=False)
            n = cfg.max_length
            f = f[:n] if f.shape[0] >= n else torch.nn.functional.pad(f, (0, 0, 0, n - f.shape[0]))
            out.append((f - (-4.2677393)) / (4.5689974 * 2))
        return torch.stack(out)


def _load_local_state(module: nn.Module, path: str) -> None:
    from fmkit.utils.paths import resolve_package_path

    p = resolve_package_path(path, "model.pretrained")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        try:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
        except Exception as e:
            raise UsageError(f"model.pretrained: {p} does not load safely (weights_only=True): {e}") from None
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing:
        raise UsageError(f"model.pretrained: {p} lacks {len(missing)} encoder tensors (first: {missing[:3]}); "
                         "is it this architecture?")
