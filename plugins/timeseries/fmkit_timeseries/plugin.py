"""Registration of fmkit-timeseries' components. Imports nothing heavy: factories are import strings."""
from __future__ import annotations

from fmkit import Component, hookimpl

fmkit_api = ">=1.0,<2"
_T, _M, _D = "fmkit_timeseries.tasks", "fmkit_timeseries.models", "fmkit_timeseries.datasets"
_FC, _CL = "time-series-forecasting", "time-series-classification"


@hookimpl
def fmkit_register_tasks():
    return [
        Component("task", _FC, f"{_T}:Forecasting", f"{_T}:ForecastingParams",
                  "Forecast the next horizon steps of one or more series from a context window",
                  {"context_length": 48, "horizon": 12},
                  tags={"defaults": {"dataset": "timeseries-table", "loss": "mse", "model": "dlinear",
                                     "metrics": ["mse", "mae", "rmse", "smape", "mase",
                                                 {"name": "mse", "units": "original"},
                                                 {"name": "mae", "units": "original"}, "forecast-plot"]}}),
        Component("task", _CL, f"{_T}:SeriesClassification", f"{_T}:SeriesClassificationParams",
                  "Fixed-length series to a label", {},
                  tags={"defaults": {"dataset": "series-classification-files", "loss": "cross-entropy", "model": "gru",
                                     "metrics": ["accuracy", {"name": "f1", "average": "macro"}, "confusion-matrix"]}}),
    ]


@hookimpl
def fmkit_register_models():
    both = {"tasks": [_FC, _CL]}
    fc = {"tasks": [_FC]}
    return [
        Component("model", "dlinear", f"{_M}:DLinear", f"{_M}:LinearParams",
                  "DLinear: trend/remainder decomposition with linear maps over time", {}, tags=fc),
        Component("model", "nlinear", f"{_M}:NLinear", f"{_M}:LinearParams",
                  "NLinear: last-value normalised linear map over time", {}, tags=fc),
        Component("model", "lstm", f"{_M}:lstm", f"{_M}:RNNParams", "LSTM over the context",
                  {"hidden_size": 16, "num_layers": 1}, tags=both),
        Component("model", "gru", f"{_M}:gru", f"{_M}:RNNParams", "GRU over the context",
                  {"hidden_size": 16, "num_layers": 1}, tags=both),
        Component("model", "tcn", f"{_M}:TCN", f"{_M}:TCNParams", "Temporal convolutional network (causal, dilated)",
                  {"channels": 8, "levels": 2}, tags=both),
        Component("model", "patchtst", f"{_M}:PatchTST", f"{_M}:PatchTSTParams",
                  "PatchTST through transformers (patches of the series as tokens)",
                  {"d_model": 16, "num_attention_heads": 2, "num_hidden_layers": 1, "ffn_dim": 32, "patch_length": 8,
                   "patch_stride": 8},
                  # transformers' PatchTST does not trace to ONNX with a dynamic batch (its shape checks fail)
                  tags={**fc, "exports": ["safetensors", "torchscript"]}),
        Component("model", "seasonal-naive", f"{_M}:SeasonalNaive", f"{_M}:NoParams",
                  "Baseline: repeat the last season (nothing to train)", {}, tags={"tasks": [], "baseline": True}),
        Component("model", "last-value", f"{_M}:LastValue", f"{_M}:NoParams",
                  "Baseline: repeat the last value (nothing to train)", {}, tags={"tasks": [], "baseline": True}),
    ]


@hookimpl
def fmkit_register_datasets():
    return [
        Component("dataset", "timeseries-table", f"{_D}:TimeSeriesTable", f"{_D}:TableParams",
                  "CSV/Parquet with a time column: frequency check, gap filling, chronological splits, windows",
                  {"path": "data/series.csv", "time_column": "date"}),
        Component("dataset", "series-classification-files", f"{_D}:SeriesClassificationFiles",
                  f"{_D}:SeriesClassificationParams", "Labelled fixed-length series: wide tables or .npz",
                  {"train": "data/train.csv"}),
    ]


@hookimpl
def fmkit_register_metrics():
    return [
        Component("metric", "mase", "fmkit_timeseries.metrics:MASE", "fmkit_timeseries.metrics:MASEParams",
                  "Mean absolute scaled error against the seasonal-naive forecast", {}, tags={"input": "forecast"}),
        Component("metric", "forecast-plot", "fmkit_timeseries.plots:ForecastPlot",
                  "fmkit_timeseries.plots:ForecastPlotParams",
                  "Keeps some forecasts and draws context, truth and forecast in the run report", {},
                  tags={"input": "forecast", "keys": []}),
    ]
