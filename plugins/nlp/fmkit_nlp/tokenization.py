"""Tokenizers: from a pretrained folder, or trained on the training texts (WordPiece or BPE)."""
from __future__ import annotations

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
