"""Every built-in metric against scikit-learn, on random and degenerate inputs.

Degenerate inputs: every example of one class, tied scores, perfect and perfectly wrong scores,
scores so large that a probability is exactly 1.0 (the roc-auc crash of issue 17).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skm = pytest.importorskip("sklearn.metrics", reason="pip install -e '.[dev]' (scikit-learn is the reference)")

from fmkit.builtin import metrics as M  # noqa: E402
from fmkit.components import Params  # noqa: E402


def _metric(cls, params: Params, num_labels: int | None = None, **context):
    if num_labels is not None:
        context["num_labels"] = num_labels
    return cls(params, context)


def _stream(metric, preds, targets, batches: int = 3):
    """Feed in several batches, as the engine does, then compute."""
    metric.reset()
    for p, t in zip(torch.tensor_split(preds, batches), torch.tensor_split(targets, batches)):
        metric.update(p, t)
    return metric.compute()


def _random_multiclass(seed: int, n: int = 97, c: int = 4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * 3, torch.randint(0, c, (n,), generator=g)


def _degenerate_multiclass():
    """(name, scores, targets) cases where hand-written metrics typically go wrong."""
    big = torch.tensor([[-20.0, 20.0], [20.0, -20.0], [-20.0, 20.0], [20.0, -20.0]])
    return [
        ("saturated-perfect", big, torch.tensor([1, 0, 1, 0])),
        ("saturated-wrong", big, torch.tensor([0, 1, 0, 1])),
        ("all-one-class", torch.randn(8, 3, generator=torch.Generator().manual_seed(1)), torch.full((8,), 2)),
        ("all-tied", torch.zeros(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])),
        ("predicted-never-true", torch.tensor([[0.0, 0.0, 9.0]] * 3 + [[9.0, 0.0, 0.0]] * 3),
         torch.tensor([0, 1, 1, 0, 1, 0])),
    ]


CASES = [(f"random-{s}", *_random_multiclass(s)) for s in range(3)] + _degenerate_multiclass()


@pytest.mark.parametrize("name,scores,targets", CASES, ids=[c[0] for c in CASES])
def test_classification_metrics_match_sklearn(name, scores, targets):
    c = scores.shape[1]
    y, y_pred = targets.numpy(), scores.argmax(-1).numpy()
    labels = list(range(c))
    got = _stream(_metric(M.Accuracy, M.ClassParams(), c), scores, targets)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
    for average in ("macro", "micro", "weighted"):
        params = M.AveragedParams(average=average)
        for cls, ref in ((M.Precision, skm.precision_score), (M.Recall, skm.recall_score), (M.F1, skm.f1_score)):
            got = _stream(_metric(cls, params, c), scores, targets)
            want = ref(y, y_pred, average=average, zero_division=0)
            assert list(got.values())[0] == pytest.approx(want, abs=1e-12), (cls.__name__, average)
    cm = _metric(M.ConfusionMatrix, M.ClassParams(), c)
    _stream(cm, scores, targets)
    assert cm.artifacts()["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, y_pred, labels=labels).tolist()
    for k in (1, 2):
        got = _stream(_metric(M.TopKAccuracy, M.TopKParams(k=k), c), scores, targets)
        # scikit-learn takes one score per example for two classes
        ref_scores = scores.numpy() if c > 2 else (scores[:, 1] - scores[:, 0]).numpy()
        assert got[f"top{k}_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, ref_scores, k=k, labels=labels))


def _log_odds(scores: torch.Tensor) -> np.ndarray:
    """Each class's log-odds against the rest: ranks like the softmax, without rounding to 1.0."""
    s = scores.double()
    return torch.stack([s[:, k] - torch.logsumexp(torch.cat([s[:, :k], s[:, k + 1:]], 1), 1)
                        for k in range(s.shape[1])], 1).numpy()


def _sk_auc(targets: np.ndarray, probs: np.ndarray) -> float:
    """scikit-learn's AUC (one-vs-rest, macro over classes with both), or nan where it is undefined."""
    c = probs.shape[1]
    if c == 2:
        return skm.roc_auc_score(targets, probs[:, 1]) if len(set(targets)) == 2 else math.nan
    present = [k for k in range(c) if 0 < (targets == k).sum() < len(targets)]
    if not present:
        return math.nan
    return float(np.mean([skm.roc_auc_score(targets == k, probs[:, k]) for k in present]))


@pytest.mark.parametrize("name,scores,targets", CASES, ids=[c[0] for c in CASES])
def test_roc_auc_matches_sklearn(name, scores, targets):
    probs = _log_odds(scores)
    got = _stream(_metric(M.RocAuc, M.AUCParams(), scores.shape[1]), scores, targets)["roc_auc"]
    want = _sk_auc(targets.numpy(), probs)
    if math.isnan(want):
        assert math.isnan(got)
    else:  # scores are binned (1000 bins) so the metric streams and sums across ranks
        assert got == pytest.approx(want, abs=2e-3)


def test_roc_auc_scores_of_exactly_one_do_not_crash():
    metric = _metric(M.RocAuc, M.AUCParams(), 2)
    metric.update(torch.tensor([[-20.0, 20.0], [20.0, -20.0]]), torch.tensor([1, 0]))
    assert metric.compute()["roc_auc"] == 1.0


def test_roc_auc_binary_scores_match_sklearn():
    g = torch.Generator().manual_seed(4)
    scores, targets = torch.randn(200, generator=g) * 4, torch.randint(0, 2, (200,), generator=g)
    got = _stream(_metric(M.RocAuc, M.AUCParams(), 2), scores, targets)["roc_auc"]
    assert got == pytest.approx(skm.roc_auc_score(targets.numpy(), scores.numpy()), abs=2e-3)


def test_multilabel_metrics_match_sklearn():
    g = torch.Generator().manual_seed(5)
    scores, targets = torch.randn(64, 4, generator=g) * 2, (torch.rand(64, 4, generator=g) > 0.6).float()
    targets[:, 3] = 0  # a label that never occurs
    y, y_pred = targets.numpy().astype(int), (torch.sigmoid(scores) >= 0.5).numpy().astype(int)
    got = _stream(_metric(M.Accuracy, M.ClassParams(), 4), scores, targets)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
    for average in ("macro", "micro", "weighted"):
        for cls, ref in ((M.Precision, skm.precision_score), (M.Recall, skm.recall_score), (M.F1, skm.f1_score)):
            got = _stream(_metric(cls, M.AveragedParams(average=average), 4), scores, targets)
            assert list(got.values())[0] == pytest.approx(ref(y, y_pred, average=average, zero_division=0)), \
                (cls.__name__, average)
    got = _stream(_metric(M.RocAuc, M.AUCParams(), 4), scores, targets)["roc_auc"]
    want = np.mean([skm.roc_auc_score(y[:, k], torch.sigmoid(scores).numpy()[:, k]) for k in range(3)])
    assert got == pytest.approx(want, abs=2e-3)


def test_binary_scores_use_the_threshold_on_probabilities():
    scores, targets = torch.tensor([-1.0, 0.2, 0.5, 2.0]), torch.tensor([0, 0, 1, 1])
    got = _stream(_metric(M.Accuracy, M.ClassParams(threshold=0.6), 2), scores, targets, batches=1)
    want = skm.accuracy_score(targets.numpy(), (torch.sigmoid(scores) >= 0.6).numpy().astype(int))
    assert got["accuracy"] == pytest.approx(want)


def test_negative_targets_are_skipped_and_leading_axes_flattened():
    scores = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(6))
    targets = torch.tensor([[0, 1, 2, -100, -100], [2, 2, 1, 0, -1]])
    keep = targets.reshape(-1) >= 0
    y, y_pred = targets.reshape(-1)[keep].numpy(), scores.reshape(-1, 3).argmax(-1)[keep].numpy()
    got = _stream(_metric(M.Accuracy, M.ClassParams(), 3), scores, targets, batches=1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))


REGRESSION = [
    ("random", torch.randn(50, 3, generator=torch.Generator().manual_seed(7)),
     torch.randn(50, 3, generator=torch.Generator().manual_seed(8))),
    ("perfect", torch.arange(12.0), torch.arange(12.0)),
    ("zeros-in-target", torch.tensor([1.0, -2.0, 0.5, 0.0]), torch.tensor([0.0, -1.0, 0.5, 0.0])),
    ("constant", torch.full((10,), 3.0), torch.full((10,), -3.0)),
]


def _smape(y: np.ndarray, p: np.ndarray) -> float:
    den = np.abs(y) + np.abs(p)
    return 100 * float(np.mean(np.where(den > 0, 2 * np.abs(p - y) / np.where(den > 0, den, 1), 0.0)))


@pytest.mark.parametrize("name,preds,targets", REGRESSION, ids=[r[0] for r in REGRESSION])
def test_regression_metrics_match_sklearn(name, preds, targets):
    y, p = targets.double().numpy().reshape(-1), preds.double().numpy().reshape(-1)
    want = {"mae": skm.mean_absolute_error(y, p), "mse": skm.mean_squared_error(y, p),
            "rmse": skm.root_mean_squared_error(y, p), "mape": 100 * skm.mean_absolute_percentage_error(y, p),
            "smape": _smape(y, p)}
    for key, value in want.items():
        cls = getattr(M, key.upper())
        got = _stream(cls(M.RegressionParams(), {}), preds, targets)
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_regression_original_units_use_the_tasks_inverse_scaling():
    preds, targets = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.5, 1.0, 1.0])
    metric = M.MAE(M.RegressionParams(units="original"), {"inverse_transform": lambda x: x * 10 + 5})
    got = _stream(metric, preds, targets, batches=1)
    assert got == {"mae_original": pytest.approx(skm.mean_absolute_error(targets * 10 + 5, preds * 10 + 5))}


def test_metrics_declare_whether_higher_is_better():
    for cls in (M.Accuracy, M.TopKAccuracy, M.Precision, M.Recall, M.F1, M.RocAuc):
        assert cls.higher_is_better is True, cls
    for cls in (M.MAE, M.MSE, M.RMSE, M.MAPE, M.SMAPE):
        assert cls.higher_is_better is False, cls


class _ErrorRate(M.Metric):
    """A plugin's metric where lower is better, under a name the core has never heard of."""

    higher_is_better = {"error_rate": False}

    def reset(self):
        self.value = 0.25

    def update(self, preds, targets):
        pass

    def compute(self):
        return {"error_rate": self.value, "hit_rate": 1 - self.value}


def test_monitor_mode_comes_from_the_metrics_higher_is_better():
    from types import SimpleNamespace

    from fmkit.engine.loop import _default_mode

    task = SimpleNamespace(monitor="accuracy", monitor_mode="max")
    metrics = [M.Accuracy(M.ClassParams(), {"num_labels": 2}), _ErrorRate(Params(), {}),
               M.MSE(M.RegressionParams(), {})]
    results = {k: v for m in metrics for k, v in m.compute().items()}
    assert _default_mode("accuracy", task, metrics, results) == "max"
    assert _default_mode("loss", task, metrics, results) == "min"
    assert _default_mode("error_rate", task, metrics, results) == "min"
    assert _default_mode("hit_rate", task, metrics, results) == "max"
    assert _default_mode("mse", task, metrics, results) == "min"
    assert _default_mode("mse", task, metrics, None) is None  # decided at the first evaluation
