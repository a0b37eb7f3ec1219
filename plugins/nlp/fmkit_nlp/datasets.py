"""Reading labelled text: CSV, TSV (unquoted too), JSONL, Parquet, class folders, per-label line files."""
from __future__ import annotations

import csv
import logging
import random
from pathlib import Path
from typing import Literal

from fmkit import carve_split
from fmkit.components import Params
from fmkit.errors import DataError
from pydantic import Field, PositiveInt, field_validator, model_validator

from .cells import _kind, blank as _blank, label_cell as _label_cell, text_cell as _text_cell

log = logging.getLogger("fmkit")


class TextFilesParams(Params):
    #: the training file, or a folder of class sub-folders of text files (``train/pos/1.txt``)
    train: str | None = None
    #: the same for the validation split (null: data.validation_split of train is held out)
    validation: str | None = None
    #: the same for the test split (null: test_fraction or split_sizes of train, or none)
    test: str | None = None
    #: one file per label with one text per line (rt_polarity): {label: path}; used for train
    label_files: dict[str, str] | None = None
    #: how files are read; auto: by the file's ending (.csv, .tsv, .jsonl/.json, .parquet, .txt: one text per line),
    #: a folder as class sub-folders, anything else as CSV
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "folder", "lines"] = "auto"
    #: the column (or JSON key) holding the text
    text_column: str = "text"
    #: second text column for sentence-pair tasks
    text_pair_column: str | None = None
    #: the column (or JSON key) holding the label (a row with a blank label is dropped and counted)
    label_column: str = "label"
    #: text encoding of the files (latin-1 for older corpora)
    encoding: str = "utf-8"
    #: multi-label targets: labels separated by this string in the label column
    label_separator: str | None = Field(None, min_length=1)
    #: TSV files without quoting (SST-2): quotes are ordinary characters
    quoting: Literal["auto", "minimal", "none"] = "auto"
    #: carve a seeded test split out of train when the data has none
    test_fraction: float = 0.0
    #: carve seeded splits of exact sizes out of train ({validation: 1066, test: 1066}; rt_polarity)
    split_sizes: dict[Literal["validation", "test"], PositiveInt] = {}
    #: keep a seeded random sample of this many rows per split ({train: 8000}): quick experiments
    limits: dict[Literal["train", "validation", "test"], PositiveInt] = {}
    #: a JSON file holding every split (CLINC150's data_full.json): {split: key in the file}
    json_keys: dict[Literal["train", "validation", "test"], str] = {}
    #: column names for rows stored as lists ([text, label]) in JSON files
    list_columns: list[str] = ["text", "label"]
    #: seed of the shuffles that carve test_fraction and split_sizes and sample limits (same seed, same rows)
    seed: int = 0

    @model_validator(mode="after")
    def _one_source_per_column_and_split(self):
        if self.train and self.label_files:
            raise ValueError("give data.train or data.label_files, not both (label_files would be ignored)")
        if self.text_pair_column and self.text_pair_column in (self.label_column, self.text_column):
            raise ValueError(f"data.text_pair_column {self.text_pair_column!r} is also the "
                             f"{'label' if self.text_pair_column == self.label_column else 'text'} column: the "
                             "model would read it as input")
        if self.text_column == self.label_column:
            raise ValueError(f"data.text_column and data.label_column are both {self.text_column!r}: the model "
                             "would read its label as input")
        for name in ("validation", "test"):
            if self.split_sizes.get(name) and getattr(self, name):
                raise ValueError(f"data.split_sizes.{name} carves a {name} split out of train, but data.{name} "
                                 "gives one already: keep one of the two")
        if self.label_files is not None and len(self.label_files) == 1:
            raise ValueError("data.label_files names one label; a classifier learns from at least two")
        return self

    @field_validator("encoding")
    @classmethod
    def _known_text_encoding(cls, value: str) -> str:
        import codecs

        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}; use a name Python knows, such as utf-8, latin-1, "
                             "cp1252 or utf-16") from None
        if not getattr(info, "_is_text_encoding", True):  # rot13, base64: codecs, not encodings of text files
            raise ValueError(f"{value!r} is not a text encoding; use utf-8, latin-1, cp1252 or the like")
        return value


def _jsonl_record(path: Path, n: int, line: str) -> dict:
    """Line ``n`` of a JSONL data file as its record; :class:`DataError` naming the file and line
    when it is not JSON or not an object."""
    import json

    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise DataError(f"{path}:{n}: not valid JSON: {e}") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}:{n}: a record is a JSON object ({{\"text\": ..., \"label\": ...}}), "
                        f"not {type(record).__name__}")
    return record


def _separator_hint(columns) -> str:
    """A hint when a header read as one column holds another separator (a ``;``-separated export
    from a spreadsheet read as CSV)."""
    if isinstance(columns, (list, tuple)) and len(columns) == 1:
        found = next((sep for sep in (";", "\t", "|") if sep in str(columns[0])), None)
        if found:
            shown = "\\t" if found == "\t" else found
            return (f" (the header is one column holding {shown!r}: the file looks {shown!r}-separated; fmkit reads "
                    "comma-separated .csv and tab-separated .tsv files: save it as one of those)")
    return ""


class TextFiles:
    """Loads raw examples ``{"text", "text_pair"?, "label"}`` per split."""

    def __init__(self, params: TextFilesParams, context: dict | None = None):
        self.p = params
        self.task = (context or {}).get("task")
        self._documents: dict[str, object] = {}  # JSON files holding every split, parsed (see _json_document)
        #: rows left out while reading, {split/reason: count} (the engine adds them to the cleaning report)
        self.dropped: dict[str, int] = {}

    def _drop(self, path: Path, split: str, reason: str, rows: list[int]) -> None:
        if rows:
            key = f"{split}/{reason}"
            self.dropped[key] = self.dropped.get(key, 0) + len(rows)
            shown = ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
            log.warning("%s: dropped %d row(s) with a %s (data rows %s, 1-based)", path, len(rows),
                        reason.replace("-", " "), shown)

    def _format(self, path: Path) -> str:
        if self.p.format != "auto":
            return self.p.format
        if path.is_dir():
            return "folder"
        if path.suffix.lower() == ".json" and self.p.json_keys:
            return "json"
        return {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet",
                ".txt": "lines"}.get(
            path.suffix.lower(), "csv")

    #: column names that usually hold the label / the text, tried before looking at the values
    LABEL_NAMES = ("label", "labels", "intent", "category", "class", "target", "sentiment", "y")
    TEXT_NAMES = ("text", "sentence", "review", "message", "utterance", "content", "body", "query")

    @staticmethod
    def suggest_params(path: str) -> tuple[dict, list[str]]:
        """For ``fmkit new recipe TASK --data FILE``: the parameters that read ``path`` (a CSV, TSV or
        JSONL file; its first 500 rows are looked at) and notes saying why each column was chosen. The
        label column: a usual label name, else the column with the fewest distinct values; the text
        column: a usual text name, else the column with the longest values."""
        import itertools
        import json

        file = Path(path)
        fmt = {".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}.get(file.suffix.lower(), "csv")
        if file.is_dir() or fmt not in ("csv", "tsv", "jsonl"):
            return {"train": path}, [f"data.train is {path}; check the other data fields by hand"]
        try:
            with open(file, encoding="utf-8", newline="") as f:
                if fmt == "jsonl":
                    rows = [json.loads(line) for line in itertools.islice((ln for ln in f if ln.strip()), 500)]
                else:
                    rows = list(itertools.islice(csv.DictReader(f, delimiter="\t" if fmt == "tsv" else ",",
                                                                quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL), 500))
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as e:
            raise DataError(f"cannot read {path} as {fmt}: {e}") from None
        rows = [r for r in rows if isinstance(r, dict)]
        columns = list(rows[0]) if rows else []
        if len(columns) < 2:
            raise DataError(f"{path} needs a text column and a label column; found {columns or 'no rows'}")
        values = {c: [str(r.get(c) or "") for r in rows] for c in columns}
        lower = {c.lower(): c for c in columns}
        label = next((lower[n] for n in TextFiles.LABEL_NAMES if n in lower), None)
        why_label = "its name"
        if label is None:
            label = min(columns, key=lambda c: len(set(values[c])))
            why_label = "the fewest distinct values"
        rest = [c for c in columns if c != label]
        text = next((lower[n] for n in TextFiles.TEXT_NAMES if n in lower and lower[n] != label), None)
        why_text = "its name"
        if text is None:
            text = max(rest, key=lambda c: sum(map(len, values[c])))
            why_text = "the longest values"
        classes = len(set(values[label]))
        notes = [f"from {path}: columns {columns}",
                 f"text_column: {text!r} (chosen by {why_text}); label_column: {label!r} (chosen by {why_label}; "
                 f"{classes} distinct values in the first {len(rows)} rows)"]
        return {"train": path, "text_column": text, "label_column": label}, notes

    def check(self) -> list[tuple[str, str]]:
        """For ``fmkit validate``: the split files exist, and the columns the parameters name are in
        their header (CSV/TSV) or first record (JSONL); nothing else is read."""
        from fmkit import missing_split_files

        p = self.p
        problems = missing_split_files(p) + missing_split_files(p.label_files or {}, tuple(p.label_files or ()))
        problems = [(f"label_files.{f}" if p.label_files and f in p.label_files else f, m) for f, m in problems]
        missing = {f for f, _ in problems}
        for label, path in (p.label_files or {}).items():
            if f"label_files.{label}" not in missing and Path(path).is_dir():
                problems.append((f"label_files.{label}", f"{path} is a folder; data.label_files.{label} is a text "
                                                         "file with one example per line"))
        if not p.train and not p.label_files:
            problems.append(("train", "no training data: set data.train (a file or folder) or data.label_files"))
        for split in ("train", "validation", "test"):
            value = getattr(p, split)
            if not value or split in missing:
                continue
            path = Path(value)
            fmt = self._format(path)
            wrong = self._kind_mismatch(path, fmt, split) or self._emptiness(path, fmt)
            if wrong:
                problems.append((split, wrong))
                continue
            if fmt == "lines" and self._needs_labels() and not (split == "train" and p.label_files):
                problems.append((split, self._unlabelled(path, split)))
                continue
            if not path.is_file():
                continue
            columns, unreadable = self._columns(path, fmt)
            if unreadable:
                problems.append((split, unreadable))
                continue
            if fmt == "json":  # one document holding every split: its keys are checked (the whole file is read)
                wrong = self._json_key_problem(path, split)
                if wrong:
                    problems.append((f"json_keys.{split}" if split in p.json_keys else split, wrong))
                continue
            if columns is None:  # another format (Parquet): loading checks it
                continue
            wanted = [("text_column", p.text_column)] + ([("text_pair_column", p.text_pair_column)]
                                                          if p.text_pair_column else [])
            if split == "train" or self._needs_labels():  # a classifier is scored on labels too
                wanted.append(("label_column", p.label_column))
            for field, column in wanted:
                if column not in columns:
                    hint = _separator_hint(columns)
                    problems.append((field, f"{path} (data.{split}) has no column {column!r}; its columns are "
                                            f"{columns}: set data.{field} to one of them{hint}"))
                    if hint:
                        break  # a wrong separator: said once, not for every column
        return problems

    def _unlabelled(self, path: Path, split: str) -> str:
        return (f"{path} (data.{split}) is plain text, one example per line, without labels; "
                f"{type(self.task).__name__} learns and is scored from labelled examples: give a CSV, TSV or JSONL "
                "file with a label column, a folder of class sub-folders, or (for train) data.label_files")

    def _json_key_problem(self, path: Path, split: str) -> str | None:
        try:
            self._json_split(path, split)
        except DataError as e:
            return str(e)
        except OSError as e:
            return f"cannot read {path}: {e.strerror or e}"
        return None

    @staticmethod
    def _kind_mismatch(path: Path, fmt: str, split: str) -> str | None:
        """A folder where data.format names a file format, or a file where it says folder."""
        if fmt == "folder" and path.exists() and not path.is_dir():
            return f"{path} (data.{split}) is a file, but data.format is folder: give a folder of class " \
                   "sub-folders, or set data.format to the file's format (auto reads it by its ending)"
        if fmt != "folder" and path.is_dir():
            return f"{path} (data.{split}) is a folder, but data.format is {fmt}: give a {fmt} file, or set " \
                   "data.format: auto (a folder is read as class sub-folders)"
        return None

    def metadata(self) -> dict:
        """The columns the texts come from, so the trained task reads prediction files laid out like
        the training file (``{"text_columns": [text_column, text_pair_column?]}``)."""
        return {"text_columns": [self.p.text_column] + ([self.p.text_pair_column] if self.p.text_pair_column else [])}

    @property
    def _reading(self) -> str:
        """The codec files are opened with: ``data.encoding``, except that UTF-8 also drops the
        byte-order mark Excel writes (its first column would be named ``\ufefftext``)."""
        import codecs

        return "utf-8-sig" if codecs.lookup(self.p.encoding).name == "utf-8" else self.p.encoding

    def _needs_labels(self) -> bool:
        """Whether the recipe's task learns from labels (a classification task), so that a file
        without any cannot train it."""
        from fmkit import ClassificationTask

        return isinstance(self.task, ClassificationTask)

    def _emptiness(self, path: Path, fmt: str) -> str | None:
        """What :meth:`load_file` would refuse without reading more than a few lines: a folder without
        class sub-folders holding files, a file that is empty, blank or only a header."""
        if fmt == "folder":
            if not path.is_dir():
                return None
            if any(f.is_file() for d in path.iterdir() if d.is_dir() for f in d.iterdir()):
                return None
            return f"{path}: no class sub-folders with text files (expected {path}/<label>/<file>.txt)"
        if not path.is_file() or fmt not in ("csv", "tsv", "jsonl", "lines"):
            return None
        try:
            with open(path, encoding=self._reading, newline="") as f:
                lines = (line for line in f if line.strip())
                first = next(lines, None)
                if first is None:
                    return f"{path} has no rows (the file is {'empty' if path.stat().st_size == 0 else 'blank'}); " \
                           "give a file with examples"
                if fmt in ("csv", "tsv") and next(lines, None) is None:
                    return f"{path} has no rows (the file is only a header); give a file with examples"
        except (OSError, ValueError, LookupError):  # not the encoding, utf-16 without a BOM: _columns says so
            return None
        return None

    def _columns(self, path: Path, fmt: str) -> tuple[list[str] | None, str | None]:
        """``(columns, problem)``: the column names of a CSV/TSV header or a JSONL file's first
        record (``None`` for other formats), or what makes the start of the file unreadable."""
        enc = self._reading
        try:
            with open(path, encoding=enc, newline="") as f:
                if fmt in ("csv", "tsv"):
                    reader = csv.reader(f, delimiter="\t" if fmt == "tsv" else ",", quoting=self._quoting(fmt))
                    return next(reader, []), None
                if fmt == "jsonl":
                    first = next(((n, line) for n, line in enumerate(f, 1) if line.strip()), None)
                    return (sorted(_jsonl_record(path, *first)) if first else []), None
        except DataError as e:
            return None, str(e)
        except UnicodeDecodeError as e:
            return None, (f"{path} is not {self.p.encoding} text ({e.reason} at byte {e.start}); set data.encoding "
                          "(latin-1, say)")
        except (OSError, ValueError, LookupError, csv.Error) as e:  # utf-16 without a BOM, a field too long...
            return None, f"cannot read {path} as {enc} {fmt}: {e}"
        if fmt == "parquet":
            try:
                self._check_parquet(path)
            except DataError as e:
                return None, str(e)
            except OSError:
                pass
        return None, None

    def load_file(self, path_str: str, split: str = "train") -> list[dict]:
        path = Path(path_str)
        if not path.exists():
            raise DataError(f"data file {path} does not exist (check data.train/validation/test in the recipe)")
        fmt = self._format(path)
        wrong = self._kind_mismatch(path, fmt, split)
        if wrong:
            raise DataError(wrong)
        if fmt == "folder":
            return self._folder(path)
        if fmt == "lines" and self._needs_labels():
            raise DataError(self._unlabelled(path, split))
        if fmt == "lines":  # plain text, one example per non-empty line (language-model corpora)
            try:
                out = [{"text": t} for t in path.read_text(encoding=self._reading).splitlines() if t.strip()]
            except UnicodeDecodeError as e:
                raise DataError(f"{path} is not {self.p.encoding}: {e}; set data.encoding (for example latin-1)") from None
            if not out:
                raise DataError(f"data.{split}: {path} has no text (the file is empty or blank)")
            return out
        lines = None  # the line each row starts (CSV: ends) on, where the format has lines
        if fmt == "json":
            rows = self._json_split(path, split)
        else:
            rows, lines = self._table(path, fmt)
        if not rows:
            what = "only a header" if fmt in ("csv", "tsv") and path.stat().st_size > 0 else "empty"
            raise DataError(f"data.{split}: {path} has no rows (the file is {what}); give a file with examples")
        p = self.p

        def where(i: int) -> str:  # FILE:LINE of row i, else the row by its place
            if lines is not None:
                return f"{path}:{lines[i]}"
            return f"{path}: {p.json_keys[split]}[{i}]" if fmt == "json" else f"{path}: row {i + 1}"

        many = bool(p.label_separator) or bool(getattr(self.task, "multi_label", False))
        out, blank, unlabelled = [], [], []
        for i, row in enumerate(rows):
            if p.text_column not in row:
                raise DataError(f"{where(i)}: no column {p.text_column!r} (columns: {sorted(row)}); "
                                "set data.text_column")
            text = _text_cell(row[p.text_column], where, i, p.text_column, "text_column")
            if _blank(text):
                blank.append(i + 1)
                continue
            ex = {"text": text}
            if p.text_pair_column:
                ex["text_pair"] = _text_cell(row.get(p.text_pair_column), where, i, p.text_pair_column,
                                             "text_pair_column")
            if p.label_column in row:
                label = _label_cell(row[p.label_column], where, i, p.label_column, many)
                if isinstance(label, list):  # multi-label, given as a list: its blank items are left out
                    ex["label"] = [str(x) for x in label if not _blank(x)]
                elif p.label_separator:  # multi-label: a blank cell is an example with no labels
                    ex["label"] = [] if _blank(label) else [x for x in str(label).split(p.label_separator) if x.strip()]
                elif _blank(label) or str(label).strip().lower() == "nan":  # dropped and counted, never a class
                    unlabelled.append(i + 1)
                    continue
                else:
                    ex["label"] = str(label)
            out.append(ex)
        self._drop(path, split, "blank-text", blank)
        self._drop(path, split, "blank-label", unlabelled)
        if not out:
            raise DataError(f"data.{split}: every row of {path} has a blank {p.text_column!r} or "
                            f"{p.label_column!r}; check data.text_column and data.label_column")
        return out

    def _quoting(self, fmt: str) -> int:
        none = self.p.quoting == "none" or (self.p.quoting == "auto" and fmt == "tsv")
        return csv.QUOTE_NONE if none else csv.QUOTE_MINIMAL

    def _table(self, path: Path, fmt: str) -> tuple[list[dict], list[int] | None]:
        """``(rows, lines)``: the file's rows and the line of each (CSV and TSV: the line a row ends on,
        JSONL: its line), ``None`` for Parquet, which has no lines."""
        enc = self._reading
        try:
            if fmt in ("csv", "tsv"):
                if csv.field_size_limit() < 2**31 - 1:  # cells past csv's 131,072-character default
                    csv.field_size_limit(2**31 - 1)
                with open(path, encoding=enc, newline="") as f:
                    reader = csv.DictReader(f, delimiter="\t" if fmt == "tsv" else ",", quoting=self._quoting(fmt))
                    rows, lines = [], []
                    for row in reader:
                        if None in row:  # DictReader's key for cells past the header's
                            raise DataError(f"{path}:{reader.line_num}: more cells than the header's "
                                            f"{len(reader.fieldnames or [])} columns (an unquoted "
                                            f"{'tab' if fmt == 'tsv' else 'comma'} in a cell?); quote that cell")
                        rows.append(row)
                        lines.append(reader.line_num)
                    return rows, lines
            if fmt == "jsonl":
                with open(path, encoding=enc) as f:
                    numbered = [(n, _jsonl_record(path, n, line)) for n, line in enumerate(f, 1) if line.strip()]
                return [r for _, r in numbered], [n for n, _ in numbered]
            if fmt == "parquet":
                self._check_parquet(path)
            import pandas as pd

            return pd.read_parquet(path).to_dict("records"), None
        except UnicodeDecodeError as e:
            raise DataError(f"{path} is not {self.p.encoding}: {e}; set data.encoding (for example latin-1)") from None
        except (csv.Error, ValueError) as e:
            raise DataError(f"{path}: cannot parse as {fmt}: {e}") from None

    @staticmethod
    def _check_parquet(path: Path) -> None:
        with open(path, "rb") as f:
            if f.read(4) != b"PAR1":
                raise DataError(f"{path} is not a Parquet file (no PAR1 magic bytes at its start): set data.format to "
                                "its format, or auto to read it by its ending")

    def _json_document(self, path: Path):
        """The parsed document of a JSON file holding every split, read once however many splits
        (and checks) name it."""
        import json

        key = str(path.resolve())
        if key not in self._documents:
            try:
                self._documents[key] = json.loads(path.read_text(encoding=self._reading))
            except (UnicodeDecodeError, ValueError) as e:
                raise DataError(f"{path}: not a JSON document in {self.p.encoding}: {e}") from None
        return self._documents[key]

    def _json_split(self, path: Path, split: str) -> list[dict]:
        key = self.p.json_keys.get(split)
        if key is None:
            raise DataError(f"{path} holds several splits: name the key of {split!r} in data.json_keys")
        doc = self._json_document(path)
        if not isinstance(doc, dict) or key not in doc:
            keys = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
            raise DataError(f"{path}: no key {key!r} (data.json_keys.{split}); the file has {keys}")
        cols = self.p.list_columns
        rows = doc[key]
        if not isinstance(rows, list):
            raise DataError(f"{path}: {key} (data.json_keys.{split}) is a list of records; got {_kind(rows)}")
        for i, row in enumerate(rows):
            if not isinstance(row, (dict, list)):
                raise DataError(f"{path}: {key}[{i}]: a record is a JSON object or a list ({cols}), not {_kind(row)}")
        return [dict(zip(cols, row)) if isinstance(row, list) else row for row in rows]

    def _folder(self, root: Path) -> list[dict]:
        out = []
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for f in sorted(label_dir.iterdir()):
                if f.is_file():
                    out.append({"text": f.read_text(encoding=self._reading, errors="replace"), "label": label_dir.name})
        if not out:
            raise DataError(f"{root}: no class sub-folders with text files (expected {root}/<label>/<file>.txt)")
        return out

    def load(self) -> dict[str, list[dict]]:
        p, splits = self.p, {}
        if p.label_files:
            rows = []
            for label, path in p.label_files.items():
                try:
                    lines = Path(path).read_text(encoding=self._reading).splitlines()
                except FileNotFoundError:
                    raise DataError(f"data.label_files.{label}: {path} does not exist") from None
                except IsADirectoryError:
                    raise DataError(f"data.label_files.{label}: {path} is a folder; give a text file with one "
                                    "example per line") from None
                except UnicodeDecodeError as e:
                    raise DataError(f"{path} is not {p.encoding}: {e}; set data.encoding: latin-1") from None
                self._drop(Path(path), "train", "blank-text", [i + 1 for i, t in enumerate(lines) if not t.strip()])
                rows += [{"text": t, "label": label} for t in lines if t.strip()]
            splits["train"] = rows
        for name in ("train", "validation", "test"):
            path = getattr(p, name)
            if path:
                splits[name] = self.load_file(path, name)
        if not splits.get("train"):
            raise DataError("no training data: set data.train (a file or folder) or data.label_files")
        if p.split_sizes:
            rows = list(splits["train"])
            random.Random(p.seed).shuffle(rows)
            for name in ("test", "validation"):
                n = p.split_sizes.get(name, 0)
                if n and name in splits:
                    raise DataError(f"data.split_sizes.{name}: the data already has a {name} split ({getattr(p, name)})")
                if n >= len(rows):
                    raise DataError(f"data.split_sizes.{name}: {n} rows asked, only {len(rows)} training rows left")
                if n:
                    splits[name], rows = rows[:n], rows[n:]
            splits["train"] = rows
        carve_split(splits, "test", p.test_fraction, p.seed)
        for name, n in p.limits.items():
            if name in splits and len(splits[name]) > n:
                splits[name] = random.Random(f"{p.seed}-{name}").sample(splits[name], n)
        return splits
