"""Registration of fmkit-nlp's components. Imports nothing heavy: factories are import strings."""
from __future__ import annotations

from fmkit import Component, hookimpl
from fmkit.utils.predictions import CLASSIFICATION_METRICS

fmkit_api = ">=1.0,<2"
_T, _M, _D, _C = "fmkit_nlp.tasks", "fmkit_nlp.models", "fmkit_nlp.datasets", "fmkit_nlp.cleaning"
_TINY = {"config": {"model_type": "bert", "vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2,
                    "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128}}


@hookimpl
def fmkit_register_tasks():
    return [
        Component("task", "text-classification", f"{_T}:TextClassification", f"{_T}:TextClassificationParams",
                  "Text classification: binary, multi-class, multi-label, sentence pairs", {"max_length": 128},
                  tags={"defaults": {"dataset": "text-files", "loss": "cross-entropy", "model": "hf-classifier",
                                     "metrics": CLASSIFICATION_METRICS}}),
    ]


@hookimpl
def fmkit_register_models():
    return [
        Component("model", "hf-classifier", f"{_M}:hf_classifier", f"{_M}:HFModelParams",
                  "Any transformers architecture for sequence classification (local folder or config)", _TINY,
                  tags={"tasks": ["text-classification"]}),
    ]


@hookimpl
def fmkit_register_datasets():
    return [
        Component("dataset", "text-files", f"{_D}:TextFiles", f"{_D}:TextFilesParams",
                  "Text from CSV, TSV (unquoted too), JSONL, Parquet, class folders or one-file-per-label lines",
                  {"train": "data/train.csv", "text_column": "text", "label_column": "label"}),
    ]


@hookimpl
def fmkit_register_transforms():
    return [
        Component("transform", "strip-html", f"{_C}:StripHtml", f"{_C}:TextFieldParams", "Remove HTML tags"),
        Component("transform", "normalize-text", f"{_C}:NormalizeText", f"{_C}:NormalizeParams",
                  "Unicode NFKC and whitespace normalisation"),
        Component("transform", "drop-empty-text", f"{_C}:DropEmpty", f"{_C}:TextFieldParams", "Drop empty texts"),
        Component("transform", "drop-unknown-labels", f"{_C}:DropUnknownLabels", f"{_C}:KnownLabelsParams",
                  "Drop rows whose label is not in a given list", {"labels": ["pos", "neg"]}),
    ]


@hookimpl
def fmkit_register_exporters():
    return [
        Component("exporter", "hf", "fmkit_nlp.export:HFExporter", "fmkit.exporting.exporters:ExporterParams",
                  "Hugging Face folder (config, safetensors, tokenizer) loadable with from_pretrained"),
    ]
