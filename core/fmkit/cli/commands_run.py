"""Commands that do the work: train, evaluate, predict, export, serve (they import torch lazily)."""
from __future__ import annotations

import json
import sys


def train(args) -> int:
    from ..engine.api import train as run_train

    from ..engine.distributed import world

    run = run_train(args.recipe, overrides=args.overrides, run_dir=args.run_dir, resume=args.resume)
    if world()[0] != 0:  # under torchrun the summary is printed once, by rank 0
        return 0
    print(json.dumps(run.results, indent=2))
    print(f"run directory: {run.run_dir}")
    if run.report_path:
        print(f"report: {run.report_path}")
    for fmt, path in run.exports.items():
        print(f"export ({fmt}): {path}")
    return 0


def evaluate(args) -> int:
    from ..engine.api import evaluate as run_evaluate

    metrics = run_evaluate(args.run_dir, data=args.data, split=args.split)
    if args.json:
        print(json.dumps(metrics))
    else:
        width = max(len(k) for k in metrics) if metrics else 0
        for k, v in metrics.items():
            print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return 0


def predict(args) -> int:
    from ..engine.predict_file import predict_file

    n = predict_file(args.run_dir, args.input, args.output, batch_size=args.batch_size)
    if args.output:
        print(f"wrote {n} predictions to {args.output}", file=sys.stderr)
    return 0


def export(args) -> int:
    from ..exporting.api import export as run_export

    path = run_export(args.run_dir, args.format, output=args.output, quantize=args.quantize,
                      tolerance=args.tolerance, min_agreement=args.min_agreement)
    print(f"export: {path}")
    return 0


def serve(args) -> int:
    from ..serve.app import serve as run_serve

    run_serve(args.path, host=args.host, port=args.port, backend=args.backend, max_batch_size=args.max_batch_size,
              max_wait_ms=args.max_wait_ms, api_key_env=args.api_key_env, batching=not args.no_batching,
              precision=args.precision, access_log=args.access_log, max_queue=args.max_queue)
    return 0
