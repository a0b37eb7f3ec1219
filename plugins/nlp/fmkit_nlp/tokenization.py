"""Tokenizers: from a pretrained folder, or trained on the training texts (WordPiece or BPE)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Literal

from fmkit.components import Params


class TokenizerParams(Params):
    #: a folder with a saved tokenizer (default: the model's pretrained folder)
    path: str | None = None
    #: algorithm when training one on the data (from-scratch models)
    algorithm: Literal["wordpiece", "bpe"] = "wordpiece"
    #: size of the vocabulary of a tokenizer trained on the data (special tokens included)
    vocab_size: int = 8000
    #: lowercase text before a tokenizer trained on the data splits it
    lowercase: bool = True


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    from .models import resolve_pretrained

    # never code shipped with a tokenizer folder (an auto_map in tokenizer_config.json)
    return AutoTokenizer.from_pretrained(resolve_pretrained(path), local_files_only=True, trust_remote_code=False)


def train_tokenizer(texts: Iterable[str], p: TokenizerParams):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    if p.algorithm == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=p.vocab_size, special_tokens=specials, show_progress=False)
        tok.decoder = decoders.WordPiece()
    else:
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=p.vocab_size, special_tokens=specials, show_progress=False)
    norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if p.lowercase else [])
    tok.normalizer = normalizers.Sequence(norms)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(list(texts), trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def cached_trained_tokenizer(texts: Iterable[str], p: TokenizerParams, cache_dir: str | None):
    """:func:`train_tokenizer`, kept in ``cache_dir/tokenizers/KEY`` (KEY: the texts, the settings and
    the tokenizers version) so every run on the same data gets the same tokenizer.

    The tokenizers library breaks ties between equally frequent merges in hash order, which differs
    from process to process: trained twice on the same texts, a vocabulary comes out different. A
    rerun, a resumed run, the other ranks of a distributed run and the feature cache all need the
    first one. When several processes train the same key at once, the first to publish its folder
    wins and every process (itself included) uses what was published. Without a cache folder
    (``data.cache: false``) the tokenizer is trained afresh."""
    texts = list(texts)
    if not cache_dir:
        return train_tokenizer(texts, p)
    import tokenizers

    h = hashlib.sha256(json.dumps({"settings": p.model_dump(), "tokenizers": tokenizers.__version__}).encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    folder = Path(cache_dir) / "tokenizers" / h.hexdigest()[:32]
    if not (folder / "tokenizer.json").is_file():
        tok = train_tokenizer(texts, p)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".tmp-{folder.name[:8]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tok.save_pretrained(str(tmp))
            os.rename(tmp, folder)  # atomic; fails when another process published first
        except OSError:
            if not (folder / "tokenizer.json").is_file():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_tokenizer(str(folder))
