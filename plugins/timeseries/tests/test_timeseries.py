"""fmkit-timeseries: loading with gaps, chronological splits without leakage, scaling, models, end to end."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from fmkit.errors import DataError


def _write_series(path, n=400, freq="h", gaps=(), nan_rows=(), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    df = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=n, freq=freq),
        "load": 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.01 * t + rng.normal(0, 0.1, n),
        "temp": 20 + 5 * np.sin(2 * np.pi * t / 24 + 1) + rng.normal(0, 0.1, n),
    })
    df.loc[list(nan_rows), "load"] = np.nan
    df = df.drop(index=list(gaps))
    df.to_csv(path, index=False)
    return df


class _Task:
    class params:  # noqa: N801  (a stand-in for the task's parameters)
        context_length, horizon, stride, eval_stride = 24, 6, 1, 1


def _table(path, **kw):
    from fmkit_timeseries.datasets import TableParams, TimeSeriesTable

    return TimeSeriesTable(TableParams(path=str(path), **kw), {"task": _Task()})


def test_gaps_and_missing_values_are_reported_and_filled(tmp_path):
    _write_series(tmp_path / "s.csv", gaps=(50, 51, 52), nan_rows=(10, 11))
    ds = _table(tmp_path / "s.csv", missing="interpolate")
    splits = ds.load()
    assert ds.frequency == "h"
    assert ds.dropped == {"all/gap-rows-inserted": 3, "all/rows-with-missing-values-interpolated": 5}
    assert all(np.isfinite(ex["window"]).all() for ex in splits["train"])
    with pytest.raises(DataError, match="missing values"):
        _table(tmp_path / "s.csv", missing="error").load()
    with pytest.raises(DataError, match="data.frequency is 'D'"):
        _table(tmp_path / "s.csv", frequency="D").load()
    with pytest.raises(DataError, match="no time column 'time'"):
        _table(tmp_path / "s.csv", time_column="time").load()


def test_chronological_split_never_shows_test_rows_to_training(tmp_path):
    _write_series(tmp_path / "s.csv", n=300)
    ds = _table(tmp_path / "s.csv", split_borders=[200, 250, 300])
    splits = ds.load()
    span = 24 + 6
    assert max(ex["start"] + span for ex in splits["train"]) <= 200
    assert min(ex["start"] + 24 for ex in splits["validation"]) == 200  # forecasts start at the border
    assert min(ex["start"] + 24 for ex in splits["test"]) == 250
    assert len(splits["test"]) == 300 - 250 - 6 + 1
    by_date = _table(tmp_path / "s.csv", split_dates=["2024-01-09 08:00", "2024-01-11 10:00"]).load()
    assert len(by_date["test"]) == len(splits["test"])


def test_scaler_is_fit_on_training_rows_only_and_inverts():
    from fmkit_timeseries.tasks import Forecasting, ForecastingParams, _unique_rows

    series = np.arange(100, dtype=np.float32)[:, None].repeat(2, 1)
    examples = [{"window": series[s:s + 10], "start": s, "series": None, "columns": ("a", "b"), "n_targets": 1,
                 "frequency": "h"} for s in range(0, 60)]
    rows = _unique_rows(examples)
    assert len(rows) == 69 and rows[:, 0].tolist() == list(range(69))
    task = Forecasting(ForecastingParams(context_length=6, horizon=4))
    task.setup(examples, {})
    assert task.scaler.shift[0] == pytest.approx(34.0) and task.seasonality == 6  # hourly: 24, capped by the context
    f = task.preprocess(examples[0])
    assert f["past"].shape == (6, 2) and f["targets"].shape == (4, 1)
    back = task.scaler.inverse(f["targets"], slice(0, 1))
    assert torch.allclose(back[:, 0], torch.tensor([6.0, 7, 8, 9]))


@pytest.mark.parametrize("name", ["dlinear", "nlinear", "lstm", "gru", "tcn", "patchtst", "seasonal-naive", "last-value"])
def test_every_forecaster_gives_horizon_by_targets(name):
    from fmkit.plugins import get_plugin_manager

    reg = get_plugin_manager().registry
    comp = reg.get("model", name)
    ctx = {"task": "time-series-forecasting", "context_length": 32, "horizon": 8, "channels": 3, "targets": 2,
           "seasonality": 12}
    model = comp.build(dict(comp.example), ctx)
    out = model(torch.randn(4, 32, 3))
    assert out.shape == (4, 8, 2)
    if name == "seasonal-naive":
        x = torch.arange(32.0).view(1, 32, 1).repeat(1, 1, 3)
        assert model(x)[0, :, 0].tolist() == [20.0, 21, 22, 23, 24, 25, 26, 27]


def test_end_to_end_forecast_beats_naive_with_report_baseline_export_and_csv_input(tmp_path):
    import fmkit

    _write_series(tmp_path / "s.csv", n=600)
    base = {
        "task": {"name": "time-series-forecasting", "context_length": 48, "horizon": 12},
        "data": {"path": str(tmp_path / "s.csv"), "split_ratios": [0.6, 0.2, 0.2]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 4, "batch_size": 32, "progress": "off"},
        "tracking": {"runs_dir": str(tmp_path / "runs"), "tensorboard": False},
    }
    last = fmkit.train({**base, "model": {"name": "last-value"}})  # baselines run through the same engine
    naive = fmkit.train({**base, "model": {"name": "seasonal-naive"}})
    assert naive.results["mse"] < last.results["mse"] / 5  # a clean daily cycle: the season is the answer
    run = fmkit.train({**base, "model": {"name": "dlinear"}, "export": {"formats": ["onnx"]}})
    assert run.results["mse"] < last.results["mse"] / 5 and run.results["mse"] < 0.1
    assert {"mse", "mae", "mase", "mse_original", "smape"} <= set(run.results)
    assert (run.run_dir / "plots" / "forecasts.png").is_file()
    df = pd.read_csv(tmp_path / "s.csv").tail(48)
    pred = fmkit.load(run.exports["onnx"], backend="onnx").predict([df[["load", "temp"]].to_csv(index=False)])
    forecast = pred[0]["forecast"]
    assert set(forecast) == {"load", "temp"} and len(forecast["load"]) == 12
    assert 0 < np.mean(forecast["load"]) < 30  # original units, not scaled ones
    with pytest.raises(DataError, match="needs the last 48"):
        fmkit.load(run.exports["onnx"]).predict([df[["load", "temp"]].to_numpy()[:10].tolist()])


def test_series_classification_end_to_end(tmp_path):
    import fmkit

    rng = np.random.default_rng(0)
    t = np.arange(40)
    rows = []
    for i in range(80):
        period = 4 if i % 2 else 13
        rows.append([("fast" if i % 2 else "slow"), *(np.sin(2 * np.pi * t / period + rng.uniform(0, 6))
                                                     + rng.normal(0, 0.1, 40)).round(4)])
    pd.DataFrame(rows, columns=["label", *[f"t{i}" for i in t]]).to_csv(tmp_path / "train.csv", index=False)
    run = fmkit.train({
        "task": {"name": "time-series-classification"},
        "model": {"name": "tcn", "channels": 16, "levels": 3},
        "data": {"train": str(tmp_path / "train.csv"), "validation_split": 0.25},
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 6, "batch_size": 16, "progress": "off"},
        "tracking": {"runs_dir": str(tmp_path / "runs"), "tensorboard": False},
    })
    assert run.results["accuracy"] >= 0.9
