"""causal-lm: fine-tune a language model on text; scored by perplexity."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from fmkit.components import Params
from fmkit.errors import DataError
from pydantic import Field

from .text_task import TokenizedTextTask
from .tokenization import TokenizerParams


class CausalLMParams(Params):
    #: longest sequence in tokens; longer texts are cut (or split, see ``overflow``)
    max_length: int = Field(256, ge=1)
    #: ``truncate``: keep each text's start; ``split``: cut long texts into several examples
    overflow: Literal["truncate", "split"] = "split"
    #: next tokens listed in each prediction
    top_k: int = 5
    #: the tokenizer: a saved one (its path), else the pretrained model's, else one trained on the training texts
    tokenizer: TokenizerParams = TokenizerParams(algorithm="bpe")


class CausalLM(TokenizedTextTask):
    """Texts in, next-token training. Predictions give the text's perplexity and the likeliest next tokens.

    The loss is next-token cross-entropy over real (not padding) tokens; the ``perplexity`` metric is
    ``exp`` of its mean over all scored tokens of the split (not a mean of per-batch perplexities).
    For free-running generation, export the ``hf`` format and call transformers' ``generate``.
    """

    name = "causal-lm"
    monitor, monitor_mode = "perplexity", "min"
    classification = False

    def setup(self, train_examples, model_params):
        if not any(str(ex.get("text") or "").strip() for ex in train_examples):
            raise DataError("the training data has no text; check data.text_column")
        self.fit_tokenizer(model_params, (str(ex.get("text") or "") for ex in train_examples))
        self._ensure_pad_token()

    def _ensure_pad_token(self) -> None:
        if self.tokenizer.pad_token is None:  # GPT-2 style tokenizers have none; padding is masked anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token

    def model_context(self):
        ctx = super().model_context()
        ctx["pad_token_id"] = self.tokenizer.pad_token_id if self.tokenizer else None
        return ctx

    # ---------------------------------------------------------------- data
    def _ids(self, texts: list[str], end: bool) -> list[list[int]]:
        """Token ids with the tokenizer's start token (BOS or [CLS]) and, for training text, its end
        token (EOS or [SEP]), so the model learns where texts stop; prompts get no end token."""
        tok = self.tokenizer
        bos = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
        eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        enc = tok(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return [([bos] if bos is not None else []) + ids + ([eos] if end and eos is not None else []) for ids in enc]

    def preprocess_many(self, examples):
        n = self.params.max_length
        out = []
        for ids in self._ids([str(ex.get("text") or "") for ex in examples], end=True):
            if self.params.overflow == "split" and len(ids) > n:
                out.extend({"input_ids": ids[s:s + n]} for s in range(0, len(ids) - 1, n) if len(ids[s:s + n]) > 1)
            else:
                out.append({"input_ids": ids[:n]})
        return out

    def preprocess(self, example):
        """A prompt at inference: no end token; the last ``max_length`` tokens are kept."""
        return {"input_ids": self._ids([str(example.get("text") or "")], end=False)[0][-self.params.max_length:]}

    def collate(self, features):
        batch = self.pad_ids(features)
        batch["targets"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return batch

    def encode_examples(self, examples):
        batch = self.collate([self.preprocess(ex) for ex in examples])
        batch.pop("targets")
        return batch

    def forward(self, model, batch):
        return model(batch["input_ids"], batch["attention_mask"])

    def loss(self, outputs, batch, loss_fn):
        """Next-token loss: the scores at position t predict the token at t + 1."""
        return loss_fn(outputs[:, :-1], batch["targets"][:, 1:])

    def metric_inputs(self, outputs, batch):
        """``(per-token negative log-likelihood, mask of scored tokens)`` for the perplexity metric."""
        targets = batch["targets"][:, 1:]
        logits = outputs[:, :-1].float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                              reduction="none").reshape(targets.shape)
        return nll.detach(), (targets != -100)

    # ---------------------------------------------------------------- inference
    def raw_to_example(self, raw):
        if isinstance(raw, (bytes, bytearray)):
            raw = bytes(raw).decode("utf-8", errors="replace")
        if isinstance(raw, dict) and "text" in raw:
            raw = raw["text"]
        if not isinstance(raw, str):
            raise DataError(f"a causal-lm input is a string (or {{'text': ...}}); got {type(raw).__name__}")
        return {"text": raw}

    def format_predictions(self, outputs):
        mask = torch.ones(outputs.shape[:2], dtype=torch.long)
        return self._answers(outputs, {"attention_mask": mask, "input_ids": outputs.argmax(-1)})

    def format_batch_predictions(self, outputs, batch):
        return self._answers(outputs, batch)

    def _answers(self, outputs, batch):
        logp = outputs.float().log_softmax(-1)
        mask, ids = batch["attention_mask"], batch["input_ids"]
        answers = []
        for row, m, tok in zip(logp, mask, ids):
            n = int(m.sum())
            scored = n - 1
            nll = -row[torch.arange(scored), tok[1:n]].mean() if scored > 0 else torch.tensor(float("nan"))
            top = row[n - 1].exp().topk(min(self.params.top_k, row.shape[-1]))
            answers.append({
                "perplexity": float(nll.exp()) if scored > 0 else None,
                "next_tokens": [{"token": self.tokenizer.decode([int(i)]), "score": float(p)}
                                for p, i in zip(top.values, top.indices)],
            })
        return answers

    def example_inputs(self):
        return ["Once upon a time there was", "The weather today is"]

    def sample_examples(self):
        return [{"text": t} for t in ["once upon a time there was a cat", "the cat sat on the mat",
                                      "the weather today is sunny and warm", "a dog ran in the park"]]

    # ---------------------------------------------------------------- assets
    def state_dict(self):
        return {"labels": None}

    def load_assets(self, directory):
        super().load_assets(directory)
        self._ensure_pad_token()
