"""``tabular-classification`` and ``tabular-regression``: fmkit's task bases plus one table mixin."""

import random
import statistics

import torch
from fmkit import ClassificationTask, DataError, RegressionTask
from fmkit.tasks import natural_key

from .data import infer_types, number


class TableFeatures:
    """Numeric columns standardised (missing: the mean), categorical ones as indices of their training
    values (0: missing or unseen). Batches: ``numeric [B, N]`` float and ``categorical [B, C]`` long."""

    state_attributes = ("types", "stats", "vocab")  # learnt in setup_inputs, saved with the task
    types: dict[str, str] = {}  # until setup_inputs: the engine asks for metric_context() before it

    def setup_inputs(self, train_examples, model_params):
        rows = [e["features"] for e in train_examples]
        types = self.dataset_metadata.get("column_types") or infer_types(rows, {})  # csv-table's, or inferred
        self.types, self.stats, self.vocab = {c: types[c] for c in rows[0]}, {}, {}
        for c in self.columns("numeric"):
            x = [v for v in (self.cell(e, c) for e in train_examples) if v is not None] or [0.0]
            self.stats[c] = [statistics.fmean(x), statistics.pstdev(x) or 1.0]
        for c in self.columns("categorical"):
            self.vocab[c] = sorted({str(r[c]) for r in rows if r.get(c) not in ("", None)}, key=natural_key)

    def columns(self, kind: str) -> list[str]:
        return [c for c, k in self.types.items() if k == kind]

    def cell(self, example: dict, column: str) -> float | None:
        """A numeric cell (``None`` when empty); :class:`DataError` naming the example's source otherwise."""
        v = example["features"].get(column)
        if v not in ("", None) and number(v) is None:
            raise DataError(f"{example.get('source', 'input')}: column {column!r} must be a number; got {v!r}")
        return None if v in ("", None) else number(v)

    def model_context(self):
        return {**super().model_context(), "num_numeric": len(self.columns("numeric")),
                "cardinalities": [len(self.vocab[c]) + 1 for c in self.columns("categorical")]}

    def preprocess(self, example):
        numeric = [0.0 if (x := self.cell(example, c)) is None else (x - self.stats[c][0]) / self.stats[c][1]
                   for c in self.columns("numeric")]
        row = example["features"]
        categorical = [self.vocab[c].index(str(row.get(c))) + 1 if str(row.get(c)) in self.vocab[c] else 0
                       for c in self.columns("categorical")]
        return self.with_target({"numeric": numeric, "categorical": categorical}, example)

    def collate(self, features):
        batch = {k: torch.tensor([f[k] for f in features], dtype=dtype).reshape(len(features), -1)
                 for k, dtype in (("numeric", torch.float32), ("categorical", torch.long))}
        return self.add_targets(batch, features)

    def forward(self, model, batch):
        return model(batch["numeric"], batch["categorical"])

    def raw_to_example(self, raw):
        if not isinstance(raw, dict) or set(raw) - set(self.types):
            raise DataError(f"a table row must be a JSON object with columns from {list(self.types)}; got {raw!r}")
        return {"features": raw}

    def export_input_names(self):
        return ["numeric", "categorical"]

    def example_inputs(self):
        return [e["features"] for e in self.sample_examples()[:2]]

    def sample_examples(self):
        rng = random.Random(0)
        return [{"features": {"age": str(rng.randint(20, 70)), "city": rng.choice(["paris", "lyon"]), "rooms": str(n)},
                 "target": ("big" if n > 2 else "small") if self.classification else 50.0 * n}
                for n in (1, 4, 2, 5, 1, 3, 2, 4)]


class TabularClassification(TableFeatures, ClassificationTask):
    """A table row in, a class with scores out."""

    name, label_key, no_labels_hint = "tabular-classification", "target", "check data.target"


class TabularRegression(TableFeatures, RegressionTask):
    """A table row in, a number out."""

    name = "tabular-regression"
