"""Test plugin: a model whose weights turn NaN after a chosen number of training forwards (a run
that diverges after it has saved good checkpoints)."""
from __future__ import annotations

from fmkit import Component, Params, hookimpl


class DivergeParams(Params):
    dim: int = 16
    #: on this training forward (1-based) every weight becomes NaN; 0: never
    poison_at: int = 0


def diverging(params: DivergeParams, context: dict):
    import torch

    class Diverging(torch.nn.Module):
        fmkit_head_prefixes = ("head",)

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.EmbeddingBag(int(context.get("vocab_size") or 1000), params.dim, mode="mean")
            self.head = torch.nn.Linear(params.dim, int(context["num_labels"]))
            self.calls = 0

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            if self.training:
                self.calls += 1
                if self.calls == params.poison_at:
                    with torch.no_grad():
                        for p in self.parameters():
                            p.fill_(float("nan"))
            return self.head(self.emb(input_ids))

    return Diverging()


@hookimpl
def fmkit_register_models():
    return [Component("model", "test-diverging", f"{__name__}:diverging", f"{__name__}:DivergeParams",
                      "Model whose weights become NaN mid-training", tags={"tasks": ["text-classification"]})]
