"""fmkit-timeseries distillation: a forecaster trained on a teacher's forecasts (MSE to the teacher)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")


def test_a_forecaster_follows_its_teacher_not_the_data(tmp_path):
    """The teacher is the last-value baseline (a flat forecast), far from the series' daily cycle: the
    student distilled with alpha=1 forecasts like it, the same student with alpha=0 learns the cycle."""
    import fmkit

    rng = np.random.default_rng(0)
    t = np.arange(600)
    pd.DataFrame({"date": pd.date_range("2024-01-01", periods=600, freq="h"),
                  "load": 10 + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.1, 600)}).to_csv(tmp_path / "s.csv",
                                                                                                 index=False)
    base = {"task": {"name": "time-series-forecasting", "context_length": 48, "horizon": 12},
            "data": {"path": str(tmp_path / "s.csv"), "split_ratios": [0.6, 0.2, 0.2],
                     "cache_dir": str(tmp_path / "cache")},
            "optimizer": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 4, "batch_size": 32, "progress": "off", "seed": 0},
            "tracking": {"runs_dir": str(tmp_path / "runs"), "tensorboard": False}}
    teacher = fmkit.train({**base, "model": {"name": "last-value"}}, run_dir=str(tmp_path / "teacher"))
    rmse, mse = {}, {}
    for alpha in (0.0, 1.0):
        run = fmkit.train({**base, "model": {"name": "dlinear"},
                           "distill": {"teacher": str(teacher.run_dir), "alpha": alpha}},
                          run_dir=str(tmp_path / f"alpha{alpha}"))
        rmse[alpha], mse[alpha] = run.results["teacher_student_rmse"], run.results["mse"]
        assert run.results["teacher_mse"] == pytest.approx(teacher.results["mse"], rel=1e-5)
    assert list((tmp_path / "cache").glob("distill-*.pt"))  # no augmentation: the teacher's forecasts were cached
    assert rmse[1.0] < rmse[0.0] / 4, rmse  # the distilled student forecasts like the teacher
    assert mse[1.0] > mse[0.0] * 4, mse  # and so, like it, misses the cycle
