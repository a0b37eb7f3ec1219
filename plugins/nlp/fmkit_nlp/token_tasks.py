"""token-classification: BIO/NER tags over words, aligned to sub-words, scored per entity."""
from __future__ import annotations

from typing import Any

from fmkit.components import Params
from fmkit.errors import DataError
from pydantic import Field

from .metrics import entity_spans, split_tag
from .text_task import TokenizedTextTask, pad
from .tokenization import TokenizerParams


class TokenClassificationParams(Params):
    #: longest sentence in sub-word tokens; words past it are cut off (not tagged; predictions report how many)
    max_length: int = Field(128, ge=1)
    #: tag every sub-word of a word (default: only its first; the others are not scored)
    label_all_subwords: bool = False
    #: the tokenizer: a saved one (its path), else the pretrained model's, else one trained on the training texts
    tokenizer: TokenizerParams = TokenizerParams()


def _tag_order(tag: str):
    prefix, kind = split_tag(tag)
    return (tag != "O", kind, prefix)


class TokenClassification(TokenizedTextTask):
    """Words in, one tag per word out (``B-PER``, ``I-PER``, ``O``...), with the entities they form.

    Raw examples are ``{"tokens": [words], "tags": [tags]}``. Tags are aligned to the tokenizer's
    sub-words: the first sub-word of each word carries its tag, the rest get -100 (ignored by the
    loss and metrics) unless ``label_all_subwords`` is set. Predictions are given per word.
    """

    name = "token-classification"
    monitor, monitor_mode = "entity_f1", "max"

    def setup(self, train_examples, model_params):
        tags: set[str] = set()
        for i, ex in enumerate(train_examples):
            words, labels = ex.get("tokens"), ex.get("tags")
            if not isinstance(words, list) or not isinstance(labels, list) or len(words) != len(labels):
                raise DataError(f"training example {i}: needs 'tokens' and 'tags' lists of the same length")
            tags.update(str(t) for t in labels)
        if not tags:
            raise DataError("the training data has no tags")
        self.labels = sorted(tags, key=_tag_order)
        self.fit_tokenizer(model_params, (" ".join(ex["tokens"]) for ex in train_examples))
        if not getattr(self.tokenizer, "is_fast", False):
            raise DataError("token-classification needs a fast tokenizer (tokenizer.json) to align words and sub-words")

    # ---------------------------------------------------------------- data
    def preprocess_many(self, examples):
        words = [[str(w) for w in ex["tokens"]] for ex in examples]
        enc = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=self.params.max_length,
                             return_attention_mask=False)
        index = {t: i for i, t in enumerate(self.labels or [])}
        out = []
        for i, ex in enumerate(examples):
            word_ids = enc.word_ids(i)
            f: dict[str, Any] = {"input_ids": enc["input_ids"][i], "word_ids": word_ids}
            if ex.get("tags") is not None:
                tags = [str(t) for t in ex["tags"]]
                targets, previous = [], None
                for w in word_ids:
                    first = w is not None and w != previous
                    if w is None or not (first or self.params.label_all_subwords):
                        targets.append(-100)
                    else:
                        targets.append(index.get(tags[w], -100))
                    previous = w
                f["targets"] = targets
            out.append(f)
        return out

    def collate(self, features):
        batch = self.pad_ids(features)
        if "targets" in features[0]:
            batch["targets"] = pad([f["targets"] for f in features], -100)
        return batch

    def forward(self, model, batch):
        return model(batch["input_ids"], batch["attention_mask"])

    def distill_mask(self, batch):
        """Distillation compares the scores of every real sub-word, padding left out (API 1.7)."""
        return batch["attention_mask"].bool()

    # ---------------------------------------------------------------- inference
    def raw_to_example(self, raw):
        if isinstance(raw, (bytes, bytearray)):
            raw = bytes(raw).decode("utf-8", errors="replace")
        if isinstance(raw, str):
            return {"tokens": raw.split()}
        if isinstance(raw, dict) and isinstance(raw.get("tokens"), list):
            return {"tokens": [str(w) for w in raw["tokens"]]}
        if isinstance(raw, list) and all(isinstance(w, str) for w in raw):
            return {"tokens": list(raw)}
        raise DataError("a token-classification input is a string (split on whitespace), a list of words or "
                        f"{{'tokens': [...]}}; got {type(raw).__name__}")

    def encode_examples(self, examples):
        feats = self.preprocess_many(examples)
        batch = self.collate(feats)
        batch["word_ids"] = [f["word_ids"] for f in feats]  # not tensors: kept for the answers
        batch["words"] = [ex["tokens"] for ex in examples]
        return batch

    def format_predictions(self, outputs):
        """Sub-word tags (without the batch's word alignment, the best this can do)."""
        probs = outputs.float().softmax(-1)
        return [{"subword_labels": [self.labels[int(i)] for i in row.argmax(-1)]} for row in probs]

    def format_batch_predictions(self, outputs, batch):
        if "word_ids" not in batch:
            return self.format_predictions(outputs)
        probs = outputs.float().softmax(-1)
        answers = []
        for row, word_ids, words in zip(probs, batch["word_ids"], batch["words"]):
            tokens, previous = [], None
            for pos, w in enumerate(word_ids):
                if w is not None and w != previous:
                    score, idx = row[pos].max(-1)
                    tokens.append({"word": words[w], "label": self.labels[int(idx)], "score": float(score)})
                previous = w
            tags = [t["label"] for t in tokens]
            entities = [{"type": kind, "start": s, "end": e, "text": " ".join(words[s:e]),
                         "score": sum(t["score"] for t in tokens[s:e]) / (e - s)}
                        for kind, s, e in sorted(entity_spans(tags), key=lambda x: x[1])]
            answers.append({"tokens": tokens, "entities": entities, "truncated_words": len(words) - len(tokens)})
        return answers

    def example_inputs(self):
        return ["John Smith flew from Paris to Berlin on Monday .", "Acme Corp hired Mary ."]

    def sample_examples(self):
        return [
            {"tokens": ["John", "lives", "in", "Paris", "."], "tags": ["B-PER", "O", "O", "B-LOC", "O"]},
            {"tokens": ["Mary", "Ann", "visited", "New", "York"], "tags": ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]},
            {"tokens": ["Acme", "Corp", "hired", "Bob"], "tags": ["B-ORG", "I-ORG", "O", "B-PER"]},
            {"tokens": ["It", "rained", "in", "Rome"], "tags": ["O", "O", "O", "B-LOC"]},
        ]
