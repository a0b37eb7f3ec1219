"""Test plugin: a tiny text model that injects faults at chosen forward calls.

- out-of-memory in a training forward, in a training backward, or in an evaluation forward
  (``oom_forward_calls``, ``oom_backward_calls``, ``oom_eval_calls``; on one rank only with
  ``oom_rank``, the ``RANK`` torchrun sets), each raised once per listed call;
- real signals sent to its own process from inside a forward (environment variable
  ``FMKIT_TEST_SIGNALS``, e.g. ``SIGINT@7`` or ``SIGINT@7+SIGINT@7`` for a double Ctrl-C): the
  handler then runs in the middle of a step, as a Ctrl-C from a terminal would.

Calls are numbered from 1 in each process. The model has a constant buffer, so DDP has buffers
to synchronise (as transformers' position ids), and no dropout, so runs are comparable.
"""
from __future__ import annotations

import os
import signal

from fmkit import Component, Params, hookimpl


class InjectedParams(Params):
    dim: int = 16
    oom_forward_calls: list[int] = []
    oom_backward_calls: list[int] = []
    oom_eval_calls: list[int] = []
    #: the rank that raises (-1: every rank)
    oom_rank: int = -1


def _signals() -> dict[int, list[int]]:
    plan: dict[int, list[int]] = {}
    for item in filter(None, os.environ.get("FMKIT_TEST_SIGNALS", "").split("+")):
        name, call = item.split("@")
        plan.setdefault(int(call), []).append(getattr(signal, name))
    return plan


def injected(params: InjectedParams, context: dict):
    import torch

    here = params.oom_rank < 0 or int(os.environ.get("RANK", 0)) == params.oom_rank

    def oom(where: str):
        return torch.OutOfMemoryError(f"CUDA out of memory ({where} injected by the test)")

    class Injected(torch.nn.Module):
        fmkit_head_prefixes = ("head",)

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.EmbeddingBag(int(context.get("vocab_size") or 1000), params.dim, mode="mean")
            self.register_buffer("offset", torch.full((params.dim,), 0.01))
            self.head = torch.nn.Linear(params.dim, int(context["num_labels"]))
            self.calls = self.train_calls = self.eval_calls = 0
            self.signals = _signals()
            self.ooms = 0

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            self.calls += 1
            for sig in self.signals.pop(self.calls, []):
                os.kill(os.getpid(), sig)
            if self.training:
                self.train_calls += 1
                if here and self.train_calls in params.oom_forward_calls:
                    self.ooms += 1
                    raise oom("forward")
            else:
                self.eval_calls += 1
                if here and self.eval_calls in params.oom_eval_calls:
                    self.ooms += 1
                    raise oom("evaluation")
            hidden = self.emb(input_ids) + self.offset
            if self.training and here and self.train_calls in params.oom_backward_calls:
                def fail(grad):  # the head's gradients are already added when this runs: a half-done backward
                    self.ooms += 1
                    raise oom("backward")

                hidden.register_hook(fail)
            return self.head(hidden)

    return Injected()


@hookimpl
def fmkit_register_models():
    return [Component("model", "test-injected", f"{__name__}:injected", f"{__name__}:InjectedParams",
                      "Model that injects OOM errors and signals at chosen calls",
                      tags={"tasks": ["text-classification"]})]
