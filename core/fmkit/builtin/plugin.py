"""The core's own plugin: modality-free losses, optimizers, schedulers, metrics, transforms, exporters.

It registers through the same hooks as any third-party plugin. Factories are import strings, so
listing these components imports neither torch nor numpy.
"""
from __future__ import annotations

from ..components import Component
from ..hookspecs import HOOK_API_VERSION, hookimpl

fmkit_api = f"=={HOOK_API_VERSION}"
_L, _O, _S, _M = "fmkit.builtin.losses", "fmkit.builtin.optimizers", "fmkit.builtin.schedulers", "fmkit.builtin.metrics"


@hookimpl
def fmkit_register_losses():
    return [
        Component("loss", "cross-entropy", f"{_L}:cross_entropy", f"{_L}:CrossEntropyParams",
                  "Cross-entropy with label smoothing, class weights and soft targets", {"label_smoothing": 0.1}),
        Component("loss", "bce-with-logits", f"{_L}:bce_with_logits", f"{_L}:BCEParams",
                  "Binary cross-entropy on logits (binary and multi-label)"),
        Component("loss", "mse", f"{_L}:mse", f"{_L}:NoLossParams", "Mean squared error"),
        Component("loss", "l1", f"{_L}:l1", f"{_L}:NoLossParams", "Mean absolute error (L1)"),
        Component("loss", "huber", f"{_L}:huber", f"{_L}:HuberParams", "Huber loss", {"delta": 1.0}),
    ]


@hookimpl
def fmkit_register_optimizers():
    return [
        Component("optimizer", "adamw", f"{_O}:adamw", f"{_O}:AdamWParams",
                  "AdamW, fused where available; no decay on biases and norms; head lr and layer decay",
                  {"lr": 3e-4, "weight_decay": 0.01}),
        Component("optimizer", "adam", f"{_O}:adam", f"{_O}:AdamParams", "Adam, fused where available", {"lr": 1e-3}),
        Component("optimizer", "sgd", f"{_O}:sgd", f"{_O}:SGDParams", "SGD with momentum and optional Nesterov",
                  {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    ]


@hookimpl
def fmkit_register_schedulers():
    return [
        Component("scheduler", "constant", f"{_S}:constant", f"{_S}:WarmupParams",
                  "Constant learning rate after optional warmup", {"warmup_ratio": 0.1}),
        Component("scheduler", "linear", f"{_S}:linear", f"{_S}:WarmupParams",
                  "Linear warmup then linear decay to zero", {"warmup_ratio": 0.1}),
        Component("scheduler", "cosine", f"{_S}:cosine", f"{_S}:CosineParams",
                  "Linear warmup then cosine decay", {"warmup_ratio": 0.1, "min_lr_ratio": 0.0}),
        Component("scheduler", "step", f"{_S}:step", f"{_S}:StepParams",
                  "Multiply the learning rate by gamma every step_size epochs", {"step_size": 1, "gamma": 0.5}),
        Component("scheduler", "plateau", f"{_S}:plateau", f"{_S}:PlateauParams",
                  "Reduce the learning rate when the monitored metric plateaus", {"patience": 1}),
    ]


@hookimpl
def fmkit_register_metrics():
    cls = [
        ("accuracy", "Accuracy", "ClassParams", "Share of correct predictions", {}, ["accuracy"]),
        ("top-k-accuracy", "TopKAccuracy", "TopKParams", "True class among the k best scores", {"k": 2},
         ["top{k}_accuracy"]),
        ("precision", "Precision", "AveragedParams", "Precision (macro, micro or weighted)", {"average": "macro"},
         ["precision_{average}"]),
        ("recall", "Recall", "AveragedParams", "Recall (macro, micro or weighted)", {"average": "macro"},
         ["recall_{average}"]),
        ("f1", "F1", "AveragedParams", "F1 score (macro, micro or weighted)", {"average": "macro"}, ["f1_{average}"]),
        ("confusion-matrix", "ConfusionMatrix", "ClassParams", "Confusion matrix for the report", {}, []),
        ("roc-auc", "RocAuc", "AUCParams", "ROC-AUC, one-vs-rest macro, streaming", {}, ["roc_auc"]),
    ]
    reg = [
        ("mae", "MAE", "Mean absolute error"), ("mse", "MSE", "Mean squared error"),
        ("rmse", "RMSE", "Root mean squared error"), ("mape", "MAPE", "Mean absolute percentage error"),
        ("smape", "SMAPE", "Symmetric mean absolute percentage error"),
    ]
    # tags["keys"]: the result keys each metric produces ({param} filled in from its parameters), so
    # `fmkit validate` can tell that a monitored metric is never computed
    out = [Component("metric", n, f"{_M}:{c}", f"{_M}:{p}", s, ex, tags={"input": "class-scores", "keys": keys})
           for n, c, p, s, ex, keys in cls]
    out += [Component("metric", n, f"{_M}:{c}", f"{_M}:RegressionParams", s,
                      tags={"input": "values", "keys": [n, f"{n}_original"]})
            for n, c, s in reg]
    return out


@hookimpl
def fmkit_register_transforms():
    t = "fmkit.builtin.transforms"
    return [
        Component("transform", "drop-missing", f"{t}:DropMissing", f"{t}:FieldsParams",
                  "Drop examples with a missing or empty field", {"fields": []}),
        Component("transform", "drop-duplicates", f"{t}:DropDuplicates", f"{t}:FieldsParams",
                  "Drop exact duplicate examples", {"fields": []}),
    ]


@hookimpl
def fmkit_register_exporters():
    e = "fmkit.exporting.exporters"
    return [
        Component("exporter", "safetensors", f"{e}:SafetensorsExporter", f"{e}:ExporterParams",
                  "Weights as safetensors with the model's configuration and task assets"),
        Component("exporter", "torchscript", f"{e}:TorchScriptExporter", f"{e}:ExporterParams",
                  "TorchScript (traced) module"),
        Component("exporter", "onnx", f"{e}:OnnxExporter", f"{e}:OnnxParams",
                  "ONNX with dynamic batch/sequence axes, checked with onnxruntime", {"opset": 17}),
    ]
