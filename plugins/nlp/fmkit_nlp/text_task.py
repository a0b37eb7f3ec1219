"""What fmkit-nlp's tasks share: a tokenizer (fitted, cached into the fingerprint, saved as an
asset), padded token batches, and (batch, sequence) export inputs."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable

import torch
from fmkit import Task

from .tokenization import cached_trained_tokenizer, load_tokenizer


def pad(rows: list[list[int]], value: int) -> torch.Tensor:
    """Rows of ids as one ``(len(rows), longest)`` long tensor, right-padded with ``value``."""
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out


class TokenizedTextTask(Task):
    """Base of the text tasks: ``self.tokenizer`` from the pretrained folder, ``task.tokenizer.path``,
    or trained on the training texts; token batches with ``input_ids`` and ``attention_mask``."""

    #: the columns the training texts were read from (``data.text_column``, then
    #: ``data.text_pair_column``), as the dataset reported them: a prediction file laid out like the
    #: training file is read by them (``None`` for data that has no such columns)
    state_attributes = ("record_columns",)
    record_columns: list[str] | None = None

    def __init__(self, params, context: dict | None = None):
        super().__init__(params, context)
        self.tokenizer = None

    def receive_dataset_metadata(self, metadata):
        super().receive_dataset_metadata(metadata)
        columns = metadata.get("text_columns")
        if isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns):
            self.record_columns = list(columns)

    def fit_tokenizer(self, model_params: dict, texts: Iterable[str]) -> None:
        """Load the tokenizer of ``tokenizer.path``, the pretrained model or the teacher of
        ``model.init_from`` (whose embeddings the student copies), or train one on ``texts``."""
        source = self.params.tokenizer.path or model_params.get("pretrained")
        init_from = model_params.get("init_from")
        if not source and isinstance(init_from, dict) and init_from.get("run"):
            from .init_from import teacher_tokenizer

            self.tokenizer = teacher_tokenizer(str(init_from["run"]))
            return
        if source:
            self.tokenizer = load_tokenizer(source)
        else:
            self.tokenizer = cached_trained_tokenizer(texts, self.params.tokenizer, getattr(self, "cache_dir", None))

    def inputs_from_record(self, record):
        """A record's text: the column the training texts came from (``data.text_column``, with
        ``data.text_pair_column`` the pair) when the record has it, else its ``text`` (with
        ``text_pair``) or ``input`` column, else its first column: the file the model was trained
        on predicts as it is."""
        if isinstance(record, dict) and record:
            trained = self.record_columns or []
            if trained and trained[0] in record:
                # a text_pair column beside the trained text column: for a task that reads pairs to judge
                pair = record.get(trained[1]) if len(trained) > 1 else \
                    record.get("text_pair") if hasattr(self, "pairs") else None
                return [record[trained[0]], pair] if pair not in (None, "") else record[trained[0]]
            if "text" in record:
                pair = record.get("text_pair")
                return [record["text"], pair] if pair not in (None, "") else record["text"]
            if "input" in record:
                return record["input"]
            self._warn_first_column(record)
            return next(iter(record.values()))
        return record

    def _warn_first_column(self, record: dict) -> None:
        """Say once per layout of columns that a record's first column is read as its text: a file
        laid out unlike the training file may hold ids or dates there."""
        columns = tuple(record)
        if len(columns) < 2 or getattr(self, "_first_column_said", None) == columns:
            return
        self._first_column_said = columns
        known = [c for c in (self.record_columns or [])[:1] if c not in ("text", "input")] + ["text", "input"]
        logging.getLogger("fmkit").warning(
            "records with the columns %s have none of %s: their first column %r is read as the text; rename "
            "the text column to %r if that is not it", ", ".join(map(repr, columns[:8])) + (" ..." if len(columns) > 8
                                                                                          else ""),
            ", ".join(map(repr, known)), columns[0], known[0])

    def model_context(self):
        ctx = super().model_context()
        ctx["vocab_size"] = len(self.tokenizer) if self.tokenizer else None
        if isinstance(getattr(self.params, "max_length", None), int):  # checked against the model's positions
            ctx["max_length"] = self.params.max_length
        return ctx

    def fingerprint(self):
        # keyed by the vocabulary itself: features cached with one tokenizer are never read back with
        # another (a tokenizer trained on the data is kept in task.cache_dir, so reruns share it)
        return json.dumps([self.params.model_dump(), self.labels, getattr(self.tokenizer, "name_or_path", ""),
                           self._vocabulary_digest()])

    def _vocabulary_digest(self) -> str:
        tok = self.tokenizer
        if tok is None:
            return ""
        if getattr(self, "_digest_of", None) is not tok:  # once per tokenizer: a big vocabulary takes a moment
            vocab = sorted(tok.get_vocab().items())
            self._digest = hashlib.sha256(json.dumps([vocab, len(tok)]).encode()).hexdigest()
            self._digest_of = tok
        return self._digest

    def preprocess(self, example):
        """One example through the batched tokenizer path (subclasses implement ``preprocess_many``)."""
        return self.preprocess_many([example])[0]

    def pad_ids(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """``input_ids`` padded with the tokenizer's pad id, and the matching ``attention_mask``."""
        rows = [f["input_ids"] for f in features]
        mask = pad([[1] * len(r) for r in rows], 0)
        return {"input_ids": pad(rows, self.tokenizer.pad_token_id or 0), "attention_mask": mask}

    def length(self, features):
        return len(features["input_ids"])

    def export_input_names(self):
        return ["input_ids", "attention_mask"]

    def dynamic_axes(self):
        return {n: {0: "batch", 1: "sequence"} for n in self.export_input_names()}

    def save_assets(self, directory):
        self.tokenizer.save_pretrained(str(Path(directory) / "tokenizer"))

    def load_assets(self, directory):
        """The saved tokenizer. A task loaded from its assets predicts (``fmkit.load``, ``fmkit serve``):
        calls of a few texts, for which the tokenizers library's thread pool costs more than it gives
        (its threads wake and spin on the cores the model runs on; measured +18% served requests per
        second at one client). ``TOKENIZERS_PARALLELISM`` set by the user is left as it is."""
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.tokenizer = load_tokenizer(str(Path(directory) / "tokenizer"))
