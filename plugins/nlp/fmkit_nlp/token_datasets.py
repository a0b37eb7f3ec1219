"""Reading tagged words: CoNLL column files and JSONL ``{"tokens": [...], "tags": [...]}``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from fmkit.components import Params
from fmkit.errors import DataError


class TokenFilesParams(Params):
    #: the training file (CoNLL or JSONL)
    train: str | None = None
    #: the validation file (null: data.validation_split of train is held out)
    validation: str | None = None
    #: the test file (null: no test split)
    test: str | None = None
    #: how files are read; auto: .jsonl and .json as JSONL, anything else as CoNLL
    format: Literal["auto", "conll", "jsonl"] = "auto"
    #: CoNLL: the column of the word (0-based)
    word_column: int = 0
    #: CoNLL: the column of the tag (0-based; -1 is the last column)
    tag_column: int = -1
    #: JSONL: the field holding each sentence's list of words
    tokens_field: str = "tokens"
    #: JSONL: the field holding each sentence's list of tags, one per word
    tags_field: str = "tags"
    #: text encoding of the files
    encoding: str = "utf-8"


class TokenFiles:
    """Loads ``{"tokens": [...], "tags": [...]}`` sentences per split.

    CoNLL files hold one word per line with whitespace-separated columns; a blank line ends a
    sentence and ``-DOCSTART-`` lines are skipped. A malformed line is an error naming file and line.
    """

    def __init__(self, params: TokenFilesParams, context: dict | None = None):
        self.p = params

    def load_file(self, path_str: str) -> list[dict]:
        path = Path(path_str)
        if not path.is_file():
            raise DataError(f"data file {path} does not exist (check data.train/validation/test in the recipe)")
        fmt = self.p.format if self.p.format != "auto" else ("jsonl" if path.suffix in (".jsonl", ".json") else "conll")
        try:
            text = path.read_text(encoding=self.p.encoding)
        except UnicodeDecodeError as e:
            raise DataError(f"{path} is not {self.p.encoding}: {e}; set data.encoding") from None
        return self._jsonl(path, text) if fmt == "jsonl" else self._conll(path, text)

    def _conll(self, path: Path, text: str) -> list[dict]:
        out, words, tags = [], [], []
        for n, line in enumerate(text.splitlines(), 1):
            cols = line.split()
            if not cols or cols[0] == "-DOCSTART-":
                if words:
                    out.append({"tokens": words, "tags": tags})
                words, tags = [], []
                continue
            try:
                words.append(cols[self.p.word_column])
                tags.append(cols[self.p.tag_column])
            except IndexError:
                raise DataError(f"{path}:{n}: expected columns {self.p.word_column} (word) and "
                                f"{self.p.tag_column} (tag), found {len(cols)}: {line!r}") from None
            if len(cols) == 1:
                raise DataError(f"{path}:{n}: a word without a tag: {line!r} (CoNLL lines are 'word ... tag')")
        if words:
            out.append({"tokens": words, "tags": tags})
        if not out:
            raise DataError(f"{path}: no sentences found")
        return out

    def _jsonl(self, path: Path, text: str) -> list[dict]:
        out, tf, gf = [], self.p.tokens_field, self.p.tags_field
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise DataError(f"{path}:{n}: not JSON: {e}") from None
            words, tags = row.get(tf), row.get(gf)
            if not isinstance(words, list) or (tags is not None and (not isinstance(tags, list) or len(tags) != len(words))):
                raise DataError(f"{path}:{n}: needs a list {tf!r} and a list {gf!r} of the same length")
            out.append({"tokens": [str(w) for w in words], "tags": None if tags is None else [str(t) for t in tags]})
        return out

    def load(self) -> dict[str, list[dict]]:
        splits = {name: self.load_file(getattr(self.p, name)) for name in ("train", "validation", "test")
                  if getattr(self.p, name)}
        if not splits.get("train"):
            raise DataError("no training data: set data.train (a CoNLL or JSONL file)")
        return splits
