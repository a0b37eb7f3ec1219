"""The recipe's structure (pydantic v2). Component sections are checked against each component's
own parameter model in :mod:`fmkit.recipe.validate`; here they are ``{name: ..., **params}``."""
from __future__ import annotations

import re
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator


class _Documented(BaseModel):
    """Fields documented by a ``#:`` comment carry it as their description (:mod:`fmkit.fielddocs`):
    starters, ``fmkit schema`` and the docs read it from there."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        from ..fielddocs import fill_descriptions

        if fill_descriptions(cls):
            cls.model_rebuild(force=True)


def boolean_for_number(annotation: Any, value: Any) -> str | None:
    """The error for ``value`` when it is ``true``/``false`` and a field of this type takes an int or
    a float but not a bool (pydantic would read it as 1 or 0); ``None`` otherwise."""
    import typing

    if not isinstance(value, bool):
        return None
    args = set(typing.get_args(annotation)) or {annotation}
    if args & {int, float} and bool not in args:
        return f"Input should be a number, not {str(value).lower()}"
    return None


class Section(_Documented):
    """A recipe section: unknown keys, non-finite numbers and ``true``/``false`` where a number goes
    are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info) -> Any:
        field = cls.model_fields.get(info.field_name)
        problem = boolean_for_number(field.annotation, value) if field is not None else None
        if problem:
            raise ValueError(problem)
        return value


class ComponentRef(BaseModel):
    """``name:`` of a registered component plus that component's own parameters."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())
    name: str

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}


def _ref(v: Any) -> Any:
    return {"name": v} if isinstance(v, str) else v


def _ref_list(v: Any) -> Any:
    """A list of component refs; anything else is left for pydantic to reject (a mapping is not a list)."""
    return [_ref(x) for x in v] if isinstance(v, list) else ([] if v is None else v)


#: device strings torch understands: a type, optionally with an index (``cuda:1``)
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "hpu", "npu", "xla", "meta")
_DEVICE = re.compile(rf"^(?:auto|(?:{'|'.join(DEVICE_TYPES)})(?::\d+)?)$")


def _check_device(v: str) -> str:
    if not _DEVICE.match(v):
        raise ValueError(f"unknown device {v!r}; use auto, cpu, cuda, cuda:N, mps or another torch device type "
                         f"({', '.join(DEVICE_TYPES)})")
    return v


RefOrName = Union[ComponentRef, str]


class DataSection(_Documented):
    """The dataset (``name:`` optional: the task's default) plus data-pipeline settings.

    Keys other than those below are the dataset component's own parameters (``train``,
    ``text_column``...), validated by its parameter model.
    """

    model_config = ConfigDict(extra="allow", protected_namespaces=(), allow_inf_nan=False)
    #: the dataset component (default: the task's); see `fmkit components list --kind dataset`
    name: str | None = None
    #: cleaning transforms applied once to raw examples (drops are counted in the report)
    clean: list[ComponentRef] = []
    #: augmentations applied to training examples only
    augment: list[ComponentRef] = []
    #: share of train held out for validation when the data has no validation split
    validation_split: float = Field(0.1, ge=0.0, lt=1.0)
    #: seed of the validation hold-out (the same seed holds out the same examples)
    split_seed: int = Field(0, ge=0, le=2**32 - 1)
    #: hold out validation with each class's share kept (classification tasks)
    stratify: bool = True
    #: cache preprocessed examples on disk, keyed by data content and preprocessing parameters
    cache: bool = True
    #: where the preprocessing cache lives (default: `<tracking.runs_dir>/.cache`)
    cache_dir: str | None = None
    #: data-loader worker processes (0: load in the training process)
    num_workers: int = Field(0, ge=0)
    #: page-locked batches for faster copies to a GPU (default: when training on CUDA)
    pin_memory: bool | None = None
    #: batch examples of similar length together (less padding); the task defines length
    group_by_length: bool = False

    _v = field_validator("clean", "augment", mode="before")(lambda cls, v: _ref_list(v))

    def dataset_params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EarlyStopping(Section):
    """Stop when the monitored metric has not improved for ``patience`` evaluations."""

    #: evaluations without improvement before training stops
    patience: int = Field(3, ge=1)
    #: metric to watch (default: evaluate.monitor)
    monitor: str | None = None
    #: whether higher (max) or lower (min) is better (default: the metric's own direction)
    mode: Literal["min", "max"] | None = None
    #: smallest change that counts as an improvement
    min_delta: float = Field(0.0, ge=0)


class TrainSection(Section):
    """How the model is trained: length, batches, precision, checkpoints, logging, devices."""

    #: passes over the training data
    epochs: int = Field(1, ge=1)
    #: stop after this many optimizer steps, whatever the epochs (default: no limit)
    max_steps: int | None = Field(None, ge=1)
    #: training examples per step (per process under torchrun)
    batch_size: int = Field(32, ge=1)
    #: examples per evaluation batch (default: twice batch_size)
    eval_batch_size: int | None = Field(None, ge=1)
    #: add the gradients of this many batches before each optimizer step (effective batch = batch_size x this)
    grad_accum_steps: int = Field(1, ge=1)
    #: number format of training: fp32, or bf16/fp16 mixed precision on hardware that has it
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    #: seed of every random number (weights, shuffling, dropout): the same seed gives the same run
    seed: int = Field(42, ge=0, le=2**32 - 1)
    #: use only deterministic kernels (slower on GPUs; identical results on the same machine)
    deterministic: bool = False
    #: "epoch", or evaluate every N optimizer steps
    eval_every: Literal["epoch"] | int = "epoch"
    #: save a resumable checkpoint every N optimizer steps (and at every epoch end)
    checkpoint_every: int | None = Field(None, ge=1)
    #: step checkpoints kept (older ones are deleted; the best checkpoint is always kept)
    keep_last: int = Field(2, ge=1)
    #: write checkpoints on a background thread from a snapshot of the step (training goes on);
    #: "auto": when training on an accelerator. On CPU the training threads use every core, and
    #: a writer competing with them costs more than writing in between steps
    async_checkpoint: Literal["auto"] | bool = "auto"
    #: stop when the monitored metric stops improving (default: train every epoch)
    early_stopping: EarlyStopping | None = None
    #: cpu, cuda, cuda:1, mps, or auto (an accelerator when there is one)
    device: str = "auto"
    #: clip the gradient norm to this value (null: no clipping)
    grad_clip: float | None = Field(1.0, gt=0)
    #: log the loss every this many optimizer steps
    log_every: int = Field(10, ge=1)
    #: compile the model with torch.compile (faster steps after a slow first one)
    compile: bool = False
    #: train only the head for this many epochs, then unfreeze the backbone
    freeze_backbone_epochs: int = Field(0, ge=0)
    #: stop after this many non-finite losses (each such step is skipped)
    max_bad_steps: int = Field(20, ge=1)
    #: progress bar: on in a terminal (auto), or plain log lines when output is a file
    progress: Literal["auto", "on", "off"] = "auto"
    #: under torchrun: ddp (a copy of the model per process) or fsdp (sharded); auto: ddp
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    #: CPU threads torch may use (default: torch's choice)
    threads: int | None = Field(None, ge=1)

    _d = field_validator("device")(lambda cls, v: _check_device(v))

    # YAML reads a bare on/off as a boolean
    _p = field_validator("progress", mode="before")(
        lambda cls, v: {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v)


class EvaluateSection(_Documented):
    """What is measured, on which split, and which metric picks the best checkpoint."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    #: metrics to compute (default: the task's)
    metrics: list[ComponentRef] | None = None
    #: split reported as final results: test when the data has one, else validation
    split: Literal["auto", "validation", "test"] = "auto"
    #: metric that picks the best checkpoint (default: the task's)
    monitor: str | None = None
    #: whether higher (max) or lower (min) is better for the monitor (default: the metric's direction)
    monitor_mode: Literal["min", "max"] | None = None

    _v = field_validator("metrics", mode="before")(lambda cls, v: None if v is None else _ref_list(v))


class ExportSection(_Documented):
    """Exports written after training, and the checks each export must pass."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    #: formats written after training: safetensors, onnx, torchscript, or one a plugin adds
    formats: list[str] = []
    #: also write an int8 model (dynamic quantization), checked against the float one
    quantize: Literal["int8"] | None = None
    #: with quantize: int8, also keep the float ONNX model in the export folder (default: the int8 one only)
    keep_float: bool = False
    #: largest allowed absolute difference between exported and eager outputs (``--tolerance``)
    tolerance: float = Field(1e-3, ge=0, allow_inf_nan=False)
    #: classification: least share of verification inputs whose prediction a float export must
    #: keep (``--min-agreement``); a near tie may flip under float rounding, so not exactly 1
    min_agreement: float = Field(0.99, ge=0, le=1)
    #: the same for the int8 model, which changes outputs more
    int8_min_agreement: float = Field(0.9, ge=0, le=1)
    #: tasks without predictions to agree on (regression, forecasting): the int8 model's largest
    #: difference from the float model, as a share of the largest float output
    int8_max_relative_diff: float = Field(0.1, gt=0, allow_inf_nan=False)
    #: folder for the exports (default: RUN/exports/FORMAT)
    output: str | None = None


class ServeSection(Section):
    """``fmkit serve``'s settings for this run's exports; its command-line flags override them."""

    #: address to listen on (127.0.0.1: this machine only; 0.0.0.0: every network)
    host: str = "127.0.0.1"
    #: port to listen on
    port: int = Field(8000, ge=0, le=65535)
    #: ``auto``: ONNX Runtime when the export has an ONNX model, else torch
    backend: Literal["auto", "torch", "onnx"] = "auto"
    #: serve the float or the int8 model (auto: int8 when the export has one)
    precision: Literal["auto", "float", "int8"] = "auto"
    #: group concurrent requests into one model call (higher throughput under load)
    batching: bool = True
    #: inputs per model call when batching
    max_batch_size: int = Field(16, ge=1)
    #: longest wait for more inputs before a batch runs, in milliseconds
    max_wait_ms: float = Field(5.0, ge=0)
    #: inputs that may wait; past it requests get 503 with Retry-After
    max_queue: int = Field(1024, ge=1)
    #: inputs in one request; 413 past it
    max_items: int = Field(64, ge=1)
    #: bytes of one request body; 413 past it
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1)
    #: characters (bytes for files) of one input, and of one request's inputs in all; 413 past them
    max_input_chars: int = Field(1_000_000, ge=1)
    #: characters (bytes for files) of one request's inputs in all; 413 past it
    max_request_chars: int = Field(4_000_000, ge=1)
    #: seconds a connection may take to send its request headers, and a request its body
    header_timeout: float = Field(10.0, gt=0)
    #: seconds a request may take to send its body; 408 past it
    body_timeout: float = Field(30.0, gt=0)
    #: environment variable holding the API key clients send as X-API-Key
    api_key_env: str | None = None
    #: with an API key, still answer /metrics (and /docs, /openapi.json) without one
    public_metrics: bool = False
    #: with an API key, still answer /docs and /openapi.json without one
    public_docs: bool = False
    #: log one line per request
    access_log: bool = False


class DistillSection(Section):
    """Knowledge distillation: train the recipe's model (the student) to follow a trained teacher.

    The loss is ``alpha * distillation + (1 - alpha) * the task's own loss``; the distillation term
    is what the task declares (:attr:`fmkit.Task.distill_kind`): KL divergence on temperature-softened
    class scores (times ``temperature**2``), per-label binary KL for multi-label tasks, or the mean
    squared difference from the teacher's outputs for regression and forecasting.
    """

    #: a run directory (``fmkit train`` made it) or an export folder (``fmkit export``) of the same task and labels
    teacher: str = Field(min_length=1)
    temperature: float = Field(2.0, gt=0, allow_inf_nan=False)
    #: weight of the distillation term (0: plain training, 1: the teacher's outputs alone)
    alpha: float = Field(0.5, ge=0, le=1)
    #: teacher outputs computed once before training and cached on disk (``on``), or computed for
    #: every batch (``off``); ``auto``: cached unless the training data is augmented
    cache: Literal["auto", "on", "off"] = "auto"

    # YAML reads a bare on/off as a boolean
    _c = field_validator("cache", mode="before")(
        lambda cls, v: {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v)


class PruneSection(Section):
    """Structured pruning: start from a finished run's model, remove its least important structures
    (attention heads, feed-forward neurons, convolution channels: what the model's plugin can remove,
    :func:`fmkit.hookspecs.fmkit_prune_model`), then train the smaller model (the recovery fine-tune:
    ``train.epochs``). The recipe's model section must be the source run's own.

    Importance is measured on the first ``importance_batches`` training batches; a fraction is the
    share of that kind of structure removed (``0.4``: 40% of the heads). Optionally add a
    ``distill:`` section with the source run as the teacher to recover on its outputs.
    """

    #: the run directory to prune (``fmkit train`` made it; its best checkpoint is read with safetensors)
    source: str = Field(min_length=1)
    #: share of attention heads to remove (attention models)
    heads: float | None = Field(None, ge=0, lt=1)
    #: share of feed-forward (intermediate) neurons to remove (attention encoders)
    ffn: float | None = Field(None, ge=0, lt=1)
    #: share of convolution channels to remove (convolutional networks)
    channels: float | None = Field(None, ge=0, lt=1)
    #: training batches the importance is measured on
    importance_batches: int = Field(16, ge=1)

    def fractions(self) -> dict[str, float]:
        """The fractions asked for: ``{"heads": 0.4, "ffn": 0.4}`` (kinds left out or at 0 are not pruned)."""
        return {k: float(v) for k in ("heads", "ffn", "channels") if (v := getattr(self, k))}


class TrackingSection(Section):
    """Where runs are written and what they record."""

    #: parent folder of run directories
    runs_dir: str = "runs"
    #: name of the run folder (default: task-model-date-time): one folder name, no path
    run_name: str | None = None

    @field_validator("run_name")
    @classmethod
    def _one_folder_name(cls, v: str | None) -> str | None:
        """A run's folder lives in ``runs_dir``: a name with a path separator or ``..`` would put it
        elsewhere (where ``fmkit runs`` does not look), a long one past the file system's limit."""
        if v is None:
            return v
        if not v.strip() or "/" in v or "\\" in v or v.strip(".") == "" or ".." in v.split("/") or "\0" in v:
            raise ValueError(f"{v!r:.80} is not a folder name: give a name without '/', '\\' or '..' (the run is "
                             "written in tracking.runs_dir)")
        if len(v.encode("utf-8")) > 200:
            raise ValueError(f"a run name of {len(v.encode('utf-8'))} bytes is too long for a folder name (the "
                             "limit here is 200, to leave room for the time stamp)")
        return v
    #: write TensorBoard event files in the run folder
    tensorboard: bool = True
    #: write report.html (metrics, curves, plots) at the end of the run
    report: bool = True


class Recipe(BaseModel):
    """A whole recipe. Sections other than task, model and data have defaults.

    Sections declared by plugins (``tune:``...) are validated by their own models and kept apart
    from the core's fields: :meth:`section` returns one, :meth:`to_dict` includes them.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)
    task: ComponentRef
    model: ComponentRef
    data: DataSection = DataSection()
    loss: ComponentRef | None = None
    optimizer: ComponentRef = ComponentRef(name="adamw")
    scheduler: ComponentRef | None = None
    train: TrainSection = TrainSection()
    evaluate: EvaluateSection = EvaluateSection()
    export: ExportSection = ExportSection()
    serve: ServeSection = ServeSection()
    tracking: TrackingSection = TrackingSection()
    #: knowledge distillation from a trained teacher (off when absent)
    distill: DistillSection | None = None
    #: structured pruning of a finished run's model, then recovery training (off when absent)
    prune: PruneSection | None = None
    plugins: list[str] = []
    required_plugins: list[str] = []

    _v = field_validator("task", "model", "loss", "optimizer", "scheduler", mode="before")(lambda cls, v: _ref(v))

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_take_defaults(cls, data: Any) -> Any:
        """A section whose fields are all commented out (``evaluate:``) means its defaults."""
        if isinstance(data, dict):
            keep = {"task", "model", "loss", "scheduler"}
            data = {k: v for k, v in data.items() if v is not None or k in keep}
        return data

    #: plugin sections by name: the validated model instances
    _sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    def section(self, name: str) -> Any:
        """The validated value of a plugin's top-level section (its pydantic model instance), or
        ``None`` when the recipe has no such section."""
        return self._sections.get(name)

    @property
    def plugin_sections(self) -> dict[str, Any]:
        """Every plugin section the recipe has, by name (a copy)."""
        return dict(self._sections)

    def to_dict(self, sections: bool = True) -> dict[str, Any]:
        """The resolved recipe as plain data; ``sections=False`` leaves out plugin sections."""
        out = self.model_dump(mode="json", exclude_none=False)
        if sections:
            for name, value in self._sections.items():
                out[name] = value.model_dump(mode="json", exclude_none=False)
        return out
