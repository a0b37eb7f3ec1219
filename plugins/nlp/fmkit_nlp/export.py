"""The ``hf`` exporter: a Hugging Face folder loadable with ``from_pretrained`` (LoRA merged)."""
from __future__ import annotations

from pathlib import Path

from fmkit import Exporter


class HFExporter(Exporter):
    """Writes ``hf/`` (config, safetensors weights, tokenizer, label names) inside the export."""

    format = "hf"

    def export(self, trained, directory, example_batch):
        hf = trained.model.merged()
        out = Path(directory) / "hf"
        hf.save_pretrained(str(out), safe_serialization=True)
        trained.task.tokenizer.save_pretrained(str(out))
        return {"files": ["hf/"]}

    def runner(self, directory, trained):
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(str(Path(directory) / "hf"), local_files_only=True).eval()
        return lambda batch: model(**{k: v for k, v in batch.items() if k != "targets"}).logits
