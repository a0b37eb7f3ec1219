"""Commands that do the work: train, evaluate, predict, export, serve (they import torch lazily)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import UsageError


def train(args) -> int:
    source = Path(args.recipe)
    if source.is_dir():
        hint = (f"it is a run directory: continue it with fmkit train {source / 'recipe.yaml'} --resume {source}"
                if (source / "recipe.yaml").is_file() else "give a recipe YAML file")
        raise UsageError(f"{source} is a folder, not a recipe; {hint}")
    if args.print_recipe:
        import yaml

        from ..recipe import load_recipe

        print(yaml.safe_dump(load_recipe(args.recipe, args.overrides).to_dict(), sort_keys=False), end="")
        return 0
    return _run_and_print(args, args.recipe)


def _run_and_print(args, recipe) -> int:
    """Train ``recipe`` (a path or a dict) with the command's output options and print the summary."""
    from ..engine.api import train as run_train
    from ..engine.distributed import world

    if getattr(args, "resume", None) is not None and not args.resume.strip():
        from ..errors import UsageError

        raise UsageError("--resume was given an empty path (an unset shell variable?): give the run directory to "
                         "continue, or leave --resume out to start a new run")
    if getattr(args, "resume", None) and getattr(args, "run_dir", None):
        from ..errors import UsageError

        raise UsageError(f"--resume {args.resume} continues that run in its own directory; --run-dir "
                         f"{args.run_dir} would be ignored: give one of the two")

    if args.json:  # stdout carries the one JSON object; progress and notices go to stderr
        import contextlib

        with contextlib.redirect_stdout(sys.stderr):
            run = run_train(recipe, overrides=args.overrides, run_dir=args.run_dir, resume=args.resume,
                            overwrite=args.overwrite)
    else:
        run = run_train(recipe, overrides=args.overrides, run_dir=args.run_dir, resume=args.resume,
                        overwrite=args.overwrite)
    if world()[0] != 0:  # under torchrun the summary is printed once, by rank 0
        return 0
    if args.json:
        print(json.dumps({"results": run.results, "run_dir": str(run.run_dir),
                          "report": str(run.report_path) if run.report_path else None,
                          "exports": {k: str(v) for k, v in run.exports.items()}, "stopped": run.stopped}))
        return 0
    print(json.dumps(run.results, indent=2))
    if run.stopped:  # a hook ended the run early (run.request_stop): say so, it is not a full run
        print(f"stopped: {run.stopped['reason']} (at step {run.stopped['step']}, epoch {run.stopped['epoch'] + 1})")
    print(f"run directory: {run.run_dir}")
    if run.report_path:
        print(f"report: {run.report_path}")
    for fmt, path in run.exports.items():
        print(f"export ({fmt}): {path}")
    return 0


def distill(args) -> int:
    """``fmkit distill TEACHER RECIPE``: ``fmkit train RECIPE`` with ``distill.teacher`` (and the
    given ``--temperature`` / ``--alpha``) set; the recipe's other distill settings are kept."""
    if not Path(args.teacher).is_dir():
        raise UsageError(f"teacher {args.teacher}: no such folder; give a run directory (fmkit train printed it) or "
                         "an export folder (fmkit export wrote it)")
    # absolute (the run's recipe.yaml must still find it) and quoted (YAML reads the path as it is)
    sets = [f"distill.teacher={json.dumps(str(Path(args.teacher).resolve()))}"]
    sets += [f"distill.{k}={v}" for k in ("temperature", "alpha") if (v := getattr(args, k)) is not None]
    args.overrides = sets + list(args.overrides)
    return train(args)


def prune(args) -> int:
    """``fmkit prune RUN``: ``fmkit train`` of the run's own recipe with a ``prune:`` section (and
    ``distill:`` from RUN with ``--distill``); see :func:`fmkit.prune`."""
    from ..engine.prune import prune_recipe

    if not any(v for v in (args.heads, args.ffn, args.channels)):
        raise UsageError("fmkit prune: nothing to remove; give a share above 0 with --heads, --ffn or --channels "
                         "(e.g. --heads 0.4 --ffn 0.4)")
    recipe = prune_recipe(args.run, args.heads, args.ffn, args.channels, args.recover_epochs, args.distill,
                          args.importance_batches)
    if args.print_recipe:
        import yaml

        from ..recipe import load_recipe

        print(yaml.safe_dump(load_recipe(recipe, args.overrides).to_dict(), sort_keys=False), end="")
        return 0
    return _run_and_print(args, recipe)


def runs(args) -> int:
    from ..engine.runs import format_runs, list_runs

    rows = list_runs(args.runs_dir)
    sys.stdout.write(json.dumps(rows) + "\n" if args.json else format_runs(rows))
    return 0


def compare(args) -> int:
    from ..engine.runs import compare_runs

    print(f"wrote {compare_runs(args.run_dirs, args.output)}")
    return 0


def evaluate(args) -> int:
    from ..engine.api import evaluate as run_evaluate

    info: dict = {}
    metrics = run_evaluate(args.run_dir, data=args.data, split=args.split, trust_remote_code=args.trust_remote_code,
                           info=info)
    print(f"scored {info['examples']} examples ({info['split']})", file=sys.stderr)
    if args.json:
        print(json.dumps(metrics))
    else:
        width = max(len(k) for k in metrics) if metrics else 0
        for k, v in metrics.items():
            print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return 0


def predict(args) -> int:
    from ..engine.predict_file import predict_file

    n = predict_file(args.run_dir, args.input, args.output, batch_size=args.batch_size,
                     trust_remote_code=args.trust_remote_code, backend=args.backend,
                     input_format=args.input_format)
    if args.output and args.output != "-":
        print(f"wrote {n} predictions to {args.output}", file=sys.stderr)
    elif not n:
        print(f"warning: {'standard input' if args.input == '-' else args.input} holds no inputs (no non-blank line or record): nothing was predicted",
              file=sys.stderr)
    return 0


def export(args) -> int:
    from ..exporting.api import export as run_export

    path = run_export(args.run_dir, args.format, output=args.output, quantize=args.quantize,
                      tolerance=args.tolerance, min_agreement=args.min_agreement,
                      trust_remote_code=args.trust_remote_code, keep_float=args.keep_float or None)
    print(f"export: {path}")
    return 0


#: ``fmkit serve`` flags that may also come from the recipe's ``serve:`` section
SERVE_SETTINGS = ("host", "port", "backend", "precision", "batching", "max_batch_size", "max_wait_ms", "max_queue",
                  "max_items", "max_body_bytes", "max_input_chars", "max_request_chars", "header_timeout",
                  "body_timeout", "api_key_env", "public_metrics", "public_docs", "access_log")


def serve(args) -> int:
    from ..serve.app import serve as run_serve
    from ..serve.settings import serve_settings

    settings = serve_settings(args.path, {k: getattr(args, k) for k in SERVE_SETTINGS})
    try:
        run_serve(args.path, trust_remote_code=args.trust_remote_code, **settings)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown: a clean stop
        return 0
    return 0
