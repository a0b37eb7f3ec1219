"""``fmkit tune RECIPE [--set ...] [--trials N] [--timeout S] [--workers N] [--storage URL] [--study NAME]``."""
from __future__ import annotations

import argparse
import sys


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value
    return parse


def add_command(subparsers) -> None:
    p = subparsers.add_parser("tune", help="search hyperparameters with Optuna (the recipe's tune: section)",
                              description="Run or continue the study of the recipe's tune: section. Each trial "
                              "is an ordinary fmkit run under the study folder, selected on validation; the "
                              "best trial is scored on test once, at the end. Run the same command again to "
                              "continue an interrupted study.")
    p.add_argument("recipe", help="recipe YAML file with a tune: section")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set train.epochs=3 or --set tune.sampler=random")
    p.add_argument("--trials", type=_positive(int), help="trials the study holds when done (tune.trials)")
    p.add_argument("--timeout", type=_positive(float), metavar="S",
                   help="seconds this run may spend starting trials (tune.timeout)")
    p.add_argument("--workers", type=_positive(int), default=1,
                   help="trial processes on this machine, sharing the storage (threads divided); default 1")
    p.add_argument("--storage", metavar="URL", help="an Optuna RDB URL, e.g. postgresql://user@host/db "
                   "(default: sqlite in the study folder)")
    p.add_argument("--study", metavar="NAME", help="the study's name (default: the recipe file's name)")
    p.add_argument("--dir", metavar="FOLDER", help="the study folder (default: <runs_dir>/tune/<study>)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .study import run_study

    result = run_study(args.recipe, args.overrides, trials=args.trials, timeout=args.timeout,
                       workers=args.workers, storage=args.storage, study=args.study, directory=args.dir,
                       progress=True)
    out = sys.stdout
    print(f"study {result.study}: {len(result.trials)} trial(s) in {result.directory}", file=out)
    if result.best_trial is None:
        print("no trial completed", file=out)
        return 130 if result.interrupted else 1
    test = (result.test or {}).get(result.metric)
    print(f"best: trial {result.best_trial}, validation {result.metric} {result.best_value:.4g}"
          + (f", test {result.metric} {test:.4g}" if isinstance(test, (int, float)) else "")
          + f"; params {result.best_params}", file=out)
    print(f"wrote {result.directory / 'trials.csv'}, {result.best_recipe}, {result.directory / 'study.html'}; "
          f"train it: fmkit train {result.best_recipe}", file=out)
    return 130 if result.interrupted else 0
