"""A shallower student from a trained transformers teacher (``model.init_from``), DistilBERT style.

``model.init_from: {run: TEACHER, layers: [0, 2, 4]}`` builds the teacher's architecture with only
the listed transformer layers, and copies the embeddings, those layers (in that order) and the
classification head from the teacher (a run directory or an export folder, read through
:func:`fmkit.load`: safetensors weights, no code shipped with it run). The student's task takes the
teacher's tokenizer, so the copied embeddings mean what they meant. Pair it with a ``distill:``
section (the same teacher) to train the student on the teacher's outputs.
"""
from __future__ import annotations

import copy
import logging
import re
from pathlib import Path

import torch
from fmkit.components import Params
from fmkit.errors import UsageError

log = logging.getLogger("fmkit")


class InitFromParams(Params):
    #: the teacher: a run directory or an export folder of an fmkit-nlp model
    run: str
    #: the teacher's transformer layers the student keeps, in order (0 is the one next to the
    #: embeddings); default: all of them
    layers: list[int] | None = None


def teacher_predictor(run: str):
    """``fmkit.load`` of the teacher (float weights, torch), with a clear error for a wrong folder."""
    import fmkit

    if not Path(run).is_dir():
        raise UsageError(f"model.init_from.run: {run} is not a folder; give the teacher's run directory (fmkit train "
                         "printed it) or an export folder")
    try:
        return fmkit.load(run, precision="float")
    except UsageError as e:
        raise UsageError(f"model.init_from.run: {e}") from None


def teacher_tokenizer(run: str):
    """The tokenizer the teacher was trained with (the student's task uses it)."""
    tokenizer = getattr(teacher_predictor(run).task, "tokenizer", None)
    if tokenizer is None:
        raise UsageError(f"model.init_from.run: {run} has no tokenizer: it is not an fmkit-nlp text model")
    return tokenizer


def _layer_list(model) -> tuple[str, int]:
    """``(qualified name, length)`` of the transformer's stack of layers (the longest ``ModuleList``)."""
    best = ("", 0)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > best[1]:
            best = (name, len(module))
    if not best[0]:
        raise UsageError(f"model.init_from: {type(model).__name__} has no stack of layers to choose from")
    return best


def student_from_teacher(auto, init, context: dict, kw: dict):
    """The student transformers model: the teacher's configuration with ``len(layers)`` layers, its
    embeddings, the chosen layers and its head copied. ``auto`` is the transformers Auto class."""
    teacher = teacher_predictor(init.run).model
    hf = getattr(teacher, "hf", None)
    if hf is None:
        raise UsageError(f"model.init_from.run: {init.run} holds a {type(teacher).__name__}, not a transformers model "
                         "built by fmkit-nlp (hf-classifier, hf-token-classifier, hf-causal-lm)")
    if getattr(teacher, "lora", False):
        hf = hf.merge_and_unload()
    stack, depth = _layer_list(hf)
    layers = list(range(depth)) if init.layers is None else list(init.layers)
    bad = [i for i in layers if not 0 <= i < depth]
    if not layers or bad or len(set(layers)) != len(layers):
        raise UsageError(f"model.init_from.layers: {layers} must name distinct layers of the teacher, which has "
                         f"{depth} (0 to {depth - 1})")
    labels = context.get("labels")
    t_labels = [hf.config.id2label[i] for i in range(len(hf.config.id2label))] if "num_labels" in kw else None
    if labels and t_labels is not None and list(labels) != t_labels:
        raise UsageError(f"model.init_from.run: the teacher's head scores the labels {t_labels}, the student's data "
                         f"gives {list(labels)} (task.labels); its head cannot be copied")
    config = copy.deepcopy(hf.config)
    config.num_hidden_layers = len(layers)
    for key, value in kw.items():
        setattr(config, key, value)
    student = auto.from_config(config)
    source = hf.state_dict()
    pattern = re.compile(rf"^{re.escape(stack)}\.(\d+)\.")
    state, unused = {}, []
    for key in student.state_dict():
        m = pattern.match(key)
        name = pattern.sub(f"{stack}.{layers[int(m.group(1))]}.", key) if m else key
        if name in source:
            state[key] = source[name].detach().clone()
        elif ".pooler." in f".{key}":  # a mean-pooling teacher dropped its [CLS] pooler
            unused.append(key)
        else:
            raise UsageError(f"model.init_from: the student's {key} has no counterpart ({name}) in the teacher")
    missing, _ = student.load_state_dict(state, strict=False)
    if set(missing) - set(unused):
        raise UsageError(f"model.init_from: weights not copied from the teacher: {sorted(set(missing) - set(unused))}")
    log.info("model.init_from: %d of the teacher's %d layers (%s) with its embeddings and head, from %s",
             len(layers), depth, layers, init.run)
    return student
