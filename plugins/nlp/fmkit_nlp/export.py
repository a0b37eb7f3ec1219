"""The ``hf`` exporter: a Hugging Face folder loadable with ``from_pretrained`` (LoRA merged)."""
from __future__ import annotations

import json
from pathlib import Path

from fmkit import Exporter
from fmkit.errors import UsageError


class HFExporter(Exporter):
    """Writes ``hf/`` (config, safetensors weights, tokenizer, label names) inside the export.

    The folder is a plain transformers model (LoRA adapters merged into the weights): load it
    with the ``Auto`` class of its task, or for a causal LM call ``generate`` on it.
    """

    format = "hf"

    def export(self, trained, directory, example_batch):
        if getattr(trained.model, "pooling", "model") != "model":
            raise UsageError("the hf format keeps transformers' own classification head, and this model uses "
                             "model.pooling: mean; export onnx, torchscript or safetensors instead")
        if getattr(trained.model, "fmkit_structure", None) is not None:
            raise UsageError("the hf format is a plain transformers folder, and a pruned model has per-layer head "
                             "counts and FFN widths its configuration cannot describe; export onnx, torchscript or "
                             "safetensors instead")
        hf = trained.model.merged()
        out = Path(directory) / "hf"
        hf.save_pretrained(str(out), safe_serialization=True)
        trained.task.tokenizer.save_pretrained(str(out))
        return {"files": ["hf/"], "architecture": type(hf).__name__}

    def runner(self, directory, trained):
        import transformers

        folder = Path(directory) / "hf"
        arch = (json.loads((folder / "config.json").read_text()).get("architectures") or [""])[0]
        cls = getattr(transformers, arch, None)
        if cls is None:
            raise UsageError(f"{folder}: architecture {arch!r} is not in this transformers version")
        model = cls.from_pretrained(str(folder), local_files_only=True).eval()
        extra = {"use_cache": False} if "CausalLM" in arch or "LMHead" in arch else {}
        return lambda batch: model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask",
                                                                               "token_type_ids")}, **extra).logits
