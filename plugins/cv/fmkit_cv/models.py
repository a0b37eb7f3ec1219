"""timm models behind fmkit's model contract: ``forward(pixel_values)`` returns class scores."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Literal

import torch
from fmkit.components import Params
from fmkit.errors import UsageError

from .hub import cache_only, is_hub_architecture


class TimmModelParams(Params):
    #: any timm architecture name (``timm.list_models()``), or ``hf-hub:ORG/NAME``: a timm model in a
    #: Hugging Face hub repository in the local cache (never downloaded; its config.json names the architecture)
    architecture: str = "resnet18"
    #: a weights file or folder (safetensors, or a state dict that loads with weights_only=True),
    #: ``package://pkg/path`` inside an installed package, or ``timm-cache``: the weights timm reads from
    #: the Hugging Face hub for this architecture, taken from the local cache (never downloaded); null: random weights
    pretrained: str | None = None
    #: how checkpoint tensors find model tensors: by name, by order (foreign naming), or names then order
    pretrained_mapping: Literal["auto", "name", "order"] = "auto"
    #: every backbone tensor must come from the checkpoint
    pretrained_strict: bool = True
    #: channels of the input images (3: RGB, 1: greyscale); images are converted to this many
    in_chans: int = 3
    #: finetune: train everything (see train.freeze_backbone_epochs); feature-extractor: the backbone
    #: stays frozen in eval mode and only the new head learns
    mode: Literal["finetune", "feature-extractor"] = "finetune"
    #: dropout probability before the classifier head (0: none)
    drop_rate: float = 0.0
    #: stochastic depth: probability of skipping a residual block during training, for architectures
    #: that support it (null: the architecture's default)
    drop_path_rate: float | None = None
    #: further keyword arguments for ``timm.create_model`` (``img_size`` for ViTs...)
    kwargs: dict[str, Any] = {}


class TimmClassifier(torch.nn.Module):
    """A timm network with a head for the task's classes; names its head for fmkit's optimizers."""

    def __init__(self, net: torch.nn.Module, feature_extractor: bool = False):
        super().__init__()
        self.net = net
        head = net.pretrained_cfg.get("classifier", "fc") if hasattr(net, "pretrained_cfg") else "fc"
        heads = head if isinstance(head, (list, tuple)) else [head]
        self.fmkit_head_prefixes = tuple("net." + h for h in heads)
        self.feature_extractor = feature_extractor
        self.load_report: dict | None = None
        if feature_extractor:
            for name, p in self.named_parameters():
                p.requires_grad_(name.startswith(self.fmkit_head_prefixes))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.feature_extractor and mode:  # frozen backbone: keep its batch-norm statistics fixed
            self.net.eval()
            for name, module in self.net.named_modules():
                if ("net." + name).startswith(self.fmkit_head_prefixes):
                    module.train()
        return self

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values)

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (before the head)."""
        return self.net.forward_head(self.net.forward_features(pixel_values), pre_logits=True)


def timm_classifier(params: TimmModelParams, context: dict) -> TimmClassifier:
    import timm

    from .checkpoints import find_weights_file, load_foreign_state, read_state_dict

    hub = is_hub_architecture(params.architecture)
    if not hub and params.architecture not in timm.list_models() and not timm.is_model(params.architecture):
        close = timm.list_models(f"*{params.architecture.split('.')[0][:6]}*")[:8]
        raise UsageError(f"model.architecture {params.architecture!r} is not a timm model; similar: {close}")
    kw = dict(num_classes=len(context.get("labels") or [0, 1]), in_chans=params.in_chans, drop_rate=params.drop_rate,
              **params.kwargs)
    if params.drop_path_rate is not None:
        kw["drop_path_rate"] = params.drop_path_rate
    load = params.pretrained and not context.get("inference")  # trained weights follow at inference
    if load and params.pretrained == "timm-cache":
        with cache_only(params.architecture, "model.pretrained"):  # timm re-creates the head when num_classes differs
            net = timm.create_model(params.architecture, pretrained=True, **kw)
        return TimmClassifier(net, params.mode == "feature-extractor")
    with cache_only(params.architecture, "model.architecture") if hub else nullcontext():  # config.json
        net = timm.create_model(params.architecture, pretrained=False, **kw)
    model = TimmClassifier(net, params.mode == "feature-extractor")
    if load:
        from fmkit.utils.paths import resolve_package_path

        path = find_weights_file(resolve_package_path(params.pretrained, "model.pretrained"))
        state = read_state_dict(path)
        heads = tuple(h[len("net."):] for h in model.fmkit_head_prefixes)
        report = load_foreign_state(net, state, heads, params.pretrained_mapping, params.pretrained_strict)
        model.load_report = report.as_dict()
        _zero_new_head(net, report.head_reinitialised)
    return model


def _zero_new_head(net: torch.nn.Module, names: list[str]) -> None:
    """A new head on pretrained features starts at zero. timm's default head init (for training
    from scratch) gives large logits on pretrained features, which a small data set never unlearns:
    ants vs bees on EfficientNet-Lite0 features went from 72% to over 90% test accuracy with this."""
    state = dict(net.named_parameters())
    with torch.no_grad():
        for n in names:
            if n in state:
                state[n].zero_()
