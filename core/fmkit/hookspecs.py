"""The fmkit hook contract: every door a plugin can open, in one file.

A plugin is any object or module with functions marked ``@fmkit.hookimpl`` whose names match
the specs below. An implementation may accept fewer arguments than its spec (pluggy passes only
the ones it names), so adding an argument to a spec never breaks an existing plugin.

Versioning: :data:`HOOK_API_VERSION` is the version of this contract. A plugin declares the
range it supports in a module or object attribute ``fmkit_api`` (a PEP 440 specifier such as
``">=1.0,<2"``); an incompatible plugin is refused with a message naming both versions.
Minor versions add hooks or arguments; a major version removes or changes one.

Registration hooks return a list of :class:`fmkit.Component` (possibly empty) and are called once
per process when the registry is built. Lifecycle hooks are called by the training engine through
pluggy (``pm.hook.<name>(...)``, in :meth:`fmkit.plugins.PluginManager.dispatch`), so everything
pluggy documents holds: ``@fmkit.hookimpl(tryfirst=True)`` / ``trylast=True`` order the
implementations, ``wrapper=True`` (or old-style ``hookwrapper=True``) implementations run around all
the others and see their result or exception. A call monitor times every hook call
(``eval_details.json``'s ``hook_seconds``) and turns an exception into
:class:`fmkit.errors.PluginHookError`, which names the plugin whose implementation raised and the
hook; training stops (``fmkit_on_exception`` is called, the CLI exits with code 1).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .components import Component

PROJECT = "fmkit"
HOOK_API_VERSION = "1.2"

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


# --------------------------------------------------------------------------- CLI
@hookspec
def fmkit_add_cli_commands(subparsers: Any) -> None:
    """Add sub-commands to the ``fmkit`` command line.

    ``subparsers`` is the ``argparse`` sub-parser action of the top-level parser. A command sets
    ``func`` with ``parser.set_defaults(func=callable)``; the callable gets the parsed namespace
    and returns an exit code. Keep imports inside the callable so start-up stays fast.
    """


# --------------------------------------------------------------------------- lifecycle
@hookspec
def fmkit_on_run_start(run: Any) -> None:
    """Called once after the model, data and optimizer are built, before the first step.

    ``run`` is the :class:`fmkit.engine.RunContext` (recipe, run directory, model, task...).
    """


@hookspec
def fmkit_on_epoch_start(run: Any, epoch: int) -> None:
    """Called at the start of every epoch (0-based), also when a resumed run re-enters one."""


@hookspec
def fmkit_on_step_end(run: Any, step: int, logs: dict) -> None:
    """Called after every optimizer step with the global step (1-based) and its logs.

    ``logs`` holds ``loss`` and ``lr`` as Python floats only on logging steps (every
    ``train.log_every`` steps); keep this hook cheap, it is on the hot path.
    """


@hookspec
def fmkit_on_epoch_end(run: Any, epoch: int, metrics: dict) -> None:
    """Called at the end of every epoch with that epoch's training metrics."""


@hookspec
def fmkit_on_evaluate_end(run: Any, split: str, metrics: dict) -> None:
    """Called after each evaluation with the split name and the flat metric dict."""


@hookspec
def fmkit_on_checkpoint_saved(run: Any, path: str, step: int) -> None:
    """Called after a checkpoint directory was written atomically."""


@hookspec
def fmkit_on_exception(run: Any, error: BaseException) -> None:
    """Called when training fails or is interrupted, before the engine re-raises."""


@hookspec
def fmkit_on_run_end(run: Any, results: dict) -> None:
    """Called once when training, evaluation and export have finished."""


@hookspec
def fmkit_checkpoint_state(run: Any) -> dict | None:
    """Return this plugin's state to store in checkpoints (JSON-able values or tensors).

    The engine stores each plugin's answer under the plugin's name and hands it back to the same
    plugin's :func:`fmkit_restore_checkpoint_state` on resume. Return ``None`` for no state.
    """


@hookspec
def fmkit_restore_checkpoint_state(run: Any, state: dict) -> None:
    """Called when resuming, with the dict this plugin's :func:`fmkit_checkpoint_state` returned."""
