"""``sequential-recommendation``: a user's history in, every item of the catalogue ranked out.

Items are the task's labels (``task.labels``, raw ids as strings); the model sees their indices
``1..N`` (0 pads a history on the left, ``N + 1`` is the mask token of masked models). The
training objective is the model's: a causal model (SASRec) predicts every next item of a training
sequence, a masked one (BERT4Rec) the items hidden behind masks; the task builds inputs and
targets for both and scores only the positions that have a target. Evaluation and serving score
all items from the last position and exclude the whole history (see :mod:`fmkit_recsys.ranking`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from fmkit import Task
from fmkit.components import Params
from fmkit.errors import DataError, UsageError


class SeqRecParams(Params):
    #: the most recent items of a history the model reads (the whole history is still excluded)
    max_length: int = 50
    #: uniformly sampled negatives shared by a training batch (0: score every item, full softmax)
    negatives: int = 0
    #: masked models: share of training items hidden behind the mask token
    mask_prob: float = 0.2
    #: items in an answer when an input gives no ``k``
    top_k: int = 10
    #: the largest ``k`` an input may ask for
    max_k: int = 100
    #: catalogue items that no training sequence contains. negatives: scored as negatives in the
    #: training loss like every other item (an ID model learns to rank them low); excluded: left out
    #: of the training loss, so nothing learns them down and a text-aware model ranks a new item by
    #: its text alone (evaluation and serving always rank every item)
    unseen_items: Literal["negatives", "excluded"] = "negatives"


def _natural(x: str):
    return (0, int(x), "") if x.isdigit() else (1, 0, x)


def _unwrap(model):
    for attr in ("module", "_orig_mod"):  # DDP, torch.compile
        while hasattr(model, attr) and isinstance(getattr(model, attr), torch.nn.Module):
            model = getattr(model, attr)
    return model


class SequentialRecommendation(Task):
    """Next-item recommendation from a history, evaluated by full ranking with the history excluded."""

    name = "sequential-recommendation"
    monitor, monitor_mode = "ndcg@10", "max"
    classification = False

    def __init__(self, params: SeqRecParams, context: dict | None = None):
        super().__init__(params, context)
        if params.max_length < 2:
            raise UsageError(f"task.max_length must be at least 2; got {params.max_length}")
        self.index: dict[str, int] = {}
        self.titles: list[str | None] | None = None
        self.texts: list[str] | None = None
        self._catalogue: dict[str, dict] | None = None
        self._train_sequences: list[list[int]] | None = None
        self._unseen: torch.Tensor | None = None  # [N + 1] bool: items no training sequence contains

    # ---------------------------------------------------------------- fitting
    def attach_catalogue(self, catalogue: dict[str, dict]) -> None:
        """Item metadata from the dataset: ``{id: {"title", "text"}}``; its items join the vocabulary."""
        self._catalogue = catalogue

    def setup(self, train_examples, model_params):
        seen: dict[str, None] = {}
        for ex in train_examples:
            for i in self._sequence(ex):
                seen.setdefault(i, None)
        if not seen:
            raise DataError("the training examples have no items (sequential-recommendation needs 'items', or "
                            "'history' and 'target' fields)")
        cat = self._catalogue or {}
        self.labels = sorted(set(cat) | set(seen), key=_natural)
        self.index = {item: k + 1 for k, item in enumerate(self.labels)}
        if cat:
            self.titles = [cat.get(i, {}).get("title") for i in self.labels]
            self.texts = [cat.get(i, {}).get("text") or i for i in self.labels]
        self._train_sequences = [[self.index[i] for i in self._sequence(ex)] for ex in train_examples]
        unseen = torch.ones(len(self.labels) + 1, dtype=torch.bool)
        unseen[0] = False  # the padding column is not an item
        unseen[[self.index[i] for i in seen]] = False
        self._unseen = unseen

    @staticmethod
    def _sequence(ex: dict) -> list[str]:
        if "items" in ex:
            return [str(i) for i in ex["items"]]
        return [str(i) for i in ex.get("history", [])] + ([str(ex["target"])] if ex.get("target") is not None else [])

    def model_context(self):
        n = len(self.labels or [])
        return {"task": self.name, "num_items": n, "max_length": self.params.max_length, "mask_token": n + 1,
                "item_texts": self.texts or list(self.labels or []), "train_sequences": self._train_sequences}

    # ---------------------------------------------------------------- data
    def _ids(self, items) -> tuple[list[int], list[str]]:
        known, unknown = [], []
        for i in items:
            k = self.index.get(str(i))
            (known.append(k) if k else unknown.append(str(i)))
        return known, unknown

    def _left_pad(self, ids: list[int], length: int) -> torch.Tensor:
        ids = ids[-length:]
        return torch.tensor([0] * (length - len(ids)) + ids, dtype=torch.long)

    def preprocess(self, example):
        L = self.params.max_length
        if "items" in example:
            ids, _ = self._ids(example["items"])
            return {"items": self._left_pad(ids, L + 1)}
        if "history" not in example:
            raise DataError(f"a sequential-recommendation example needs 'items' (training) or 'history' "
                            f"(evaluation, inference); got fields {sorted(example)}")
        ids, unknown = self._ids(example["history"])
        f: dict[str, Any] = {"input_ids": self._left_pad(ids, L), "exclude": torch.tensor(ids or [0], dtype=torch.long)}
        if example.get("target") is not None:
            f["targets"] = self.index.get(str(example["target"]), -100)
        if "k" in example:
            f["k"], f["unknown"] = int(example["k"]), unknown
        return f

    def length(self, features):
        return int((features["items"] > 0).sum()) if "items" in features else 1

    def collate(self, features):
        if "items" in features[0]:  # training: cut the columns every sequence of the batch pads
            items = torch.stack([f["items"] for f in features])
            width = max(2, int((items > 0).sum(1).max()))
            return {"items": items[:, -width:].contiguous()}
        width = max(len(f["exclude"]) for f in features)
        batch = {"input_ids": torch.stack([f["input_ids"] for f in features]),
                 "exclude": torch.stack([torch.nn.functional.pad(f["exclude"], (0, width - len(f["exclude"])))
                                         for f in features])}
        if "targets" in features[0]:
            batch["targets"] = torch.tensor([f["targets"] for f in features], dtype=torch.long)
        if "k" in features[0]:
            batch["k"] = torch.tensor([f["k"] for f in features], dtype=torch.long)
            batch["unknown"] = [f["unknown"] for f in features]
        return batch

    def augment_batch(self, batch, seed):
        """Training batches: the mask draw of masked models and the shared sampled negatives, from ``seed``."""
        if "items" not in batch:
            return batch
        g = torch.Generator().manual_seed(int(seed))
        items = batch["items"]
        out = dict(batch, noise=torch.rand(items.shape[0], items.shape[1] - 1, generator=g).to(items.device))
        if self.params.negatives:
            neg = torch.randint(1, len(self.labels) + 1, (1, self.params.negatives), generator=g)
            out["negatives"] = neg.to(items.device)
        return out

    # ---------------------------------------------------------------- model
    def _training_inputs(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        objective = getattr(_unwrap(model), "fmkit_objective", None)
        items = batch["items"]
        if objective == "causal":
            inp = items[:, :-1]
            return inp, items[:, 1:] * (inp > 0)
        if objective == "masked":
            inp = items[:, 1:]
            noise = batch.get("noise")
            if noise is None:  # a batch that skipped augment_batch (tests): a fixed draw
                noise = torch.rand(inp.shape, generator=torch.Generator().manual_seed(0)).to(inp.device)
            real = inp > 0
            masked = (noise < self.params.mask_prob) & real
            masked[:, -1] |= ~masked.any(1) & real[:, -1]  # every sequence trains on at least one item
            return torch.where(masked, torch.full_like(inp, len(self.labels) + 1), inp), torch.where(masked, inp, 0)
        raise UsageError(f"model {type(_unwrap(model)).__name__} has no training objective (a baseline is fitted "
                         "when built, not trained); sequential-recommendation trains causal or masked models")

    def forward(self, model, batch):
        if "items" not in batch:
            return model(batch["input_ids"])
        inp, tgt = self._training_inputs(model, batch)
        sel = tgt > 0
        positives = tgt[sel]
        batch["targets"] = positives  # the task's loss and metrics read the targets of the scored positions
        neg = batch.get("negatives")
        if neg is not None:
            batch["candidates"] = torch.cat([positives[:, None], neg.expand(len(positives), -1)], 1)
            return model(inp, positions=sel, positives=positives, negatives=neg[0])
        return model(inp, positions=sel)

    def loss(self, outputs, batch, loss_fn):
        targets, cands = batch["targets"], batch.get("candidates")
        kind = getattr(loss_fn, "fmkit_targets", "index")
        valid = targets >= 0
        if not bool(valid.any()):
            return outputs.sum() * 0.0
        outputs, targets = outputs[valid], targets[valid]
        left_out = self._left_out(outputs, None if cands is None else cands[valid]) if "items" in batch else None
        if cands is not None:
            hits = cands[valid] == targets[:, None]
            hits[:, 0] = False  # the positive is column 0; a sampled negative that is the target is ignored
            if left_out is not None:
                hits |= left_out  # a sampled negative no training sequence contains is ignored too
            if kind == "index":
                return loss_fn(outputs.float().masked_fill(hits, -1e9), torch.zeros_like(targets))
            rel = torch.zeros_like(outputs, dtype=torch.float32).masked_fill(hits, -1.0)
            rel[:, 0] = 1.0
            return loss_fn(outputs, rel)
        if left_out is not None:
            outputs = outputs.float().masked_fill(left_out, -1e9)
        if kind == "index":
            return loss_fn(outputs, targets)
        rel = torch.zeros_like(outputs).scatter_(1, targets[:, None], 1.0)
        if left_out is not None:
            rel = rel.masked_fill(left_out, -1.0)  # ignored by the relevance losses
        return loss_fn(outputs, rel)

    def _left_out(self, outputs: torch.Tensor, cands: torch.Tensor | None) -> torch.Tensor | None:
        """``task.unseen_items: excluded``: which scored columns are items no training sequence
        contains (broadcastable to ``outputs``), or None when nothing is left out."""
        if self.params.unseen_items != "excluded" or self._unseen is None or not bool(self._unseen.any()):
            return None
        unseen = self._unseen.to(outputs.device)
        if cands is not None:
            return unseen[cands]
        return unseen[: outputs.shape[1]][None, :]

    def metric_inputs(self, outputs, batch):
        if "exclude" not in batch:  # a training batch: rank the scored positions' targets
            if batch.get("candidates") is not None:
                return outputs.detach(), torch.zeros_like(batch["targets"])
            return outputs.detach(), batch["targets"]
        return self.masked_scores(outputs.detach(), batch["exclude"]), batch["targets"]

    @staticmethod
    def masked_scores(scores: torch.Tensor, exclude: torch.Tensor) -> torch.Tensor:
        """All items' scores with the padding column and each row's history set to ``-inf``."""
        s = scores.float().clone()
        s[:, 0] = -math.inf
        return s.scatter_(1, exclude.to(s.device), -math.inf)

    # ---------------------------------------------------------------- inference
    def raw_to_example(self, raw):
        """``{"history": [item ids, oldest first], "k": 10}`` or a bare list of item ids."""
        if isinstance(raw, dict):
            extra = sorted(set(raw) - {"history", "k"})
            if extra:
                raise DataError(f"input has unknown fields {extra}; give 'history' (item ids) and optionally 'k'")
            if "history" not in raw:
                raise DataError("input.history is missing: give the user's item ids, oldest first")
            history, k = raw["history"], raw.get("k", self.params.top_k)
        else:
            history, k = raw, self.params.top_k
        if not isinstance(history, (list, tuple)):
            raise DataError(f"input.history must be a list of item ids; got {type(history).__name__}")
        for j, i in enumerate(history):
            if isinstance(i, bool) or not isinstance(i, (str, int)):
                raise DataError(f"input.history[{j}] must be an item id (string or integer); got {i!r}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.params.max_k:
            raise DataError(f"input.k must be an integer from 1 to {self.params.max_k} (task.max_k); got {k!r}")
        return {"history": [str(i) for i in history], "k": k}

    def format_batch_predictions(self, outputs, batch):
        scores = outputs.detach().float().cpu().numpy().copy() if hasattr(outputs, "detach") else np.array(outputs, np.float32)
        exclude = batch["exclude"].cpu().numpy()
        ks = batch["k"].cpu().numpy() if "k" in batch else np.full(len(scores), self.params.top_k)
        unknown = batch.get("unknown") or [[] for _ in scores]
        answers = []
        for row, excl, k, unk in zip(scores, exclude, ks, unknown):
            row[0] = -np.inf
            row[excl] = -np.inf
            k = int(min(k, np.isfinite(row).sum()))
            top = np.argpartition(-row, k - 1)[:k] if k else np.array([], dtype=int)
            top = top[np.argsort(-row[top], kind="stable")]
            items = []
            for j in top:
                item = {"item": self.labels[j - 1], "score": float(row[j])}
                if self.titles and self.titles[j - 1] is not None:
                    item["title"] = self.titles[j - 1]
                items.append(item)
            ans: dict[str, Any] = {"items": items}
            if unk:
                ans["unknown_history"] = list(unk)
            answers.append(ans)
        return answers

    def format_predictions(self, outputs):
        raise UsageError("sequential-recommendation answers need the batch (history to exclude); "
                         "use format_batch_predictions")

    def export_input_names(self):
        return ["input_ids"]

    def example_inputs(self):
        items = list(self.labels or ["1", "2", "3"])
        return [{"history": items[:2], "k": 3}, items[1:3]]

    def sample_examples(self):
        items = [f"m{i}" for i in range(1, 9)]
        return [{"user": f"u{u}", "history": [items[(u + j) % 8] for j in range(3 + u % 3)],
                 "target": items[(u + 4) % 8]} for u in range(6)]

    # ---------------------------------------------------------------- assets
    def state_dict(self):
        return {"labels": self.labels}

    def load_state_dict(self, state):
        self.labels = state.get("labels")
        self.index = {item: k + 1 for k, item in enumerate(self.labels or [])}

    def save_assets(self, directory):
        if self.titles is not None or self.texts is not None:
            (Path(directory) / "items.json").write_text(json.dumps({"titles": self.titles, "texts": self.texts}))

    def load_assets(self, directory):
        path = Path(directory) / "items.json"
        if path.is_file():
            d = json.loads(path.read_text())
            self.titles, self.texts = d.get("titles"), d.get("texts")
