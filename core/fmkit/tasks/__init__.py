"""Base classes that carry what tasks of one kind share, whatever the modality.

- :class:`ClassificationTask`: label fitting (natural order, class counts), stratification,
  targets, class-score answers, label state.
- :class:`RegressionTask`: target names and standardisation, metrics and answers in the data's units.
- :func:`natural_key`, :func:`fit_labels`, :func:`labels_of`, :func:`multi_hot`: the label helpers they use.
- :func:`class_predictions`: class scores (logits) as JSON answers.
"""
from __future__ import annotations

from ..utils.predictions import CLASSIFICATION_METRICS, class_predictions
from .classification import ClassificationTask
from .labels import fit_labels, labels_of, multi_hot, natural_key
from .regression import RegressionTask

__all__ = ["CLASSIFICATION_METRICS", "ClassificationTask", "RegressionTask", "class_predictions", "fit_labels",
           "labels_of", "multi_hot", "natural_key"]
