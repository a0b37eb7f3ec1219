"""The :class:`Task` base class: the one place where a modality's knowledge lives.

The engine, the exporters and the server only ever call these methods; they never ask which
modality they are handling. A plugin writes its task once and gets training, evaluation,
prediction, export and serving.

Flow through a task::

    raw examples --setup()--> fitted task (labels, tokenizer, scaler...)
    raw example  --preprocess()--> features (cached on disk)  --collate()--> batch (dict of tensors)
    batch --forward(model)--> outputs --loss()/metric_inputs()--> training and metrics
    raw input --raw_to_example()--> example; examples --encode_examples()--> batch (encode_raw does both)
    batch --forward--> outputs --format_batch_predictions()--> JSON answers
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from .components import Params


class Task:
    """Base class of every task. Subclass it and register a ``task`` component.

    The task's *component* carries the defaults a recipe may leave out, in
    ``tags={"defaults": {"dataset": ..., "loss": ..., "metrics": [...]}}``, so recipes validate
    without importing the task.

    Class attributes a subclass sets:
        name: the task id (``sentiment``, say).
        monitor / monitor_mode: the validation metric that selects the best checkpoint.
        classification: whether outputs are class scores (enables the per-class report and
            confusion matrix).
        cacheable: whether :meth:`preprocess`'s features may be cached on disk (default
            ``True``): ``fmkit train`` then stores each split's features under ``data.cache_dir``
            (default ``<tracking.runs_dir>/.cache``), keyed by the data and :meth:`fingerprint`,
            and reuses them while neither changes. Set it to ``False`` when features are large
            (decoded images, waveforms) or cheap to recompute.
        state_attributes: the names of what :meth:`setup` learns (JSON-able), saved with every
            run and export by :meth:`state_dict` and restored by :meth:`load_state_dict`.

    Give every attribute that :meth:`model_context` (or :meth:`example_inputs`) reads a
    class-level default: the builder calls :meth:`model_context` before :meth:`setup` too (to
    build the cleaning transforms), when nothing learnt from the data is set yet.
    """

    name: str = ""
    monitor: str = "loss"
    monitor_mode: str = "min"
    classification: bool = True
    #: whether :meth:`preprocess` output may be cached on disk (off for large decoded images)
    cacheable: bool = True
    #: names of attributes learnt in :meth:`setup` (JSON-able) that the default :meth:`state_dict`
    #: saves and :meth:`load_state_dict` restores, besides ``labels``; a subclass lists only its own
    #: (the lists of its base classes are added)
    state_attributes: tuple[str, ...] = ()
    #: what the dataset reported through :meth:`fmkit.Dataset.metadata`, set by
    #: :meth:`receive_dataset_metadata` before :meth:`setup` (empty until then; a task that needs it
    #: after training lists ``"dataset_metadata"`` in :attr:`state_attributes`, or keeps what it
    #: derives from it in its own state attributes)
    dataset_metadata: Mapping[str, Any] = MappingProxyType({})
    #: a folder where :meth:`setup` may keep what it fits at some cost or cannot fit the same way
    #: twice (say, a vocabulary learnt from the data by a library that breaks ties in hash order), in
    #: a subfolder keyed by everything it was fitted from, written atomically; set by ``fmkit train``
    #: before :meth:`setup` when the recipe's feature cache is on (``data.cache``: the same folder),
    #: else ``None``. Several ranks of one run may write the same key at once. Since API 1.6.
    cache_dir: str | None = None

    def __init__(self, params: Params, context: dict | None = None):
        self.params = params
        self.labels: list[str] | None = None

    # ------------------------------------------------------------------ fitting
    def receive_dataset_metadata(self, metadata: dict[str, Any]) -> None:
        """Receive what the dataset knows about its data (its :meth:`fmkit.Dataset.metadata`: declared
        column types, say), since API 1.3.

        Called by ``fmkit train`` once, after loading, cleaning and splitting and just before
        :meth:`setup`, which can then read :attr:`dataset_metadata`; ``{}`` when the dataset reports
        nothing. The default stores a copy in :attr:`dataset_metadata`; override it to check or
        convert what the task needs (raise :class:`fmkit.errors.DataError` for metadata it cannot use).
        Not called when a trained task is loaded from a run or an export: keep what inference needs
        in the task's state.
        """
        self.dataset_metadata = dict(metadata)

    def setup(self, train_examples: list[dict], model_params: dict[str, Any]) -> None:
        """Fit everything learnt from the training split (label names, tokenizer, scaler).

        Called once per training run after cleaning and splitting, with the raw training
        examples and the recipe's ``model`` section (and after :meth:`receive_dataset_metadata`).
        Never look at validation or test data here.
        """

    def stratify_key(self, example: dict) -> Any:
        """A key to stratify the validation split on (the label), or ``None`` for no stratification."""
        return None

    def group_key(self, example: dict) -> Any:
        """A group (speaker, patient...) that must not straddle train and validation, or ``None``."""
        return None

    def model_context(self) -> dict[str, Any]:
        """What model factories need to know (``num_labels``, ``id2label``, channels...)."""
        ctx: dict[str, Any] = {"task": self.name}
        if self.labels is not None:
            ctx["num_labels"] = len(self.labels)
            ctx["labels"] = list(self.labels)
        return ctx

    def metric_context(self) -> dict[str, Any]:
        """What metric and loss factories need to know (``num_labels``, ``labels``...).

        The default is :meth:`model_context`, plus ``inverse_transform`` (this task's
        :meth:`inverse_transform`) when the task implements it.
        """
        ctx = self.model_context()
        if type(self).inverse_transform is not Task.inverse_transform:
            ctx["inverse_transform"] = self.inverse_transform
        return ctx

    def inverse_transform(self, values: Any) -> Any:
        """Map regression values as the model sees them (predictions, or targets from
        :meth:`metric_inputs`) back to the data's own units; implement it when :meth:`preprocess`
        scales targets. Regression metrics with ``units: original`` call it (since API 1.3)."""
        raise NotImplementedError(f"task {self.name!r} does not scale its targets")

    # ------------------------------------------------------------------ data
    def preprocess(self, example: dict) -> dict:
        """Turn one raw example into model-ready features (deterministic; may be cached)."""
        raise NotImplementedError

    def preprocess_many(self, examples: list[dict]) -> list[dict]:
        """Preprocess many examples at once (override for batched tokenisers); same result as a loop."""
        return [self.preprocess(ex) for ex in examples]

    def fingerprint(self) -> str:
        """A string that changes whenever :meth:`preprocess` would give other features (the key of the
        preprocessing cache). The default: the parameters and :meth:`state_dict`."""
        import json

        return json.dumps([self.params.model_dump(), self.state_dict()], sort_keys=True, default=str)

    def length(self, features: dict) -> int:
        """The size of one example, for length-grouped batching (1 when it does not apply)."""
        return 1

    def collate(self, features: list[dict]) -> dict[str, Any]:
        """Stack features into a batch: a dict of tensors; targets under ``"targets"``."""
        raise NotImplementedError

    def augment_batch(self, batch: dict[str, Any], seed: int) -> dict[str, Any]:
        """Batch-level training augmentation (mixup, cutmix, SpecAugment on the device).

        Called on training batches only, after they are moved to the device. ``seed`` is
        derived from the run seed, epoch and batch index, so a resumed run augments exactly
        like the uninterrupted one. The default returns the batch unchanged.
        """
        return batch

    # ------------------------------------------------------------------ model
    def forward(self, model: Any, batch: dict[str, Any]) -> Any:
        """Run the model on a batch and return its outputs (usually a tensor of scores)."""
        raise NotImplementedError

    def loss(self, outputs: Any, batch: dict[str, Any], loss_fn: Any) -> Any:
        """The training loss of a batch; by default ``loss_fn(outputs, batch["targets"])``."""
        return loss_fn(outputs, batch["targets"])

    def metric_inputs(self, outputs: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
        """``(predictions, targets)`` handed to every metric's ``update``."""
        return outputs.detach(), batch["targets"]

    # ------------------------------------------------------------------ distillation
    @property
    def distill_kind(self) -> str | None:
        """What knowledge distillation compares between teacher and student (since API 1.4):

        - ``"classes"``: scores of mutually exclusive classes on the last axis (KL divergence of the
          temperature-softened softmax, times the temperature squared);
        - ``"labels"``: independent per-label scores (multi-label: binary KL of the softened sigmoid);
        - ``"values"``: real values (regression, forecasting: mean squared difference);
        - ``None``: the task cannot be distilled (a ``distill:`` section is refused, naming the task).

        The default: ``"classes"`` for a task with :attr:`classification` on, else ``None``;
        ``ClassificationTask`` says ``"labels"`` when multi-label, ``RegressionTask`` ``"values"``. Override it (a class attribute will do) to distil a task of another kind.
        """
        return "classes" if self.classification else None

    def distill_outputs(self, outputs: Any, batch: dict[str, Any]) -> Any:
        """The tensor distillation compares, one row per example (since API 1.4): ``[B, ...]`` with the
        same shape for teacher and student. The default: the outputs of :meth:`forward` as they are."""
        return outputs

    def distill_mask(self, batch: dict[str, Any]) -> Any:
        """Which positions of :meth:`distill_outputs` count (since API 1.7): ``None`` (the default)
        when each example's row counts whole; a boolean ``[B, L]`` tensor when the outputs are
        ``[B, L, ...]`` padded to each batch's longest input (per-token scores: the attention mask).

        Distillation then compares only the marked positions, so padding never enters the loss or
        the agreement, and the teacher's outputs are cached per example at its own positions (an
        example's marked positions must be the same whichever batch it is in: the student's and the
        teacher's counts are checked). A task whose rows vary in shape needs this for the default
        ``distill.cache`` (teacher outputs computed once)."""
        return None

    # ------------------------------------------------------------------ inference
    def encode_raw(self, inputs: list[Any]) -> dict[str, Any]:
        """Turn raw inputs (strings, image bytes, waveforms, arrays) into a batch without targets:
        :meth:`raw_to_example` on each, then :meth:`encode_examples`."""
        return self.encode_examples([self.raw_to_example(x) for x in inputs])

    def encode_examples(self, examples: list[dict]) -> dict[str, Any]:
        """Turn examples that :meth:`raw_to_example` made into a batch without targets (since API 1.2).

        The server decodes every input once, on its own (so a broken one is named), and hands the
        examples here; override this, not :meth:`encode_raw`, to prepare a whole batch at once (one
        tokenizer call for all texts). The default runs :meth:`preprocess` on each and collates.
        """
        return self.collate([self.preprocess(e) for e in examples])

    def encodes_examples(self) -> bool:
        """Whether :meth:`encode_examples` is this task's inference path: false only for a task
        written against API 1.0/1.1 that overrides :meth:`encode_raw` alone, whose raw inputs the
        server then passes through that method (decoding them twice)."""
        cls = type(self)
        return cls.encode_raw is Task.encode_raw or cls.encode_examples is not Task.encode_examples

    def raw_to_example(self, raw: Any) -> dict:
        """Turn one raw input into the raw-example dict :meth:`preprocess` takes."""
        raise NotImplementedError

    def inputs_from_record(self, record: Any) -> Any:
        """The raw input (for :meth:`raw_to_example`) of one record of a prediction file: a CSV row
        as a dict of column to text, or a JSON Lines value (``fmkit predict FILE.csv|.jsonl``,
        ``/v1/predict/files?records=true``; since API 1.3).

        The default takes a record's ``"input"`` field when it has one, and otherwise the record
        as it is (for tasks whose inputs are objects, such as table rows); a one-column CSV gives
        its cells without calling this. Override it to pick columns: a text task takes its
        ``text`` column.
        """
        from .records import default_input

        return default_input(record)

    def format_predictions(self, outputs: Any) -> list[dict]:
        """Turn a batch of outputs into JSON-able answers, one per input, in order."""
        raise NotImplementedError

    def format_batch_predictions(self, outputs: Any, batch: dict[str, Any]) -> list[dict]:
        """Like :meth:`format_predictions`, with the batch :meth:`encode_raw` made (since API 1.1).

        The engine, the exported-model loader and the server call this one. Override it when an
        answer needs more than the outputs: token classification maps sub-word scores back to the
        words kept in the batch, a language model reads the attention mask. The default calls
        :meth:`format_predictions`.
        """
        return self.format_predictions(outputs)

    def export_input_names(self) -> list[str]:
        """Names (keys of the batch) of the tensors an exported model takes, in order."""
        raise NotImplementedError

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Dynamic axes of each export input, ``{input name: {axis: name}}``. The default makes
        axis 0 of every input in :meth:`export_input_names` the batch axis (``{0: "batch"}``);
        override it to add others (a sequence length: ``{0: "batch", 1: "sequence"}``). Every
        other axis of an exported model keeps the size it was traced with."""
        return {n: {0: "batch"} for n in self.export_input_names()}

    def example_inputs(self) -> list[Any]:
        """A few raw inputs that :meth:`encode_raw` accepts (for docs, tests and verification).

        Called on the *trained* task: export writes them into ``export.json``'s
        ``signature.example_inputs``, the serving page offers them as examples (a run directory
        served directly asks the task), and an export with no held-out examples verifies on
        them. So they must follow what :meth:`setup` learnt and the state restored (the trained
        sequence length, channel count or column set), not a fixed shape."""
        raise NotImplementedError

    def sample_examples(self) -> list[dict]:
        """A handful of labelled raw examples (at least two classes or targets) for the contract suite."""
        raise NotImplementedError

    # ------------------------------------------------------------------ assets
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state learnt in :meth:`setup` (labels, scaler statistics...), saved with every run
        and export. The default: ``labels`` and every attribute named in :attr:`state_attributes`."""
        return {"labels": self.labels, **{name: getattr(self, name) for name in self._state_names()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (an attribute missing from an older state keeps its
        value from ``__init__``)."""
        self.labels = state.get("labels")
        for name in self._state_names():
            if name in state:
                setattr(self, name, state[name])

    @classmethod
    def _state_names(cls) -> list[str]:
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            names += [n for n in klass.__dict__.get("state_attributes", ()) if n not in names]
        return names

    def save_assets(self, directory: str) -> None:
        """Write files the task needs at inference besides its state (a tokenizer, say)."""

    def load_assets(self, directory: str) -> None:
        """Read back what :meth:`save_assets` wrote."""
