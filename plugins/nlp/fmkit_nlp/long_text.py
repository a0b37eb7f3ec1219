"""Tokenizing long texts in proportion to what the model reads.

A text-classification input is cut to ``max_length`` tokens, but a tokenizer called with
``truncation=True`` still normalises, splits and encodes the whole string first: one served request
of eight 120,000-character documents costs about a second of a core, all for tokens that are thrown
away, and that second is taken from every other client of the server. :func:`encode_heads` gives
the same ids while reading only a prefix of each long text.

Why it is exact: the tokenizers fmkit-nlp uses split the text into words at whitespace before
they encode anything (WordPiece, byte-level BPE and SentencePiece's metaspace pre-tokenizers all
do), and encode each word on its own. Cut just before a space, tab or newline that follows a
non-space character, a prefix therefore encodes to the first tokens of the whole text, word for
word. When that prefix already gives at least ``max_length`` tokens, the truncated encoding of the
prefix and of the whole text are the same. Otherwise (a prefix of few, long tokens; no whitespace
to cut at; a tokenizer that does not pre-split, checked once per tokenizer), the whole text is
tokenized as before.
"""
from __future__ import annotations

import re
import weakref
from typing import Any

#: a prefix of ``max_length * CHARS_PER_TOKEN`` characters is read first; BERT-family vocabularies
#: average 4-6 characters per token, so this leaves a wide margin before the fallback is needed
CHARS_PER_TOKEN = 24
_CUT = re.compile(r"[^ \t\n\r][ \t\n\r]")
#: per tokenizer object, held weakly: keyed by ``id()`` a new tokenizer allocated where a freed one
#: lived would inherit that one's answer
_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def splits_words_at_whitespace(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` (a transformers fast tokenizer) pre-splits text into words at
    whitespace, the property :func:`encode_heads` relies on (checked once per tokenizer object)."""
    try:
        return _SPLITS[tokenizer]
    except (KeyError, TypeError):  # not checked yet, or an object that cannot be held weakly
        pass
    ok = False
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre = getattr(backend, "pre_tokenizer", None) if backend is not None else None
    if pre is not None:
        try:
            normalizer = backend.normalizer
            probe = "alpha beta\ngamma\tdelta"
            text = normalizer.normalize_str(probe) if normalizer is not None else probe
            pieces = [p for p, _ in pre.pre_tokenize_str(text)]
            ok = len(pieces) >= 4
        except Exception:  # a pre-tokenizer that cannot be probed: take the whole text
            ok = False
    try:
        _SPLITS[tokenizer] = ok
    except TypeError:  # not weakly referable or not hashable: checked again next time
        pass
    return ok


def whitespace_cut(text: str, limit: int) -> int | None:
    """The length of the longest prefix of ``text`` no longer than ``limit`` characters that ends
    on a non-space character followed by whitespace (``None`` when there is none)."""
    end = None
    for m in _CUT.finditer(text, 0, limit + 1):
        end = m.start() + 1
    return end


def encode_heads(tokenizer: Any, texts: list[str], max_length: int, **kwargs: Any) -> dict:
    """``tokenizer(texts, truncation=True, max_length=max_length, **kwargs)``, reading only as much of
    each long text as can reach the first ``max_length`` tokens. Same ids as the plain call."""
    limit = max_length * CHARS_PER_TOKEN
    long = [i for i, t in enumerate(texts) if len(t) > 2 * limit]
    if not long or not splits_words_at_whitespace(tokenizer):
        return tokenizer(texts, truncation=True, max_length=max_length, **kwargs)
    cut_at = {i: whitespace_cut(texts[i], limit) for i in long}
    cut_at = {i: k for i, k in cut_at.items() if k}
    if cut_at:
        order = list(cut_at)
        counts = tokenizer([texts[i][:cut_at[i]] for i in order], add_special_tokens=False,
                           return_attention_mask=False, return_token_type_ids=False, verbose=False)["input_ids"]
        cut_at = {i: cut_at[i] for i, ids in zip(order, counts) if len(ids) >= max_length}
    heads = [t[:cut_at[i]] if i in cut_at else t for i, t in enumerate(texts)]
    return tokenizer(heads, truncation=True, max_length=max_length, **kwargs)
