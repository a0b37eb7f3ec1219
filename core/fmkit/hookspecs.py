"""The fmkit hook contract: every door a plugin can open, in one file.

A plugin is any object or module with functions marked ``@fmkit.hookimpl`` whose names match
the specs below. An implementation may accept fewer arguments than its spec (pluggy passes only
the ones it names), so adding an argument to a spec never breaks an existing plugin.

Versioning: :data:`HOOK_API_VERSION` is the version of this contract. A plugin declares the
range it supports in a module or object attribute ``fmkit_api`` (a PEP 440 specifier such as
``">=1.0,<2"``); an incompatible plugin is refused with a message naming both versions.
Minor versions add hooks or arguments; a major version removes or changes one.

Registration hooks return a list of :class:`fmkit.Component` (possibly empty) and are called once
per process when the registry is first needed. A registration hook that raises (or returns
something other than components of its kind) marks its plugin failed: ``fmkit plugins list``
shows the error, none of that plugin's components are registered, and the other plugins work
(with ``--strict-plugins`` the command stops instead, exit code 1).

Lifecycle hooks are called by the training engine (:func:`fmkit.train`, ``fmkit train``) on every
rank through pluggy (``pm.hook.<name>(...)``, in ``fmkit.plugins.PluginManager.dispatch``), so
everything pluggy documents holds: the plugin registered last runs first;
``@fmkit.hookimpl(tryfirst=True)`` / ``trylast=True`` move an implementation; ``wrapper=True`` (or
old-style ``hookwrapper=True``) implementations run around all the others and see their result or
exception. A call monitor times every hook call (``eval_details.json``'s ``hook_seconds``). When an
implementation raises an ``Exception``, the remaining implementations of that hook are not called
and the engine raises :class:`fmkit.errors.PluginHookError` naming the plugin and the hook
("plugin 'audit' raised in hook fmkit_on_step_end: ValueError: ..."); the run stops and
``fmkit train`` exits with code 1. Raised inside the training loop (the epoch, step, evaluation
and checkpoint hooks), the error is first passed to :func:`fmkit_on_exception`.
``KeyboardInterrupt`` passes through unchanged.

A lifecycle hook never has to raise to end training early: ``run.request_stop(reason)`` (since
API 1.4; :meth:`fmkit.RunContext.request_stop`) asks the loop to stop at the next step boundary,
as early stopping does: the run then finishes normally (last validation, checkpoint, final
evaluation, report, export, :func:`fmkit_on_run_end`) and records the reason (``metrics.jsonl``,
``eval_details.json``'s ``stopped``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .components import Component

PROJECT = "fmkit"
HOOK_API_VERSION = "1.7"
"""The version of this contract: minor versions add hooks, arguments or Task methods (with defaults,
so older plugins keep working); a major version removes or changes one."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------- registration
@hookspec
def fmkit_register_tasks() -> list[Component]:
    """Return the tasks this plugin provides (kind ``task``).

    Called once when the registry is built. A task's factory returns a :class:`fmkit.Task`,
    which owns everything modality-specific: batch format, default loss and metrics, turning raw
    inputs into model inputs and outputs into predictions, and its preprocessing assets.
    """


@hookspec
def fmkit_register_models() -> list[Component]:
    """Return the models this plugin provides (kind ``model``).

    A model factory is called as ``factory(params, context)`` where ``context`` is the dict the
    task's :meth:`fmkit.Task.model_context` returns (for example ``num_labels``); it returns a
    ``torch.nn.Module``. When the engine rebuilds a trained model (evaluate, export, serve) the
    context also holds ``"inference": True``: trained weights are loaded next, so the factory
    may skip loading pretrained ones.
    """


@hookspec
def fmkit_register_datasets() -> list[Component]:
    """Return the datasets this plugin provides (kind ``dataset``).

    A dataset factory is called as ``factory(params, context)`` and returns an object with
    ``load() -> dict[str, list[dict]]``: raw examples per split name (``train``, ``validation``,
    ``test``); splits the data does not have are simply absent.
    """


@hookspec
def fmkit_register_transforms() -> list[Component]:
    """Return the transforms this plugin provides (kind ``transform``).

    A transform factory is called as ``factory(params, context)`` and returns a
    :class:`fmkit.Transform`. Cleaning transforms (``stage = "clean"``) run once on raw examples
    and may drop them (return ``None``); augmentations (``stage = "augment"``) run on training
    examples after preprocessing, with a seeded generator.
    """


@hookspec
def fmkit_register_losses() -> list[Component]:
    """Return the losses this plugin provides (kind ``loss``).

    A loss factory is called as ``factory(params, context)`` and returns a callable
    ``loss(outputs, targets) -> scalar tensor``.
    """


@hookspec
def fmkit_register_optimizers() -> list[Component]:
    """Return the optimizers this plugin provides (kind ``optimizer``).

    An optimizer factory is called as ``factory(params, context)`` with ``context["model"]`` set,
    and returns a ``torch.optim.Optimizer``.
    """


@hookspec
def fmkit_register_schedulers() -> list[Component]:
    """Return the learning-rate schedulers this plugin provides (kind ``scheduler``).

    Called as ``factory(params, context)`` with ``optimizer``, ``total_steps`` and
    ``steps_per_epoch`` in the context; returns a :class:`fmkit.ScheduleHandle`.
    """


@hookspec
def fmkit_register_metrics() -> list[Component]:
    """Return the metrics this plugin provides (kind ``metric``).

    Called as ``factory(params, context)``; returns a streaming :class:`fmkit.Metric`.
    """


@hookspec
def fmkit_register_exporters() -> list[Component]:
    """Return the exporters this plugin provides (kind ``exporter``).

    Called as ``factory(params, context)``; returns a :class:`fmkit.Exporter`.
    """


@hookspec
def fmkit_register_recipe_sections() -> list:
    """Return the top-level recipe sections this plugin declares (since API 1.4): a list of
    :class:`fmkit.RecipeSection` (a name such as ``"tune"`` and the pydantic model that validates it).

    Called once when the sections are first needed (validating a recipe, ``fmkit schema``,
    ``fmkit new recipe``). A declared section is validated with the rest of the recipe (every
    problem at once, with its path and line, did-you-mean for misspelt keys), appears in
    ``fmkit schema`` and ``fmkit new recipe``; a top-level key no installed plugin declares is
    still an error. The validated value is ``recipe.section(name)`` (``run.recipe.section(name)``
    in lifecycle hooks): the model instance, or ``None`` when the recipe has no such section.
    A hook that raises, returns something else, or declares a name the core or another plugin
    uses marks its plugin failed, as a failing registration hook does.
    """


# --------------------------------------------------------------------------- Python API
@hookspec
def fmkit_register_workflows() -> dict:
    """Return the Python functions this plugin adds to the ``fmkit`` namespace (since API 1.5), as
    ``{name: "package.module:function"}`` import strings, e.g. ``{"search": "my_search:search"}``.

    ``fmkit.NAME`` then resolves to the function on first use (``fmkit.search(recipe, trials=8)``),
    imported only then; ``import fmkit`` stays fast and ``dir(fmkit)`` lists the core's names only.
    A name the core already exports, a name another plugin registered first, or a value that is
    not an import string is skipped with a warning naming the plugin (the plugin's other workflows
    and components still work); a hook that raises marks its plugin failed, as a failing
    registration hook does. ``fmkit plugins list --json`` shows each plugin's workflows.
    """


# --------------------------------------------------------------------------- structured pruning
@hookspec(firstresult=True)
def fmkit_prune_model(model: Any, task: Any, fractions: dict, batches: list, loss: Any) -> dict | None:
    """Physically remove the least important structures of ``model``, in place (since API 1.5).

    Called by ``fmkit prune`` (a recipe's ``prune:`` section) with the source run's trained model
    (on the training device, in training mode), its task, the shares to remove per kind of structure
    (``fractions``: ``{"heads": 0.4, "ffn": 0.4}`` for attention encoders, ``{"channels": 0.3}`` for
    convolutional networks; only the kinds the recipe asked for), ``batches``: collated training
    batches already on the device, and ``loss``: ``loss(model, batch) -> scalar tensor``, the task's
    training loss of a batch, for measuring importance (gradient times weight, say).

    An implementation that does not know the model returns ``None`` (the next plugin is asked;
    when none answers, the prune is refused, nothing written). One that knows it removes the
    structures (the model must really become smaller: narrower matrices, fewer channels; masks do
    not count), raises :class:`fmkit.errors.UsageError` for a kind it cannot remove from this model
    (naming the kinds it can), and returns a JSON-able description of the model's whole new shape
    (not the change): the core stores it (``prune.json`` in the run directory, ``export.json``'s
    ``structure``) and hands it to :func:`fmkit_restore_structure` whenever the model is rebuilt.
    It may add ``"summary"`` (a short dict of what was removed, shown in the run's records).
    """


@hookspec(firstresult=True)
def fmkit_restore_structure(model: Any, structure: dict) -> bool | None:
    """Give a freshly built model the shape :func:`fmkit_prune_model` described (since API 1.5).

    Called before a pruned run's weights are loaded (evaluate, export, serve, resume, and a
    pruned source pruned again), with the model as the recipe's model section builds it and the
    stored ``structure``. Return ``True`` once the model has that shape (its values do not matter:
    the trained weights are loaded next, with safetensors), ``None`` for a structure this plugin did
    not write. Nothing may be unpickled or executed from the structure: it is plain JSON.
    """


# --------------------------------------------------------------------------- CLI
@hookspec
def fmkit_add_cli_commands(subparsers: Any) -> None:
    """Add sub-commands to the ``fmkit`` command line.

    ``subparsers`` is the ``argparse`` sub-parser action of the top-level parser. A command sets
    ``func`` with ``parser.set_defaults(func=callable)``; the callable gets the parsed namespace
    and returns an exit code (``None`` is 0); an :class:`fmkit.errors.FmkitError` it raises is printed
    as ``error: ...`` with the error's exit code (2 for :class:`fmkit.errors.DataError`). Called every
    time the command line is built. Keep imports inside the callable so start-up stays fast.
    If this hook raises, ``fmkit`` prints a warning and runs without the commands it (and any
    implementation after it) would have added.
    """


# --------------------------------------------------------------------------- lifecycle
@hookspec
def fmkit_on_run_start(run: Any) -> None:
    """Called once per run, before the first step: after the data is loaded and the task fitted,
    the model, optimizer and scheduler built, and (``--resume``) the checkpoint restored, so
    :func:`fmkit_restore_checkpoint_state` comes before it.

    ``run`` is the :class:`fmkit.RunContext` (recipe, run directory, task, model, optimizer,
    data summary). Raising here stops the run before training, without
    :func:`fmkit_on_exception`.
    """


@hookspec
def fmkit_on_epoch_start(run: Any, epoch: int) -> None:
    """Called at the start of every epoch (0-based), before its first batch; also when a resumed run
    re-enters an epoch it had started."""


@hookspec
def fmkit_on_step_end(run: Any, step: int, logs: dict) -> None:
    """Called after every optimizer step with the global step (1-based) and its logs.

    ``logs`` holds ``loss`` (mean since the last logging step), ``lr`` and ``samples_per_s`` as
    Python floats only on logging steps (every ``train.log_every`` steps, and the last step); on
    other steps it is empty. It comes before that step's evaluation (``train.eval_every``) and
    checkpoint. Keep this hook cheap: it is on the hot path. A step skipped for a non-finite loss
    calls no hook.
    """


@hookspec
def fmkit_on_epoch_end(run: Any, epoch: int, metrics: dict) -> None:
    """Called when an epoch's last batch is done, with that epoch's training metrics: ``{"loss": mean}``
    (the mean of the losses logged during the epoch).

    It comes *before* that epoch's validation: the order at an epoch's end is
    ``fmkit_on_epoch_end`` -> (epoch scheduler step) -> validation and its
    :func:`fmkit_on_evaluate_end` (unless ``train.eval_every`` evaluates by steps) ->
    :func:`fmkit_on_epoch_metrics` -> the epoch checkpoint and its :func:`fmkit_on_checkpoint_saved`.
    Not called for an epoch cut short by ``train.max_steps`` or early stopping. A hook that needs
    the epoch's validation metrics too implements :func:`fmkit_on_epoch_metrics`.
    """


@hookspec
def fmkit_on_epoch_metrics(run: Any, epoch: int, train: dict, validation: dict | None) -> None:
    """Called once per completed epoch, *after* that epoch's validation, with the epoch's training and
    validation metrics together (since API 1.3).

    ``train`` is what :func:`fmkit_on_epoch_end` got: ``{"loss": mean}``, the mean of the losses
    logged during the epoch (the training metrics the loop keeps; a run resumed mid-epoch counts
    the steps before the resume too, as ``metrics.jsonl`` has them). ``validation`` is the flat metric
    dict of the epoch's validation, the same values :func:`fmkit_on_evaluate_end` got and
    ``metrics.jsonl`` / ``run.history`` record for that epoch. When ``train.eval_every`` evaluates
    every N steps instead of every epoch, ``validation`` is the latest evaluation made during this
    epoch, or ``None`` when no evaluation fell in it.

    The order at an epoch's end: :func:`fmkit_on_epoch_end` -> validation and its
    :func:`fmkit_on_evaluate_end` -> ``fmkit_on_epoch_metrics`` -> the epoch checkpoint (so state
    a plugin keeps from it rides in that checkpoint). Not called for an epoch cut short by
    ``train.max_steps`` or early stopping, as :func:`fmkit_on_epoch_end`. Called on every rank, like every lifecycle hook:
    ``validation`` is the same (all-reduced) everywhere, ``train`` is this rank's mean loss (rank
    0's is the one ``metrics.jsonl`` logs); write files only where ``run.is_main``.
    """


@hookspec
def fmkit_on_evaluate_end(run: Any, split: str, metrics: dict) -> None:
    """Called after each evaluation with the split name and the flat metric dict
    (``{"loss": ..., "accuracy": ..., "f1_macro": ...}``; see the contexts reference for the names).

    During training ``split`` is ``"validation"`` (the held-out part of train when the data has no
    validation split): after every epoch (or every ``train.eval_every`` steps) and once more at the
    end when the last step was not evaluated. After training, the best checkpoint is scored on
    the final split (``"test"`` when the data has one, else ``"validation"``): one more call with
    that split, before the report, the export and :func:`fmkit_on_run_end`. Every rank is called
    with the same (all-reduced) metrics.
    """


@hookspec
def fmkit_on_checkpoint_saved(run: Any, path: str, step: int) -> None:
    """Called after a checkpoint directory was written atomically (``path``), for the step it holds.

    Called on the training thread of the rank that writes (rank 0): at once on CPU; with the
    background writer (accelerators) at the next checkpoint or the end of training, once the
    write is on disk. Also called for ``checkpoints/best`` when an evaluation improved the
    monitored metric (``path`` ends in ``best``), reported with the next checkpoint.
    """


@hookspec
def fmkit_on_exception(run: Any, error: BaseException) -> None:
    """Called when the training loop fails or is interrupted (Ctrl-C), with the exception, before the
    engine re-raises it (the run then stops; ``fmkit train`` exits 1, or 130 for Ctrl-C).

    Covers errors from the first epoch to the last checkpoint, a lifecycle hook's
    :class:`fmkit.errors.PluginHookError` included; not errors in data loading, set-up,
    :func:`fmkit_on_run_start`, the final evaluation or the export. If an implementation of this
    hook raises, its error replaces the original one (chained to it).
    """


@hookspec
def fmkit_on_run_end(run: Any, results: dict) -> None:
    """Called once on every rank, last: after training, the final evaluation, ``eval.json``, the report
    and the export are written, with the final metrics (``results``, the last
    :func:`fmkit_on_evaluate_end`'s). Not called when the run failed. Raising here makes the command
    fail (exit code 1) although the run's files are complete.
    """


@hookspec
def fmkit_checkpoint_state(run: Any) -> dict | None:
    """Return this plugin's state to store in checkpoints (JSON-able values or tensors).

    Called each time a checkpoint is made (every epoch, ``train.checkpoint_every`` steps, the end,
    Ctrl-C), on the rank(s) that build it (rank 0; every rank with FSDP). The engine stores each
    plugin's answer under the plugin's name and hands it back to the same plugin's
    :func:`fmkit_restore_checkpoint_state` on resume. Return ``None`` for no state.
    """


@hookspec
def fmkit_restore_checkpoint_state(run: Any, state: dict) -> None:
    """Called when resuming (``--resume``), with the dict this plugin's :func:`fmkit_checkpoint_state`
    returned, after the model, optimizer and scheduler state are restored and before
    :func:`fmkit_on_run_start`. Only plugins with saved state are called. An exception here is
    not wrapped: it stops the run as it is.
    """
