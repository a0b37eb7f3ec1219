"""Registration of fmkit-audio's components. Imports nothing heavy: factories are import strings."""
from __future__ import annotations

from fmkit import Component, hookimpl
from fmkit.utils.predictions import CLASSIFICATION_METRICS

fmkit_api = ">=1.0,<2"
_M = "fmkit_audio.models"
_TASK = {"tasks": ["audio-classification"]}
_TINY_SSL = {"config": {"extractor_mode": "group_norm", "extractor_conv_layer_config": [[8, 10, 5], [8, 3, 2], [8, 2, 2]],
                        "extractor_conv_bias": False, "encoder_embed_dim": 16, "encoder_projection_dropout": 0.0,
                        "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 4, "encoder_num_layers": 1,
                        "encoder_num_heads": 2, "encoder_attention_dropout": 0.0, "encoder_ff_interm_features": 32,
                        "encoder_ff_interm_dropout": 0.0, "encoder_dropout": 0.0, "encoder_layer_norm_first": False,
                        "encoder_layer_drop": 0.0}}


@hookimpl
def fmkit_register_tasks():
    return [
        Component("task", "audio-classification", "fmkit_audio.tasks:AudioClassification",
                  "fmkit_audio.tasks:AudioClassificationParams",
                  "Audio classification: files or bytes in any supported format and rate, a label out",
                  {"sample_rate": 8000, "duration": 0.5},
                  tags={"defaults": {"dataset": "audio-files", "loss": "cross-entropy", "model": "audio-cnn",
                                     "metrics": CLASSIFICATION_METRICS}}),
    ]


@hookimpl
def fmkit_register_models():
    return [
        Component("model", "audio-cnn", f"{_M}:AudioCNN", f"{_M}:AudioCNNParams",
                  "Compact CNN on log-mel or MFCC features (computed on the device), SpecAugment",
                  {"channels": [8, 16], "frontend": {"n_mels": 32, "n_fft": 256, "hop_length": 80}}, tags=_TASK),
        Component("model", "torchaudio-ssl", f"{_M}:TorchaudioSSLClassifier", f"{_M}:SSLParams",
                  "torchaudio wav2vec2 / HuBERT encoder with a pooled linear head", _TINY_SSL, tags=_TASK),
        Component("model", "hf-audio-classifier", f"{_M}:HFAudioClassifier", f"{_M}:HFAudioParams",
                  "transformers audio classification (Wav2Vec2ForSequenceClassification, AST) from a folder or config",
                  {"config": {"model_type": "wav2vec2", "hidden_size": 16, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "intermediate_size": 32, "conv_dim": [8, 8],
                              "conv_stride": [5, 4], "conv_kernel": [10, 4], "num_conv_pos_embeddings": 16,
                              "num_conv_pos_embedding_groups": 2, "classifier_proj_size": 8}}, tags=_TASK),
    ]


@hookimpl
def fmkit_register_datasets():
    return [
        Component("dataset", "audio-files", "fmkit_audio.datasets:AudioFiles", "fmkit_audio.datasets:AudioFilesParams",
                  "Audio folders or manifests; labels from folders, columns or file names; group/index splits",
                  {"train": "data/audio"}),
    ]


@hookimpl
def fmkit_register_transforms():
    return [
        Component("transform", "audio-augment", "fmkit_audio.augment:AudioAugment",
                  "fmkit_audio.augment:AudioAugmentParams",
                  "Waveform augmentation: noise at an SNR, time shift, gain, speed perturbation", {},
                  tags={"stage": "augment", "task": "audio-classification"}),
    ]
