"""Test plugin: a killer (SIGKILL after a chosen checkpoint) and models that inject faults."""
from __future__ import annotations

import os
import signal

from fmkit import Component, Params, hookimpl


@hookimpl
def fmkit_on_checkpoint_saved(run, path, step):
    at = os.environ.get("FMKIT_TEST_KILL_AT")
    if at and int(at) == step:  # only when asked: a baseline model saves its checkpoint at step 0
        os.kill(os.getpid(), signal.SIGKILL)


class FaultParams(Params):
    dim: int = 16
    #: raise out-of-memory when a batch has more rows than this
    oom_above: int = 0
    #: return a NaN loss on these call numbers
    nan_calls: list[int] = []


def faulty(params: FaultParams, context: dict):
    import torch

    class Faulty(torch.nn.Module):
        fmkit_head_prefixes = ("head",)

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.EmbeddingBag(int(context.get("vocab_size") or 1000), params.dim, mode="mean")
            self.head = torch.nn.Linear(params.dim, int(context["num_labels"]))
            self.calls = 0
            self.seen_sizes: list[int] = []

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            self.calls += 1
            if self.training:
                self.seen_sizes.append(len(input_ids))
            if self.training and params.oom_above and len(input_ids) > params.oom_above:
                raise torch.OutOfMemoryError("CUDA out of memory (injected by the test)")
            out = self.head(self.emb(input_ids))
            if self.training and self.calls in params.nan_calls:
                out = out * float("nan")
            return out

    return Faulty()


@hookimpl
def fmkit_register_models():
    return [Component("model", "test-faulty", f"{__name__}:faulty", f"{__name__}:FaultParams",
                      "Model that injects OOM and NaN faults", tags={"tasks": ["text-classification"]})]
