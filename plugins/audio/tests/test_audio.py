"""fmkit-audio: decoding and normalising, file-name labels and group/index splits, augmentation,
models from tiny configs, and a tiny end-to-end run on generated tones."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from fmkit.errors import DataError


def _tone(freq, rate=8000, seconds=0.4, seed=0, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(seed)
    return (amp * np.sin(2 * np.pi * freq * t) + rng.normal(0, 0.02, t.size)).astype(np.float32)


def _write_fsdd_like(root, speakers=("ann", "bob", "cyd"), per=6):
    root.mkdir(parents=True, exist_ok=True)
    for label, freq in (("0", 300), ("1", 1500)):
        for s, spk in enumerate(speakers):
            for i in range(per):
                wav = _tone(freq * (1 + 0.05 * s) + 10 * i, seed=i + 10 * s)
                fmt = ("WAV", "FLAC", "OGG")[i % 3]
                ext = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg"}[fmt]
                rate = 8000 if i % 2 else 16000  # mixed rates: resampled on load
                if rate == 16000:
                    wav = np.repeat(wav, 2)
                if i % 4 == 0:  # some stereo files: mixed to mono
                    wav = np.stack([wav, wav], 1)
                sf.write(root / f"{label}_{spk}_{i}.{ext}", wav, rate, format=fmt)


PATTERN = r"(?P<label>\d)_(?P<group>[a-z]+)_(?P<index>\d+)\."


def test_pattern_labels_group_and_index_splits_and_bad_files(tmp_path):
    from fmkit_audio.datasets import AudioFiles, AudioFilesParams

    _write_fsdd_like(tmp_path / "rec")
    (tmp_path / "rec" / "1_bob_99.wav").write_bytes(b"RIFF0000WAVEjunk")
    sf.write(tmp_path / "rec" / "0_bob_98.wav", np.zeros(0, np.float32), 8000)
    common = dict(train=str(tmp_path / "rec"), label_from="pattern", label_pattern=PATTERN)
    ds = AudioFiles(AudioFilesParams(**common, test_index=(0, 1)))
    splits = ds.load()
    assert ds.dropped == {"train/unreadable-or-empty-audio": 2}
    assert {r["index"] for r in splits["test"]} == {0, 1} and len(splits["test"]) == 12
    held = AudioFiles(AudioFilesParams(**common, test_groups=["cyd"])).load()
    assert {r["group"] for r in held["test"]} == {"cyd"} and "cyd" not in {r["group"] for r in held["train"]}
    with pytest.raises(DataError, match="do not match"):
        AudioFiles(AudioFilesParams(train=str(tmp_path / "rec"), label_from="pattern", label_pattern=r"^x(?P<label>\d)")).load()


def test_group_aware_validation_keeps_speakers_apart(tmp_path):
    from fmkit.engine.data import split_validation
    from fmkit_audio.datasets import AudioFiles, AudioFilesParams
    from fmkit_audio.tasks import AudioClassification, AudioClassificationParams

    _write_fsdd_like(tmp_path / "rec")
    rows = AudioFiles(AudioFilesParams(train=str(tmp_path / "rec"), label_from="pattern", label_pattern=PATTERN)).load()["train"]
    task = AudioClassification(AudioClassificationParams(group_validation=True))
    train, val = split_validation(rows, 0.34, 0, task, stratify=False)
    assert val and not ({r["group"] for r in train} & {r["group"] for r in val})


def test_prepare_resamples_mixes_normalises_and_fixes_length():
    from fmkit_audio.io import prepare

    stereo = np.stack([_tone(440, 16000, 0.3), _tone(440, 16000, 0.3)], 1) * 0.1
    wav = prepare(stereo, 16000, 8000, 8000, "peak", -1.0)
    assert wav.shape == (8000,)
    assert float(wav.abs().max()) == pytest.approx(10 ** (-1 / 20), rel=1e-3)
    long = prepare(_tone(440, 8000, 2.0)[:, None], 8000, 8000, 4000, "none", 0.0)
    assert long.shape == (4000,)


def test_augment_is_seeded_and_keeps_length():
    from fmkit_audio.augment import AudioAugment, AudioAugmentParams

    aug = AudioAugment(AudioAugmentParams(noise_prob=1.0, speed_prob=1.0), {"sample_rate": 8000})
    f = {"waveform": torch.from_numpy(_tone(500)), "targets": 1}
    a = aug(f, np.random.default_rng([1, 2, 3]))["waveform"]
    b = aug(f, np.random.default_rng([1, 2, 3]))["waveform"]
    c = aug(f, np.random.default_rng([1, 2, 4]))["waveform"]
    assert a.shape == f["waveform"].shape and torch.equal(a, b) and not torch.equal(a, c)


def test_frontend_matches_torchaudio_mel_spectrogram():
    import torchaudio.transforms as T
    from fmkit_audio.models import FeatureFrontend, FrontendParams

    x = torch.randn(2, 4000)
    ours = FeatureFrontend(FrontendParams(n_mels=32, n_fft=256, hop_length=64), 8000).mel(x)
    ref = T.MelSpectrogram(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32)(x)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max()))


def test_spec_augment_only_in_training_and_mfcc_frontend():
    from fmkit_audio.models import AudioCNN, AudioCNNParams, FrontendParams, SpecAugmentParams

    ctx = {"sample_rate": 8000, "labels": ["a", "b", "c"]}
    p = AudioCNNParams(channels=[4], frontend=FrontendParams(n_mels=16, n_fft=128, hop_length=64,
                                                             spec_augment=SpecAugmentParams()))
    model = AudioCNN(p, ctx)
    x = torch.randn(2, 4000)
    model.eval()
    assert torch.equal(model.frontend(x), model.frontend(x))
    model.train()
    torch.manual_seed(0)
    assert not torch.equal(model.frontend(x), model.eval().frontend(x))
    mfcc = AudioCNN(AudioCNNParams(channels=[4], frontend=FrontendParams(kind="mfcc", n_mfcc=13, n_mels=16, n_fft=128,
                                                                         hop_length=64)), ctx)
    assert mfcc(x).shape == (2, 3)


def test_hf_ast_from_config_runs_on_waveforms():
    pytest.importorskip("transformers")
    from fmkit_audio.models import HFAudioClassifier, HFAudioParams

    cfg = {"model_type": "audio-spectrogram-transformer", "hidden_size": 16, "num_hidden_layers": 1,
           "num_attention_heads": 2, "intermediate_size": 32, "max_length": 64, "num_mel_bins": 32,
           "patch_size": 16, "frequency_stride": 16, "time_stride": 16}
    model = HFAudioClassifier(HFAudioParams(config=cfg), {"sample_rate": 8000, "labels": ["a", "b"]})
    assert model(torch.randn(2, 4000)).shape == (2, 2)


def test_end_to_end_tones_with_export_and_bytes_input(tmp_path):
    import fmkit

    _write_fsdd_like(tmp_path / "rec", per=10)
    run = fmkit.train({
        "task": {"name": "audio-classification", "sample_rate": 8000, "duration": 0.4},
        "model": {"name": "audio-cnn", "channels": [8, 16],
                  "frontend": {"n_mels": 32, "n_fft": 256, "hop_length": 80,
                               "spec_augment": {"freq_masks": 1, "freq_width": 4, "time_masks": 1, "time_width": 4}}},
        "data": {"train": str(tmp_path / "rec"), "label_from": "pattern", "label_pattern": PATTERN,
                 "test_index": [0, 1], "validation_split": 0.2, "cache_dir": str(tmp_path / "cache"),
                 "augment": [{"name": "audio-augment"}]},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "train": {"epochs": 15, "batch_size": 8, "progress": "off"},
        "export": {"formats": ["onnx"]},
        "tracking": {"runs_dir": str(tmp_path / "runs"), "tensorboard": False},
    })
    assert run.results["accuracy"] >= 0.9
    low = tmp_path / "low.flac"
    sf.write(low, _tone(300, 22050, 0.6), 22050, format="FLAC")  # another rate and format than training
    for backend in ("torch", "onnx"):
        pred = fmkit.load(run.exports["onnx"], backend=backend).predict([low.read_bytes(), str(low)])
        assert [p["label"] for p in pred] == ["0", "0"]
    with pytest.raises(DataError, match="not a readable audio file"):
        fmkit.load(run.exports["onnx"]).predict([b"definitely not audio"])
