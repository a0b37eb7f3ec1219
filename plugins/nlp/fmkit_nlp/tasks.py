"""text-classification: binary, multi-class, multi-label and sentence pairs."""
from __future__ import annotations

from typing import Any, Literal

from fmkit import ClassificationTask, io
from fmkit.components import Params
from fmkit.errors import DataError
from pydantic import Field

from .cells import kind_of as _kind
from .long_text import encode_heads
from .text_task import TokenizedTextTask, pad
from .tokenization import TokenizerParams


class TextClassificationParams(Params):
    #: longest input in tokens (a pair counts together); longer texts are cut, see keep and truncation
    max_length: int = Field(128, ge=1)
    #: for text pairs that are too long: cut the longer text first, only the first, or only the second
    truncation: Literal["longest_first", "only_first", "only_second"] = "longest_first"
    #: each text may have several labels (a list per example, sigmoid scores) instead of exactly one
    multi_label: bool = False
    #: which part of a long text to keep: its ``head``, or ``head_tail`` (the first quarter and the
    #: last three quarters of ``max_length``; better for reviews, whose verdict is often at the end)
    keep: Literal["head", "head_tail"] = "head"
    #: where the tokenizer comes from when the model has no pretrained folder
    tokenizer: TokenizerParams = TokenizerParams()


class TextClassification(ClassificationTask, TokenizedTextTask):
    """Strings (or pairs) in, one label (or several, multi-label) with scores out."""

    name = "text-classification"
    no_labels_hint = "check data.label_column"
    state_attributes = ("pairs",)

    def __init__(self, params: TextClassificationParams, context: dict | None = None):
        super().__init__(params, context)
        self.pairs = False

    # ---------------------------------------------------------------- fitting
    def setup_inputs(self, train_examples, model_params):
        self.pairs = any(ex.get("text_pair") for ex in train_examples)
        self.fit_tokenizer(model_params, (ex["text"] for ex in train_examples))

    # ---------------------------------------------------------------- data
    def preprocess_many(self, examples):
        p = self.params
        texts = [str(ex.get("text") or "") for ex in examples]
        pairs = [str(ex.get("text_pair") or "") for ex in examples] if self.pairs else None
        if p.keep == "head_tail" and not self.pairs:
            enc = {"input_ids": [_head_tail(ids, p.max_length) for ids in self.tokenizer(
                texts, return_attention_mask=False, return_token_type_ids=False, verbose=False)["input_ids"]]}
        elif self.pairs:
            enc = self.tokenizer(texts, pairs, truncation=p.truncation, max_length=p.max_length,
                                 return_token_type_ids=True, return_attention_mask=False)
        else:  # long texts are read only as far as the first max_length tokens (same ids)
            enc = encode_heads(self.tokenizer, texts, p.max_length, return_token_type_ids=False,
                               return_attention_mask=False)
        out = []
        for i, ex in enumerate(examples):
            f: dict[str, Any] = {"input_ids": enc["input_ids"][i]}
            if self.pairs:
                f["token_type_ids"] = enc["token_type_ids"][i]
            out.append(self.with_target(f, ex))
        return out

    def collate(self, features):
        batch = self.pad_ids(features)
        if self.pairs:
            batch["token_type_ids"] = pad([f["token_type_ids"] for f in features], 0)
        return self.add_targets(batch, features)

    # ---------------------------------------------------------------- model
    def forward(self, model, batch):
        return model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))

    # ---------------------------------------------------------------- inference
    def raw_to_example(self, raw):
        if isinstance(raw, (bytes, bytearray, memoryview)):  # an uploaded text file
            raw = io.read_text(raw)
        if isinstance(raw, str):
            return {"text": raw}
        if isinstance(raw, (list, tuple)) and len(raw) == 2:
            if not all(isinstance(t, str) for t in raw):
                raise DataError(f"a [text, text_pair] pair holds two strings; got [{_kind(raw[0])}, {_kind(raw[1])}]")
            self._check_pair(raw[1])
            return {"text": raw[0], "text_pair": raw[1]}
        if isinstance(raw, dict) and "text" in raw:
            pair = raw.get("text_pair")
            if not isinstance(raw["text"], str) or not (pair is None or isinstance(pair, str)):
                wrong = "text" if not isinstance(raw["text"], str) else "text_pair"
                raise DataError(f"'{wrong}' must be a string; got {_kind(raw[wrong])}")
            self._check_pair(pair)
            return {"text": raw["text"], "text_pair": pair}
        raise DataError(f"a text input must be a string, a [text, text_pair] pair or {{'text': ...}}; got {type(raw).__name__}")

    def _check_pair(self, pair) -> None:
        """A second text given to a model trained on single texts would be dropped unread: refused."""
        if pair and not self.pairs:
            raise DataError("this model was trained on single texts, so the second text of a pair would be ignored; "
                            "send one text per input")

    def encode_examples(self, examples):
        """One tokenizer call for the whole batch (the serving path)."""
        return self.collate(self.preprocess_many(examples))

    def export_input_names(self):
        return super().export_input_names() + (["token_type_ids"] if self.pairs else [])

    def example_inputs(self):
        if self.pairs:
            return [["A man is playing a guitar.", "Someone plays music."], ["It rains.", "The sun is out."]]
        return ["I would like to check my account balance.", "This was a wonderful film!"]

    def sample_examples(self):
        texts = ["great film, loved it", "terrible plot and bad acting", "wonderful and moving", "boring, awful",
                 "a delight from start to end", "I hated every minute"]
        return [{"text": t, "label": "pos" if i % 2 == 0 else "neg"} for i, t in enumerate(texts)]


def _head_tail(ids: list[int], n: int) -> list[int]:
    """Keep the special first and last tokens, a quarter of the room from the start, the rest from the end."""
    if len(ids) <= n:
        return ids
    room = n - 2
    head = room // 4
    return ids[:1 + head] + ids[len(ids) - 1 - (room - head):]
