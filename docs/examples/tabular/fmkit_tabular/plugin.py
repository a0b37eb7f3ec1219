"""fmkit-tabular's hooks: its components, an audit trail of tabular runs, and a CLI command."""

import json

from fmkit import Component, hookimpl
from fmkit.io import read_csv
from fmkit.tasks import CLASSIFICATION_METRICS

from .data import infer_types  # light: a plugin module must not import torch (`fmkit plugins list` stays fast)

fmkit_api = ">=1.3,<2"  # 1.3: the dataset's column types reach Task.setup
TASKS = ["tabular-classification", "tabular-regression"]
_T, _M = "fmkit_tabular.tasks", "fmkit_tabular.model"


@hookimpl
def fmkit_register_tasks():
    d = {"dataset": "csv-table", "model": "tabular-mlp"}
    return [Component("task", TASKS[0], f"{_T}:TabularClassification", summary="Table rows in, a class out",
                      tags={"defaults": {**d, "loss": "cross-entropy", "metrics": CLASSIFICATION_METRICS}}),
            Component("task", TASKS[1], f"{_T}:TabularRegression", summary="Table rows in, a number out",
                      tags={"defaults": {**d, "loss": "mse", "metrics": ["mae", "rmse", "mse"]}})]


@hookimpl
def fmkit_register_models():
    return [Component("model", "tabular-mlp", f"{_M}:TabularMLP", f"{_M}:MLPParams",
                      "MLP over numeric columns and categorical embeddings", {"hidden": [16]}, tags={"tasks": TASKS})]


@hookimpl
def fmkit_register_datasets():
    return [Component("dataset", "csv-table", "fmkit_tabular.data:CsvTable", "fmkit_tabular.data:CsvTableParams",
                      "CSV files with declared or inferred column types", {"train": "train.csv", "target": "y"})]


@hookimpl
def fmkit_register_losses():
    return [Component("loss", "focal", f"{_M}:focal_loss", f"{_M}:FocalParams",
                      "Focal loss: cross-entropy that down-weights easy examples", {"gamma": 2.0})]


@hookimpl
def fmkit_on_evaluate_end(run, split, metrics):
    """The audit trail: every evaluation of a tabular run, with the data it saw, in ``audit.jsonl``."""
    if run.is_main and run.recipe.task.name in TASKS:  # rank 0 writes; other plugins' runs are left alone
        record = {"step": run.global_step, "split": split, "metrics": metrics, "data": run.data_summary}
        with open(run.run_dir / "audit.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


@hookimpl
def fmkit_add_cli_commands(subparsers):
    p = subparsers.add_parser("tabular-profile", help="the column types csv-table infers for a CSV file")
    p.add_argument("csv", help="the CSV file to profile")
    p.set_defaults(func=_profile)


def _profile(args) -> int:
    rows = [r for _, r in read_csv(args.csv)]
    for column, kind in infer_types(rows, {}).items():
        print(f"{column}\t{kind}\t{sum(r[column] == '' for r in rows)} missing")
    return 0
