"""fmkit-tune's space on every sampler and pruner: what each dimension samples stays inside it (fast:
a stand-in objective, no training)."""
from __future__ import annotations

import optuna
import pytest

from fmkit_tune.settings import TuneSettings
from fmkit_tune.storage import make_pruner, make_sampler

SPACE = {"optimizer.lr": {"float": [1e-5, 1e-3], "log": True}, "train.batch_size": {"int": [8, 32], "step": 8},
         "scheduler.warmup_ratio": {"float": [0.0, 0.2], "step": 0.05}, "model.pooling": {"choice": ["model", "mean"]}}


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "cmaes"])
@pytest.mark.parametrize("pruner", ["median", "hyperband", "none"])
def test_each_sampler_and_pruner_samples_inside_the_space(sampler, pruner):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = dict(SPACE)
    if sampler == "grid":  # a grid needs values to try: a log range has none (fmkit validate says so)
        space["optimizer.lr"] = {"choice": [1e-5, 1e-4, 1e-3]}
    settings = TuneSettings.model_validate({"sampler": sampler, "pruner": pruner, "startup_trials": 2, "space": space})
    study = optuna.create_study(direction="maximize", sampler=make_sampler(settings, settings.space, 0),
                                pruner=make_pruner(settings))
    seen = []

    def objective(trial):
        values = {k: p.suggest(trial, k) for k, p in settings.space.items()}
        seen.append(values)
        for step in range(1, 4):
            trial.report(values["optimizer.lr"] * step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return values["optimizer.lr"]

    study.optimize(objective, n_trials=6)
    assert len(seen) == 6
    for v in seen:
        assert 1e-5 <= v["optimizer.lr"] <= 1e-3
        assert v["train.batch_size"] in (8, 16, 24, 32)
        assert any(abs(v["scheduler.warmup_ratio"] - g) < 1e-9 for g in (0.0, 0.05, 0.1, 0.15, 0.2))
        assert v["model.pooling"] in ("model", "mean")
    if sampler == "grid":  # a grid never repeats a point while points are left
        assert len({tuple(sorted(v.items())) for v in seen}) == 6
