"""Forecasting and series-classification models. Input ``past``: ``[batch, time, channels]``.

Forecasters return ``[batch, horizon, targets]`` (direct multi-horizon: every step at once);
with ``num_labels`` in the context (the classification task) the recurrent and convolutional
models return class scores instead.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from fmkit.components import Params
from fmkit.errors import UsageError
from torch import nn


def _forecast_dims(ctx: dict) -> tuple[int, int, int, int]:
    if "horizon" not in ctx:
        raise UsageError("this model forecasts: use it with the time-series-forecasting task")
    return ctx["context_length"], ctx["horizon"], ctx["channels"], ctx["targets"]


class LinearParams(Params):
    #: one linear map per channel instead of one shared by all
    individual: bool = False
    #: DLinear's moving-average kernel for the trend
    kernel_size: int = 25


class DLinear(nn.Module):
    """DLinear (Zeng et al., 2023): moving-average trend + remainder, each mapped linearly over time."""

    def __init__(self, params: LinearParams, context: dict):
        super().__init__()
        L, H, C, self.targets = _forecast_dims(context)
        self.kernel = params.kernel_size
        n = C if params.individual else 1
        self.seasonal = nn.ModuleList(nn.Linear(L, H) for _ in range(n))
        self.trend = nn.ModuleList(nn.Linear(L, H) for _ in range(n))
        for lin in [*self.seasonal, *self.trend]:  # start from the mean of the context, as the paper does
            nn.init.constant_(lin.weight, 1.0 / L)

    def _moving_average(self, x):  # x [B, C, L]
        k = self.kernel
        front, end = x[..., :1].repeat(1, 1, (k - 1) // 2), x[..., -1:].repeat(1, 1, k // 2)
        return nn.functional.avg_pool1d(torch.cat([front, x, end], -1), k, stride=1)

    def forward(self, past):
        x = past.transpose(1, 2)  # [B, C, L]
        trend = self._moving_average(x)
        seasonal = x - trend
        if len(self.seasonal) == 1:
            out = self.seasonal[0](seasonal) + self.trend[0](trend)
        else:
            out = torch.stack([s(seasonal[:, i]) + t(trend[:, i]) for i, (s, t) in
                               enumerate(zip(self.seasonal, self.trend))], 1)
        return out.transpose(1, 2)[..., : self.targets]


class NLinear(nn.Module):
    """NLinear: subtract the last value, map linearly over time, add it back (robust to level shifts)."""

    def __init__(self, params: LinearParams, context: dict):
        super().__init__()
        L, H, C, self.targets = _forecast_dims(context)
        n = C if params.individual else 1
        self.linear = nn.ModuleList(nn.Linear(L, H) for _ in range(n))

    def forward(self, past):
        last = past[:, -1:, :]
        x = (past - last).transpose(1, 2)
        out = self.linear[0](x) if len(self.linear) == 1 else torch.stack(
            [lin(x[:, i]) for i, lin in enumerate(self.linear)], 1)
        return (out.transpose(1, 2) + last)[..., : self.targets]


class _Head(nn.Module):
    """Maps a feature vector to the forecast ``[H, targets]`` or to class scores."""

    def __init__(self, features: int, context: dict):
        super().__init__()
        if context.get("num_labels"):
            self.shape: tuple[int, ...] = (context["num_labels"],)
        else:
            _, H, _, T = _forecast_dims(context)
            self.shape = (H, T)
        out = 1
        for s in self.shape:
            out *= s
        self.linear = nn.Linear(features, out)

    def forward(self, h):
        return self.linear(h).reshape(h.shape[0], *self.shape)


class RNNParams(Params):
    #: size of the recurrent state (features per time step inside the network)
    hidden_size: int = 64
    #: stacked recurrent layers
    num_layers: int = 2
    #: dropout probability between stacked layers (no effect with one layer)
    dropout: float = 0.1


class RecurrentModel(nn.Module):
    """An LSTM or GRU over the context; the last hidden state feeds the head."""

    def __init__(self, params: RNNParams, context: dict, cell: str):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(context["channels"], params.hidden_size, params.num_layers, batch_first=True,
                       dropout=params.dropout if params.num_layers > 1 else 0.0)
        self.head = _Head(params.hidden_size, context)
        self.fmkit_head_prefixes = ("head",)

    def forward(self, past):
        out, _ = self.rnn(past)
        return self.head(out[:, -1])


def lstm(params: RNNParams, context: dict) -> RecurrentModel:
    return RecurrentModel(params, context, "lstm")


def gru(params: RNNParams, context: dict) -> RecurrentModel:
    return RecurrentModel(params, context, "gru")


class TCNParams(Params):
    #: channels of every convolution
    channels: int = 32
    #: residual blocks; block i dilates by 2**i
    levels: int = 4
    #: width of each causal convolution, in time steps (before dilation)
    kernel_size: int = 3
    #: dropout probability after each convolution
    dropout: float = 0.1


class _CausalBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, dilation: int, dropout: float):
        super().__init__()
        self.pad = (k - 1) * dilation
        self.conv1 = nn.Conv1d(cin, cout, k, dilation=dilation)
        self.conv2 = nn.Conv1d(cout, cout, k, dilation=dilation)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        y = self.drop(torch.relu(self.conv1(nn.functional.pad(x, (self.pad, 0)))))
        y = self.drop(torch.relu(self.conv2(nn.functional.pad(y, (self.pad, 0)))))
        return torch.relu(y + self.skip(x))


class TCN(nn.Module):
    """A temporal convolutional network: causal dilated convolutions with residual connections."""

    def __init__(self, params: TCNParams, context: dict):
        super().__init__()
        cin = context["channels"]
        blocks = []
        for i in range(params.levels):
            blocks.append(_CausalBlock(cin, params.channels, params.kernel_size, 2**i, params.dropout))
            cin = params.channels
        self.blocks = nn.Sequential(*blocks)
        self.head = _Head(params.channels, context)
        self.fmkit_head_prefixes = ("head",)

    def forward(self, past):
        return self.head(self.blocks(past.transpose(1, 2))[..., -1])


class PatchTSTParams(Params):
    #: time steps per patch (the context is cut into patches, each one a transformer token)
    patch_length: int = 16
    #: time steps between the starts of two patches (below patch_length: patches overlap)
    patch_stride: int = 8
    #: size of each patch's embedding inside the transformer
    d_model: int = 128
    #: attention heads per layer (d_model must divide by it)
    num_attention_heads: int = 16
    #: transformer layers
    num_hidden_layers: int = 3
    #: hidden size of each layer's feed-forward block
    ffn_dim: int = 256
    #: dropout probability inside the transformer
    dropout: float = 0.2
    #: dropout probability before the forecasting head
    head_dropout: float = 0.0
    #: PatchTST's own per-window scaling (RevIN-like): std, mean or none
    scaling: Literal["std", "mean", "none"] = "std"
    #: further PatchTSTConfig fields
    config: dict[str, Any] = {}


class PatchTST(nn.Module):
    """PatchTST (Nie et al., 2023) through transformers' ``PatchTSTForPrediction``, channel-independent."""

    def __init__(self, params: PatchTSTParams, context: dict):
        super().__init__()
        try:
            from transformers import PatchTSTConfig, PatchTSTForPrediction
        except ImportError:
            raise UsageError("the patchtst model needs transformers: pip install 'fmkit-timeseries[patchtst]'") from None
        L, H, C, self.targets = _forecast_dims(context)
        cfg = PatchTSTConfig(num_input_channels=C, context_length=L, prediction_length=H,
                             patch_length=params.patch_length, patch_stride=params.patch_stride, d_model=params.d_model,
                             num_attention_heads=params.num_attention_heads, num_hidden_layers=params.num_hidden_layers,
                             ffn_dim=params.ffn_dim, dropout=params.dropout, head_dropout=params.head_dropout,
                             scaling=None if params.scaling == "none" else params.scaling,
                             # forecasting flattens all patch embeddings into the head, as in the paper;
                             # transformers' default mean-pools them (fine for classification, not here)
                             **{"pooling_type": None, **params.config})
        self.net = PatchTSTForPrediction(cfg)
        self.fmkit_head_prefixes = ("net.head",)

    def forward(self, past):
        return self.net(past_values=past).prediction_outputs[..., : self.targets]


class NoParams(Params):
    pass


class SeasonalNaive(nn.Module):
    """Repeats the last season (the task's seasonality: 24 for hourly data). A baseline: nothing to train."""

    def __init__(self, params: NoParams, context: dict):
        super().__init__()
        L, self.horizon, _, self.targets = _forecast_dims(context)
        self.season = max(1, min(context.get("seasonality") or 1, L))

    def forward(self, past):
        last = past[:, -self.season:, : self.targets]
        return last.repeat(1, -(-self.horizon // self.season), 1)[:, : self.horizon]


class LastValue(nn.Module):
    """Repeats the last observed value over the horizon. A baseline: nothing to train."""

    def __init__(self, params: NoParams, context: dict):
        super().__init__()
        _, self.horizon, _, self.targets = _forecast_dims(context)

    def forward(self, past):
        return past[:, -1:, : self.targets].repeat(1, self.horizon, 1)
