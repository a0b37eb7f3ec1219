"""Entry point of the ``fmkit`` command: argument parsing and exit codes only.

Exit codes: 0 success, 1 failure, 2 bad usage or invalid input. Commands import heavy modules
inside their functions, so ``fmkit plugins list`` never imports torch.
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..components import KINDS
from ..errors import FmkitError


def _non_negative_float(text: str) -> float:
    """An argparse type: a number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} is below 0")
    return value


def _fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{value} is above 1 (a share: 0.99 keeps 99%)")
    return value


def _share(text: str) -> float:
    """An argparse type: a share to remove, from 0 up to (not including) 1."""
    value = _non_negative_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not below 1 (a share to remove: 0.4 removes 40%)")
    return value


def _positive_int(text: str) -> int:
    """An argparse type: a whole number above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not above 0")
    return value


def _positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    value = _non_negative_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} is not above 0")
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


TRUST_HELP = ("allow Python code shipped with the model (an auto_map in its config) to be imported and run; "
              "never turned on by what an export or run directory says")


def _recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", nargs="?", help="recipe YAML file (or give it as --config FILE)")
    p.add_argument("--config", metavar="FILE", help="the recipe YAML file, for those used to --config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set train.epochs=3 (repeatable)")


def _run_output_args(p: argparse.ArgumentParser, resolved: str) -> None:
    """Where a training run writes and what it prints: shared by ``train`` and ``distill``."""
    p.add_argument("--run-dir", help="run directory (default: <tracking.runs_dir>/<name>-<time>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in an existing --run-dir (without it a non-empty --run-dir is refused)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object at the end (results, run directory, report, exports) and nothing "
                        "else on stdout; progress goes to stderr")
    p.add_argument("--print-recipe", action="store_true",
                   help=f"print the resolved recipe ({resolved}) as YAML and exit")


def _list_tasks_in_help(p: argparse.ArgumentParser) -> None:
    """``--help`` ends with the installed tasks (looked up only when help is shown)."""
    plain = p.format_help

    def format_help() -> str:
        from ..plugins import get_plugin_manager

        try:
            tasks = sorted(get_plugin_manager().registry.names("task"))
        except Exception as e:  # a broken plugin must not break --help
            return plain() + f"\ninstalled tasks: unknown ({e})\n"
        return plain() + "\ninstalled tasks:\n" + "".join(f"  {t}\n" for t in tasks)

    p.format_help = format_help


def build_parser() -> argparse.ArgumentParser:
    from . import commands_core as core
    from . import commands_run as run

    parser = argparse.ArgumentParser(prog="fmkit", description="Fine-tune, evaluate, export and serve foundation models.")
    parser.add_argument("--strict-plugins", action="store_true", help="fail when any plugin fails to load")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME", help="switch a plugin off (repeatable)")
    parser.add_argument("--version", action="version", version=f"fmkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser("plugins", help="installed plugins").add_subparsers(dest="sub", metavar="SUBCOMMAND", required=True)
    p = plugins.add_parser("list", help="list plugins with distribution, version, hooks, recipe sections and load errors")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: a table)")
    p.set_defaults(func=core.plugins_list)

    comps = sub.add_parser("components", help="registered components").add_subparsers(dest="sub", metavar="SUBCOMMAND", required=True)
    p = comps.add_parser("list", help="list components")
    p.add_argument("--kind", help=f"only this kind of component: {', '.join(KINDS)}")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: a table)")
    p.set_defaults(func=core.components_list)
    p = comps.add_parser("show", help="a component's summary, parameters and an example (or a plugin recipe section's fields)")
    p.add_argument("id", help="short or qualified id (plugin:name), or a plugin's recipe section (tune)")
    p.add_argument("--kind", help=f"the kind, when several kinds share the id: {', '.join(KINDS)}")
    p.add_argument("--json", action="store_true", help="print JSON instead of text (default: text)")
    p.set_defaults(func=core.components_show)

    p = sub.add_parser("validate", help="validate a recipe; report every problem with its line",
                       description="Validate a recipe and report every problem with its line. The recipe's "
                                   "plugins: modules are not imported (importing runs their code) unless "
                                   "--import-plugins is given; components they register are then unknown. "
                                   "The data files the recipe names must exist and hold the columns it names "
                                   "(only their headers are read, or the whole data set with --read-data), and a distill.teacher "
                                   "must exist, unless --skip-data is given.")
    _recipe_args(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (default: text)")
    p.add_argument("--skip-data", action="store_true",
                   help="check the recipe alone, not its data files or distill.teacher (a recipe written for another machine)")
    p.add_argument("--import-plugins", action="store_true",
                   help="import the recipe's plugins: modules (runs their code) so their components are checked; "
                        "a module that cannot be imported is an error")
    p.add_argument("--read-data", action="store_true",
                   help="also read the whole data set as training's first step does (cleaning, blank labels, "
                        "a single class, labels the test file has that training lacks, every line's format) "
                        "and print examples per split; slower; writes no run and no feature cache")
    p.set_defaults(func=core.validate)

    p = sub.add_parser("schema", help="print the JSON Schema of recipes with every installed component")
    p.add_argument("-o", "--output", help="file to write (default: print to stdout)")
    p.set_defaults(func=core.schema)

    new = sub.add_parser("new", help="scaffold a plugin or a starter recipe").add_subparsers(dest="sub", metavar="WHAT", required=True)
    p = new.add_parser("plugin", help="a pip-installable plugin package")
    p.add_argument("name", help="distribution name, e.g. acme-vision")
    p.add_argument("-o", "--output", default=".", help="parent folder (default: .)")
    p.set_defaults(func=core.new_plugin)
    p = new.add_parser("recipe", help="a commented starter recipe for an installed task")
    p.add_argument("task", help="an installed task's id (listed below)")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--data", metavar="FILE",
                   help="a training data file: its columns are looked at and filled in (default: placeholders)")
    p.add_argument("--force", action="store_true", help="replace an existing --output file")
    p.set_defaults(func=core.new_recipe)
    _list_tasks_in_help(p)

    p = sub.add_parser("train", help="train, evaluate and export from a recipe")
    _recipe_args(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    _run_output_args(p, "defaults filled in, --set applied")
    p.set_defaults(func=run.train)

    p = sub.add_parser("distill", help="train a student recipe to follow a trained teacher (fmkit train with "
                                       "the recipe's distill.teacher set to TEACHER)")
    p.add_argument("teacher", help="the teacher: a run directory or an export folder of the same task")
    _recipe_args(p)
    p.add_argument("--temperature", type=_positive_float, help="distill.temperature (default: the recipe's, else 2)")
    p.add_argument("--alpha", type=_fraction, help="distill.alpha, the weight of the teacher term (default: the "
                                                   "recipe's, else 0.5)")
    _run_output_args(p, "distill section filled in")
    p.set_defaults(func=run.distill, resume=None)

    p = sub.add_parser("prune", help="remove a finished run's least important heads, FFN neurons or channels, "
                                     "recover with a short fine-tune, write a new run directory")
    p.add_argument("run", help="the run directory to prune (fmkit train printed it)")
    p.add_argument("--heads", type=_share, help="share of attention heads to remove (attention encoders), e.g. 0.4")
    p.add_argument("--ffn", type=_share, help="share of feed-forward neurons to remove (attention encoders), e.g. 0.4")
    p.add_argument("--channels", type=_share, help="share of convolution channels to remove (CNNs), e.g. 0.3")
    p.add_argument("--recover-epochs", type=_positive_int, default=1,
                   help="epochs of the recovery fine-tune (train.epochs; default 1)")
    p.add_argument("--distill", action="store_true",
                   help="recover on the unpruned run's outputs too (a distill: section with RUN as teacher)")
    p.add_argument("--importance-batches", type=_positive_int,
                   help="training batches the importance is measured on (default 16)")
    p.add_argument("-o", "--run-dir", dest="run_dir", help="the new run directory (default: <tracking.runs_dir>/<name>-<time>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the run's recipe, e.g. --set optimizer.lr=2e-5 (repeatable)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in an existing --run-dir (without it a non-empty one is refused)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object at the end (results, run directory, report, exports) and nothing "
                        "else on stdout; progress goes to stderr")
    p.add_argument("--print-recipe", action="store_true", help="print the recipe the prune trains and exit")
    p.set_defaults(func=run.prune, resume=None)

    p = sub.add_parser("runs", help="list the runs under a runs folder (name, task, model, best, status, size)")
    p.add_argument("runs_dir", nargs="?", default="runs", help="the folder (default: runs, tracking.runs_dir's default)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: a table)")
    p.set_defaults(func=run.runs)

    p = sub.add_parser("compare", help="several runs side by side on one HTML page (metrics, settings, curves)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="two or more run directories to compare")
    p.add_argument("-o", "--output", default="compare.html", help="the page to write (default: compare.html)")
    p.set_defaults(func=run.compare)

    p = sub.add_parser("evaluate", help="score a run's best checkpoint")
    p.add_argument("run_dir", help="the run directory to evaluate (runs/latest: the newest run)")
    p.add_argument("--data", help="another file of the same format")
    p.add_argument("--split", choices=["auto", "validation", "test"], default="auto",
                   help="split to score: auto = test when the data has one, else validation (default: auto)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object (default: a table)")
    p.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    p.set_defaults(func=run.evaluate)

    p = sub.add_parser("predict", help="batch inference on a file of raw inputs")
    p.add_argument("run_dir", help="run directory or export folder")
    p.add_argument("input", help="file of raw inputs (one per line, CSV, JSONL, or a folder of files; "
                                 "- reads standard input)")
    p.add_argument("-o", "--output", help="JSONL or CSV output (default, or -: standard output as JSONL)")
    p.add_argument("--input-format", choices=["auto", "lines", "jsonl", "csv"], default="auto",
                   help="how to read INPUT: auto (default) goes by its ending (.jsonl, .csv; anything else and "
                        "standard input: one input per line)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="inputs per model call (default 32)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="auto (default): ONNX Runtime when the export has an ONNX model, else torch")
    p.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    p.set_defaults(func=run.predict)

    p = sub.add_parser("export", help="export a run's best model")
    p.add_argument("run_dir", help="the run directory to export (runs/latest: the newest run)")
    p.add_argument("--format", required=True, help="onnx, torchscript, safetensors, or one a plugin adds (fmkit components list --kind exporter)")
    p.add_argument("--quantize", choices=["int8"],
                   help="also write an int8 model, checked against the float one (default: float only)")
    p.add_argument("--keep-float", action="store_true",
                   help="with --quantize int8 and onnx, keep the float model.onnx too (default: the int8 model only)")
    p.add_argument("-o", "--output", help="folder to write (default: RUN_DIR/exports/FORMAT)")
    p.add_argument("--tolerance", type=_non_negative_float,
                   help="largest allowed |export - eager| on the validation inputs (default: the recipe's "
                        "export.tolerance)")
    p.add_argument("--min-agreement", type=_fraction,
                   help="classification: least share of predictions the export must keep (default: the recipe's "
                        "export.min_agreement)")
    p.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    p.set_defaults(func=run.export)

    p = sub.add_parser("serve", help="serve an export (or run) as an HTTP API",
                       description="Serve an export (or run directory) as an HTTP API. Settings come from the "
                                   "recipe's serve: section stored with it; a flag given here overrides it.")
    p.add_argument("path", help="an export folder (runs/latest/exports/onnx), or a run directory (its best weights, with torch)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, help="default 8000")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"],
                   help="auto (default): ONNX Runtime when the export has an ONNX model, else torch")
    p.add_argument("--max-batch-size", type=_positive_int, help="inputs per micro-batch, at most (default 16)")
    p.add_argument("--max-wait-ms", type=_non_negative_float,
                   help="how long a busy server waits to fill a micro-batch (default 5)")
    p.add_argument("--max-queue", type=_positive_int,
                   help="inputs that may wait; past it requests get 503 with Retry-After (default 1024)")
    p.add_argument("--max-items", type=_positive_int, help="inputs in one request; 413 past it (default 64)")
    p.add_argument("--max-body-bytes", type=_positive_int, help="request body size; 413 past it (default 16 MiB)")
    p.add_argument("--max-input-chars", type=_positive_int,
                   help="characters (bytes for files) of one input; 413 past it (default 1000000)")
    p.add_argument("--max-request-chars", type=_positive_int,
                   help="characters of one request's inputs in all; 413 past it (default 4000000)")
    p.add_argument("--header-timeout", type=_positive_float,
                   help="seconds a connection may take to send its request headers before it is closed (default 10)")
    p.add_argument("--body-timeout", type=_positive_float,
                   help="seconds a request may take to send its body; 408 and closed past it (default 30)")
    p.add_argument("--api-key-env", help="environment variable holding the API key (header X-API-Key); every path "
                                         "but /v1/health then needs it")
    p.add_argument("--public-metrics", action="store_const", const=True,
                   help="with an API key, still answer /metrics without one")
    p.add_argument("--public-docs", action="store_const", const=True,
                   help="with an API key, still answer /docs and /openapi.json without one")
    p.add_argument("--no-batching", dest="batching", action="store_const", const=False,
                   help="answer each request on its own (no micro-batching)")
    p.add_argument("--precision", choices=["auto", "float", "int8"],
                   help="auto (default): the int8 model when the export has one")
    p.add_argument("--access-log", action="store_const", const=True,
                   help="log every request (off by default: /metrics counts requests, errors and latency)")
    p.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    p.set_defaults(func=run.serve)

    from ..plugins import get_plugin_manager

    try:
        get_plugin_manager().hook.fmkit_add_cli_commands(subparsers=sub)
    except Exception as e:  # a plugin's CLI hook must not break the command line
        print(f"warning: a plugin failed to add CLI commands: {e}", file=sys.stderr)
    return parser


def _one_recipe(parser: argparse.ArgumentParser, args) -> None:
    """The recipe comes as the positional argument or as ``--config``, exactly once."""
    if args.recipe and args.config:
        parser.error(f"give the recipe once: either {args.recipe} or --config {args.config}")
    args.recipe = args.recipe or args.config
    if not args.recipe:
        parser.error("a recipe YAML file is required (fmkit new recipe TASK writes a starter)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # plugin settings must be known before the parser asks plugins for commands
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--strict-plugins", action="store_true")
    pre.add_argument("--disable-plugin", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    from ..plugins import configure

    try:
        configure(strict=known.strict_plugins or None, disabled=set(known.disable_plugin))
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        if hasattr(args, "config"):
            _one_recipe(parser, args)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `fmkit ... | head`: the reader left; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except FmkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # Ctrl-C (130); training stopped by SIGTERM says 143
        return int(getattr(e, "exit_code", 130))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
