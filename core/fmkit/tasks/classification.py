"""``ClassificationTask``: the shared half of every classification task (labels, targets, answers)."""
from __future__ import annotations

from typing import Any

from ..errors import DataError
from ..task import Task
from ..utils.predictions import class_predictions
from .labels import fit_labels, labels_of, multi_hot

__all__ = ["ClassificationTask"]


class ClassificationTask(Task):
    """Base of a task whose answer is one class (or several, multi-label) with scores.

    It fits the label names on the training split (natural order, ``"2"`` before ``"10"``) with
    their counts, stratifies the validation split on the label, turns an example's label into its
    target (a class index, ``-100`` for a label unseen in training, or a multi-hot row), stacks
    targets into ``batch["targets"]``, formats class scores as answers and saves the labels with
    the task's state. A subclass writes what its modality needs:

    - :meth:`setup_inputs` to fit what the inputs need (a tokenizer, a normaliser), if anything;
    - :meth:`preprocess` (calling :meth:`target` for the ``"targets"`` feature), :meth:`collate`
      (calling :meth:`collate_targets`), :meth:`forward`, :meth:`raw_to_example`,
      :meth:`export_input_names`, :meth:`example_inputs`, :meth:`sample_examples`;
    - :attr:`state_attributes`: the names of what :meth:`setup_inputs` learns (saved with the labels
      and class counts by :meth:`state_dict`, restored by :meth:`load_state_dict`).

    Multi-label is on when the task's parameters have ``multi_label: true`` (declare
    ``multi_label: bool = False`` and ``threshold: float = 0.5`` on your task's ``Params`` to offer
    it; a task whose parameters lack them is single-label): targets are then
    multi-hot float rows (for ``bce-with-logits``) and answers list every label whose sigmoid score
    reaches ``threshold`` (a parameter too, default 0.5).

    Class attributes a subclass may set, besides those of :class:`fmkit.Task`:
        label_key: the example key holding the label (default ``"label"``): a string, a number,
            or a list of them for multi-label. :meth:`setup` fits the labels from it, :meth:`target`
            reads it, and the validation split is stratified on it. Set it when your dataset
            writes the class elsewhere (``label_key = "activity"``).
        no_labels_hint: text appended to the error raised when the training split holds no
            label under ``label_key`` (default ``"check the dataset's label column"``): say where
            your users set the label column (``"set data.label_column"``).
    """

    monitor, monitor_mode = "accuracy", "max"
    classification = True
    #: the example key that holds the label (a string, a number, or a list of them for multi-label)
    label_key: str = "label"
    #: appended to the error raised when the training split has no labels
    no_labels_hint: str = "check the dataset's label column"
    state_attributes = ("class_counts",)

    def __init__(self, params, context: dict | None = None):
        super().__init__(params, context)
        self.class_counts: list[int] = []
        self._index: dict[str, int] = {}
        self._indexed: list[str] | None = None

    @property
    def distill_kind(self) -> str | None:
        """``"labels"`` (per-label binary) for multi-label tasks, else ``"classes"``; see :attr:`fmkit.Task.distill_kind`."""
        return "labels" if self.multi_label else "classes"

    @property
    def multi_label(self) -> bool:
        """Whether an example may carry several labels (the ``multi_label`` parameter; false without one)."""
        return bool(getattr(self.params, "multi_label", False))

    # ---------------------------------------------------------------- fitting
    def setup(self, train_examples: list[dict], model_params: dict[str, Any]) -> None:
        """Fit the labels and their counts, then :meth:`setup_inputs`."""
        try:
            self.labels, self.class_counts = fit_labels(train_examples, self.label_key)
        except DataError as e:
            raise DataError(f"{e}; {self.no_labels_hint}") from None
        self.setup_inputs(train_examples, model_params)

    def setup_inputs(self, train_examples: list[dict], model_params: dict[str, Any]) -> None:
        """Fit what the inputs need on the training split (a tokenizer, a normaliser); nothing by default."""

    def stratify_key(self, example: dict) -> Any:
        """The label (``None`` for multi-label tasks, whose label sets are not stratified)."""
        if self.multi_label:
            return None
        labs = labels_of(example, self.label_key)
        return labs[0] if labs else None

    def model_context(self) -> dict[str, Any]:
        """``task``, ``labels``, ``num_labels``, ``multi_label`` and ``class_counts`` (training examples per label)."""
        ctx = super().model_context()
        ctx.update(multi_label=self.multi_label, class_counts=list(self.class_counts))
        return ctx

    # ---------------------------------------------------------------- targets
    def label_index(self) -> dict[str, int]:
        """Label name -> class index."""
        if self._indexed is not self.labels:
            self._index = {lab: i for i, lab in enumerate(self.labels or [])}
            self._indexed = self.labels
        return self._index

    def labels_of(self, example: dict) -> list[str]:
        """The example's labels as strings (``[]`` when it has none)."""
        return labels_of(example, self.label_key)

    def target(self, example: dict) -> int | list[float] | None:
        """The example's target: its class index (``-100``, ignored by the loss and metrics, for a label
        not seen in training), a multi-hot row for multi-label tasks, or ``None`` when it has no label."""
        labs = self.labels_of(example)
        if not labs:
            return None
        if self.multi_label:
            return multi_hot(self.labels, labs)
        return self.label_index().get(labs[0], -100)

    def with_target(self, features: dict, example: dict) -> dict:
        """``features`` with ``"targets"`` set from the example's label, when it has one."""
        t = self.target(example)
        if t is not None:
            features["targets"] = t
        return features

    def collate_targets(self, features: list[dict]) -> Any:
        """The ``"targets"`` tensor of a batch: ``[B]`` long class indices, or ``[B, num_labels]`` float
        rows for multi-label; ``None`` when the features have no targets (inference)."""
        if "targets" not in features[0]:
            return None
        import torch

        dtype = torch.float32 if self.multi_label else torch.long
        return torch.tensor([f["targets"] for f in features], dtype=dtype)

    def add_targets(self, batch: dict[str, Any], features: list[dict]) -> dict[str, Any]:
        """``batch`` with ``"targets"`` from :meth:`collate_targets`, when the features have them."""
        targets = self.collate_targets(features)
        if targets is not None:
            batch["targets"] = targets
        return batch

    # ---------------------------------------------------------------- inference
    def format_predictions(self, outputs: Any) -> list[dict]:
        """One answer per row of ``[B, num_labels]`` logits: ``{"label", "score", "scores"}`` (softmax),
        or for multi-label ``{"labels", "label", "scores"}`` (sigmoid, ``threshold``)."""
        threshold = float(getattr(self.params, "threshold", 0.5))
        return class_predictions(outputs, self.labels, self.multi_label, threshold)
